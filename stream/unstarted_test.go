package stream_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// Upgraded sockets that never send start are bounded: each must start or
// resume within StartTimeout (pings do not extend it), and those of one
// token, one account and the server are capped before the upgrade.

// upgradeStatus sends a WebSocket upgrade request for record id with h and
// returns the status and, for a refusal, the JSON error's code. An upgraded
// connection is kept open until the test ends.
func (e *env) upgradeStatus(t *testing.T, id uint64, h http.Header) (int, string) {
	t.Helper()
	nc, err := net.Dial("tcp", e.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/record/"+itoa(id)+"/stream", nil)
	req.Header = h.Clone()
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("status %d with a body that is not the JSON error: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, body.Error.Code
}

// TestStream_StartDeadline: a socket that sends only pings is closed with
// timeout (1008) once StartTimeout has passed since the upgrade; one that
// starts in time streams on past it.
func TestStream_StartDeadline(t *testing.T) {
	const deadline = 400 * time.Millisecond
	e := mustEnv(t, func(c *stream.Config) { c.StartTimeout = deadline })
	id := e.mustRecord(t, "silent")

	c := e.dial(t, id)
	t0 := time.Now()
	var wmu sync.Mutex
	done := make(chan struct{})
	go func() { // pings every 50 ms: they must not keep the socket
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			wmu.Lock()
			err := c.fw.WriteFrame(ws.OpPing, nil)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	c.expectClose(proto.ClosePolicy, proto.CodeTimeout)
	close(done)
	// t0 is taken once the client has the upgrade, which the server may
	// have sent a little before it set the deadline: a small margin below.
	if d := time.Since(t0); d < deadline-100*time.Millisecond || d > deadline+3*time.Second {
		t.Fatalf("closed %v after the upgrade, want about %v", d, deadline)
	}
	waitFor(t, 5*time.Second, func() bool { return e.streams.Conns() == 0 && e.streams.Unstarted() == 0 })

	// Started in time, a stream outlives the start deadline.
	id2 := e.mustRecord(t, "prompt")
	c = e.dial(t, id2)
	c.start(16000, 1)
	time.Sleep(2 * deadline)
	pcm := soxPCM(t, 16000, 1, 1)
	if err := c.sendPCM(pcm, 640); err != nil {
		t.Fatal(err)
	}
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id2, expect[proto.Stored](c), pcm, 16000, 1)
}

// TestStream_UnstartedCaps: the sockets a token, an account and the server
// hold before a start are capped before the upgrade (429 rate_limited for
// the token and the account, 503 unavailable for the server); a start
// frees its socket's place; another account streams meanwhile.
func TestStream_UnstartedCaps(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) {
		c.MaxUnstartedPerToken, c.MaxUnstartedPerUser, c.MaxUnstarted = 3, 5, 8
	})
	id := e.mustRecord(t, "caps")
	tokB, _, err := e.db.CreateToken(t.Context(), "reporter", "", "")
	if err != nil {
		t.Fatal(err)
	}
	silentA := make([]*tclient, 3)
	for i := range silentA {
		silentA[i] = e.dial(t, id) // upgraded, or the test fails
	}
	if st, code := e.upgradeStatus(t, id, authHeader(e.token)); st != http.StatusTooManyRequests || code != string(store.CodeRateLimited) {
		t.Fatalf("token A's 4th silent socket: %d %q, want 429 rate_limited", st, code)
	}
	for i := range 2 {
		if st, code := e.upgradeStatus(t, id, authHeader(tokB)); st != http.StatusSwitchingProtocols {
			t.Fatalf("silent socket %d of token B: %d %s", i, st, code)
		}
	}
	if st, code := e.upgradeStatus(t, id, authHeader(tokB)); st != http.StatusTooManyRequests || code != string(store.CodeRateLimited) {
		t.Fatalf("the account's 6th silent socket: %d %q, want 429 rate_limited", st, code)
	}
	if n := e.streams.Unstarted(); n != 5 {
		t.Fatalf("the server counts %d sockets waiting for a start, want 5", n)
	}

	// A start moves its socket from these counts to the streams held: token
	// A may open another.
	silentA[0].start(16000, 1)
	if n := e.streams.Unstarted(); n != 4 {
		t.Fatalf("after a start the server counts %d sockets waiting, want 4", n)
	}
	if st, code := e.upgradeStatus(t, id, authHeader(e.token)); st != http.StatusSwitchingProtocols {
		t.Fatalf("token A after a start: %d %q, want an upgrade", st, code)
	}

	// Another reporter streams meanwhile.
	if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "other", Password: testPassword, Role: store.RoleEditor}); err != nil {
		t.Fatal(err)
	}
	other, _, err := e.db.CreateToken(t.Context(), "other", "", "")
	if err != nil {
		t.Fatal(err)
	}
	rec := e.recordAs(t, other)
	c := e.dialHeader(t, rec, authHeader(other))
	c.start(16000, 1)
	pcm := soxPCM(t, 16000, 1, 1)
	if err := c.sendPCM(pcm, 640); err != nil {
		t.Fatal(err)
	}
	c.send(`{"type":"stop"}`)
	if st := expect[proto.Stored](c); st.SizeBytes != int64(len(pcm))+44 {
		t.Fatalf("the other reporter's stream stored %d bytes", st.SizeBytes)
	}

	// The server's bound: 5 waiting, 3 more of another account, then 503.
	for i := range 3 {
		if st, code := e.upgradeStatus(t, rec, authHeader(other)); st != http.StatusSwitchingProtocols {
			t.Fatalf("silent socket %d of the other account: %d %s", i, st, code)
		}
	}
	other2, _, err := e.db.CreateToken(t.Context(), "other", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if st, code := e.upgradeStatus(t, rec, authHeader(other2)); st != http.StatusServiceUnavailable || code != string(store.CodeUnavailable) {
		t.Fatalf("the server's 9th silent socket: %d %q, want 503 unavailable", st, code)
	}
}

// TestStream_UnstartedFlood is the review's idle-socket flood at test
// scale: one token opens 200 sockets at once and never sends start. The
// server upgrades at most its cap (twice the per-token stream cap), holds
// no more descriptors than that, refuses the rest with 429 before the
// upgrade, and closes the upgraded ones at the start deadline; another
// reporter starts a stream meanwhile.
func TestStream_UnstartedFlood(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) {
		c.MaxStreamsPerUser, c.MaxStreamsPerToken = 0, 0 // the defaults
		c.StartTimeout = 4 * time.Second
	})
	capTok := 2 * stream.DefaultMaxStreamsPerToken
	id := e.mustRecord(t, "flood")
	fds0 := openFDs(t)

	const n = 200
	var mu sync.Mutex
	var upgraded []net.Conn
	refused := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(authHeader(e.token)), Timeout: 10 * time.Second}
			nc, _, _, err := d.Dial(t.Context(), e.wsURL(id))
			mu.Lock()
			defer mu.Unlock()
			if se, ok := err.(ws.StatusError); ok && int(se) == http.StatusTooManyRequests {
				refused++
				return
			}
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			upgraded = append(upgraded, nc)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, nc := range upgraded {
			nc.Close()
		}
	})
	if len(upgraded) > capTok || len(upgraded)+refused != n {
		t.Fatalf("%d of %d sockets upgraded, %d refused; want at most %d upgraded, the rest refused", len(upgraded), n, refused, capTok)
	}
	if c := e.streams.Conns(); c > capTok {
		t.Fatalf("the server holds %d connections, over the cap of %d", c, capTok)
	}
	// Each upgraded socket is two descriptors in this process (client and
	// server end); refused ones leave none once their close is seen.
	for deadline := time.Now().Add(5 * time.Second); openFDs(t)-fds0 > 2*capTok+4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("descriptors grew by %d for %d upgraded sockets", openFDs(t)-fds0, len(upgraded))
		}
	}
	t.Logf("%d sockets: %d upgraded, %d refused before the upgrade; %d descriptors more", n, len(upgraded), refused, openFDs(t)-fds0)

	// Another reporter starts at once.
	if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "other", Password: testPassword, Role: store.RoleEditor}); err != nil {
		t.Fatal(err)
	}
	other, _, err := e.db.CreateToken(t.Context(), "other", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := e.dialHeader(t, e.recordAs(t, other), authHeader(other))
	c.start(16000, 1)

	// The start deadline closes the silent ones.
	waitFor(t, 8*time.Second, func() bool { return e.streams.Conns() == 1 && e.streams.Unstarted() == 0 })
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestStream_NotAnUpgrade: a plain GET of the stream route is answered by
// the API as JSON with its security headers, not by the upgrader's
// plain-text 400, and holds no socket.
func TestStream_NotAnUpgrade(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "plain get")
	for _, hdr := range [][2]string{{}, {"Upgrade", "websocket"}, {"Connection", "upgrade"}} {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/record/%d/stream", e.URL, id), nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		if hdr[0] != "" {
			req.Header.Set(hdr[0], hdr[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			!strings.Contains(string(body), `"validation_error"`) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("%v: %d %s %q, want a JSON validation_error with the security headers", hdr, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if n := e.streams.Unstarted(); n != 0 {
		t.Fatalf("%d sockets held after plain GETs", n)
	}
}
