package stream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"tyst/api"
	"tyst/internal/testlog"
	"tyst/store"
	"tyst/store/media"
	"tyst/stream"
	"tyst/stream/proto"
)

// env is a real store in a temp dir, the API with the stream server, on
// loopback.
type env struct {
	*httptest.Server
	db      *store.DB
	keys    *store.Keyring
	streams *stream.Server
	current atomic.Pointer[stream.Server] // streams, for the store's OnRecordGone
	dir     string
	log     *testlog.Buffer
	cfg     stream.Config
	token   string // an editor's API token
	userID  uint64
}

const testPassword = "correct horse battery"

// mustEnv starts an env; opts adjust the stream server's config.
func mustEnv(tb testing.TB, opts ...func(*stream.Config)) *env {
	tb.Helper()
	keys, err := store.NewKeyring(store.GenerateKey())
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{keys: keys, dir: tb.TempDir(), log: &testlog.Buffer{}}
	e.openStore(tb)
	u, err := e.db.CreateUser(tb.Context(), store.NewUser{Username: "reporter", Password: testPassword, Role: store.RoleEditor})
	if err != nil {
		tb.Fatal(err)
	}
	e.userID = u.ID
	if e.token, _, err = e.db.CreateToken(tb.Context(), "reporter", "", ""); err != nil {
		tb.Fatal(err)
	}
	// The per-principal caps are raised: tests of everything else start
	// many streams with the one token (TestStream_Caps sets them).
	e.cfg = stream.Config{AckInterval: 100 * time.Millisecond, SyncTick: 10 * time.Millisecond,
		MaxStreamsPerUser: 1 << 10, MaxStreamsPerToken: 1 << 10}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.startStreams(tb)
	return e
}

func (e *env) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(e.log, nil)) }

func (e *env) openStore(tb testing.TB) {
	tb.Helper()
	db, err := store.Open(e.dir, store.Options{Keys: e.keys, Logger: e.logger()})
	if err != nil {
		tb.Fatal(err)
	}
	// As serve wires it: a destroy or purge ends the record's stream (of
	// the stream server open now: restart replaces it).
	db.OnRecordGone(func(id uint64) {
		if s := e.current.Load(); s != nil {
			s.RecordGone(id)
		}
	})
	db.OnAudioRemoved(func(id uint64) {
		if s := e.current.Load(); s != nil {
			s.AudioRemoved(id)
		}
	})
	e.db = db
	tb.Cleanup(func() { db.Close() })
}

// startStreams opens the stream server over the store and serves the API.
func (e *env) startStreams(tb testing.TB) {
	tb.Helper()
	cfg := e.cfg
	cfg.Store, cfg.Keys, cfg.DataDir, cfg.Logger = e.db, e.keys, e.dir, e.logger()
	s, err := stream.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.streams = s
	e.current.Store(s)
	e.Server = httptest.NewServer(api.New(api.Config{Records: e.db, Accounts: e.db, Streams: s, Logger: e.logger()}))
	tb.Cleanup(func() {
		s.Close()
		e.Server.Close()
	})
}

// restart closes the stream server (as a shutdown does) and opens a new one
// over the same data directory.
func (e *env) restart(tb testing.TB) {
	tb.Helper()
	if err := e.streams.Close(); err != nil {
		tb.Fatal(err)
	}
	e.Server.Close()
	e.startStreams(tb)
}

func (e *env) principal(tb testing.TB) context.Context {
	tb.Helper()
	p, err := e.db.Authenticate(tb.Context(), e.token)
	if err != nil {
		tb.Fatal(err)
	}
	return store.WithPrincipal(tb.Context(), p)
}

func (e *env) mustRecord(tb testing.TB, title string) uint64 {
	tb.Helper()
	rec, err := e.db.CreateRecord(e.principal(tb), store.NewRecord{Title: title})
	if err != nil {
		tb.Fatal(err)
	}
	return rec.ID
}

func (e *env) wsURL(id uint64) string {
	return "ws" + strings.TrimPrefix(e.URL, "http") + fmt.Sprintf("/api/v1/record/%d/stream", id)
}

// tclient is a minimal WebSocket client on gobwas/ws for the tests.
type tclient struct {
	tb testing.TB
	nc net.Conn
	r  io.Reader
	fw proto.FrameWriter
}

// dial connects to record id's stream with the env's token.
func (e *env) dial(tb testing.TB, id uint64) *tclient {
	tb.Helper()
	return e.dialHeader(tb, id, http.Header{"Authorization": {"Bearer " + e.token}})
}

func (e *env) dialHeader(tb testing.TB, id uint64, h http.Header) *tclient {
	tb.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(h), Timeout: 5 * time.Second}
	nc, br, _, err := d.Dial(context.Background(), e.wsURL(id))
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { nc.Close() })
	c := &tclient{tb: tb, nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	c.fw = proto.FrameWriter{W: nc, Mask: true}
	return c
}

func (c *tclient) rw() io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{c.r, c.nc}
}

func (c *tclient) send(msg string) {
	c.tb.Helper()
	if err := c.fw.WriteFrame(ws.OpText, []byte(msg)); err != nil {
		c.tb.Fatalf("send: %v", err)
	}
}

// sendPCM sends p in frames of frame bytes.
func (c *tclient) sendPCM(p []byte, frame int) error {
	for len(p) > 0 {
		n := min(len(p), frame)
		if err := c.fw.WriteFrame(ws.OpBinary, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// closed is the end of a connection as the client saw it.
type closed struct {
	code   int
	reason string
	err    error // not a close frame: reset, EOF, timeout
}

// next returns the next message, or the close.
func (c *tclient) next() (proto.ServerMessage, *closed) {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := wsutil.ReadServerText(c.rw())
	if err != nil {
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return nil, &closed{code: int(ce.Code), reason: ce.Reason}
		}
		return nil, &closed{err: err}
	}
	m, err := proto.ParseServer(b)
	if err != nil {
		c.tb.Fatalf("server sent %q: %v", b, err)
	}
	return m, nil
}

// expect returns the next message, which must be of type T, skipping acks
// unless T is Ack.
func expect[T proto.ServerMessage](c *tclient) T {
	c.tb.Helper()
	for {
		m, cl := c.next()
		if cl != nil {
			c.tb.Fatalf("want %T, got close %+v", *new(T), *cl)
		}
		if t, ok := m.(T); ok {
			return t
		}
		if _, ok := m.(proto.Ack); ok {
			continue
		}
		c.tb.Fatalf("want %T, got %#v", *new(T), m)
	}
}

// expectClose reads until the close and checks its code and, when the
// server sent one, the error's code.
func (c *tclient) expectClose(code int, errCode string) {
	c.tb.Helper()
	var gotErr string
	for {
		m, cl := c.next()
		if cl != nil {
			if cl.err != nil {
				c.tb.Fatalf("connection ended without a close frame (error %q before): %v", gotErr, cl.err)
			}
			if cl.code != code || gotErr != errCode {
				c.tb.Fatalf("closed %d after error %q, want %d after %q (reason %q)", cl.code, gotErr, code, errCode, cl.reason)
			}
			return
		}
		if e, ok := m.(proto.Error); ok {
			gotErr = e.Code
		}
	}
}

// start sends start and waits for ready.
func (c *tclient) start(rate, channels int) proto.Ready {
	c.tb.Helper()
	c.send(fmt.Sprintf(`{"type":"start","format":"pcm_s16le","sample_rate":%d,"channels":%d,"source":"mic"}`, rate, channels))
	return expect[proto.Ready](c)
}

// soxPCM makes seconds of real 16-bit PCM with sox: a sweep with noise.
func soxPCM(tb testing.TB, rate, channels int, seconds float64) []byte {
	tb.Helper()
	cmd := exec.Command("sox", "-R", "-n", "-r", fmt.Sprint(rate), "-c", fmt.Sprint(channels), "-b", "16",
		"-e", "signed-integer", "-t", "raw", "-", "synth", fmt.Sprint(seconds), "sine", "200-3000", "whitenoise", "gain", "-6")
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("sox (apt-get install sox): %v", err)
	}
	if len(out) != int(float64(rate)*seconds)*2*channels {
		tb.Fatalf("sox made %d bytes", len(out))
	}
	return out
}

// wavOf returns the WAV the server must store for pcm.
func wavOf(pcm []byte, rate, channels int) []byte {
	return append(media.WAVHeader(int64(len(pcm)), rate, channels), pcm...)
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// storedAudio reads record id's audio back from the store.
func (e *env) storedAudio(tb testing.TB, id uint64) []byte {
	tb.Helper()
	ar, err := e.db.OpenAudio(e.principal(tb), id)
	if err != nil {
		tb.Fatalf("open audio: %v", err)
	}
	defer ar.Close()
	b, err := io.ReadAll(ar)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustStored checks that record id holds exactly the WAV of pcm and that
// st describes it.
func (e *env) mustStored(tb testing.TB, id uint64, st proto.Stored, pcm []byte, rate, channels int) {
	tb.Helper()
	want := wavOf(pcm, rate, channels)
	got := e.storedAudio(tb, id)
	if !bytes.Equal(got, want) {
		tb.Fatalf("stored %d bytes, want %d: the WAV differs from header + PCM sent", len(got), len(want))
	}
	if st.SHA256 != sha256hex(want) || st.SizeBytes != int64(len(want)) || st.MIMEType != "audio/wav" {
		tb.Fatalf("stored = %+v, want sha256 %s size %d audio/wav", st, sha256hex(want), len(want))
	}
	if ms := int64(len(pcm)) * 1000 / int64(rate*2*channels); st.DurationMS != ms {
		tb.Fatalf("duration_ms = %d, want %d", st.DurationMS, ms)
	}
}
