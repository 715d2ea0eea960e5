package stream_test

import (
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

	reopen := func(keys ...string) {
		t.Helper()
		e.streams.Close()
		e.Server.Close()
		e.db.Close()
		kr, err := store.NewKeyring(keys...)
		if err != nil {
			t.Fatal(err)
		}
		e.keys = kr
		e.openStore(t)
		e.startStreams(t)
	}
	oldText := oldKey.Primary().Encode()
	newText := store.GenerateKey()
	reopen(newText, oldText) // the rotation: new key primary, old key kept
	if _, err := e.db.Rekey(t.Context(), store.RekeyOptions{}); err != nil {
		t.Fatal(err)
	}
	reopen(newText) // the old key dropped, as rotation ends

	c = e.dial(t, id)
	c.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
	if r := expect[proto.Ready](c); r.Offset != int64(len(pcm)) {
		t.Fatalf("resumed at %d after the rotation, want %d", r.Offset, len(pcm))
	}
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
}
