package store_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

func problemKinds(rep store.VerifyReport) map[string]int {
	m := map[string]int{}
	for _, p := range rep.Problems {
		m[p.Kind]++
	}
	return m
}

func TestDB_Verify(t *testing.T) {
	db, env := mustOpenDB(t)
	mustRecordWithEverything(t, db, ctx, "a")
	mustRecordWithEverything(t, db, ctx, "b")
	rep, err := db.Verify(ctx, store.VerifyOptions{})
	if err != nil || !rep.OK || rep.Records != 2 || rep.Assets != 2 || rep.Blobs != 2 || rep.BytesChecked != 2*int64(len(mustReadFile(t, wavFile))) {
		t.Fatalf("healthy: %+v %v", rep, err)
	}
	// Damage: a flipped byte in one blob, an orphan, the audit chain.
	blobs := blobFiles(t, env.dir)
	b := mustReadFile(t, blobs[0])
	b[len(b)/2] ^= 1
	os.WriteFile(blobs[0], b, 0o600)
	orphan := filepath.Join(env.dir, "blobs", "ab", "ab"+strings.Repeat("0", 62)+".bin")
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	os.WriteFile(orphan, []byte("x"), 0o600)
	rep, err = db.Verify(ctx, store.VerifyOptions{})
	kinds := problemKinds(rep)
	if err != nil || rep.OK || kinds[store.ProblemCorruptBlob] != 1 || kinds[store.ProblemOrphanBlob] != 1 {
		t.Fatalf("damaged: %+v %v", rep, err)
	}
	// A missing blob.
	os.Remove(blobs[1])
	rep, _ = db.Verify(ctx, store.VerifyOptions{})
	if problemKinds(rep)[store.ProblemMissingBlob] != 1 {
		t.Fatalf("missing blob not found: %+v", rep.Problems)
	}
}

// TestDB_Rekey: after a rotation, rekey moves every item to the new key;
// an interrupted rekey run again finishes; then the old key can go and
// everything still opens — records, audio, logins, audit, receipts.
func TestDB_Rekey(t *testing.T) {
	db, env := mustOpenDB(t)
	owner := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
	var keep []*store.Record
	for i := range 3 {
		keep = append(keep, mustRecordWithEverything(t, db, owner, string(rune('a'+i))))
	}
	for range 200 { // enough items for several batches
		mustCreate(t, db, "filler")
	}
	gone := mustRecordWithEverything(t, db, owner, "gone")
	pkg, err := db.Export(owner, keep[0].ID, store.ExportRequest{Confirm: true, Reason: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Destroy(owner, gone.ID, store.DestroyRequest{Confirm: true, Reason: "source asked"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	newKey := store.GenerateKey()
	rotated, _ := store.NewKeyring(newKey, env.key)
	db = mustOpenEnv(t, env, store.Options{Keys: rotated})
	// Interrupted: cancelled after the first batch.
	cctx, cancel := context.WithCancel(ctx)
	_, err = db.Rekey(cctx, store.RekeyOptions{Progress: func(done, total int) { cancel() }})
	if err == nil {
		t.Fatal("the interrupted rekey finished: the test interrupts nothing")
	}
	usage, _ := db.KeyUsage(ctx)
	if usage[env.keys.PrimaryID()] == 0 || usage[rotated.PrimaryID()] == 0 {
		t.Fatalf("after the interruption: usage=%v, want items under both keys", usage)
	}
	st, err := db.Rekey(ctx, store.RekeyOptions{})
	if err != nil || st.Skipped != 0 || st.KeyUsage[env.keys.PrimaryID()] != 0 {
		t.Fatalf("rekey: %+v %v", st, err)
	}
	db.Close()

	only, _ := store.NewKeyring(newKey)
	db = mustOpenEnv(t, env, store.Options{Keys: only})
	for _, r := range keep {
		got, err := db.Record(ctx, r.ID)
		if err != nil || got.Title != r.Title || got.Segments != 2 {
			t.Fatalf("record %d after rekey: %+v %v", r.ID, got, err)
		}
		ar, err := db.OpenAudio(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, ar); err != nil {
			t.Fatal(err)
		}
		ar.Close()
	}
	if _, _, err := db.Login(ctx, "reporter", "a long password reporter", ""); err != nil {
		t.Fatalf("login after rekey: %v", err)
	}
	if r, err := db.Receipt(ctx, res.Receipt.ID); err != nil || r.Reason != "source asked" {
		t.Fatalf("receipt after rekey: %+v %v", r, err)
	}
	er, err := db.OpenExport(ctx, pkg.PackageID)
	if err != nil {
		t.Fatalf("export package after rekey: %v", err)
	}
	if _, err := io.Copy(io.Discard, er); err != nil {
		t.Fatalf("export package after rekey: %v", err)
	}
	er.Close()
	rep, err := db.Verify(ctx, store.VerifyOptions{})
	if err != nil || !rep.OK || rep.Audit.Unreadable != 0 {
		t.Fatalf("verify after rekey: %+v %v", rep, err)
	}
}

func TestDB_Backup(t *testing.T) {
	db, env := mustOpenDB(t)
	recs := []*store.Record{mustRecordWithEverything(t, db, ctx, "a"), mustRecordWithEverything(t, db, ctx, "b")}
	dst := filepath.Join(t.TempDir(), "backup")
	st, err := db.Backup(ctx, dst, store.BackupOptions{})
	if err != nil || st.Blobs != 2 || st.DatabaseBytes == 0 {
		t.Fatalf("backup: %+v %v", st, err)
	}
	if _, err := db.Backup(ctx, dst, store.BackupOptions{}); store.ErrorCode(err) != store.CodeValidation {
		t.Fatalf("a second backup into the same directory: %v", err)
	}
	// The original goes on; the copy opens, verifies and reads.
	mustCreate(t, db, "after the backup")
	e2 := *env
	e2.dir = dst
	b := mustOpenEnv(t, &e2, testOptions(t, &e2))
	rep, err := b.Verify(ctx, store.VerifyOptions{})
	if err != nil || !rep.OK || rep.Records != 2 {
		t.Fatalf("verify of the backup: %+v %v", rep, err)
	}
	for _, r := range recs {
		ar, err := b.OpenAudio(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		ar.Close()
	}
	if _, err := os.Stat(filepath.Join(dst, "files.key")); err == nil {
		t.Fatal("the backup holds a key")
	}
}
