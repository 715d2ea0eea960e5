package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tyst/store"
)

// TestVerify_AuditBodyRemoved: `tyst verify` accepts the redacted events of
// a destroyed record (exit 0), and exits 1 naming the event once the body
// of a live record's export_created event is removed offline, as someone
// who can write the disk but has not the key would hide a decrypted export.
func TestVerify_AuditBodyRemoved(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := filepath.Join(t.TempDir(), "data")
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wav, _ := os.ReadFile("testdata/audio/tone.wav")
	var exportSeq uint64
	for i, title := range []string{"live", "destroyed"} {
		rec, err := db.CreateRecord(ctx, store.NewRecord{Title: title})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AttachAudio(ctx, rec.ID, store.NewAudio{Body: bytes.NewReader(wav)}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Export(ctx, rec.ID, store.ExportRequest{Confirm: true, Reason: "insider leak of the tape", Mode: store.ExportDecrypted}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{Confirm: true, Reason: "source asked"}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{RecordID: rec.ID})
		for _, ev := range events {
			if ev.Action == store.ActionExportCreated {
				exportSeq = ev.Seq
			}
		}
	}
	db.Close()
	out, errOut, code := runCmd(t, nil, "verify", "--data", dir)
	if code != 0 || !strings.Contains(out, `"ok": true`) || strings.Contains(out, `"redacted": 0`) {
		t.Fatalf("verify with a destroyed record: code %d %s %s", code, out, errOut)
	}

	bdb, err := bolt.Open(filepath.Join(dir, "tyst.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := binary.BigEndian.AppendUint64(nil, exportSeq)
		var row map[string]any
		if err := json.Unmarshal(b.Get(k), &row); err != nil {
			return err
		}
		delete(row, "body")
		raw, _ := json.Marshal(row)
		return b.Put(k, raw)
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCmd(t, nil, "verify", "--data", dir)
	if code != 1 || !strings.Contains(out, "body missing") || !strings.Contains(out, `"body_missing": 1`) {
		t.Fatalf("verify after a body was removed: code %d %s %s", code, out, errOut)
	}
}
