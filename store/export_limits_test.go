package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/store"
)

// exportSnapshot is what a refused export must not change: records, audit
// events and blob files (dataSnapshot), the package files and temp files,
// and the sealed items per key (an export row or a receipt adds one).
func exportSnapshot(tb testing.TB, db *store.DB, dir string) string {
	tb.Helper()
	usage, err := db.KeyUsage(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var keys []string
	for k, n := range usage {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(keys)
	return dataSnapshot(tb, db, dir) + strings.Join(exportFiles(dir), ",") + "\n" +
		fmt.Sprint(tmpFiles(dir, "exports")) + " temp\n" + strings.Join(keys, ",")
}

// tmpFiles counts the writes in progress of the store under dir/sub.
func tmpFiles(dir, sub string) int {
	es, _ := os.ReadDir(filepath.Join(dir, sub, "tmp"))
	return len(es)
}

// limitsEnv opens a store with limits l, and a record with 3 MiB of
// audio: a package of it takes 8 MiB encrypted, 5.3 MiB decrypted.
func limitsEnv(t *testing.T, l store.ExportLimits, fault func(string) error) (*store.DB, *testEnv, uint64) {
	t.Helper()
	env := newEnv(t)
	opts := testOptions(t, env)
	opts.ExportLimits = &l
	opts.Fault = fault
	db := mustOpenEnv(t, env, opts)
	rec := mustCreate(t, db, "long interview")
	mustAttach(t, db, rec.ID, "audio/wav", wavOfSize(3<<20, 1))
	return db, env, rec.ID
}

// TestExport_Quota: an account holds at most its quota of packages on the
// server. The export that would pass it is refused with quota_exceeded
// before a byte is written and changes nothing; another account, and the
// system, are not held back by it; once purge has removed the account's
// old package by age, it exports again.
func TestExport_Quota(t *testing.T) {
	const mib = 1 << 20
	db, env, id := limitsEnv(t, store.ExportLimits{PerUser: 12 * mib}, nil)
	ed := store.WithPrincipal(ctx, mustPrincipal(t, db, "editor", store.RoleEditor, ""))
	other := store.WithPrincipal(ctx, mustPrincipal(t, db, "other", store.RoleEditor, ""))
	req := store.ExportRequest{Confirm: true, Reason: "for the desk"}
	if _, err := db.Export(ed, id, req); err != nil {
		t.Fatalf("first export, within the quota: %v", err)
	}
	before := exportSnapshot(t, db, env.dir)
	_, err := db.Export(ed, id, req)
	wantCode(t, err, store.CodeQuotaExceeded)
	if msg := store.ErrorMessage(err); !strings.Contains(msg, "export quota reached") || !strings.Contains(msg, "12 MiB") {
		t.Fatalf("message %q does not say what the quota is", msg)
	}
	if after := exportSnapshot(t, db, env.dir); after != before {
		t.Fatalf("a refused export changed something:\n%s\n---\n%s", before, after)
	}
	if _, err := db.Export(other, id, req); err != nil {
		t.Fatalf("another account's export: %v", err)
	}
	for range 2 {
		if _, err := db.Export(ctx, id, req); err != nil {
			t.Fatalf("the system's export: %v", err)
		}
	}
	if _, err := db.PurgeExports(ctx, time.Now().Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Export(ed, id, req); err != nil {
		t.Fatalf("export once the old package is purged: %v", err)
	}
}

// TestExport_Reserve: an export that would leave the data directory's file
// system with less free than the reserve — max(ReserveBytes,
// ReservePercent of its size) — is refused with insufficient_storage
// before a byte is written, and changes nothing; with room it runs.
func TestExport_Reserve(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	free, total := int64(0), int64(0)
	setDisk := func(f, tot int64) { mu.Lock(); free, total = f, tot; mu.Unlock() }
	l := store.ExportLimits{ReserveBytes: 100 * mib, ReservePercent: 1, FreeSpace: func() (int64, int64, error) {
		mu.Lock()
		defer mu.Unlock()
		return free, total, nil
	}}
	db, env, id := limitsEnv(t, l, nil)
	req := store.ExportRequest{Confirm: true, Reason: "for the desk"}
	const pkg = 9 * mib // above the 8 MiB an encrypted package of 3 MiB takes
	for name, disk := range map[string][2]int64{
		"UnderTheBytes":   {100*mib + 4*mib, 2 << 30}, // 1 % is 20 MiB: the 100 MiB count
		"UnderThePercent": {600 * mib, 100 << 30},     // 1 % is 1 GiB
		"Full":            {0, 2 << 30},
	} {
		t.Run(name, func(t *testing.T) {
			setDisk(disk[0], disk[1])
			before := exportSnapshot(t, db, env.dir)
			_, err := db.Export(ctx, id, req)
			wantCode(t, err, store.CodeDiskFull)
			if !strings.Contains(store.ErrorMessage(err), "free for uploads and live recordings") {
				t.Fatalf("message %q does not say why", store.ErrorMessage(err))
			}
			if after := exportSnapshot(t, db, env.dir); after != before {
				t.Fatalf("a refused export changed something:\n%s\n---\n%s", before, after)
			}
		})
	}
	setDisk(100*mib+pkg, 2<<30)
	if _, err := db.Export(ctx, id, req); err != nil {
		t.Fatalf("export with room: %v", err)
	}
	// A disk whose free space cannot be read refuses too.
	l.FreeSpace = func() (int64, int64, error) { return 0, 0, errors.New("statfs: input/output error") }
	db2, _, id2 := limitsEnv(t, l, nil)
	if _, err := db2.Export(ctx, id2, req); err == nil {
		t.Fatal("export with an unreadable free space: accepted")
	}
}

// TestExport_InProgressCounted: an export in progress counts against its
// account's quota and the disk's reserve with its estimated size, so two
// exports that each fit alone cannot together pass either.
func TestExport_InProgressCounted(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	hold, held := make(chan struct{}), make(chan struct{})
	first := true
	fault := func(point string) error {
		mu.Lock()
		block := point == store.FaultExportWritten && first
		if block {
			first = false
		}
		mu.Unlock()
		if block {
			close(held)
			<-hold // a slow disk: the package is written, not yet recorded
		}
		return nil
	}
	l := store.ExportLimits{PerUser: 12 * mib, ReserveBytes: 100 * mib, FreeSpace: func() (int64, int64, error) {
		return 100*mib + 12*mib, 1 << 40, nil // room for one package of 8 MiB, not two
	}}
	db, env, id := limitsEnv(t, l, fault)
	ed := store.WithPrincipal(ctx, mustPrincipal(t, db, "editor", store.RoleEditor, ""))
	other := store.WithPrincipal(ctx, mustPrincipal(t, db, "other", store.RoleEditor, ""))
	req := store.ExportRequest{Confirm: true, Reason: "for the desk"}
	done := make(chan error, 1)
	go func() {
		_, err := db.Export(ed, id, req)
		done <- err
	}()
	<-held
	before := exportSnapshot(t, db, env.dir)
	_, err := db.Export(ed, id, req)
	wantCode(t, err, store.CodeQuotaExceeded)
	_, err = db.Export(other, id, req)
	wantCode(t, err, store.CodeDiskFull)
	if after := exportSnapshot(t, db, env.dir); after != before {
		t.Fatalf("refused exports changed something:\n%s\n---\n%s", before, after)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatalf("the held export: %v", err)
	}
	// Recorded, it still counts against its account's quota; its
	// reservation of the disk is given back.
	_, err = db.Export(ed, id, req)
	wantCode(t, err, store.CodeQuotaExceeded)
	if _, err := db.Export(other, id, req); err != nil {
		t.Fatalf("another account's export once the first is done: %v", err)
	}
}
