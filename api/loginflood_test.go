package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"tyst/api"
	"tyst/store"
)

// TestLoginFlood_AuditBounded: failed logins under as many usernames from as
// many client addresses (behind a proxy that names them, so no per-client or
// per-user limit stops them) write a bounded number of audit events; the
// admin's audit listing shows them all counted, and a real login during the
// flood and after it works and is audited.
func TestLoginFlood_AuditBounded(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	ts.mustUser(t, "editor", store.RoleEditor, "")
	dbFile := filepath.Join(ts.dir, "tyst.db")
	before := mustSize(t, dbFile)
	const flood, workers = 120, 8
	var wg sync.WaitGroup
	statuses := make(chan int, flood)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < flood; i += workers {
				body, _ := json.Marshal(map[string]string{"username": fmt.Sprintf("nobody%d", i), "password": "wrong password!"})
				ip := fmt.Sprintf("2001:db8:%x:%x::1", i>>8, i&0xff)
				resp, _ := ts.do(t, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), "Authorization", "", "X-Forwarded-For", ip)
				statuses <- resp.StatusCode
			}
		})
	}
	if c := ts.mustLogin(t, "editor"); c == nil { // during the flood
		t.Fatal("no session")
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusUnauthorized {
			t.Fatalf("a failed login answered %d, want 401", s)
		}
	}
	if c := ts.mustLogin(t, "editor"); c == nil { // after it
		t.Fatal("no session")
	}

	resp, body := ts.do(t, "GET", "/api/v1/audit?limit=500", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("audit: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Events []struct {
			Action string         `json:"action"`
			Meta   map[string]any `json:"meta"`
		} `json:"events"`
	}
	mustUnmarshal(t, body, &list)
	events, failures, usernames, logins := 0, 0, 0, 0
	for _, ev := range list.Events {
		switch ev.Action {
		case store.ActionLoginFailed:
			events++
			n, _ := ev.Meta["count"].(float64)
			u, _ := ev.Meta["usernames"].(float64)
			failures, usernames = failures+int(n), usernames+int(u)
		case store.ActionLogin:
			logins++
		}
	}
	if events > 2 || failures != flood || usernames != flood || logins != 2 {
		t.Fatalf("%d login_failed events counting %d failures of %d usernames, %d logins; want at most 2 counting %d of %d, and 2 logins:\n%s",
			events, failures, usernames, logins, flood, flood, body)
	}
	if bytes.Contains(body, []byte("nobody")) || bytes.Contains(body, []byte("2001:db8")) {
		t.Fatal("the audit log holds a username or an address")
	}
	if grown := mustSize(t, dbFile) - before; grown > 64<<10 {
		t.Fatalf("the database grew by %d KiB for %d failed logins", grown>>10, flood)
	}
}

func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
