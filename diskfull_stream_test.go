package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"tyst/stream/proto"
)

// wsClient is a small WebSocket client of the stream endpoint.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	rw   io.ReadWriter
	w    *lockedWriter
}

func dialStream(t *testing.T, base, token string, id uint64) *wsClient {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + token}}), Timeout: 5 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), fmt.Sprintf("ws%s/api/v1/record/%d/stream", strings.TrimPrefix(base, "http"), id))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	w := &lockedWriter{w: conn}
	return &wsClient{t: t, conn: conn, w: w, rw: struct {
		io.Reader
		io.Writer
	}{r, w}}
}

func (c *wsClient) text(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.w, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message but acks, or the close code. It answers
// no control frame (a ping is not expected within a step).
func (c *wsClient) next() (proto.ServerMessage, int) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		msgs, err := wsutil.ReadServerMessage(c.rw, nil)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		for _, msg := range msgs {
			switch msg.OpCode {
			case ws.OpClose:
				code, _ := ws.ParseCloseFrameData(msg.Payload)
				return nil, int(code)
			case ws.OpText:
				m, err := proto.ParseServer(msg.Payload)
				if err != nil {
					c.t.Fatal(err)
				}
				if _, ack := m.(proto.Ack); !ack {
					return m, 0
				}
			}
		}
	}
}

// streamOnFullDisk is TestDiskFull's stream step: a live stream that
// meets the full disk while it spools, and a stop that meets it while it
// stores, each answer an error frame insufficient_storage (close 1011) and
// keep the stream resumable; once space is freed the stream resumes from
// the durable offset and a stop stores exactly the PCM sent.
func streamOnFullDisk(t *testing.T, base, token string, id uint64, disk diskFiller, noLeftovers func(string)) {
	pcm := make([]byte, 4<<20)
	for i := range pcm {
		pcm[i] = byte(i*7 + i>>9)
	}
	// 1. Spooling into a full disk.
	c := dialStream(t, base, token, id)
	c.text(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`)
	m, _ := c.next()
	ready, ok := m.(proto.Ready)
	if !ok {
		t.Fatalf("start: %#v", m)
	}
	// Some audio first, so that the spool holds durable bytes (and has
	// taken its first 1 MiB step) when the disk fills.
	sent := 64000
	if err := wsutil.WriteClientBinary(c.w, pcm[:sent]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // an ack interval: synced
	disk.leave(256 << 10)
	var failed *proto.Error
	for sent < len(pcm) && failed == nil {
		if err := wsutil.WriteClientBinary(c.w, pcm[sent:min(sent+32000, len(pcm))]); err != nil {
			break // the server closed after its error frame
		}
		sent = min(sent+32000, len(pcm))
	}
	for failed == nil {
		m, code := c.next()
		if code != 0 {
			t.Fatalf("closed %d without an error frame", code)
		}
		if e, ok := m.(proto.Error); ok {
			failed = &e
		}
	}
	if failed.Code != "insufficient_storage" {
		t.Fatalf("spooling on a full disk: error %+v", failed)
	}
	if _, code := c.next(); code != proto.CloseInternal {
		t.Fatalf("close %d after insufficient_storage, want %d", code, proto.CloseInternal)
	}
	noLeftovers("a stream on a full disk")

	// 2. Resumed with space: the rest, then a stop that meets the full disk
	// while it writes the blob.
	disk.free()
	c = dialStream(t, base, token, id)
	c.text(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
	m, _ = c.next()
	resumed, ok := m.(proto.Ready)
	if !ok || resumed.Offset <= 0 || resumed.Offset > int64(sent) {
		t.Fatalf("resume after the full disk: %#v (sent %d)", m, sent)
	}
	for off := int(resumed.Offset); off < len(pcm); off += 32000 {
		if err := wsutil.WriteClientBinary(c.w, pcm[off:min(off+32000, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // an ack interval: everything spooled
	disk.leave(1 << 20)                 // less than the WAV's blob
	c.text(`{"type":"stop"}`)
	m, _ = c.next()
	if e, ok := m.(proto.Error); !ok || e.Code != "insufficient_storage" {
		t.Fatalf("stop on a full disk: %#v", m)
	}
	noLeftovers("a stop on a full disk")

	// 3. Space again: resume at the end, stop, stored exactly.
	disk.free()
	var stored proto.Stored
	for deadline := time.Now().Add(3 * time.Minute); ; {
		c = dialStream(t, base, token, id)
		c.text(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
		m, _ = c.next()
		r, ok := m.(proto.Ready)
		if !ok {
			t.Fatalf("resume after the failed stop: %#v", m)
		}
		if r.Offset != int64(len(pcm)) {
			t.Fatalf("resumed at %d after the failed stop, want %d", r.Offset, len(pcm))
		}
		c.text(`{"type":"stop"}`)
		m, _ = c.next()
		if s, ok := m.(proto.Stored); ok {
			stored = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stop with space again: %#v", m)
		}
		time.Sleep(time.Second)
	}
	if stored.SizeBytes != int64(44+len(pcm)) {
		t.Fatalf("stored %d bytes, want %d", stored.SizeBytes, 44+len(pcm))
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/record/%d/audio", base, id), nil)
	resp, body := doRead(t, authClient(token), req)
	if resp.StatusCode != 200 || !bytes.Equal(body, wavBytes(pcm)) {
		t.Fatalf("stored audio: %d, %d bytes, not the PCM sent", resp.StatusCode, len(body))
	}
}
