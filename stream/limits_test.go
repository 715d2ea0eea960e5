package stream_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// rawFrame builds a client frame by hand: any header, masked or not, with
// the payload given (which may be shorter than declared).
func rawFrame(fin bool, rsv byte, op ws.OpCode, masked bool, declared int64, payload []byte) []byte {
	var b bytes.Buffer
	first := byte(op) | rsv<<4
	if fin {
		first |= 0x80
	}
	b.WriteByte(first)
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch {
	case declared < 126:
		b.WriteByte(maskBit | byte(declared))
	case declared <= 0xffff:
		b.WriteByte(maskBit | 126)
		binary.Write(&b, binary.BigEndian, uint16(declared))
	default:
		b.WriteByte(maskBit | 127)
		binary.Write(&b, binary.BigEndian, uint64(declared))
	}
	p := append([]byte(nil), payload...)
	if masked {
		mask := [4]byte{1, 2, 3, 4}
		b.Write(mask[:])
		ws.Cipher(p, mask, 0)
	}
	b.Write(p)
	return b.Bytes()
}

const start16k = `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1}`

// TestStream_Limits: each limit ends the connection with its error code and
// close code (DESIGN §8), and nothing that broke it reaches a record.
func TestStream_Limits(t *testing.T) {
	e := mustEnv(t)
	for _, tc := range []struct {
		name      string
		started   bool   // send start first
		send      []byte // raw bytes after that
		text      string // or a control message
		closeCode int
		errCode   string
	}{
		{"FrameOver64KiB", true, rawFrame(true, 0, ws.OpBinary, true, proto.MaxFrameBytes+2, nil), "", proto.CloseTooBig, "payload_too_large"},
		{"HugeDeclaredLength", true, rawFrame(true, 0, ws.OpBinary, true, 1<<62, make([]byte, 10)), "", proto.CloseTooBig, "payload_too_large"},
		{"LengthMSBSet", true, []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, "", proto.CloseProtocol, proto.CodeProtocol},
		{"PartialSample", true, rawFrame(true, 0, ws.OpBinary, true, 641, make([]byte, 641)), "", proto.ClosePolicy, "validation_error"},
		{"AudioBeforeStart", false, rawFrame(true, 0, ws.OpBinary, true, 640, make([]byte, 640)), "", proto.ClosePolicy, "validation_error"},
		{"StopBeforeStart", false, nil, `{"type":"stop"}`, proto.ClosePolicy, "validation_error"},
		{"StartTwice", true, nil, start16k, proto.ClosePolicy, "validation_error"},
		{"ResumeAfterStart", true, nil, `{"type":"resume","stream_id":"0123456789abcdef0123456789abcdef"}`, proto.ClosePolicy, "validation_error"},
		{"WrongFormat", false, nil, `{"type":"start","format":"pcm_f32le","sample_rate":16000,"channels":1}`, proto.ClosePolicy, "validation_error"},
		{"RateTooHigh", false, nil, `{"type":"start","format":"pcm_s16le","sample_rate":96000,"channels":1}`, proto.ClosePolicy, "validation_error"},
		{"RateTooLow", false, nil, `{"type":"start","format":"pcm_s16le","sample_rate":4000,"channels":1}`, proto.ClosePolicy, "validation_error"},
		{"ThreeChannels", false, nil, `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":3}`, proto.ClosePolicy, "validation_error"},
		{"BadSource", false, nil, `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"Mic 1"}`, proto.ClosePolicy, "validation_error"},
		{"UnknownField", false, nil, `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"title":"x"}`, proto.ClosePolicy, "validation_error"},
		{"NotJSON", false, nil, `start please`, proto.ClosePolicy, "validation_error"},
		{"Unmasked", true, rawFrame(true, 0, ws.OpBinary, false, 640, make([]byte, 640)), "", proto.CloseProtocol, proto.CodeProtocol},
		{"FragmentedPing", true, rawFrame(false, 0, ws.OpPing, true, 4, []byte("ping")), "", proto.CloseProtocol, proto.CodeProtocol},
		{"LongPing", true, rawFrame(true, 0, ws.OpPing, true, 126, make([]byte, 126)), "", proto.CloseProtocol, proto.CodeProtocol},
		{"ReservedBits", true, rawFrame(true, 4, ws.OpBinary, true, 640, make([]byte, 640)), "", proto.CloseProtocol, proto.CodeProtocol},
		{"ReservedOpcode", true, rawFrame(true, 0, ws.OpCode(3), true, 0, nil), "", proto.CloseProtocol, proto.CodeProtocol},
		{"StrayContinuation", true, rawFrame(true, 0, ws.OpContinuation, true, 2, []byte{0, 0}), "", proto.CloseProtocol, proto.CodeProtocol},
		{"TextOver1KiB", false, rawFrame(true, 0, ws.OpText, true, 2000, bytes.Repeat([]byte(" "), 2000)), "", proto.CloseTooBig, "payload_too_large"},
		{"FragmentedTextOver1KiB", false, append(rawFrame(false, 0, ws.OpText, true, 800, bytes.Repeat([]byte(" "), 800)),
			rawFrame(true, 0, ws.OpContinuation, true, 800, bytes.Repeat([]byte(" "), 800))...), "", proto.CloseTooBig, "payload_too_large"},
		{"NewMessageInsideFragmented", true, append(rawFrame(false, 0, ws.OpBinary, true, 640, make([]byte, 640)),
			rawFrame(true, 0, ws.OpBinary, true, 640, make([]byte, 640))...), "", proto.CloseProtocol, proto.CodeProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.mustRecord(t, "limits")
			c := e.dial(t, id)
			if tc.started {
				c.start(16000, 1)
			}
			if tc.text != "" {
				c.send(tc.text)
			} else {
				c.nc.Write(tc.send)
			}
			c.expectClose(tc.closeCode, tc.errCode)
		})
	}
	// A stream that hit a limit is still resumable: nothing was lost.
	if n := e.streams.Live(); n != 0 {
		t.Fatalf("%d streams still live", n)
	}
}

// TestStream_FragmentedMessages: fragmented text and binary messages (and
// a ping between fragments) are whole messages.
func TestStream_FragmentedMessages(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "fragments")
	pcm := soxPCM(t, 16000, 1, 1)
	c := e.dial(t, id)
	c.nc.Write(rawFrame(false, 0, ws.OpText, true, 10, []byte(start16k[:10])))
	c.nc.Write(rawFrame(true, 0, ws.OpPing, true, 2, []byte("hi")))
	c.nc.Write(rawFrame(true, 0, ws.OpContinuation, true, int64(len(start16k)-10), []byte(start16k[10:])))
	// The pong comes first, then ready.
	expect[proto.Ready](c)
	c.nc.Write(rawFrame(false, 0, ws.OpBinary, true, 10000, pcm[:10000]))
	c.nc.Write(rawFrame(true, 0, ws.OpContinuation, true, int64(len(pcm)-10000), pcm[10000:]))
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
}

// TestStream_Idle: a client that sends nothing (not even a pong) is closed
// after the idle timeout.
func TestStream_Idle(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.PingInterval = 100 * time.Millisecond
	})
	id := e.mustRecord(t, "idle")
	c := e.dial(t, id)
	c.start(16000, 1)
	time.Sleep(time.Second) // read nothing, answer no ping
	var pings int
	for {
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			t.Fatalf("no close after idling: %v", err)
		}
		p := make([]byte, h.Length)
		io.ReadFull(c.r, p)
		if h.OpCode == ws.OpPing {
			pings++
		}
		if h.OpCode == ws.OpClose {
			if code := binary.BigEndian.Uint16(p); code != proto.ClosePolicy {
				t.Fatalf("close code %d, want %d", code, proto.ClosePolicy)
			}
			break
		}
	}
	if pings == 0 {
		t.Fatal("the server sent no ping while the client idled")
	}
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })
}

// TestStream_ClientNeverReads: a client that floods pings and never reads
// the pongs is closed once a write times out; the server queues nothing
// for it.
func TestStream_ClientNeverReads(t *testing.T) {
	e := mustEnv(t, func(c *stream.Config) { c.WriteTimeout = 200 * time.Millisecond })
	id := e.mustRecord(t, "never reads")
	c := e.dial(t, id)
	c.start(16000, 1)
	ping := rawFrame(true, 0, ws.OpPing, true, 125, make([]byte, 125))
	flood := bytes.Repeat(ping, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ { // up to 130 MB of pings, pongs unread
			c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.nc.Write(flood); err != nil {
				return
			}
		}
	}()
	waitFor(t, 20*time.Second, func() bool { return e.streams.Live() == 0 })
	c.nc.Close()
	<-done
}

// TestStream_AuthBeforeUpgrade: credentials and, for cookies, the Origin
// are checked before the upgrade, with plain HTTP errors.
func TestStream_AuthBeforeUpgrade(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "auth")
	secret, _, err := e.db.Login(t.Context(), "reporter", testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateUser(t.Context(), store.NewUser{Username: "viewer", Password: testPassword, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	viewerTok, _, err := e.db.CreateToken(t.Context(), "viewer", "", "")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(e.URL, "http://")
	cookie := "tyst_session=" + secret
	upgrade := func(h http.Header) int {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/record/"+itoa(id)+"/stream", nil)
		req.Header = h
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		want int
	}{
		{"NoCredentials", http.Header{}, 401},
		{"BadToken", http.Header{"Authorization": {"Bearer tyst_t_nope"}}, 401},
		{"Viewer", http.Header{"Authorization": {"Bearer " + viewerTok}}, 403},
		{"CookieWithoutOrigin", http.Header{"Cookie": {cookie}}, 403},
		{"CookieForeignOrigin", http.Header{"Cookie": {cookie}, "Origin": {"http://evil.example"}}, 403},
		{"CookieLookalikeOrigin", http.Header{"Cookie": {cookie}, "Origin": {"http://" + host + ".evil.example"}}, 403},
		{"CookieSameOrigin", http.Header{"Cookie": {cookie}, "Origin": {"http://" + host}}, 101},
		{"TokenWithoutOrigin", http.Header{"Authorization": {"Bearer " + e.token}}, 101},
		{"UnknownRecordUpgrades", http.Header{"Authorization": {"Bearer " + e.token}}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := upgrade(tc.h); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	// A record that does not exist is refused on start, as not_found.
	c := e.dial(t, 999)
	c.send(start16k)
	c.expectClose(proto.ClosePolicy, string(store.CodeNotFound))
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
