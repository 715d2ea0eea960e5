package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"tyst/api"
	"tyst/store"
)

// uiHandler stands in for the web package: it answers every path it gets.
var uiHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ui:"+r.URL.Path)
})

// TestServer_UI: the UI gets GET and HEAD outside /api/ that no route
// matches, behind the same security headers; the API keeps its own 404s.
func TestServer_UI(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.UI = uiHandler })
	for _, c := range []struct {
		method, path string
		ui           bool
	}{
		{"GET", "/", true},
		{"GET", "/js/app.js", true},
		{"HEAD", "/app.css", true},
		{"GET", "/api/v1/nope", false},
		{"GET", "/api/", false},
		{"POST", "/", false},
		{"DELETE", "/js/app.js", false},
	} {
		resp, body := ts.do(t, c.method, c.path, "", nil, "Authorization", "")
		got := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain")
		if got != c.ui {
			t.Errorf("%s %s: served by the UI = %v, want %v (%d %s)", c.method, c.path, got, c.ui, resp.StatusCode, body)
		}
		if c.ui && c.method == "GET" && string(body) != "ui:"+c.path {
			t.Errorf("%s %s: body %q", c.method, c.path, body)
		}
		if !c.ui {
			wantError(t, resp, body, http.StatusNotFound, "not_found")
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s %s: CSP %q", c.method, c.path, csp)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: headers %v", c.method, c.path, resp.Header)
		}
	}
	// Without a UI, / is the API's JSON 404 as before.
	plain := mustServe(t)
	resp, body := plain.do(t, "GET", "/", "", nil)
	wantError(t, resp, body, http.StatusNotFound, "not_found")
}
