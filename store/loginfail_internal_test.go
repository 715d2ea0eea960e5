package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// failedEvents returns the login_failed events of db's audit log (listing
// it, which writes the counts pending) and the sum of their counts.
func failedEvents(t *testing.T, db *DB) (events []AuditEvent, failures int) {
	t.Helper()
	all, _, err := db.AuditEvents(t.Context(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range all {
		if ev.Action == ActionLoginFailed {
			events = append(events, ev)
			failures += metaInt(t, ev, "count")
		}
	}
	return events, failures
}

// metaInt reads a number of an event's metadata (JSON gives float64).
func metaInt(t *testing.T, ev AuditEvent, key string) int {
	t.Helper()
	switch v := ev.Meta[key].(type) {
	case float64:
		return int(v)
	case int:
		return v
	}
	t.Fatalf("event %d: meta %q is %v", ev.Seq, key, ev.Meta[key])
	return 0
}

// auditRows counts the rows of the audit bucket without listing them
// (listing writes the pending counts).
func auditRows(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	if err := db.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketAudit).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLoginFailed_Flood: a flood of failed logins under thousands of
// usernames (as from many addresses, which the per-client limit counts
// apart) writes a bounded number of audit rows, and the database stays
// small; the admin still sees that they happened and how many, and a real
// login during and after it works and is audited.
func TestLoginFailed_Flood(t *testing.T) {
	kr, _ := NewKeyring(GenerateKey())
	dir := t.TempDir()
	db, err := Open(dir, Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	const password = "correct horse battery"
	if _, err := db.CreateUser(t.Context(), NewUser{Username: "editor", Password: password, Role: RoleEditor}); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, dbFileName)
	before := fileSize(t, dbFile)
	rowsBefore := auditRows(t, db)

	const flood, workers = 5000, 16
	bad := errorf(CodeUnauthorized, "wrong username or password")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < flood; i += workers {
				if err := db.loginFailed(bad, "credentials", fmt.Sprintf("nobody%d", i)); ErrorCode(err) != CodeUnauthorized {
					t.Errorf("failure %d: %v, want unauthorized", i, err)
					return
				}
			}
		})
	}
	// A real login in the middle of the flood.
	if _, u, err := db.Login(t.Context(), "editor", password, ""); err != nil || u.Username != "editor" {
		t.Fatalf("login during the flood: %v", err)
	}
	wg.Wait()
	if got := auditRows(t, db) - rowsBefore; got != 2 { // login_failed (the first failure) and login
		t.Fatalf("%d failed logins wrote %d audit rows before the window ended, want 2 (the first failure and the login)", flood, got)
	}
	events, failures := failedEvents(t, db)
	if len(events) != 2 || failures != flood {
		t.Fatalf("%d login_failed events counting %d failures, want 2 counting %d", len(events), failures, flood)
	}
	if c, u := metaInt(t, events[0], "count"), metaInt(t, events[0], "usernames"); c != 1 || u != 1 {
		t.Fatalf("the first event counts %d failures of %d usernames, want 1 and 1", c, u)
	}
	if u := metaInt(t, events[1], "usernames"); u != flood-1 {
		t.Fatalf("the second event counts %d usernames, want %d", u, flood-1)
	}
	for _, ev := range events {
		if ev.ActorID != 0 || ev.Meta["reason"] != "credentials" || len(ev.Meta) != 3 {
			t.Fatalf("event %+v: want reason, count and usernames only, no actor", ev)
		}
	}
	if grown := fileSize(t, dbFile) - before; grown > 256<<10 {
		t.Fatalf("the database grew by %d KiB for %d failed logins", grown>>10, flood)
	}
	t.Logf("%d failed logins: %d login_failed events, database %d KiB -> %d KiB", flood, len(events), before>>10, fileSize(t, dbFile)>>10)

	// A real login afterwards works and is audited, and a wrong one after
	// it is counted, not lost: Close writes it.
	if _, _, err := db.Login(t.Context(), "editor", password, ""); err != nil {
		t.Fatalf("login after the flood: %v", err)
	}
	if _, _, err := db.Login(t.Context(), "editor", "wrong password", ""); ErrorCode(err) != CodeUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	all, _, _ := db.AuditEvents(t.Context(), AuditFilter{})
	logins := 0
	for _, ev := range all {
		if ev.Action == ActionLogin && ev.ActorID != 0 {
			logins++
		}
	}
	if logins != 2 {
		t.Fatalf("%d login events, want 2", logins)
	}
	if err := db.loginFailed(bad, "credentials", "someone"); ErrorCode(err) != CodeUnauthorized {
		t.Fatal(err)
	}
	rows := auditRows(t, db)
	db.Close()
	if db, err = Open(dir, Options{Keys: kr}); err != nil {
		t.Fatal(err)
	}
	if got := auditRows(t, db); got != rows+1 {
		t.Fatalf("Close wrote %d rows, want 1 with the pending count", got-rows)
	}
	if _, failures := failedEvents(t, db); failures != flood+2 {
		t.Fatalf("the log counts %d failed logins, want %d", failures, flood+2)
	}
	if _, err := db.VerifyAuditChain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestLoginFailed_Window: at a window's end the counted failures are
// written without anyone listing the log; a window without failures closes,
// and the next failure is written at once again.
func TestLoginFailed_Window(t *testing.T) {
	kr, _ := NewKeyring(GenerateKey())
	db, err := Open(t.TempDir(), Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const window = 100 * time.Millisecond
	db.failures.window = window
	bad := errorf(CodeUnauthorized, "wrong username or password")
	fail := func(n int) {
		for i := range n {
			if err := db.loginFailed(bad, "second_factor", fmt.Sprint("user", i)); ErrorCode(err) != CodeUnauthorized {
				t.Fatal(err)
			}
		}
	}
	waitRows := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for auditRows(t, db) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d audit rows, want %d", auditRows(t, db), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	rows := auditRows(t, db)
	fail(10)
	waitRows(rows + 1) // the first at once
	waitRows(rows + 2) // the other 9 at the window's end
	time.Sleep(3 * window)
	fail(1)
	waitRows(rows + 3) // after a quiet window: at once
	events, failures := failedEvents(t, db)
	if len(events) != 3 || failures != 11 || metaInt(t, events[1], "count") != 9 || events[1].Meta["reason"] != "second_factor" {
		t.Fatalf("%d events counting %d failures: %+v", len(events), failures, events)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
