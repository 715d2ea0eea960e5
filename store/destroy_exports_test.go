package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/retention"
	"tyst/store"
	"tyst/store/blob"
)

// exportedRecord is a record with audio that was removed once and
// uploaded again (an audio-removal receipt), then exported in both modes:
// everything that holds its audio's SHA-256 outside the record itself.
type exportedRecord struct {
	id       uint64
	sum      [32]byte
	packages []string
	receipts []string // export and audio-removal receipts
}

func mustExportedRecord(tb testing.TB, db *store.DB, audio []byte) exportedRecord {
	tb.Helper()
	rec := mustCreate(tb, db, "Källan vid hamnen")
	mustAttach(tb, db, rec.ID, "", audio)
	r := exportedRecord{id: rec.ID, sum: sha256.Sum256(audio)}
	rm, err := db.RemoveAudio(ctx, rec.ID, true, "wrong take uploaded")
	if err != nil {
		tb.Fatal(err)
	}
	r.receipts = append(r.receipts, rm.ID)
	mustAttach(tb, db, rec.ID, "", audio)
	for _, mode := range []string{store.ExportEncrypted, store.ExportDecrypted} {
		res, err := db.Export(ctx, rec.ID, store.ExportRequest{Confirm: true, Reason: "for legal review", Mode: mode})
		if err != nil {
			tb.Fatal(err)
		}
		r.packages = append(r.packages, res.PackageID)
		r.receipts = append(r.receipts, res.Receipt.ID)
	}
	for _, id := range r.receipts[1:] { // the removal's receipt names no hash
		if got, err := db.Receipt(ctx, id); err != nil || got.AudioSHA256 != hex.EncodeToString(r.sum[:]) {
			tb.Fatalf("receipt before the destroy: %+v %v (the test proves nothing)", got, err)
		}
	}
	return r
}

// TestDB_DestroyRemovesExports: destroying a record removes its export
// packages (both modes: rows in the destroy's transaction, files after
// it) and its export and audio-removal receipts; the destroy receipt holds
// no content hash. Afterwards no byte under the data directory — read raw,
// or through every Fernet token the newsroom key opens — holds the audio's
// SHA-256, and neither does a backup made after. Another record's package
// and receipts stay, and verify is clean.
func TestDB_DestroyRemovesExports(t *testing.T) {
	db, env := mustOpenDB(t)
	audio := mustReadFile(t, wavFile)
	gone := mustExportedRecord(t, db, audio)
	keep := mustExportedRecord(t, db, mustReadFile(t, "../testdata/audio/voice-bext.wav"))
	if n := len(exportFiles(env.dir)); n != 4 {
		t.Fatalf("%d package files before the destroy, want 4", n)
	}

	dry, err := db.Destroy(ctx, gone.id, store.DestroyRequest{DryRun: true})
	if err != nil || dry.Counts != (store.DestroyCounts{Files: 1, Exports: 2}) {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	res, err := db.Destroy(ctx, gone.id, store.DestroyRequest{Confirm: true, Reason: "the source asked"})
	if err != nil || res.Counts != (store.DestroyCounts{Files: 1, Exports: 2}) {
		t.Fatalf("destroy: %+v %v", res, err)
	}
	if res.Receipt.AudioSHA256 != "" || res.Receipt.Counts["exports"] != 2 {
		t.Fatalf("destroy receipt: %+v", res.Receipt)
	}
	again, err := db.Destroy(ctx, gone.id, store.DestroyRequest{Confirm: true, Reason: "again"})
	if err != nil || again.Status != store.DestroyAlreadyDeleted || again.Counts.Exports != 2 {
		t.Fatalf("repeat: %+v %v", again, err)
	}

	for _, p := range gone.packages {
		if _, err := db.OpenExport(ctx, p); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a package of the destroyed record opens: %v", err)
		}
	}
	for _, r := range gone.receipts {
		if _, err := db.Receipt(ctx, r); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a receipt with the destroyed audio's hash is still there: %v", err)
		}
	}
	want := slices.Clone(keep.packages)
	slices.Sort(want)
	if got, want := strings.Join(exportFiles(env.dir), ","), strings.Join(want, ","); got != want {
		t.Fatalf("package files after the destroy: %s, want the other record's %s", got, want)
	}
	for _, p := range keep.packages {
		er, err := db.OpenExport(ctx, p)
		if err != nil {
			t.Fatalf("the other record's package: %v", err)
		}
		er.Close()
	}
	for _, r := range keep.receipts {
		if _, err := db.Receipt(ctx, r); err != nil {
			t.Fatalf("the other record's receipt: %v", err)
		}
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify after the destroy: %+v %v", rep, err)
	}

	backup := filepath.Join(t.TempDir(), "backup")
	if st, err := db.Backup(ctx, backup, store.BackupOptions{}); err != nil || st.Exports != 2 {
		t.Fatalf("backup: %+v %v", st, err)
	}
	for _, dir := range []string{env.dir, backup} {
		mustHoldNoHash(t, dir, env.key, gone.sum)
		if dir == env.dir {
			mustHoldHash(t, dir, env.key, keep.sum) // the search finds what is there
		}
	}
}

// TestPurge_RemovesExports: a purged record's packages and receipts go as
// a destroyed record's do, and the purge counts the packages.
func TestPurge_RemovesExports(t *testing.T) {
	db, env := mustOpenDB(t)
	gone := mustExportedRecord(t, db, mustReadFile(t, wavFile))
	st, err := retention.Run(ctx, db, retention.Options{Now: env.now.Add(15 * 24 * time.Hour)})
	if err != nil || st.PurgedCount != 1 || st.ExportsDeleted != 2 || st.Errors != 0 {
		t.Fatalf("purge: %+v %v", st, err)
	}
	if n := len(exportFiles(env.dir)); n != 0 {
		t.Fatalf("%d package files after the purge", n)
	}
	for _, r := range gone.receipts {
		if _, err := db.Receipt(ctx, r); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a receipt with the purged audio's hash is still there: %v", err)
		}
	}
	res, err := db.Destroy(ctx, gone.id, store.DestroyRequest{DryRun: true})
	if err != nil || res.Status != store.DestroyAlreadyDeleted || res.Receipt.Kind != store.ReceiptPurge ||
		res.Receipt.AudioSHA256 != "" || res.Counts.Exports != 2 {
		t.Fatalf("the purge receipt: %+v %v", res, err)
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify after the purge: %+v %v", rep, err)
	}
	mustHoldNoHash(t, env.dir, env.key, gone.sum)
}

// hashHits lists where the SHA-256 sum stands under dir: as hex or raw
// bytes in any file, or in the plaintext of any Fernet token in any file
// that the newsroom key opens (receipts, export rows and packages, audit
// bodies, freed database pages alike), also inside the base64 strings of
// that plaintext (a receipt's signed document is one).
func hashHits(tb testing.TB, dir, key string, sum [32]byte) []string {
	tb.Helper()
	k, err := fernet.DecodeKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	needles := [][]byte{[]byte(hex.EncodeToString(sum[:])), sum[:]}
	var hits []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, n := range needles {
			if bytes.Contains(raw, n) {
				hits = append(hits, rel+" (raw)")
			}
		}
		for _, tok := range fernetToken.FindAll(raw, -1) {
			plain := fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{k})
			if plain == nil {
				continue
			}
			texts := [][]byte{plain}
			for _, s := range base64String.FindAll(plain, -1) {
				if b, err := base64.StdEncoding.DecodeString(string(s)); err == nil {
					texts = append(texts, b)
				}
			}
			for _, text := range texts {
				for _, n := range needles {
					if bytes.Contains(text, n) {
						hits = append(hits, rel+" (under the newsroom key)")
					}
				}
			}
		}
		return nil
	})
	if err != nil && err != io.EOF {
		tb.Fatal(err)
	}
	return hits
}

var base64String = regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`)

func mustHoldNoHash(tb testing.TB, dir, key string, sum [32]byte) {
	tb.Helper()
	if hits := hashHits(tb, dir, key, sum); len(hits) > 0 {
		tb.Fatalf("the audio's SHA-256 is still on disk: %v", hits)
	}
}

func mustHoldHash(tb testing.TB, dir, key string, sum [32]byte) {
	tb.Helper()
	if hits := hashHits(tb, dir, key, sum); len(hits) == 0 {
		tb.Fatal("the search does not find a live record's SHA-256 under the newsroom key: it proves nothing")
	}
}

// undeletable is an export store whose deletes fail, as on a failing disk.
type undeletable struct{ blob.Store }

func (undeletable) Delete(string) error {
	return &fs.PathError{Op: "remove", Path: "/data/exports/x", Err: syscall.EIO}
}

// TestDB_DestroyExportRemovalFails: when a package file cannot be removed
// the destroy still completes (the row is gone, so nobody downloads the
// package), a backup leaves the file out, and the next start's orphan
// sweep removes it.
func TestDB_DestroyExportRemovalFails(t *testing.T) {
	env := newEnv(t)
	local, err := blob.NewLocal(filepath.Join(env.dir, "exports"), blob.LocalOptions{Names: regexp.MustCompile(`^export-[0-9a-f]{32}$`), Ext: ".zip.enc"})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, env)
	opts.Exports = undeletable{local}
	db := mustOpenRaw(t, env.dir, opts)
	gone := mustExportedRecord(t, db, mustReadFile(t, wavFile))
	if _, err := db.Destroy(ctx, gone.id, store.DestroyRequest{Confirm: true, Reason: "the source asked"}); err != nil {
		t.Fatalf("destroy with a failing removal: %v", err)
	}
	if n := len(exportFiles(env.dir)); n != 2 {
		t.Fatalf("%d package files, want the 2 whose removal failed", n)
	}
	for _, p := range gone.packages {
		if _, err := db.OpenExport(ctx, p); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a package of the destroyed record opens: %v", err)
		}
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if st, err := db.Backup(ctx, backup, store.BackupOptions{}); err != nil || st.Exports != 0 {
		t.Fatalf("backup: %+v %v", st, err)
	}
	mustHoldNoHash(t, backup, env.key, gone.sum)
	db.Close()
	db = mustOpenEnv(t, env, testOptions(t, env)) // a restart, with a disk that works
	if n := len(exportFiles(env.dir)); n != 0 {
		t.Fatalf("%d package files after the restart's sweep", n)
	}
	mustHoldNoHash(t, env.dir, env.key, gone.sum)
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestRekey_DestroyMeanwhile: a record destroyed while a rekey encrypts
// its package again stays without it: the rekey neither writes the
// package's row back nor leaves its new file.
func TestRekey_DestroyMeanwhile(t *testing.T) {
	env := newEnv(t)
	db := mustOpenRaw(t, env.dir, testOptions(t, env))
	gone := mustExportedRecord(t, db, mustReadFile(t, wavFile))
	db.Close()
	newKey := store.GenerateKey()
	kr, err := store.NewKeyring(newKey, env.key)
	if err != nil {
		t.Fatal(err)
	}
	env.keys = kr
	opts := testOptions(t, env)
	destroyed := false
	opts.Fault = func(point string) error {
		if point == store.FaultRekeyFile && !destroyed {
			destroyed = true // the first package is written again, its row not yet updated
			if _, err := db.Destroy(ctx, gone.id, store.DestroyRequest{Confirm: true, Reason: "the source asked"}); err != nil {
				t.Errorf("destroy during the rekey: %v", err)
			}
		}
		return nil
	}
	db = mustOpenEnv(t, env, opts)
	if _, err := db.Rekey(ctx, store.RekeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if !destroyed {
		t.Fatal("the rekey encrypted no package again: the test proves nothing")
	}
	for _, p := range gone.packages {
		if _, err := db.OpenExport(ctx, p); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("a package of the record destroyed during the rekey opens: %v", err)
		}
	}
	if files := exportFiles(env.dir); len(files) != 0 {
		t.Fatalf("package files after the rekey: %v", files)
	}
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// listHook is an export store that calls after once a listing is done.
type listHook struct {
	blob.Store
	after func()
}

func (l *listHook) List(fn func(blob.Info) error) error {
	err := l.Store.List(fn)
	if f := l.after; f != nil {
		l.after = nil
		f()
	}
	return err
}

// TestPurgeExports_ExportMeanwhile: a package made while a purge of old
// packages runs — its file committed after the purge listed the files —
// keeps its row and stays downloadable (found by the crash harness: the
// purge took the new row for one whose file is gone).
func TestPurgeExports_ExportMeanwhile(t *testing.T) {
	env := newEnv(t)
	local, err := blob.NewLocal(filepath.Join(env.dir, "exports"), blob.LocalOptions{Names: regexp.MustCompile(`^export-[0-9a-f]{32}$`), Ext: ".zip.enc"})
	if err != nil {
		t.Fatal(err)
	}
	hook := &listHook{Store: local}
	opts := testOptions(t, env)
	opts.Exports = hook
	db := mustOpenEnv(t, env, opts)
	rec := mustCreate(t, db, "t")
	mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile))
	var made string
	hook.after = func() {
		res, err := db.Export(ctx, rec.ID, store.ExportRequest{Confirm: true, Reason: "for the desk"})
		if err != nil {
			t.Errorf("export during the purge: %v", err)
			return
		}
		made = res.PackageID
	}
	if _, err := db.PurgeExports(ctx, env.now.Add(-24*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if made == "" {
		t.Fatal("no export ran during the purge")
	}
	er, err := db.OpenExport(ctx, made)
	if err != nil {
		t.Fatalf("the package made during the purge: %v", err)
	}
	er.Close()
	if rep, err := db.Verify(ctx, store.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
