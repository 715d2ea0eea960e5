package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tyst/stream/proto"
)

// TestInterop_CoderWebsocket drives the endpoint with an independent Go
// WebSocket implementation: a resume after a drop included.
func TestInterop_CoderWebsocket(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "interop")
	pcm := soxPCM(t, 44100, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, e.wsURL(id), &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + e.token}},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 10)
		return c
	}
	read := func(c *websocket.Conn) proto.ServerMessage {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if typ != websocket.MessageText {
				t.Fatalf("server sent a %v message", typ)
			}
			m, err := proto.ParseServer(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(proto.Ack); !ok {
				return m
			}
		}
	}
	c := dial()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"start","format":"pcm_s16le","sample_rate":44100,"channels":2}`))
	ready, ok := read(c).(proto.Ready)
	if !ok {
		t.Fatal("no ready")
	}
	half := len(pcm) / 2 / 4 * 4
	for p := pcm[:half]; len(p) > 0; p = p[min(len(p), 7056):] {
		if err := c.Write(ctx, websocket.MessageBinary, p[:min(len(p), 7056)]); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseNow() // a drop

	c = dial()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"resume","stream_id":"`+ready.StreamID+`"}`))
	r, ok := read(c).(proto.Ready)
	if !ok || r.Offset > int64(half) {
		t.Fatalf("resume: %+v", r)
	}
	for p := pcm[r.Offset:]; len(p) > 0; p = p[min(len(p), 7056):] {
		if err := c.Write(ctx, websocket.MessageBinary, p[:min(len(p), 7056)]); err != nil {
			t.Fatal(err)
		}
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"stop"}`))
	st, ok := read(c).(proto.Stored)
	if !ok {
		t.Fatal("no stored")
	}
	e.mustStored(t, id, st, pcm, 44100, 2)
	_, _, err := c.Read(ctx)
	if status := websocket.CloseStatus(err); status != websocket.StatusNormalClosure {
		t.Fatalf("close status %v (%v), want 1000", status, err)
	}
}

// TestInterop_PythonWebsockets streams with python3's websockets library
// (Debian python3-websockets).
func TestInterop_PythonWebsockets(t *testing.T) {
	python := "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Fatalf("python3 websockets is missing (apt-get install python3-websockets): %v %s", err, out)
	}
	e := mustEnv(t)
	id := e.mustRecord(t, "python")
	pcm := soxPCM(t, 48000, 1, 2)
	path := filepath.Join(t.TempDir(), "in.pcm")
	os.WriteFile(path, pcm, 0o600)
	cmd := exec.Command(python, "testdata/stream_client.py", e.wsURL(id), e.token, path, "48000", "1")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("python client: %v\n%s\n%s", err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var st struct {
		Type       string `json:"type"`
		FileID     uint64 `json:"file_id"`
		SHA256     string `json:"sha256"`
		SizeBytes  int64  `json:"size_bytes"`
		MIMEType   string `json:"mime_type"`
		DurationMS int64  `json:"duration_ms"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Type != "stored" {
		t.Fatalf("python client printed %s", out)
	}
	e.mustStored(t, id, proto.Stored{FileID: st.FileID, SHA256: st.SHA256, SizeBytes: st.SizeBytes, MIMEType: st.MIMEType, DurationMS: st.DurationMS}, pcm, 48000, 1)
}
