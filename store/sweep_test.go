package store_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"tyst/store"
)

// TestSweep_OrphanExports: an export package file that no row records (a
// crash between the file's commit and its transaction leaves one) is
// removed by the next start and by purge's orphan sweep once it is old
// enough; a recorded package stays.
func TestSweep_OrphanExports(t *testing.T) {
	db, env := mustOpenDB(t)
	rec := mustCreate(t, db, "exported")
	mustAttach(t, db, rec.ID, "audio/wav", mustReadFile(t, wavFile))
	res, err := db.Export(ctx, rec.ID, store.ExportRequest{Confirm: true, Reason: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(env.dir, "exports")
	kept := filepath.Join(dir, "export-"+res.PackageID+".zip.enc")
	orphan := func(name string, age time.Duration) string {
		p := filepath.Join(dir, "export-"+name+".zip.enc")
		if err := os.WriteFile(p, mustReadFile(t, kept), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		os.Chtimes(p, old, old)
		return p
	}

	t.Run("PurgeSweep", func(t *testing.T) {
		stale := orphan("0123456789abcdef0123456789abcdef", 2*time.Hour)
		fresh := orphan("fedcba9876543210fedcba9876543210", 0) // an export in progress may look like this
		if n, err := db.SweepOrphans(ctx, time.Now().Add(-time.Hour), true); err != nil || n != 1 {
			t.Fatalf("dry run: %d, %v; want 1", n, err)
		}
		if _, err := os.Stat(stale); err != nil {
			t.Fatal("a dry run removed the orphan")
		}
		if n, err := db.SweepOrphans(ctx, time.Now().Add(-time.Hour), false); err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v; want 1", n, err)
		}
		for p, want := range map[string]bool{stale: false, fresh: true, kept: true} {
			if _, err := os.Stat(p); (err == nil) != want {
				t.Fatalf("after the sweep, %s exists: %v, want %v", filepath.Base(p), err == nil, want)
			}
		}
	})
	t.Run("Restart", func(t *testing.T) {
		db.Close()
		db = mustOpenEnv(t, env, testOptions(t, env))
		if got := exportFiles(env.dir); len(got) != 1 || got[0] != res.PackageID {
			t.Fatalf("export files after restart: %v, want only %s", got, res.PackageID)
		}
		if er, err := db.OpenExport(ctx, res.PackageID); err != nil {
			t.Fatal(err)
		} else {
			er.Close()
		}
	})
}
