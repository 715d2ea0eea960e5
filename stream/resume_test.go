package stream_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// writePartial writes a binary frame's header and the first cut bytes of
// its payload: the connection then drops mid-frame.
func (c *tclient) writePartial(p []byte, cut int) {
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(len(p)), Masked: true, Mask: ws.NewMask()}
	var buf bytes.Buffer
	ws.WriteHeader(&buf, h)
	masked := append([]byte(nil), p[:cut]...)
	ws.Cipher(masked, h.Mask, 0)
	buf.Write(masked)
	c.nc.Write(buf.Bytes())
}

func (c *tclient) resume(id string) proto.Ready {
	c.tb.Helper()
	c.send(`{"type":"resume","stream_id":"` + id + `"}`)
	return expect[proto.Ready](c)
}

// TestStream_ResumeAfterDisconnects drops the connection 10 times at random
// points, mid-frame included, resumes each time from the offset the server
// names, and checks that the stored PCM is exactly what was sent: nothing
// lost, nothing doubled, and every ack named bytes the spool had synced.
func TestStream_ResumeAfterDisconnects(t *testing.T) {
	var spy syncSpy
	e := mustEnv(t, func(c *stream.Config) { c.WrapSpool = spy.wrap })
	id := e.mustRecord(t, "resume")
	pcm := soxPCM(t, 16000, 1, 8)
	r := rand.New(rand.NewPCG(7, 7))

	c := e.dial(t, id)
	ready := c.start(16000, 1)
	streamID := ready.StreamID
	sent := int64(0)
	acked := int64(0)
	for drop := 0; drop < 10; drop++ {
		// Send a random stretch, reading acks on the way.
		end := min(int64(len(pcm)), sent+int64(r.IntN(len(pcm)/12)+640))
		end -= end % 2
		for sent < end {
			n := min(end-sent, int64(640*(1+r.IntN(8))))
			if err := c.fw.WriteFrame(ws.OpBinary, pcm[sent:sent+n]); err != nil {
				t.Fatal(err)
			}
			sent += n
		}
		// Sometimes wait for an ack, sometimes drop at once.
		if r.IntN(2) == 0 {
			a := expect[proto.Ack](c)
			spy.check(t, a.Offset)
			acked = max(acked, a.Offset)
		}
		// Half the drops cut a frame in the middle.
		if r.IntN(2) == 0 && sent+640 <= int64(len(pcm)) {
			c.writePartial(pcm[sent:sent+640], 1+r.IntN(639))
		}
		c.nc.Close()

		c = e.dial(t, id)
		ready := c.resume(streamID)
		if ready.StreamID != streamID {
			t.Fatalf("ready for %s, want %s", ready.StreamID, streamID)
		}
		if ready.Offset < acked || ready.Offset > sent+640 || ready.Offset%2 != 0 {
			t.Fatalf("drop %d: resume offset %d, acked %d, sent %d", drop, ready.Offset, acked, sent)
		}
		spy.check(t, ready.Offset)
		sent = ready.Offset
	}
	if err := c.sendPCM(pcm[sent:], 640); err != nil {
		t.Fatal(err)
	}
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
	c.expectClose(proto.CloseNormal, "")
}

// syncSpy wraps spools and remembers how many PCM bytes each had synced, so
// a test can check that an ack never names more.
type syncSpy struct {
	mu     sync.Mutex
	synced int64
}

type spyFile struct {
	stream.SpoolFile
	spy      *syncSpy
	appended int64
	mu       sync.Mutex
}

func (s *syncSpy) wrap(f stream.SpoolFile) stream.SpoolFile {
	s.mu.Lock()
	s.synced = 0
	s.mu.Unlock()
	return &spyFile{SpoolFile: f, spy: s}
}

func (f *spyFile) Append(p []byte) error {
	err := f.SpoolFile.Append(p)
	if err == nil {
		f.mu.Lock()
		f.appended += int64(len(p))
		f.mu.Unlock()
	}
	return err
}

func (f *spyFile) Sync() error {
	f.mu.Lock()
	n := f.appended
	f.mu.Unlock()
	err := f.SpoolFile.Sync()
	if err == nil {
		f.spy.mu.Lock()
		f.spy.synced = max(f.spy.synced, n)
		f.spy.mu.Unlock()
	}
	return err
}

func (s *syncSpy) check(tb testing.TB, offset int64) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset > s.synced {
		tb.Fatalf("the server named offset %d, but only %d bytes were synced", offset, s.synced)
	}
}

func TestStream_ResumeRefused(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "resume refused")

	t.Run("UnknownStream", func(t *testing.T) {
		c := e.dial(t, id)
		c.send(`{"type":"resume","stream_id":"0123456789abcdef0123456789abcdef"}`)
		c.expectClose(proto.ClosePolicy, proto.CodeUnknownStream)
	})
	t.Run("AnotherUsersStream", func(t *testing.T) {
		c := e.dial(t, id)
		ready := c.start(16000, 1)
		c.sendPCM(make([]byte, 3200), 640)
		if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "other", Password: testPassword, Role: store.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.db.CreateToken(t.Context(), "other", "", "")
		if err != nil {
			t.Fatal(err)
		}
		o := e.dialHeader(t, id, authHeader(tok))
		o.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
		o.expectClose(proto.ClosePolicy, proto.CodeUnknownStream)
		// The owner's connection was not disturbed.
		c.sendPCM(make([]byte, 3200), 640)
		c.send(`{"type":"stop"}`)
		expect[proto.Stored](c)
		c.expectClose(proto.CloseNormal, "")

		t.Run("FinishedStream", func(t *testing.T) {
			c := e.dial(t, id)
			c.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
			c.expectClose(proto.ClosePolicy, proto.CodeUnknownStream)
		})
	})
}

// TestStream_OnePerRecord: a second stream on a record that has one (live
// or resumable) is refused, and so is a stream into a record with audio.
func TestStream_OnePerRecord(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "one stream")
	first := e.dial(t, id)
	ready := first.start(16000, 1)
	pcm := soxPCM(t, 16000, 1, 1)
	first.sendPCM(pcm[:6400], 640)

	second := e.dial(t, id)
	second.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1}`)
	second.expectClose(proto.ClosePolicy, string(store.CodeConflict))

	first.nc.Close() // resumable now: still one stream
	third := e.dial(t, id)
	third.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1}`)
	third.expectClose(proto.ClosePolicy, string(store.CodeConflict))

	again := e.dial(t, id)
	r := again.resume(ready.StreamID)
	again.sendPCM(pcm[r.Offset:], 640)
	again.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](again), pcm, 16000, 1)

	withAudio := e.dial(t, id)
	withAudio.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1}`)
	withAudio.expectClose(proto.ClosePolicy, string(store.CodeConflict))
}

// TestStream_Takeover: a resume while the old connection still looks open
// takes the stream; the old connection ends.
func TestStream_Takeover(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "takeover")
	pcm := soxPCM(t, 16000, 1, 1)
	old := e.dial(t, id)
	ready := old.start(16000, 1)
	old.sendPCM(pcm[:16000], 640)
	expect[proto.Ack](old)

	c := e.dial(t, id)
	r := c.resume(ready.StreamID)
	if r.Offset != 16000 {
		t.Fatalf("resume offset %d, want 16000", r.Offset)
	}
	if _, cl := old.next(); cl == nil {
		t.Fatal("the old connection got a message after the takeover")
	}
	c.sendPCM(pcm[16000:], 640)
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
}

// TestStream_AbandonedIsStored: a stream whose client never comes back is
// stored when its resume window ends, with what it held.
func TestStream_AbandonedIsStored(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) { c.ResumeWindow = 300 * time.Millisecond })
	id := e.mustRecord(t, "abandoned")
	pcm := soxPCM(t, 16000, 1, 2)
	c := e.dial(t, id)
	c.start(16000, 1)
	c.sendPCM(pcm, 640)
	for a := int64(0); a < int64(len(pcm)); {
		a = expect[proto.Ack](c).Offset
	}
	c.nc.Close()
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 })
	got := e.storedAudio(t, id)
	if !bytes.Equal(got, wavOf(pcm, 16000, 1)) {
		t.Fatalf("stored %d bytes, want the WAV of the %d sent", len(got), len(pcm))
	}
	if n := spoolFiles(t, e.dir); n != 0 {
		t.Fatalf("%d spool files left", n)
	}
}

// TestStream_RestartResumes closes the stream server mid-stream (as a
// shutdown does), opens a new one over the same data directory, and checks
// that the stream resumes from its durable offset and stores everything.
// Then it checks that a spool found after a restart is stored when its
// window ends, with the principal kept in the spool.
func TestStream_RestartResumes(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) { c.ResumeWindow = 2 * time.Second })
	id := e.mustRecord(t, "restart")
	pcm := soxPCM(t, 16000, 1, 4)
	c := e.dial(t, id)
	ready := c.start(16000, 1)
	c.sendPCM(pcm[:64000], 640)
	expect[proto.Ack](c)

	e.restart(t)
	if _, cl := c.next(); cl == nil || cl.code != proto.CloseGoingAway {
		t.Fatalf("on shutdown the client got %+v, want close 1001", cl)
	}
	c = e.dial(t, id)
	r := c.resume(ready.StreamID)
	if r.Offset != 64000 {
		t.Fatalf("after restart the offset is %d, want the 64000 sent before", r.Offset)
	}
	c.sendPCM(pcm[r.Offset:100000], 640)
	for a := int64(0); a < 100000; {
		a = expect[proto.Ack](c).Offset
	}
	c.nc.Close() // abandoned now: the restart must keep its deadline
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })
	e.restart(t)
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 })
	if got := e.storedAudio(t, id); !bytes.Equal(got, wavOf(pcm[:100000], 16000, 1)) {
		t.Fatalf("stored %d bytes after restart and window, want %d", len(got), 44+100000)
	}
}

func spoolFiles(tb testing.TB, dir string) int {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "spool", "*.spool"))
	if err != nil {
		tb.Fatal(err)
	}
	return len(m)
}

func waitFor(tb testing.TB, d time.Duration, ok func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v", d)
		}
	}
}

func authHeader(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

// failingSpool fails its appends with ENOSPC while full is set.
type failingSpool struct {
	stream.SpoolFile
	full *bool
	mu   *sync.Mutex
}

func (f failingSpool) Append(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *f.full {
		return &os.PathError{Op: "write", Path: "/secret/path", Err: syscall.ENOSPC}
	}
	return f.SpoolFile.Append(p)
}

// TestStream_DiskFull: a spool write that fails ends the connection with
// insufficient_storage (1011); nothing was acked that is not on disk, and
// once the disk has room again the stream resumes from what it holds.
func TestStream_DiskFull(t *testing.T) {
	var mu sync.Mutex
	full := false
	e := mustEnv(t, func(c *stream.Config) {
		c.WrapSpool = func(f stream.SpoolFile) stream.SpoolFile { return failingSpool{f, &full, &mu} }
	})
	id := e.mustRecord(t, "disk full")
	pcm := soxPCM(t, 16000, 1, 3)
	c := e.dial(t, id)
	ready := c.start(16000, 1)
	c.sendPCM(pcm[:32000], 640)
	for a := int64(0); a < 32000; {
		a = expect[proto.Ack](c).Offset
	}
	mu.Lock()
	full = true
	mu.Unlock()
	c.sendPCM(pcm[32000:64000], 640)
	c.expectClose(proto.CloseInternal, string(store.CodeDiskFull))
	if strings.Contains(e.log.String(), "/secret/path") {
		t.Fatal("a path was logged")
	}
	mu.Lock()
	full = false
	mu.Unlock()
	c = e.dial(t, id)
	r := c.resume(ready.StreamID)
	if r.Offset < 32000 || r.Offset > 64000 {
		t.Fatalf("resume offset %d after the disk filled", r.Offset)
	}
	c.sendPCM(pcm[r.Offset:], 640)
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
	_ = fmt.Sprint
}
