package stream_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// fakeClock is time.Now plus an offset the test moves forward.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// startOutcome is what a start was answered: ready, or an error code and
// a close code.
type startOutcome struct {
	ready     bool
	code      string
	closeCode int
	status    int   // the upgrade was refused with this HTTP status
	err       error // none of these: the connection failed
}

// tryStart dials record id with tok, sends start, reads the answer, and
// drops the connection, as the review's flood does. Safe to call from
// several goroutines.
func (e *env) tryStart(tok string, id uint64) startOutcome {
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(authHeader(tok)), Timeout: 10 * time.Second}
	nc, br, _, err := d.Dial(context.Background(), e.wsURL(id))
	var se ws.StatusError
	if errors.As(err, &se) {
		return startOutcome{status: int(se)}
	}
	if err != nil {
		return startOutcome{err: err}
	}
	defer nc.Close()
	var r io.Reader = nc
	if br != nil {
		r = io.MultiReader(br, nc)
	}
	fw := proto.FrameWriter{W: nc, Mask: true}
	if err := fw.WriteFrame(ws.OpText, []byte(start16k)); err != nil {
		return startOutcome{err: err}
	}
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	rw := struct {
		io.Reader
		io.Writer
	}{r, nc}
	var out startOutcome
	for {
		b, err := wsutil.ReadServerText(rw)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				out.closeCode = int(ce.Code)
				return out
			}
			out.err = err
			return out
		}
		m, err := proto.ParseServer(b)
		if err != nil {
			out.err = err
			return out
		}
		switch m := m.(type) {
		case proto.Ready:
			out.ready = true
			return out
		case proto.Error:
			out.code = m.Code
		}
	}
}

// recordAs creates a record as the holder of tok (a stream token may only
// stream into records it created).
func (e *env) recordAs(tb testing.TB, tok string) uint64 {
	tb.Helper()
	p, err := e.db.Authenticate(tb.Context(), tok)
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := e.db.CreateRecord(store.WithPrincipal(tb.Context(), p), store.NewRecord{Title: "flood"})
	if err != nil {
		tb.Fatal(err)
	}
	return rec.ID
}

// spoolUse returns the spool files' sizes and the bytes they take on disk.
func spoolUse(tb testing.TB, dir string) (files int, size, onDisk int64) {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "spool", "*.spool"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(n, &st); err != nil {
			tb.Fatal(err)
		}
		size += st.Size
		onDisk += st.Blocks * 512
	}
	return len(names), size, onDisk
}

// TestStream_Caps is the review's stream-slot flood (H2) at test scale: a
// field box account with three stream tokens sends start into 12 records
// per token at once and drops every connection. Each token holds at most
// MaxStreamsPerToken (4) streams and the account MaxStreamsPerUser (8);
// every other start is refused with too_many_streams (1008) before a spool
// is made, or its connection before the upgrade (429: the token has as
// many connections waiting to start as it may); the 8 spools held cost their metadata, not a MiB each; another
// reporter starts, streams and stores at once. The audio-less streams go,
// spool and all, after EmptyWindow (30 s on the injected clock), not the
// 10-minute resume window, which a stream with audio keeps.
func TestStream_Caps(t *testing.T) {
	clk := &fakeClock{}
	e := mustEnv(t, func(c *stream.Config) {
		c.MaxStreamsPerUser, c.MaxStreamsPerToken = 0, 0 // the defaults
		c.Now = clk.now
	})
	if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "fieldbox", Password: testPassword, Role: store.RoleEditor}); err != nil {
		t.Fatal(err)
	}
	const tokens, perToken = 3, 12
	var toks []string
	records := map[string][]uint64{}
	for range tokens {
		tok, _, err := e.db.CreateToken(t.Context(), "fieldbox", store.ScopeStream, "")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		for range perToken {
			records[tok] = append(records[tok], e.recordAs(t, tok))
		}
	}

	outcomes := map[string][]startOutcome{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tok := range toks {
		for _, id := range records[tok] {
			wg.Go(func() {
				o := e.tryStart(tok, id)
				mu.Lock()
				outcomes[tok] = append(outcomes[tok], o)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	total := 0
	for i, tok := range toks {
		ready := 0
		for _, o := range outcomes[tok] {
			switch {
			case o.err != nil:
				t.Fatalf("token %d: start failed: %v", i, o.err)
			case o.ready:
				ready++
			case o.status == http.StatusTooManyRequests:
			case o.code != proto.CodeTooManyStreams || o.closeCode != proto.ClosePolicy:
				t.Fatalf("token %d: refused with %q, close %d; want too_many_streams, 1008", i, o.code, o.closeCode)
			}
		}
		if ready > stream.DefaultMaxStreamsPerToken {
			t.Fatalf("token %d holds %d streams, over its cap of %d", i, ready, stream.DefaultMaxStreamsPerToken)
		}
		total += ready
	}
	if total != stream.DefaultMaxStreamsPerUser {
		t.Fatalf("the account got %d streams, want its cap of %d", total, stream.DefaultMaxStreamsPerUser)
	}
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })
	if n := e.streams.Streams(); n != total {
		t.Fatalf("the server holds %d streams, want the %d started", n, total)
	}
	files, size, onDisk := spoolUse(t, e.dir)
	if files != total || size > int64(files)*1024 || onDisk > int64(files)*8192 {
		t.Fatalf("%d abandoned starts left %d spools of %d bytes, %d on disk; want %d of at most 1 KiB each",
			total, files, size, onDisk, total)
	}
	t.Logf("%d abandoned starts hold %d spool bytes, %d bytes of disk blocks", total, size, onDisk)

	// Another reporter streams at once.
	id := e.mustRecord(t, "victim")
	pcm := soxPCM(t, 16000, 1, 1)
	t0 := time.Now()
	c := e.dial(t, id)
	c.start(16000, 1)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("the reporter's start took %v", d)
	}
	c.sendPCM(pcm, 640)
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)

	// The empty window ends: the audio-less streams go, spools and all,
	// and leave their records without audio.
	waitFor(t, 5*time.Second, func() bool { return e.streams.Streams() == total })
	clk.advance(stream.DefaultEmptyWindow + time.Second)
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 })
	if files, _, _ := spoolUse(t, e.dir); files != 0 {
		t.Fatalf("%d spool files left after the empty window", files)
	}
	for _, tok := range toks {
		for _, id := range records[tok] {
			rec, err := e.db.Record(e.principal(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Audio != nil {
				t.Fatalf("record %d got audio from an abandoned start", id)
			}
		}
	}

	// Slots free again: the token streams; dropped with audio, its stream
	// outlives the empty window.
	withAudio := e.recordAs(t, toks[0])
	c = e.dialHeader(t, withAudio, authHeader(toks[0]))
	c.start(16000, 1)
	c.sendPCM(pcm[:16000], 640)
	for a := int64(0); a < 16000; {
		a = expect[proto.Ack](c).Offset
	}
	empty := e.recordAs(t, toks[0])
	if o := e.tryStart(toks[0], empty); !o.ready {
		t.Fatalf("a start after the abandoned ones went: %+v", o)
	}
	c.nc.Close()
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })
	clk.advance(stream.DefaultEmptyWindow + time.Second)
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 1 })
	if !e.streams.Busy(withAudio) {
		t.Fatal("the dropped stream that holds audio went with the empty one")
	}
	clk.advance(stream.DefaultResumeWindow)
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 })
	if got := e.storedAudio(t, withAudio); len(got) != 44+16000 {
		t.Fatalf("the abandoned stream stored %d bytes, want %d", len(got), 44+16000)
	}
}

// TestStream_MaxStreamsAtomic: 40 starts at once against MaxStreams 5 give
// exactly 5 streams, on a slow disk too (each spool takes 100 ms to make):
// the check and the count are one step.
func TestStream_MaxStreamsAtomic(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) {
		c.MaxStreams = 5
		c.WrapSpool = func(f stream.SpoolFile) stream.SpoolFile {
			time.Sleep(100 * time.Millisecond)
			return f
		}
	})
	const n = 40
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = e.mustRecord(t, "atomic")
	}
	var ready, unavailable atomic.Int64
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			o := e.tryStart(e.token, id)
			switch {
			case o.ready:
				ready.Add(1)
			case o.code == string(store.CodeUnavailable) && o.closeCode == proto.CloseInternal:
				unavailable.Add(1)
			default:
				t.Errorf("start answered %+v", o)
			}
		})
	}
	wg.Wait()
	if ready.Load() != 5 || unavailable.Load() != n-5 {
		t.Fatalf("%d ready, %d unavailable; want 5 and %d", ready.Load(), unavailable.Load(), n-5)
	}
	if got := e.streams.Streams(); got != 5 {
		t.Fatalf("the server holds %d streams, over MaxStreams 5", got)
	}
	if files, _, _ := spoolUse(t, e.dir); files != 5 {
		t.Fatalf("%d spool files for 5 streams", files)
	}
}
