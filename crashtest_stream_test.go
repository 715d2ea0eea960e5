package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"tyst/stream/proto"
)

// The live streams of the crash harness. One streamer per cycle keeps a
// stream going across kills: it starts one into a record of its own,
// sends PCM, and after a kill resumes it in the next cycle. It checks the
// promise of DESIGN §8: every byte the server acknowledged is still held
// after the restart (the ready offset of a resume is at least the last
// ack), and what a stop stores is exactly the PCM sent, as a WAV.

const (
	crashStreamFrame = 3200                 // 100 ms of 16 kHz mono PCM
	crashStreamMax   = 2 << 20              // PCM bytes of one stream, at most
	crashStreamEvery = 5 * time.Millisecond // between frames: 20× real time
)

// crashStream is one live stream as the client knows it.
type crashStream struct {
	record   uint64
	id       string
	pcm      []byte
	sent     int64 // bytes written to the connection, in order
	acked    int64 // the highest offset the server acknowledged
	stopping bool  // a stop was sent and not answered
	starting bool  // a start was sent and not answered
}

// streamer drives h.stream (creating one when there is none) until ctx
// ends or the server dies.
func (h *crashHarness) streamer(ctx context.Context, srv *procServer, rng *rand.Rand, killed *atomic.Bool) {
	fail := func(format string, args ...any) {
		if !killed.Load() {
			h.t.Errorf("stream: "+format, args...)
		}
	}
	for ctx.Err() == nil && !killed.Load() {
		st := h.stream
		if st == nil {
			id := h.createStreamRecord(ctx, srv, killed)
			if id == 0 {
				return
			}
			n := crashStreamFrame * (10 + rng.IntN(crashStreamMax/crashStreamFrame-10))
			pcm := make([]byte, n)
			rand.NewChaCha8([32]byte{byte(id), byte(id >> 8), 's'}).Read(pcm)
			st = &crashStream{record: id, pcm: pcm}
			h.stream = st
		}
		if !h.runStream(ctx, srv, st, rng, killed, fail) {
			return
		}
	}
}

// createStreamRecord makes the record a stream goes into.
func (h *crashHarness) createStreamRecord(ctx context.Context, srv *procServer, killed *atomic.Bool) uint64 {
	m := &h.model
	m.mu.Lock()
	m.creating++
	m.mu.Unlock()
	status, body := h.send(ctx, srv, killed, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"stream"}`))
	var out struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	if status != 201 || json.Unmarshal(body, &out) != nil {
		if status != 0 && !killed.Load() {
			h.t.Errorf("stream record: %d %s", status, body)
		}
		return 0
	}
	m.mu.Lock()
	m.creating--
	m.records[out.TranscriptID] = &crashRecord{id: out.TranscriptID, streaming: true}
	m.mu.Unlock()
	h.count(h.fig.Acked, "create")
	return out.TranscriptID
}

// runStream connects, starts or resumes st, and sends until it stops it
// (true: the stream is stored and the streamer may start another) or the
// connection dies (false).
func (h *crashHarness) runStream(ctx context.Context, srv *procServer, st *crashStream, rng *rand.Rand, killed *atomic.Bool, fail func(string, ...any)) bool {
	if st.starting {
		// The kill cut a start: the server may hold a stream the client
		// never heard of, which keeps the record until its resume window
		// ends. Leave the record to it and start in a new one.
		h.orphanStreams++
		h.count(h.fig.InFlight, "stream_start")
		h.stream = nil
		return true
	}
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + h.token}}), Timeout: 5 * time.Second}
	url := fmt.Sprintf("ws%s/api/v1/record/%d/stream", strings.TrimPrefix(srv.base, "http"), st.record)
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		fail("dial: %v", err)
		return false
	}
	defer conn.Close()
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	w := &lockedWriter{w: conn} // the reader answers pings on it too
	rw := struct {
		io.Reader
		io.Writer
	}{r, w}
	msgs := make(chan proto.ServerMessage, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for {
			b, op, err := wsutil.ReadServerData(rw)
			if err != nil {
				return
			}
			if op != ws.OpText {
				continue
			}
			m, err := proto.ParseServer(b)
			if err != nil {
				h.t.Errorf("stream: unparsable server message %q: %v", b, err)
				return
			}
			msgs <- m
		}
	})
	defer wg.Wait()
	defer conn.Close()
	next := func() (proto.ServerMessage, bool) {
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return nil, false
				}
				if a, isAck := m.(proto.Ack); isAck {
					h.ackStream(st, a.Offset, fail)
					continue
				}
				return m, true
			case <-time.After(20 * time.Second):
				fail("no answer for 20 s")
				return nil, false
			}
		}
	}

	// Start or resume.
	if st.id == "" {
		st.starting = true
		wsutil.WriteClientText(w, []byte(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`))
	} else {
		wsutil.WriteClientText(w, []byte(`{"type":"resume","stream_id":"`+st.id+`"}`))
	}
	m, ok := next()
	if !ok {
		return false
	}
	switch m := m.(type) {
	case proto.Ready:
		st.starting = false
		if st.id == "" {
			st.id = m.StreamID
			h.count(h.fig.Acked, "stream_start")
		} else {
			h.count(h.fig.Acked, "stream_resume")
			h.count(h.fig.Checked, "stream_resumes_at_or_past_ack")
		}
		if m.Offset < st.acked || m.Offset > st.sent {
			fail("record %d: ready at %d, but %d bytes were acknowledged and %d sent", st.record, m.Offset, st.acked, st.sent)
			return false
		}
		st.sent = m.Offset
	case proto.Error:
		if st.id == "" || m.Code != "unknown_stream" {
			fail("record %d: %s %s", st.record, m.Code, m.Message)
			return false
		}
		// Stored meanwhile: only a stop in flight at the kill does that
		// (the resume window is longer than the whole run). A stream
		// that had nothing acknowledged may be forgotten: start anew.
		if !st.stopping {
			if st.acked == 0 && m.Offset == nil {
				st.id, st.sent = "", 0
				h.count(h.fig.Checked, "unacknowledged_streams_restarted")
				return true
			}
			fail("record %d: unknown_stream with %d bytes acknowledged and no stop sent", st.record, st.acked)
			return false
		}
		return h.streamStored(ctx, srv, st, "", fail)
	default:
		fail("record %d: %T before ready", st.record, m)
		return false
	}

	// Send, then stop.
	stopAt := int64(len(st.pcm))
	if rng.IntN(3) == 0 { // sometimes stop early
		stopAt = min(stopAt, st.sent+int64(crashStreamFrame*(1+rng.IntN(50))))
	}
	for st.sent < stopAt {
		if ctx.Err() != nil || killed.Load() {
			return false
		}
		frame := st.pcm[st.sent:min(st.sent+crashStreamFrame, stopAt)]
		if err := wsutil.WriteClientBinary(w, frame); err != nil {
			return false
		}
		st.sent += int64(len(frame))
		h.figMu.Lock()
		h.fig.StreamBytesSent += int64(len(frame))
		h.figMu.Unlock()
		select {
		case m, ok := <-msgs:
			if !ok {
				return false
			}
			if a, isAck := m.(proto.Ack); isAck {
				h.ackStream(st, a.Offset, fail)
			} else {
				fail("record %d: %T while streaming", st.record, m)
				return false
			}
		case <-time.After(crashStreamEvery):
		}
	}
	st.pcm = st.pcm[:st.sent] // what the stop stores
	st.stopping = true
	if err := wsutil.WriteClientText(w, []byte(`{"type":"stop"}`)); err != nil {
		h.count(h.fig.InFlight, "stream_stop")
		return false
	}
	m, ok = next()
	if !ok {
		h.count(h.fig.InFlight, "stream_stop")
		return false
	}
	stored, isStored := m.(proto.Stored)
	if !isStored {
		fail("record %d: %T after stop", st.record, m)
		return false
	}
	return h.streamStored(ctx, srv, st, stored.SHA256, fail)
}

// ackStream records an ack; acks never go back and never pass what was
// sent.
func (h *crashHarness) ackStream(st *crashStream, off int64, fail func(string, ...any)) {
	if off < st.acked || off > st.sent {
		fail("record %d: ack %d after ack %d, %d sent", st.record, off, st.acked, st.sent)
		return
	}
	h.figMu.Lock()
	h.fig.StreamBytesAcked += off - st.acked
	h.figMu.Unlock()
	st.acked = off
}

// streamStored checks that st's record holds exactly its PCM as a WAV
// (sum, when given, is what the stored message said) and hands the
// record to the workers.
func (h *crashHarness) streamStored(ctx context.Context, srv *procServer, st *crashStream, sum string, fail func(string, ...any)) bool {
	wav := wavBytes(st.pcm)
	want := sha256.Sum256(wav)
	wantHex := hex.EncodeToString(want[:])
	if sum != "" && sum != wantHex {
		fail("record %d: stored sha256 %s, the WAV of the %d bytes sent is %s", st.record, sum, len(st.pcm), wantHex)
		return false
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, st.record), nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return false // killed: the next resume answers unknown_stream and checks again
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false
	}
	if resp.StatusCode != 200 || !bytes.Equal(got, wav) {
		fail("record %d: stored audio %d (%d bytes) is not the WAV of the %d PCM bytes sent", st.record, resp.StatusCode, len(got), len(st.pcm))
		return false
	}
	h.count(h.fig.Acked, "stream_stored")
	h.count(h.fig.Checked, "streams_stored_exactly")
	m := &h.model
	m.mu.Lock()
	if r := m.records[st.record]; r != nil {
		r.audio, r.streaming = wantHex, false
	}
	m.mu.Unlock()
	h.stream = nil
	return true
}

// lockedWriter serialises the frames of two goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
