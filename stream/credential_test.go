package stream_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// A live stream lives only as long as its credential: a logout, a revoked
// token, a disabled account or a lowered role ends it within the
// credential check's interval (a second), with unauthorized or forbidden
// (1008) and no ack after; what was acknowledged stays in the spool,
// resumable by the same account with a valid credential, and is stored
// into the record when the resume window ends.

// credStream is a stream sending audio while its credential ends.
type credStream struct {
	srv     *stream.Server
	c       *tclient
	pcm     []byte
	ready   proto.Ready
	sent    atomic.Int64
	stop    chan struct{}
	stopped sync.WaitGroup
}

// liveStream starts a stream on c into which 10 s of real PCM are sent,
// about twice as fast as real time: the first second is sent and
// acknowledged before it returns, the rest keeps coming in 20 ms frames
// while the test ends the credential.
func (e *env) liveStream(t *testing.T, c *tclient) *credStream {
	t.Helper()
	s := &credStream{srv: e.streams, c: c, pcm: soxPCM(t, 16000, 1, 10), stop: make(chan struct{})}
	s.ready = c.start(16000, 1)
	first := int64(32000)
	if err := c.sendPCM(s.pcm[:first], 640); err != nil {
		t.Fatal(err)
	}
	s.sent.Store(first)
	for a := int64(0); a < first; {
		a = expect[proto.Ack](c).Offset
	}
	s.stopped.Add(1)
	go func() {
		defer s.stopped.Done()
		for off := first; off < int64(len(s.pcm)); off += 640 {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if c.fw.WriteFrame(ws.OpBinary, s.pcm[off:off+640]) != nil {
				return
			}
			s.sent.Store(off + 640)
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *credStream) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.stopped.Wait()
}

// endsWithin reads until the close, which must come within 3 s of ended
// (the check runs every second; the margin is for a loaded CI machine)
// with the error code want and close 1008, and returns the last offset
// acknowledged. Acks come until then, none after the error.
func (s *credStream) endsWithin(t *testing.T, ended time.Time, want string) int64 {
	t.Helper()
	var lastAck int64
	var gotErr string
	for {
		m, cl := s.c.next()
		if cl != nil {
			took := time.Since(ended)
			s.halt()
			if cl.err != nil || cl.code != proto.ClosePolicy || gotErr != want {
				t.Fatalf("connection ended with %+v after error %q; want close 1008 after %q", cl, gotErr, want)
			}
			if took > 3*time.Second {
				t.Fatalf("the stream went on for %v after its credential ended", took)
			}
			t.Logf("closed %v after the credential ended; last ack %d of %d bytes sent", took.Round(time.Millisecond), lastAck, s.sent.Load())
			// Detached right after the client was told.
			waitFor(t, 2*time.Second, func() bool { return s.srv.Live() == 0 })
			return lastAck
		}
		switch m := m.(type) {
		case proto.Ack:
			if gotErr != "" {
				t.Fatalf("ack %d after the error %q", m.Offset, gotErr)
			}
			if time.Since(ended) > 3*time.Second {
				t.Fatalf("ack %d came %v after the credential ended", m.Offset, time.Since(ended))
			}
			lastAck = m.Offset
		case proto.Error:
			gotErr = m.Code
		default:
			t.Fatalf("unexpected %#v", m)
		}
	}
}

// refusedBeforeUpgrade dials record id with h, which must be answered
// status without an upgrade.
func (e *env) refusedBeforeUpgrade(t *testing.T, id uint64, h http.Header, status int) {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(h), Timeout: 5 * time.Second}
	nc, _, _, err := d.Dial(t.Context(), e.wsURL(id))
	if nc != nil {
		nc.Close()
	}
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != status {
		t.Fatalf("dial answered %v, want HTTP %d before the upgrade", err, status)
	}
}

// resumeAndFinish resumes s's stream on c, which must start at or after
// the last ack, sends the rest of the PCM and stops: the record holds all
// of it, so nothing acknowledged was lost.
func (e *env) resumeAndFinish(t *testing.T, c *tclient, id uint64, s *credStream, lastAck int64) {
	t.Helper()
	c.send(`{"type":"resume","stream_id":"` + s.ready.StreamID + `"}`)
	r := expect[proto.Ready](c)
	if r.Offset < lastAck || r.Offset > s.sent.Load() {
		t.Fatalf("resumed at %d; acknowledged %d, sent %d", r.Offset, lastAck, s.sent.Load())
	}
	if err := c.sendPCM(s.pcm[r.Offset:], 640); err != nil {
		t.Fatal(err)
	}
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), s.pcm, 16000, 1)
}

// sessionHeader is what a browser sends with session secret: the cookie
// and its page's Origin.
func (e *env) sessionHeader(secret string) http.Header {
	return http.Header{"Cookie": {"tyst_session=" + secret}, "Origin": {e.URL}}
}

// TestStream_CredentialLogout: a browser's stream ends when its session is
// logged out; the reporter logs in again and resumes it from the durable
// offset, and the record holds every byte.
func TestStream_CredentialLogout(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "logout")
	secret, _, err := e.db.Login(t.Context(), "reporter", testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	s := e.liveStream(t, e.dialHeader(t, id, e.sessionHeader(secret)))

	req, _ := http.NewRequest("DELETE", e.URL+"/api/v1/session", nil)
	req.Header.Set("Cookie", "tyst_session="+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ended := time.Now()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		t.Fatalf("logout answered %d", resp.StatusCode)
	}
	lastAck := s.endsWithin(t, ended, string(store.CodeUnauthorized))
	if n := e.streams.Streams(); n != 1 {
		t.Fatalf("held %d streams; want the one, detached and resumable", n)
	}
	// The ended session cannot resume; a new login of the same account can.
	e.refusedBeforeUpgrade(t, id, e.sessionHeader(secret), http.StatusUnauthorized)
	secret2, _, err := e.db.Login(t.Context(), "reporter", testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	e.resumeAndFinish(t, e.dialHeader(t, id, e.sessionHeader(secret2)), id, s, lastAck)
}

// TestStream_CredentialTokenRevoked: a field box's stream ends when its
// token is revoked; the revoked token cannot resume, another token of the
// same account can, and the record holds every byte.
func TestStream_CredentialTokenRevoked(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "revoke")
	p, err := e.db.Authenticate(t.Context(), e.token)
	if err != nil {
		t.Fatal(err)
	}
	s := e.liveStream(t, e.dial(t, id))

	if err := e.db.RevokeToken(t.Context(), p.TokenID); err != nil {
		t.Fatal(err)
	}
	lastAck := s.endsWithin(t, time.Now(), string(store.CodeUnauthorized))
	e.refusedBeforeUpgrade(t, id, authHeader(e.token), http.StatusUnauthorized)
	tok2, _, err := e.db.CreateToken(t.Context(), "reporter", "", "")
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok2 // the env reads the record back with it
	e.resumeAndFinish(t, e.dialHeader(t, id, authHeader(tok2)), id, s, lastAck)
}

// TestStream_CredentialUserDisabled: a stream ends when an admin disables
// its account. No credential of the account can resume it; when the resume
// window ends the server stores what it holds, every acknowledged byte.
func TestStream_CredentialUserDisabled(t *testing.T) {
	clk := &fakeClock{}
	e := mustEnv(t, func(c *stream.Config) { c.Now = clk.now })
	id := e.mustRecord(t, "disable")
	s := e.liveStream(t, e.dial(t, id))

	disabled := true
	if _, err := e.db.UpdateUser(t.Context(), e.userID, store.UserUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	lastAck := s.endsWithin(t, time.Now(), string(store.CodeUnauthorized))
	e.refusedBeforeUpgrade(t, id, authHeader(e.token), http.StatusUnauthorized)
	if e.streams.Streams() != 1 {
		t.Fatalf("held %d streams, want the one resumable", e.streams.Streams())
	}

	clk.advance(stream.DefaultResumeWindow + time.Second)
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 0 })
	ar, err := e.db.OpenAudio(t.Context(), id) // as the system: the account is disabled
	if err != nil {
		t.Fatalf("open audio: %v", err)
	}
	defer ar.Close()
	got, err := io.ReadAll(ar)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(got)) - 44
	if n < lastAck || n > s.sent.Load() {
		t.Fatalf("stored %d PCM bytes; acknowledged %d, sent %d", n, lastAck, s.sent.Load())
	}
	if !bytes.Equal(got, wavOf(s.pcm[:n], 16000, 1)) {
		t.Fatalf("the stored WAV is not the first %d bytes of PCM sent", n)
	}
	t.Logf("stored %d PCM bytes after the window; %d were acknowledged", n, lastAck)
}

// TestStream_CredentialRoleLowered: an editor lowered to viewer may no
// longer stream: the stream ends with forbidden.
func TestStream_CredentialRoleLowered(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "demote")
	s := e.liveStream(t, e.dial(t, id))

	viewer := store.RoleViewer
	if _, err := e.db.UpdateUser(t.Context(), e.userID, store.UserUpdate{Role: &viewer}); err != nil {
		t.Fatal(err)
	}
	s.endsWithin(t, time.Now(), string(store.CodeForbidden))
	e.refusedBeforeUpgrade(t, id, authHeader(e.token), http.StatusForbidden)
}

// BenchmarkStream_CredentialCheck measures what a live stream's credential
// check costs each CredentialInterval: the store's Authenticate of a token
// or a session (what the API's check runs, plus a role comparison).
func BenchmarkStream_CredentialCheck(b *testing.B) {
	e := mustEnv(b)
	secret, _, err := e.db.Login(b.Context(), "reporter", testPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, secret string }{{"Token", e.token}, {"Session", secret}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.db.Authenticate(b.Context(), bc.secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
