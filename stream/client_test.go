package stream_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/internal/testproxy"
	"tyst/store"
	"tyst/stream"
	"tyst/stream/client"
	"tyst/stream/proto"
)

// pacedReader hands out pcm at about speed times real time, in 20 ms
// blocks, then EOF.
type pacedReader struct {
	pcm   []byte
	block int
	every time.Duration
	next  time.Time
}

func paced(pcm []byte, rate, channels int, speed float64) *pacedReader {
	return &pacedReader{pcm: pcm, block: rate * channels * 2 / 50, every: time.Duration(float64(20*time.Millisecond) / speed)}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(p.pcm) == 0 {
		return 0, io.EOF
	}
	if d := time.Until(p.next); d > 0 {
		time.Sleep(d)
	}
	p.next = time.Now().Add(p.every)
	n := copy(b, p.pcm[:min(len(p.pcm), p.block, len(b))])
	p.pcm = p.pcm[n:]
	return n, nil
}

// warnings collects the client's warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(m string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, m)
	w.mu.Unlock()
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

func clientConfig(tb testing.TB, e *env, server string, in io.Reader, w *warnings) client.Config {
	tb.Helper()
	var k fernet.Key
	k.Generate()
	return client.Config{
		Server: server, Token: e.token, Title: "client test", Rate: 16000, Channels: 1,
		BufferDir: filepath.Join(tb.TempDir(), "buf"), BufferKey: &k, BufferBytes: 64 << 20,
		Input: in, Warn: w.add, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		FinishTimeout: 30 * time.Second,
	}
}

// runResult is what client.Run returned.
type runResult struct {
	res *client.Result
	err error
}

// runClient runs client.Run with cfg in the background.
func runClient(t *testing.T, cfg client.Config) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		res, err := client.Run(t.Context(), cfg)
		done <- runResult{res, err}
	}()
	return done
}

// waitRun waits at most 30 s for the client of done to stop.
func waitRun(t *testing.T, done <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not stop")
	}
	panic("unreachable")
}

func TestClient_RoundTrip(t *testing.T) {
	e := mustEnv(t)
	pcm := soxPCM(t, 16000, 1, 3)
	var w warnings
	cfg := clientConfig(t, e, e.URL, bytes.NewReader(pcm), &w)
	res, err := client.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, &w)
	}
	e.mustStored(t, res.RecordID, res.Stored, pcm, 16000, 1)
	if _, err := os.Stat(cfg.BufferDir); !os.IsNotExist(err) {
		t.Fatal("the buffer directory is left behind")
	}
	rec, err := e.db.Record(e.principal(t), res.RecordID)
	if err != nil || rec.Title != "client test" {
		t.Fatalf("created record: %+v %v", rec, err)
	}
}

// TestClient_FlakyLink cuts the link ten times while the client streams in
// real time (here 4× faster) and checks that the stored audio is exactly
// the input, and that the buffer on disk never holds plaintext.
func TestClient_FlakyLink(t *testing.T) {
	e := mustEnv(t)
	proxy, err := testproxy.Start(strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pcm := canaryPCM(16000 * 2 * 12) // 12 s
	var w warnings
	cfg := clientConfig(t, e, "http://"+proxy.Addr(), paced(pcm, 16000, 1, 4), &w)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	cuts := 0
	go func() {
		defer close(done)
		for cuts < 10 {
			time.Sleep(250 * time.Millisecond)
			if proxy.Cut() > 0 {
				cuts++
			}
			searchTree(t, cfg.BufferDir, "PCM-CANARY")
		}
	}()
	res, err := client.Run(ctx, cfg)
	<-done
	if err != nil {
		t.Fatalf("%v\n%s", err, &w)
	}
	if res.Reconnects < 5 {
		t.Fatalf("%d reconnects: the cuts did not hit the stream", res.Reconnects)
	}
	e.mustStored(t, res.RecordID, res.Stored, pcm, 16000, 1)
}

// TestClient_BufferFull: while the server is unreachable the buffer fills;
// the client warns, drops the oldest audio and delivers the newest.
func TestClient_BufferFull(t *testing.T) {
	e := mustEnv(t)
	proxy, err := testproxy.Start(strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// 6 MiB of input, 2 MiB of buffer; the link goes down after the first
	// second and comes back for the end.
	pcm := canaryPCM(6 << 20)
	pr, pw := io.Pipe()
	var w warnings
	cfg := clientConfig(t, e, "http://"+proxy.Addr(), pr, &w)
	cfg.BufferBytes = 2 << 20
	go func() {
		pw.Write(pcm[:32000])
		time.Sleep(500 * time.Millisecond) // streamed and acked
		proxy.SetDown(true)
		proxy.Cut()
		for p := pcm[32000:]; len(p) > 0; p = p[min(len(p), 32000):] {
			pw.Write(p[:min(len(p), 32000)])
		}
		proxy.SetDown(false)
		pw.Close()
	}()
	res, err := client.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, &w)
	}
	if !strings.Contains(w.String(), "BUFFER FULL") {
		t.Fatalf("no loud warning:\n%s", &w)
	}
	got := e.storedAudio(t, res.RecordID)[44:]
	if res.Dropped == 0 || int64(len(got)) != int64(len(pcm))-res.Dropped {
		t.Fatalf("stored %d bytes, dropped %d, input %d", len(got), res.Dropped, len(pcm))
	}
	// The newest audio is kept whole: the stored tail is the input's tail.
	tail := len(got) - 32000
	if !bytes.Equal(got[:32000], pcm[:32000]) || !bytes.Equal(got[32000:], pcm[len(pcm)-tail:]) {
		t.Fatal("the stored audio is not the first second plus the newest audio")
	}
}

// TestClient_ContinuesInNewRecord: when the server has stored the stream
// (its resume window ended during an outage) the rest goes into a new
// record instead of being lost.
func TestClient_ContinuesInNewRecord(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) { c.ResumeWindow = 200 * time.Millisecond })
	proxy, err := testproxy.Start(strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pcm := soxPCM(t, 16000, 1, 2)
	pr, pw := io.Pipe()
	var w warnings
	cfg := clientConfig(t, e, "http://"+proxy.Addr(), pr, &w)
	go func() {
		pw.Write(pcm[:32000])
		time.Sleep(500 * time.Millisecond)
		proxy.SetDown(true)
		proxy.Cut()
		pw.Write(pcm[32000:])
		waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 }) // stored by the window
		proxy.SetDown(false)
		pw.Close()
	}()
	res, err := client.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, &w)
	}
	if len(res.Records) != 2 {
		t.Fatalf("records %v, want the first and a continuation", res.Records)
	}
	first := e.storedAudio(t, res.Records[0])[44:]
	second := e.storedAudio(t, res.Records[1])[44:]
	if !bytes.Equal(append(first, second...), pcm) {
		t.Fatalf("the two records hold %d+%d bytes, not the %d sent once each", len(first), len(second), len(pcm))
	}
	rec, _ := e.db.Record(e.principal(t), res.Records[1])
	if rec.Title != "client test (continued)" {
		t.Fatalf("continuation title %q", rec.Title)
	}
}

// TestClient_Interrupt: cancelling (SIGINT) ends the input; what was read
// is stored.
func TestClient_Interrupt(t *testing.T) {
	e := mustEnv(t)
	pcm := soxPCM(t, 16000, 1, 1)
	pr, pw := io.Pipe()
	defer pw.Close()
	var w warnings
	cfg := clientConfig(t, e, e.URL, pr, &w)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		pw.Write(pcm)
		time.Sleep(300 * time.Millisecond)
		cancel() // stdin stays open, as with a microphone
	}()
	res, err := client.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, &w)
	}
	e.mustStored(t, res.RecordID, res.Stored, pcm, 16000, 1)
}

// TestClient_Refused: a record with audio, or a token that may not stream,
// is an error at once, not a retry loop.
func TestClient_Refused(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "has audio")
	var w warnings
	cfg := clientConfig(t, e, e.URL, bytes.NewReader(make([]byte, 3200)), &w)
	cfg.RecordID = id
	if _, err := client.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cfg = clientConfig(t, e, e.URL, bytes.NewReader(make([]byte, 3200)), &w)
	cfg.RecordID = id
	if _, err := client.Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("streaming into a record with audio: %v", err)
	}
	if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "looker", Password: testPassword, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := e.db.CreateToken(t.Context(), "looker", "", "")
	cfg = clientConfig(t, e, e.URL, bytes.NewReader(make([]byte, 3200)), &w)
	cfg.Token = tok
	if _, err := client.Run(t.Context(), cfg); err == nil {
		t.Fatal("a viewer streamed")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("refusals were retried")
	}
}

// TestClient_WaitsForAFreeSlot: a field box whose token holds as many
// streams as it may is refused with too_many_streams; the client keeps its
// audio and tries again, and streams everything once a slot is free.
func TestClient_WaitsForAFreeSlot(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) { c.MaxStreamsPerToken = 1 })
	held := e.dial(t, e.mustRecord(t, "holds the slot"))
	held.start(16000, 1)
	pcm := soxPCM(t, 16000, 1, 2)
	var w warnings
	cfg := clientConfig(t, e, e.URL, bytes.NewReader(pcm), &w)
	done := runClient(t, cfg)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(w.String(), "too_many_streams") })
	select {
	case r := <-done:
		t.Fatalf("the client ended while refused: %+v %v", r.res, r.err)
	default:
	}
	held.sendPCM(pcm[:3200], 640)
	held.send(`{"type":"stop"}`)
	expect[proto.Stored](held)
	r := <-done
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, &w)
	}
	e.mustStored(t, r.res.RecordID, r.res.Stored, pcm, 16000, 1)
}
