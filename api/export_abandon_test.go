package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/api"
	"tyst/store"
)

// TestExport_ClientGivesUp: the adversarial review's F3 over loopback. A
// client on a flaky link gives up while the server writes its 20 MB
// export; the server stops, and the abandoned export leaves nothing — no
// package file, no temp file, no row or receipt (sealed items per key), no
// audit event — and gives its quota back: the account's next export fits
// a quota that holds one package.
func TestExport_ClientGivesUp(t *testing.T) {
	ts := mustServe(t, func(o *store.Options, _ *api.Config) {
		o.ExportLimits = &store.ExportLimits{PerUser: 64 << 20} // one package of 20 MB, not two
	})
	ed := ts.mustUser(t, "editor", store.RoleEditor, "")
	id := ts.mustCreate(t, "flaky link")
	if resp, b := ts.upload(t, id, "audio/wav", bigWAV(20<<20)); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	path := fmt.Sprintf("/api/v1/record/%d/export", id)
	body := `{"confirm":true,"reason":"for the desk"}`
	before := ts.snapshot(t) + keyUsage(t, ts)

	c, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(c, "POST", ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ed)
	done := make(chan error, 1)
	go func() {
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the export answered %d before the client gave up", resp.StatusCode)
		}
		done <- err
	}()
	// The client gives up once the server has written 1 MiB of the package.
	tmp := filepath.Join(ts.dir, "exports", "tmp")
	waitFor(t, "the package being written", func() bool {
		es, _ := os.ReadDir(tmp)
		for _, e := range es {
			if fi, err := e.Info(); err == nil && fi.Size() >= 1<<20 {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client: %v", err)
	}
	logged := `"method":"POST","route":"/api/v1/record/:id/export"`
	waitFor(t, "the export's handler to return", func() bool { return strings.Contains(ts.log.String(), logged) })
	if !strings.Contains(ts.log.String(), logged+`,"status":503`) {
		t.Fatalf("the abandoned export's request log: %s", ts.log.String())
	}
	if strings.Contains(ts.log.String(), `"level":"ERROR"`) {
		t.Fatalf("a client that gave up was logged as an error: %s", ts.log.String())
	}
	if after := ts.snapshot(t) + keyUsage(t, ts); after != before {
		t.Fatalf("the abandoned export left something:\n%s\n---\n%s", before, after)
	}
	for _, ev := range mustAudit(t, ts) {
		if ev.Action == store.ActionExportCreated {
			t.Fatal("the abandoned export is in the audit log")
		}
	}

	exp := func() (*http.Response, []byte) {
		return ts.do(t, "POST", path, "application/json", strings.NewReader(body), asToken(ed)...)
	}
	if resp, b := exp(); resp.StatusCode != 201 {
		t.Fatalf("the next export: %d %s", resp.StatusCode, b)
	}
	resp, b := exp()
	wantError(t, resp, b, 507, "quota_exceeded") // the quota holds one: the test proves something
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
