package stream_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/internal/testlog"
	"tyst/store"
	"tyst/stream/proto"
)

// updateFigures rewrites docs/reliability/failpoints-stream.json, the
// figures docs/RELIABILITY.md quotes.
var updateFigures = flag.Bool("update", false, "rewrite docs/reliability/failpoints-stream.json")

// TestFaultWalk_Finalise walks an injected fault through every step of a
// stream's finalisation (the store's upload path, fed from the spool),
// SQLite-style, as store's TestFaultWalk does for the other write paths:
// fail at the first step, then the second, … until a stop completes.
// After each fault two servers restart — over the live data directory,
// where the stop returned the fault, and over a copy taken at the fault
// (a crash there) — and the client, resuming, must find every byte it
// sent held, stop again, and get exactly the WAV of its PCM as the
// record's audio; the store then verifies clean and no spool is left.
func TestFaultWalk_Finalise(t *testing.T) {
	pcm := soxPCM(t, 16000, 1, 2)
	var steps []string
	for step := 1; ; step++ {
		if step > 20 {
			t.Fatal("the stop did not complete within 20 fault points")
		}
		var seen []string
		armed := false
		dir, image := t.TempDir(), t.TempDir()
		e := faultEnv(t, dir, nil, func(point string) error {
			if !armed {
				return nil
			}
			seen = append(seen, point)
			if len(seen) != step {
				return nil
			}
			copyTree(t, dir, image) // the disk as a crash here leaves it
			return fmt.Errorf("%s: injected fault", point)
		})
		id := e.mustRecord(t, "walk")
		c := e.dial(t, id)
		ready := c.start(16000, 1)
		if err := c.sendPCM(pcm, 3200); err != nil {
			t.Fatal(err)
		}
		for a := expect[proto.Ack](c); a.Offset < int64(len(pcm)); a = expect[proto.Ack](c) {
		}
		armed = true
		c.send(`{"type":"stop"}`)
		m, cl := nextNoAck(c)
		armed = false
		if len(seen) < step { // no fault reached: the stop completed
			st, ok := m.(proto.Stored)
			if cl != nil || !ok {
				t.Fatalf("complete stop: %#v %+v", m, cl)
			}
			e.mustStored(t, id, st, pcm, 16000, 1)
			steps = seen
			break
		}
		point := seen[step-1]
		if e, ok := m.(proto.Error); cl != nil || !ok || e.Code != "internal_error" {
			t.Fatalf("fault at %s: the stop answered %#v %+v, want internal_error", point, m, cl)
		}
		c.nc.Close()
		// A restart over the live directory, and one over the crash image.
		for _, dir := range []string{e.dir, image} {
			what := fmt.Sprintf("fault at %s, restart over %s", point, map[bool]string{true: "the live directory", false: "the crash image"}[dir == e.dir])
			e.db.Close()
			e.streams.Close()
			e.Server.Close()
			r := faultEnv(t, dir, e.keys, nil)
			r.token = e.token
			finishAfterRestart(t, r, id, ready.StreamID, pcm, what)
			r.streams.Close()
			r.Server.Close()
			r.db.Close()
		}
	}
	t.Logf("%d steps: %s", len(steps), strings.Join(steps, " → "))
	if len(steps) == 0 {
		t.Fatal("the stop reached no fault point")
	}
	if *updateFigures {
		b, _ := json.MarshalIndent([]map[string]any{{"op": "StreamFinalise", "steps": steps, "faults": len(steps)}}, "", "  ")
		if err := os.WriteFile(filepath.Join("..", "docs", "reliability", "failpoints-stream.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// finishAfterRestart resumes the stream and stops it: the record must end
// with exactly the WAV of pcm, whichever side of the commit the fault was.
func finishAfterRestart(t *testing.T, e *env, id uint64, streamID string, pcm []byte, what string) {
	t.Helper()
	c := e.dial(t, id)
	c.send(`{"type":"resume","stream_id":"` + streamID + `"}`)
	m, cl := nextNoAck(c)
	switch m := m.(type) {
	case proto.Ready:
		if m.Offset != int64(len(pcm)) {
			t.Fatalf("%s: resumed at %d, but %d bytes were acknowledged", what, m.Offset, len(pcm))
		}
		c.send(`{"type":"stop"}`)
		m2, cl2 := nextNoAck(c)
		st, ok := m2.(proto.Stored)
		if !ok {
			t.Fatalf("%s: the second stop answered %#v %+v, want stored", what, m2, cl2)
		}
		e.mustStored(t, id, st, pcm, 16000, 1)
	case proto.Error:
		// Only a stream the store already holds may be unknown.
		if got := e.storedAudio(t, id); m.Code != proto.CodeUnknownStream || !bytes.Equal(got, wavOf(pcm, 16000, 1)) {
			t.Fatalf("%s: resume answered %+v", what, m)
		}
	default:
		t.Fatalf("%s: resume answered %#v %+v", what, m, cl)
	}
	rep, err := e.db.Verify(t.Context(), store.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("%s: verify: %v %+v", what, err, rep.Problems)
	}
	time.Sleep(50 * time.Millisecond) // the spool goes after the answer
	if n := spoolCount(t, e); n != 0 {
		t.Fatalf("%s: %d spool files left", what, n)
	}
}

// nextNoAck returns the next message that is not an ack, or the close.
func nextNoAck(c *tclient) (proto.ServerMessage, *closed) {
	for {
		m, cl := c.next()
		if _, ack := m.(proto.Ack); !ack || cl != nil {
			return m, cl
		}
	}
}

// faultEnv opens a store over dir (keys nil: new ones; an editor and its
// token are made) with the fault hook, and the stream server and API.
func faultEnv(t *testing.T, dir string, keys *store.Keyring, fault func(string) error) *env {
	t.Helper()
	if keys == nil {
		var err error
		if keys, err = store.NewKeyring(store.GenerateKey()); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{keys: keys, dir: dir, log: &testlog.Buffer{}}
	db, err := store.Open(dir, store.Options{Keys: keys, Logger: e.logger(), Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { db.Close() })
	if u, err := db.CreateUser(t.Context(), store.NewUser{Username: "reporter", Password: testPassword, Role: store.RoleEditor}); err == nil {
		e.userID = u.ID
	}
	if e.token, _, err = db.CreateToken(t.Context(), "reporter", "", ""); err != nil {
		t.Fatal(err)
	}
	e.cfg.AckInterval, e.cfg.SyncTick = 100*time.Millisecond, 10*time.Millisecond
	e.startStreams(t)
	return e
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
