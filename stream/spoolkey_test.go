package stream_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
	"tyst/stream/proto"
)

// TestSpool_KeyRotation: a stream that is resumable across a key rotation
// (the server restarts with the new key primary and the old one among the
// old keys, rekey runs, the old key is dropped) keeps every acknowledged
// byte: its spool is under the new key from that first start on, so after
// the old key is gone the stream resumes and stores exactly its PCM.
func TestSpool_KeyRotation(t *testing.T) {
	e := mustEnv(t)
	oldKey := e.keys
	id := e.mustRecord(t, "rotation")
	pcm := soxPCM(t, 16000, 1, 2)
	c := e.dial(t, id)
	ready := c.start(16000, 1)
	if err := c.sendPCM(pcm, 3200); err != nil {
		t.Fatal(err)
	}
	for a := expect[proto.Ack](c); a.Offset < int64(len(pcm)); a = expect[proto.Ack](c) {
	}
	c.nc.Close()
	// A second name of the spool keeps the old file's blocks readable: the
	// copy under the new key replaces it, and the old bytes must not stay
	// behind in what the file system frees.
	link := filepath.Join(e.dir, "held-by-a-second-name")
	if err := os.Link(filepath.Join(e.dir, "spool", ready.StreamID+".spool"), link); err != nil {
		t.Fatal(err)
	}

	oldText := oldKey.Primary().Encode()
	newText := store.GenerateKey()
	e.reopenWithKeys(t, newText, oldText) // the rotation: new key primary, old key kept
	if after, _ := os.ReadFile(link); fernetToken.Match(after) {
		t.Fatal("the spool under the old key was replaced without its bytes being overwritten")
	}
	os.Remove(link)
	if _, err := e.db.Rekey(t.Context(), store.RekeyOptions{}); err != nil {
		t.Fatal(err)
	}
	e.reopenWithKeys(t, newText) // the old key dropped, as rotation ends

	c = e.dial(t, id)
	c.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
	if r := expect[proto.Ready](c); r.Offset != int64(len(pcm)) {
		t.Fatalf("resumed at %d after the rotation, want %d", r.Offset, len(pcm))
	}
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
}

// reopenWithKeys closes the env and opens it again with the given newsroom
// keys, the first primary.
func (e *env) reopenWithKeys(tb testing.TB, keys ...string) {
	tb.Helper()
	e.streams.Close()
	e.Server.Close()
	e.db.Close()
	kr, err := store.NewKeyring(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	e.keys = kr
	e.openStore(tb)
	e.startStreams(tb)
}

// TestSpool_DestroyedNotRekeyed: a record destroyed while the server was
// down, whose spool is under a key that is no longer primary: the start
// erases the spool before anything copies it under the new key, so no
// copy (nor a freed block of one) holds the audio.
func TestSpool_DestroyedNotRekeyed(t *testing.T) {
	e := mustEnv(t)
	id, ready := e.canaryLeftDown(t)
	if _, err := e.db.Destroy(e.principal(t), id, store.DestroyRequest{Confirm: true, Reason: "offline"}); err != nil {
		t.Fatal(err)
	}
	e.reopenWithKeys(t, store.GenerateKey(), e.keys.Primary().Encode())
	e.mustErased(t, id, ready.StreamID)
	if strings.Contains(e.log.String(), "spool encrypted again") {
		t.Fatal("the destroyed record's spool was copied under the new key before its erasure")
	}
}

// TestSpool_RekeyCopySwept: a crash while a start copied a spool under
// the new key leaves <id>.spool.rekey beside the whole spool. The next
// start erases the copy and the stream still resumes with every byte.
func TestSpool_RekeyCopySwept(t *testing.T) {
	e := mustEnv(t)
	id, ready := e.canaryLeftDown(t)
	dir := filepath.Join(e.dir, "spool")
	b, err := os.ReadFile(filepath.Join(dir, ready.StreamID+".spool"))
	if err != nil {
		t.Fatal(err)
	}
	copyName := filepath.Join(dir, ready.StreamID+".spool.rekey")
	if err := os.WriteFile(copyName, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	e.startStreams(t)
	if names := e.spoolFiles(t); len(names) != 1 || names[0] != ready.StreamID+".spool" {
		t.Fatalf("spool directory holds %v, want the spool alone", names)
	}
	c := e.dial(t, id)
	c.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
	if r := expect[proto.Ready](c); r.Offset != 64000 {
		t.Fatalf("resumed at %d, want 64000", r.Offset)
	}
}
