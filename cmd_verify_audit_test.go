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

// auditHead returns the audit.head of a verify report.
func auditHead(t *testing.T, report string) string {
	t.Helper()
	var rep store.VerifyReport
	if err := json.Unmarshal([]byte(report), &rep); err != nil || rep.Audit.Head == "" {
		t.Fatalf("no audit head in the report (%v): %s", err, report)
	}
	return rep.Audit.Head
}

// TestVerify_AuditHeadRollback: the audit.head a verify gives, handed to a
// later verify, shows what nothing on the disk alone can: the database was
// replaced by an older copy (a revocation or demotion undone), or its log
// cut and written on. A head that still holds passes; a malformed one is a
// usage error that checks nothing.
func TestVerify_AuditHeadRollback(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := filepath.Join(t.TempDir(), "data")
	kr, _ := store.NewKeyring(key)
	ctx := context.Background()
	addRecords := func(n int) {
		t.Helper()
		db, err := store.Open(dir, store.Options{Keys: kr})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for range n {
			if _, err := db.CreateRecord(ctx, store.NewRecord{Title: "CANARY-ROLLBACK"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	verify := func(args ...string) (string, int) {
		t.Helper()
		out, errOut, code := runCmd(t, nil, append([]string{"verify", "--data", dir}, args...)...)
		if strings.Contains(out+errOut, "CANARY") || strings.Contains(out+errOut, dir) {
			t.Fatalf("verify printed a title or the path: %s %s", out, errOut)
		}
		return out, code
	}

	addRecords(2)
	out, code := verify()
	if code != 0 {
		t.Fatalf("verify: %d %s", code, out)
	}
	old := auditHead(t, out)
	saved, err := os.ReadFile(filepath.Join(dir, "tyst.db"))
	if err != nil {
		t.Fatal(err)
	}
	addRecords(2)
	out, code = verify("--audit-head", old)
	if code != 0 {
		t.Fatalf("verify --audit-head of an earlier head, the log grown since: %d %s", code, out)
	}
	newer := auditHead(t, out)
	if newer == old {
		t.Fatalf("the head did not move: %s", newer)
	}

	// The older copy put back: the newer head is gone.
	if err := os.WriteFile(filepath.Join(dir, "tyst.db"), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = verify("--audit-head", newer)
	if code != 1 || !strings.Contains(out, `"kind": "audit_rollback"`) || !strings.Contains(out, "is gone") {
		t.Fatalf("verify of the rolled-back database with the newer head: %d %s", code, out)
	}
	// Without the head the older copy looks healthy: that is the point.
	if out, code := verify(); code != 0 {
		t.Fatalf("verify of the older copy without a head: %d %s", code, out)
	}
	// Written on past the newer head's sequence number: the event at that
	// number is another one.
	addRecords(3)
	out, code = verify("--audit-head", newer)
	if code != 1 || !strings.Contains(out, `"kind": "audit_rollback"`) || !strings.Contains(out, "is not the head given") {
		t.Fatalf("verify of a log written on after the rollback: %d %s", code, out)
	}

	for _, bad := range []string{"", " ", "12", "x:" + strings.Repeat("ab", 32), "0:" + strings.Repeat("ab", 32), "3:abc", "3:" + strings.Repeat("AB", 32)} {
		out, errOut, code := runCmd(t, nil, "verify", "--data", dir, "--audit-head", bad)
		if code != 2 || out != "" || !strings.Contains(errOut, "--audit-head must be SEQ:HASH") {
			t.Fatalf("--audit-head %q: %d %q %s", bad, code, out, errOut)
		}
	}
}
