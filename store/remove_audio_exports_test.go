package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"tyst/store"
)

// removalFixture is a record whose audio is about to be removed, with a
// package made before the audio came (no audio in it) and two made of the
// audio, and another record with a package of its own.
type removalFixture struct {
	id      uint64
	sum     [32]byte
	silent  store.ExportResult // made before the upload
	ofAudio []store.ExportResult
	other   store.ExportResult
	keepSum [32]byte
}

func mustRemovalFixture(t *testing.T, db *store.DB) removalFixture {
	t.Helper()
	export := func(id uint64, mode string) store.ExportResult {
		t.Helper()
		res, err := db.Export(ctx, id, store.ExportRequest{Confirm: true, Reason: "for legal review", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		return *res
	}
	wrong := mustReadFile(t, wavFile)
	rec := mustCreate(t, db, "Källan vid hamnen")
	f := removalFixture{id: rec.ID, sum: sha256.Sum256(wrong)}
	f.silent = export(rec.ID, store.ExportEncrypted)
	mustAttach(t, db, rec.ID, "", wrong)
	f.ofAudio = []store.ExportResult{export(rec.ID, store.ExportEncrypted), export(rec.ID, store.ExportDecrypted)}
	keep := mustReadFile(t, "../testdata/audio/voice-bext.wav")
	other := mustCreate(t, db, "another interview")
	mustAttach(t, db, other.ID, "", keep)
	f.other, f.keepSum = export(other.ID, store.ExportDecrypted), sha256.Sum256(keep)
	return f
}

// TestDB_RemoveAudioRemovesExports: removing a record's audio removes the
// export packages made of it (rows in the removal's transaction, files
// after it) and their export receipts, as a destroy does; the removal's
// own receipt counts them and names no hash. Afterwards no byte under the
// data directory — read raw, or through every Fernet token the newsroom key
// opens — holds the removed audio's SHA-256. The package made before the
// audio came and its receipt stay, as do the other record's; verify is
// clean; and an upload and an export may follow.
func TestDB_RemoveAudioRemovesExports(t *testing.T) {
	db, env := mustOpenDB(t)
	f := mustRemovalFixture(t, db)

	rm, err := db.RemoveAudio(ctx, f.id, true, "wrong interview uploaded")
	if err != nil {
		t.Fatal(err)
	}
	if rm.AudioSHA256 != "" || rm.Counts["files"] != 1 || rm.Counts["exports"] != 2 {
		t.Fatalf("removal receipt: kind %s, counts %v, hash %q", rm.Kind, rm.Counts, rm.AudioSHA256)
	}
	if got, err := db.Receipt(ctx, rm.ID); err != nil || got.Counts["exports"] != 2 {
		t.Fatalf("the removal's receipt afterwards: %+v %v", got, err)
	}
	for _, p := range f.ofAudio {
		if _, err := db.OpenExport(ctx, p.PackageID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a package of the removed audio opens: %v", err)
		}
		if _, err := db.Receipt(ctx, p.Receipt.ID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("an export receipt with the removed audio's hash is still there: %v", err)
		}
	}
	want := []string{f.silent.PackageID, f.other.PackageID}
	slices.Sort(want)
	if got, want := strings.Join(exportFiles(env.dir), ","), strings.Join(want, ","); got != want {
		t.Fatalf("package files after the removal: %s, want %s", got, want)
	}
	for _, p := range []store.ExportResult{f.silent, f.other} {
		er, err := db.OpenExport(ctx, p.PackageID)
		if err != nil {
			t.Fatalf("a package without the removed audio: %v", err)
		}
		er.Close()
		if _, err := db.Receipt(ctx, p.Receipt.ID); err != nil {
			t.Fatalf("its receipt: %v", err)
		}
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify after the removal: %+v %v", rep, err)
	}
	mustHoldNoHash(t, env.dir, env.key, f.sum)
	mustHoldHash(t, env.dir, env.key, f.keepSum)

	// The right file, and a package of it.
	mustAttach(t, db, f.id, "", mustReadFile(t, "../testdata/audio/voice-bext.wav"))
	res, err := db.Export(ctx, f.id, store.ExportRequest{Confirm: true, Reason: "for legal review"})
	if err != nil {
		t.Fatal(err)
	}
	er, err := db.OpenExport(ctx, res.PackageID)
	if err != nil {
		t.Fatal(err)
	}
	er.Close()
}

// TestDB_RemoveAudioCrash: a crash after the removal's transaction leaves
// the package files without rows — nobody can download them — and the
// next start removes them; the next compaction the freed pages.
func TestDB_RemoveAudioCrash(t *testing.T) {
	env := newEnv(t)
	opts := testOptions(t, env)
	opts.Fault = func(point string) error {
		if point == store.FaultRemoveCommitted {
			return fmt.Errorf("%s: %w", point, errInjected)
		}
		return nil
	}
	db := mustOpenRaw(t, env.dir, opts)
	f := mustRemovalFixture(t, db)
	if _, err := db.RemoveAudio(ctx, f.id, true, "wrong interview uploaded"); !errors.Is(err, errInjected) {
		t.Fatalf("removal: %v, want the injected fault", err)
	}
	if n := len(exportFiles(env.dir)); n != 4 {
		t.Fatalf("%d package files at the fault, want all 4 (the files go after the transaction)", n)
	}
	for _, p := range f.ofAudio {
		if _, err := db.OpenExport(ctx, p.PackageID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a package of the removed audio opens before its file is removed: %v", err)
		}
	}
	db.Close()
	db = mustOpenEnv(t, env, testOptions(t, env)) // the restart
	if n := len(exportFiles(env.dir)); n != 2 {
		t.Fatalf("%d package files after the restart's sweep, want 2", n)
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The crash came before the compaction: freed pages still hold the
	// deleted receipts until the next purge compacts.
	if _, err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	mustHoldNoHash(t, env.dir, env.key, f.sum)
}

// TestExport_AudioRemovedMeanwhile: an export whose audio is removed while
// its package is written is refused with conflict and leaves nothing: the
// removal, which could not see the package yet, is not undone by it.
func TestExport_AudioRemovedMeanwhile(t *testing.T) {
	env := newEnv(t)
	opts := testOptions(t, env)
	var db *store.DB
	var id uint64
	removed := false
	opts.Fault = func(point string) error {
		if point == store.FaultExportWritten && !removed {
			removed = true
			if _, err := db.RemoveAudio(ctx, id, true, "wrong interview uploaded"); err != nil {
				t.Errorf("removal during the export: %v", err)
			}
		}
		return nil
	}
	db = mustOpenEnv(t, env, opts)
	wrong := mustReadFile(t, wavFile)
	rec := mustCreate(t, db, "Källan vid hamnen")
	id = rec.ID
	mustAttach(t, db, id, "", wrong)
	_, err := db.Export(ctx, id, store.ExportRequest{Confirm: true, Reason: "for legal review", Mode: store.ExportDecrypted})
	wantCode(t, err, store.CodeConflict)
	if !removed {
		t.Fatal("no removal ran during the export: the test proves nothing")
	}
	if files := exportFiles(env.dir); len(files) != 0 || tmpFiles(env.dir, "exports") != 0 {
		t.Fatalf("package files %v, %d temp files after the refused export", files, tmpFiles(env.dir, "exports"))
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	mustHoldNoHash(t, env.dir, env.key, sha256.Sum256(wrong))
}
