package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestAuditAllowList: metadata outside the allow-list — the keys that could
// carry a source (file name, path, title, text, reason, IP, user agent…) or
// a value that is not a short machine word — fails the transaction, and
// nothing of it reaches the audit bucket.
func TestAuditAllowList(t *testing.T) {
	kr, _ := NewKeyring(GenerateKey())
	dir := t.TempDir()
	db, err := Open(dir, Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	const canary = "CANARY-meta-value"
	cases := map[string]AuditEvent{}
	for _, k := range []string{"filename", "file_name", "path", "title", "text", "note", "reason", "ip", "user_agent", "username", "name", "url", "speaker"} {
		cases["key "+k] = AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{k: canary}}
	}
	cases["unknown action"] = AuditEvent{Action: "anything_goes", Meta: map[string]any{}}
	cases["text under an allowed key"] = AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{"mime_type": "Interview with " + canary}}
	cases["upper case value"] = AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{"mime_type": canary}}
	cases["long value"] = AuditEvent{Action: ActionLoginFailed, Meta: map[string]any{"reason": "credentials-and-a-very-long-explanation-of-it"}}
	cases["map value"] = AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{"mib": map[string]string{"x": canary}}}
	cases["float value"] = AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{"mib": 1.5}}
	before := 0
	db.view(func(tx *bolt.Tx) error { before = tx.Bucket(bucketAudit).Stats().KeyN; return nil })
	for name, ev := range cases {
		err := db.update(func(tx *bolt.Tx) error { return db.appendAudit(context.Background(), tx, ev) })
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	after := 0
	db.view(func(tx *bolt.Tx) error { after = tx.Bucket(bucketAudit).Stats().KeyN; return nil })
	if after != before {
		t.Fatalf("%d events were written by refused appends", after-before)
	}
	// The allowed form goes through.
	if err := db.update(func(tx *bolt.Tx) error {
		return db.appendAudit(context.Background(), tx, AuditEvent{Action: ActionAudioUploaded, Meta: map[string]any{"mib": int64(5), "mime_type": "audio/wav"}})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, _ := os.ReadFile(filepath.Join(dir, "tyst.db"))
	if bytes.Contains(raw, []byte(canary)) {
		t.Fatal("a refused value stands in the database")
	}
}
