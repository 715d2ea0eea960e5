package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/internal/testlog"
	"tyst/retention"
	"tyst/store"
)

var day = 24 * time.Hour

func TestPlan(t *testing.T) {
	now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	ret := 14 * day
	recs := []store.RetentionInfo{
		{ID: 1, CreatedAt: now.Add(-15 * day)},                                         // expired
		{ID: 2, CreatedAt: now.Add(-13 * day)},                                         // not yet
		{ID: 3, CreatedAt: now.Add(-30 * day), Hold: true},                             // on hold
		{ID: 4, CreatedAt: now.Add(-30 * day), RetainUntil: now.Add(day)},              // retained
		{ID: 5, CreatedAt: now.Add(-30 * day), RetainUntil: now.Add(-day)},             // retention over
		{ID: 6, CreatedAt: now.Add(-14 * day)},                                         // exactly due
		{ID: 7, CreatedAt: now.Add(-20 * day), RetainUntil: now.Add(-25 * day)},        // an earlier retain_until changes nothing
		{ID: 8, CreatedAt: now.Add(-40 * day), Hold: true, RetainUntil: now.Add(-day)}, // hold wins
	}
	got := retention.Plan(now, recs, ret)
	want := []uint64{5, 7, 1, 6} // oldest first
	if len(got) != len(want) {
		t.Fatalf("Plan=%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Plan=%v, want %v", got, want)
		}
	}
	if got := retention.Plan(now, nil, ret); len(got) != 0 {
		t.Fatalf("Plan of nothing = %v", got)
	}
}

type env struct {
	dir  string
	keys *store.Keyring
	now  time.Time
	log  *testlog.Buffer
}

func newEnv(t *testing.T) (*store.DB, *env) {
	t.Helper()
	keys, _ := store.NewKeyring(store.GenerateKey())
	e := &env{dir: t.TempDir(), keys: keys, now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), log: &testlog.Buffer{}}
	db, err := store.Open(e.dir, store.Options{Keys: keys, Now: func() time.Time { return e.now }, Logger: slog.New(slog.NewJSONHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, e
}

var wav = func() []byte {
	b, err := os.ReadFile("../testdata/audio/tone.wav")
	if err != nil {
		panic(err)
	}
	return b
}()

func mustRecord(t *testing.T, db *store.DB, title string, audio bool) uint64 {
	t.Helper()
	rec, err := db.CreateRecord(context.Background(), store.NewRecord{Title: title})
	if err != nil {
		t.Fatal(err)
	}
	if audio {
		if _, err := db.AttachAudio(context.Background(), rec.ID, store.NewAudio{Body: bytes.NewReader(wav)}); err != nil {
			t.Fatal(err)
		}
	}
	return rec.ID
}

func blobCount(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".bin") {
			n++
		}
		return nil
	})
	return n
}

// TestRun purges the expired records of a real store with a fake clock:
// tombstones, purged events, blobs gone; held and young records stay; a
// dry run changes nothing.
func TestRun(t *testing.T) {
	db, e := newEnv(t)
	ctx := context.Background()
	old := mustRecord(t, db, "CANARY-old-title", true)
	held := mustRecord(t, db, "held", true)
	hold := true
	if _, err := db.UpdateRecord(ctx, held, store.RecordUpdate{Hold: &hold}); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(10 * day)
	young := mustRecord(t, db, "young", true)
	e.now = e.now.Add(5 * day) // old: 15 days, young: 5 days

	st, err := retention.Run(ctx, db, retention.Options{Retention: 14 * day, DryRun: true, Now: e.now})
	if err != nil || st.PurgedCount != 1 || st.FilesDeleted != 0 || !st.DryRun || st.RetentionDays != 14 {
		t.Fatalf("dry run: %+v %v", st, err)
	}
	if _, err := db.Record(ctx, old); err != nil {
		t.Fatalf("a dry run purged: %v", err)
	}
	st, err = retention.Run(ctx, db, retention.Options{Retention: 14 * day, Now: e.now, Logger: slog.New(slog.NewJSONHandler(e.log, nil))})
	if err != nil || st.PurgedCount != 1 || st.FilesDeleted != 1 || st.Errors != 0 {
		t.Fatalf("run: %+v %v", st, err)
	}
	if _, err := db.Record(ctx, old); store.ErrorCode(err) != store.CodeNotFound {
		t.Fatalf("expired record still there: %v", err)
	}
	for _, id := range []uint64{held, young} {
		if _, err := db.Record(ctx, id); err != nil {
			t.Fatalf("record %d was purged: %v", id, err)
		}
	}
	if n := blobCount(t, e.dir); n != 2 {
		t.Fatalf("%d blobs, want 2", n)
	}
	events, _, _ := db.AuditEvents(ctx, store.AuditFilter{RecordID: old})
	if len(events) != 1 || events[0].Action != store.ActionPurged || events[0].Meta["reason"] != "retention" || events[0].Meta["age_days"] != float64(15) {
		t.Fatalf("purged event: %+v", events)
	}
	res, err := db.Destroy(ctx, old, store.DestroyRequest{Confirm: true, Reason: "x"})
	if err != nil || res.Status != store.DestroyAlreadyDeleted || res.Receipt.Kind != store.ReceiptPurge {
		t.Fatalf("tombstone: %+v %v", res, err)
	}
	// Idempotent: nothing more to do.
	st, err = retention.Run(ctx, db, retention.Options{Retention: 14 * day, Now: e.now})
	if err != nil || st.PurgedCount != 0 || st.Errors != 0 {
		t.Fatalf("second run: %+v %v", st, err)
	}
	if strings.Contains(e.log.String(), "CANARY") {
		t.Fatal("a title reached the log")
	}
}

// TestRun_BestEffort: a record whose delete fails (an injected fault) and a
// blob that cannot be removed (a directory where the file was) are counted
// and logged by id (no path, no title), the rest goes on, and a second run
// cleans up once the faults are gone.
func TestRun_BestEffort(t *testing.T) {
	keys, _ := store.NewKeyring(store.GenerateKey())
	e := &env{dir: t.TempDir(), keys: keys, now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	purges := 0
	failPurge := 2 // the second record's delete fails
	db, err := store.Open(e.dir, store.Options{Keys: keys, Now: func() time.Time { return e.now }, Fault: func(point string) error {
		if point == store.FaultPurgeRecord {
			if purges++; purges == failPurge {
				return &fs.PathError{Op: "write", Path: "/secret/path/tyst.db", Err: syscall.EIO}
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	a := mustRecord(t, db, "CANARY-a", true)
	blobA := onlyBlob(t, e.dir)
	b := mustRecord(t, db, "CANARY-b", true)
	c := mustRecord(t, db, "CANARY-c", true)
	// A blob that cannot be removed: a directory stands where it was.
	if err := os.Remove(blobA); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(blobA, "x"), 0o700)
	e.now = e.now.Add(20 * day)
	log := &testlog.Buffer{}
	st, err := retention.Run(ctx, db, retention.Options{Retention: 14 * day, Now: e.now, Logger: slog.New(slog.NewJSONHandler(log, nil))})
	if err != nil || st.PurgedCount != 2 || st.FilesDeleted != 1 || st.Errors != 2 {
		t.Fatalf("run with failures: %+v %v\n%s", st, err, log.String())
	}
	for _, s := range []string{"CANARY", "/secret/path", e.dir} {
		if strings.Contains(log.String(), s) {
			t.Fatalf("the purge log holds %q:\n%s", s, log.String())
		}
	}
	if !strings.Contains(log.String(), fmt.Sprintf(`"record_id":%d`, b)) || !strings.Contains(log.String(), fmt.Sprintf(`"record_id":%d`, a)) {
		t.Fatalf("the failures are not named by record id:\n%s", log.String())
	}
	for _, id := range []uint64{a, c} {
		if _, err := db.Record(ctx, id); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("record %d survived: %v", id, err)
		}
	}
	if _, err := db.Record(ctx, b); err != nil {
		t.Fatalf("the record whose delete failed is damaged: %v", err)
	}
	// The faults go away: the blob is a file again, the disk works.
	os.RemoveAll(blobA)
	os.WriteFile(blobA, []byte("leftover"), 0o600)
	os.Chtimes(blobA, e.now.Add(-3*time.Hour), e.now.Add(-3*time.Hour))
	failPurge = 0
	st, err = retention.Run(ctx, db, retention.Options{Retention: 14 * day, Now: e.now})
	if err != nil || st.PurgedCount != 1 || st.FilesDeleted != 1 || st.OrphansDeleted != 1 || st.Errors != 0 {
		t.Fatalf("second run: %+v %v", st, err)
	}
	if n := blobCount(t, e.dir); n != 0 {
		t.Fatalf("%d blobs after the second run, want 0", n)
	}
}

// onlyBlob returns the path of the one blob in dir.
func onlyBlob(t *testing.T, dir string) string {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".bin") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("blobs=%v, want one", found)
	}
	return found[0]
}

// TestScheduler_Recover: a job that panics is logged and the scheduler
// lives on; Next tells when a job runs.
func TestScheduler_Recover(t *testing.T) {
	log := &testlog.Buffer{}
	s := retention.NewScheduler(slog.New(slog.NewJSONHandler(log, nil)))
	ran := make(chan struct{}, 10)
	if err := s.Add("panicky", "* * * * *", func(context.Context) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("fine", "* * * * *", func(context.Context) { ran <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("bad", "every day at noon", func(context.Context) {}); err == nil {
		t.Fatal("a bad schedule was accepted")
	}
	s.Start()
	defer s.Stop(context.Background())
	next := s.Next("fine")
	if next.IsZero() || next.Location() != time.UTC || next.Second() != 0 {
		t.Fatalf("Next=%v", next)
	}
	s.RunNow("panicky") // would end the test binary without the recover wrapper
	if !strings.Contains(log.String(), "panic") {
		t.Fatalf("the panic was not logged:\n%s", log.String())
	}
	s.RunNow("fine")
	select {
	case <-ran:
	default:
		t.Fatal("the scheduler did not run a job after one panicked")
	}
}

// TestRun_Exports: export packages older than the cutoff go (by the age of
// their file), younger ones stay, and a destroy left them to this.
func TestRun_Exports(t *testing.T) {
	db, e := newEnv(t)
	ctx := context.Background()
	id := mustRecord(t, db, "r", true)
	hold := true
	db.UpdateRecord(ctx, id, store.RecordUpdate{Hold: &hold}) // the record stays; only packages age
	old, err := db.Export(ctx, id, store.ExportRequest{Confirm: true, Reason: "old"})
	if err != nil {
		t.Fatal(err)
	}
	young, err := db.Export(ctx, id, store.ExportRequest{Confirm: true, Reason: "young"})
	if err != nil {
		t.Fatal(err)
	}
	// The old package's file was written 20 days ago.
	past := time.Now().Add(-20 * day)
	os.Chtimes(filepath.Join(e.dir, "exports", "export-"+old.PackageID+".zip.enc"), past, past)
	st, err := retention.Run(ctx, db, retention.Options{Retention: 14 * day, Now: time.Now()})
	if err != nil || st.ExportsDeleted != 1 || st.Errors != 0 || st.PurgedCount != 0 {
		t.Fatalf("run: %+v %v", st, err)
	}
	if _, err := db.OpenExport(ctx, old.PackageID); store.ErrorCode(err) != store.CodeNotFound {
		t.Fatalf("the old package is still there: %v", err)
	}
	er, err := db.OpenExport(ctx, young.PackageID)
	if err != nil {
		t.Fatalf("the young package went: %v", err)
	}
	er.Close()
}
