package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
)

// TestDecodeJSON_LiftsDeadline: once a JSON body is read, the body limits no
// longer apply: a handler that works longer than them keeps its context.
func TestDecodeJSON_LiftsDeadline(t *testing.T) {
	s := New(Config{BodyIdleTimeout: 200 * time.Millisecond})
	cancelled := make(chan bool, 1)
	s.router.Handle("POST", "/slow", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		var v map[string]any
		if err := s.decodeJSON(w, r, &v); err != nil {
			t.Error(err)
		}
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(800 * time.Millisecond): // well past the body limits
			cancelled <- false
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/slow", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if <-cancelled {
		t.Fatal("the request's context was cancelled by the body deadline after the body was read")
	}
}
