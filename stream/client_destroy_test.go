package stream_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tyst/internal/testproxy"
	"tyst/store"
	"tyst/stream/client"
)

// TestClient_RecordDestroyed: `tyst stream`'s client stops when its
// record is destroyed, live or while its connection is down: Run fails
// with ErrRecordDestroyed (no stored audio, nothing claimed stored) and
// the rest of the audio goes nowhere, not into a continuation record.
func TestClient_RecordDestroyed(t *testing.T) {
	for _, down := range []bool{false, true} {
		name := map[bool]string{false: "Live", true: "WhileDisconnected"}[down]
		t.Run(name, func(t *testing.T) {
			e := mustEnv(t)
			proxy, err := testproxy.Start(strings.TrimPrefix(e.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			pcm := canaryPCM(16000 * 2 * 4)
			pr, pw := io.Pipe()
			defer pw.Close()
			var w warnings
			cfg := clientConfig(t, e, "http://"+proxy.Addr(), pr, &w)
			done := runClient(t, cfg)
			pw.Write(pcm[:64000])
			waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 1 })
			recs, _, err := e.db.Records(e.principal(t), store.RecordFilter{Limit: 10})
			if err != nil || len(recs) != 1 {
				t.Fatalf("records %v %v", recs, err)
			}
			id := recs[0].ID
			if down {
				proxy.SetDown(true)
				proxy.Cut()
				waitFor(t, 10*time.Second, func() bool { return e.streams.Live() == 0 })
			}
			e.destroyHTTP(t, id)
			go func() {
				pw.Write(pcm[64000:])
				if down {
					proxy.SetDown(false)
				}
			}()
			r := waitRun(t, done)
			if !errors.Is(r.err, client.ErrRecordDestroyed) {
				t.Fatalf("Run: %v, want ErrRecordDestroyed\n%s", r.err, &w)
			}
			if !strings.Contains(r.err.Error(), "none of its audio is stored") || r.res.Stored.SizeBytes != 0 {
				t.Fatalf("claims stored audio: %v %+v", r.err, r.res.Stored)
			}
			if len(r.res.Records) != 1 {
				t.Fatalf("records %v: the audio went on into another record", r.res.Records)
			}
			if recs, _, _ := e.db.Records(e.principal(t), store.RecordFilter{Limit: 10}); len(recs) != 0 {
				t.Fatalf("%d records on the server after the destroy", len(recs))
			}
		})
	}
}

// swallowProxy forwards connections to target, but on the first
// WebSocket upgrade it passes the server's answer only up to the end of
// the upgrade's headers: the stream's ready never reaches the client.
// first gets that connection, to cut it.
type swallowProxy struct {
	ln    net.Listener
	first chan net.Conn
}

// readHead reads from r up to the end of an HTTP head, a byte at a time.
func readHead(r io.Reader) ([]byte, error) {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := r.Read(b); err != nil {
			return head, err
		}
		head = append(head, b[0])
	}
	return head, nil
}

func startSwallowProxy(t *testing.T, target string) *swallowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &swallowProxy{ln: ln, first: make(chan net.Conn, 1)}
	t.Cleanup(func() { ln.Close() })
	var upgrades atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				req, err := readHead(c)
				s.Write(req)
				if err != nil {
					c.Close()
					s.Close()
					return
				}
				go func() { io.Copy(s, c); s.Close() }()
				if !bytes.Contains(bytes.ToLower(req), []byte("upgrade: websocket")) || upgrades.Add(1) > 1 {
					io.Copy(c, s)
					c.Close()
					return
				}
				p.first <- c
				head, _ := readHead(s) // the upgrade's answer only
				c.Write(head)
				io.Copy(io.Discard, s)
			}()
		}
	}()
	return p
}

// TestClient_RecordDestroyedBeforeReady: the connection drops after the
// server made the stream but before its ready reached the client, and the
// record is destroyed meanwhile. The client's next start finds the record
// gone: that is the destroy (ErrRecordDestroyed), not a refusal.
func TestClient_RecordDestroyedBeforeReady(t *testing.T) {
	e := mustEnv(t)
	proxy := startSwallowProxy(t, strings.TrimPrefix(e.URL, "http://"))
	pr, pw := io.Pipe()
	defer pw.Close()
	var w warnings
	cfg := clientConfig(t, e, "http://"+proxy.ln.Addr().String(), pr, &w)
	done := runClient(t, cfg)
	first := <-proxy.first
	waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 1 })
	recs, _, err := e.db.Records(e.principal(t), store.RecordFilter{Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %v %v", recs, err)
	}
	e.destroyHTTP(t, recs[0].ID)
	first.Close()
	go pw.Write(canaryPCM(64000))
	if r := waitRun(t, done); !errors.Is(r.err, client.ErrRecordDestroyed) {
		t.Fatalf("Run: %v, want ErrRecordDestroyed\n%s", r.err, &w)
	}
}
