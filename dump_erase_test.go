package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tyst/internal/testlog"
	"tyst/store"
	"tyst/stream/dump"
)

// TestDumpsGoWithTheirRecords: the debug dumps of a record purged by the
// offline `tyst purge` go with it, and those a crash left of a record
// destroyed before their erasure go at the next start of the server,
// before any stream; the dumps of a record that stays, stay.
func TestDumpsGoWithTheirRecords(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	kr, _ := store.NewKeyring(key)
	dir := filepath.Join(t.TempDir(), "data")
	record := func(at time.Time) uint64 {
		db, err := store.Open(dir, store.Options{Keys: kr, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rec, err := db.CreateRecord(context.Background(), store.NewRecord{Title: "CANARY-title"})
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	aged, kept := record(time.Now().Add(-5*24*time.Hour)), record(time.Now())
	dumpDir := filepath.Join(dir, dump.DirName)
	d, err := dump.New(dump.Config{Dir: dumpDir, Key: kr.Primary()})
	if err != nil {
		t.Fatal(err)
	}
	write := func(streamID string, id uint64) {
		f, err := d.Open(streamID, "mic", id)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("PCM"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	streams := func() []string {
		names, _ := filepath.Glob(filepath.Join(dumpDir, "*.pcm"))
		var ids []string
		for _, n := range names {
			ids = append(ids, strings.SplitN(filepath.Base(n), "_", 2)[0])
		}
		slices.Sort(ids)
		return ids
	}
	const streamAged, streamKept, streamLeft = "000000000000000000000000000000aa", "000000000000000000000000000000bb", "000000000000000000000000000000cc"
	write(streamAged, aged)
	write(streamKept, kept)

	out, errOut, code := runCmd(t, nil, "purge", "--data", dir, "--retention-days", "3")
	if code != 0 || !strings.Contains(out, `"purged_count": 1,`) {
		t.Fatalf("purge: code %d, %s %s", code, out, errOut)
	}
	if got := streams(); !slices.Equal(got, []string{streamKept}) {
		t.Fatalf("after the offline purge, dumps of streams %v are left, want only the kept record's", got)
	}

	// A crash after the destroy committed and before the dump was erased
	// leaves a dump of a record that is gone.
	write(streamLeft, aged)
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logs := &testlog.Buffer{}
	cfg := serveConfig{dataDir: dir}
	streamSrv, _, err := openStreams(&cfg, db, kr, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer streamSrv.Close()
	if got := streams(); !slices.Equal(got, []string{streamKept}) {
		t.Fatalf("after a start, dumps of streams %v are left, want only the kept record's", got)
	}
	if !strings.Contains(logs.String(), `"erased":1`) {
		t.Fatalf("the start did not log the erasure: %s", logs)
	}
}
