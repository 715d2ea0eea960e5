package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"tyst/api"
	"tyst/store"
)

// TestExports_Capped: an account builds one export at a time (429 past
// it), the server two (503 past it); both refusals carry Retry-After and
// write nothing — no package file, no row, no receipt, no audit event —
// and a slot is free again once its export is done. The exports held
// meet a slow disk (the fault hook waits once a package is written).
func TestExports_Capped(t *testing.T) {
	var mu sync.Mutex
	hold := make(chan struct{})
	arrived := make(chan struct{}, 8)
	blocking := true
	ts := mustServe(t, func(o *store.Options, c *api.Config) {
		c.MaxExportsPerUser, c.MaxExports = 1, 2
		o.Fault = func(point string) error {
			mu.Lock()
			b := blocking && point == store.FaultExportWritten
			mu.Unlock()
			if b {
				arrived <- struct{}{}
				<-hold
			}
			return nil
		}
	})
	id := ts.mustCreate(t, "interview")
	if resp, b := ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav")); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	a := ts.mustUser(t, "editor-a", store.RoleEditor, "")
	b := ts.mustUser(t, "editor-b", store.RoleEditor, "")
	c := ts.mustUser(t, "editor-c", store.RoleEditor, "")
	path := fmt.Sprintf("/api/v1/record/%d/export", id)
	body := `{"confirm":true,"reason":"for the desk"}`
	export := func(tok string) (*http.Response, []byte) {
		return ts.do(t, "POST", path, "application/json", strings.NewReader(body), asToken(tok)...)
	}
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for _, tok := range []string{a, b} {
		wg.Go(func() {
			resp, _ := export(tok)
			statuses <- resp.StatusCode
		})
		<-arrived // its package is written, not yet recorded: it holds its slot
	}
	before := ts.snapshot(t) + keyUsage(t, ts)
	resp, rb := export(a)
	wantBusy(t, resp, rb, 429, "rate_limited")
	resp, rb = export(c)
	wantBusy(t, resp, rb, 503, "unavailable")
	if after := ts.snapshot(t) + keyUsage(t, ts); after != before {
		t.Fatalf("refused exports changed the store:\n%s\n%s", before, after)
	}
	mu.Lock()
	blocking = false
	mu.Unlock()
	close(hold)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 201 {
			t.Fatalf("a held export answered %d, want 201", s)
		}
	}
	if resp, rb := export(c); resp.StatusCode != 201 {
		t.Fatalf("an export once the slots are free: %d %s", resp.StatusCode, rb)
	}
}

// TestExport_QuotaAndReserveOverHTTP: the store's refusals reach the
// client as 507 with their own codes, quota_exceeded for an account over
// its quota and insufficient_storage for a disk under its reserve, and
// change nothing.
func TestExport_QuotaAndReserveOverHTTP(t *testing.T) {
	for name, c := range map[string]struct {
		limits store.ExportLimits
		code   string
	}{
		"Quota":   {store.ExportLimits{PerUser: 1 << 20}, "quota_exceeded"},
		"Reserve": {store.ExportLimits{ReserveBytes: 512 << 20, FreeSpace: func() (int64, int64, error) { return 256 << 20, 1 << 30, nil }}, "insufficient_storage"},
	} {
		t.Run(name, func(t *testing.T) {
			ts := mustServe(t, func(o *store.Options, _ *api.Config) { o.ExportLimits = &c.limits })
			id := ts.mustCreate(t, "interview")
			ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav"))
			ed := ts.mustUser(t, "editor", store.RoleEditor, "")
			before := ts.snapshot(t) + keyUsage(t, ts)
			resp, b := ts.do(t, "POST", fmt.Sprintf("/api/v1/record/%d/export", id), "application/json",
				strings.NewReader(`{"confirm":true,"reason":"for the desk"}`), asToken(ed)...)
			wantError(t, resp, b, 507, c.code)
			// Over its quota is the account's condition: no ERROR line to
			// alert on, and no size of its packages in the log.
			logged := ts.log.String()
			if c.code == "quota_exceeded" && (strings.Contains(logged, `"level":"ERROR"`) || strings.Contains(logged, "MiB") || !strings.Contains(logged, `"code":"quota_exceeded"`)) {
				t.Fatalf("the refusal was logged as:\n%s", logged)
			}
			if after := ts.snapshot(t) + keyUsage(t, ts); after != before {
				t.Fatalf("a refused export changed the store:\n%s\n%s", before, after)
			}
		})
	}
}

// keyUsage is the count of sealed items per key: an export row or a
// receipt adds one.
func keyUsage(t *testing.T, ts *testServer) string {
	t.Helper()
	u, err := ts.db.KeyUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(u)
}
