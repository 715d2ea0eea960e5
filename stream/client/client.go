// Package client is the field-box side of tyst's live stream (DESIGN §8,
// §12 `tyst stream`): it reads PCM from an input (arecord on a Raspberry
// Pi), keeps what the server has not acknowledged in a bounded, encrypted
// buffer on disk, and sends it over the WebSocket, reconnecting with
// backoff and resuming from the server's durable offset, so that a flaky
// link loses nothing. When the buffer is full it drops the oldest audio
// and says so. At the end of the input it sends stop and returns once the
// server says stored.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/gobwas/ws"

	"tyst/stream/proto"
)

// Config configures Run.
type Config struct {
	Server   string // base URL: http(s)://host[:port]
	Token    string // an API token (a stream-scoped one suffices)
	RecordID uint64 // 0: create a record titled Title first
	Title    string
	Rate     int    // Hz
	Channels int    // 1 or 2
	Source   string // proto.DefaultSource when empty

	BufferDir   string      // the encrypted buffer's directory (created, removed at the end)
	BufferKey   *fernet.Key // encrypts the buffer
	BufferBytes int64       // most PCM held unacknowledged
	// ShredBuffer overwrites each buffer segment before removing it: set
	// when BufferKey is kept on disk (--spool-key-file), so that freed
	// blocks of the SD card hold nothing that key opens. With a key in
	// memory only, nothing opens them once the process ends.
	ShredBuffer bool

	Input io.Reader // PCM, 16-bit little-endian
	// Progress, when set, gets a status line about every second (for a
	// terminal: carriage returns, no newlines until the end).
	Progress io.Writer
	// Warn prints a warning on its own line; required.
	Warn func(msg string)
	// HTTPClient creates the record; http.DefaultClient when nil.
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the wait between reconnects.
	MinBackoff, MaxBackoff time.Duration
	// FinishTimeout bounds how long, after the input ended, the client keeps
	// trying to deliver the rest.
	FinishTimeout time.Duration
}

// Result is what a successful Run stored.
type Result struct {
	RecordID   uint64       `json:"record_id"`
	Stored     proto.Stored `json:"-"`
	Bytes      int64        `json:"pcm_bytes"`
	Reconnects int          `json:"reconnects"`
	Dropped    int64        `json:"dropped_bytes"`
	// Records lists every record that took part of the audio, when the
	// server could not continue the stream (its window ended) and the rest
	// went into a continuation record.
	Records []uint64 `json:"records"`
}

// ErrUnconfirmed means the server finished the stream but its stored
// message was lost with the connection.
var ErrUnconfirmed = errors.New("the server finished the stream but its confirmation was lost: check the record")

// ErrRecordDestroyed means the record was destroyed or purged on the
// server while streaming: the server erased the stream, none of its audio
// is stored, and the client sends no more (not into a new record either).
var ErrRecordDestroyed = errors.New("the record was destroyed on the server while streaming: the stream was erased and none of its audio is stored; nothing more is sent")

// Run streams cfg.Input until it ends (or ctx is cancelled, which ends the
// input too), then stores it, and returns what the server stored.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Rate < proto.MinSampleRate || cfg.Rate > proto.MaxSampleRate || (cfg.Channels != 1 && cfg.Channels != 2) {
		return nil, fmt.Errorf("rate must be %d to %d and channels 1 or 2", proto.MinSampleRate, proto.MaxSampleRate)
	}
	if cfg.Source == "" {
		cfg.Source = proto.DefaultSource
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.FinishTimeout <= 0 {
		cfg.FinishTimeout = 10 * time.Minute
	}
	base, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("--server must be an http:// or https:// URL")
	}
	buf, err := newBuffer(cfg.BufferDir, cfg.BufferKey, cfg.BufferBytes)
	if buf != nil {
		buf.shred = cfg.ShredBuffer
	}
	if err != nil {
		return nil, err
	}
	defer buf.close()
	r := &runner{cfg: cfg, base: base, buf: buf, res: &Result{RecordID: cfg.RecordID}, wake: make(chan struct{}, 1),
		inputDone: make(chan struct{})}
	if r.res.RecordID == 0 {
		if r.res.RecordID, err = r.createRecord(ctx, cfg.Title); err != nil {
			return nil, err
		}
	}
	r.res.Records = []uint64{r.res.RecordID}
	go r.readInput(ctx)
	return r.run(ctx)
}

type runner struct {
	cfg  Config
	base *url.URL
	buf  *buffer
	res  *Result

	wake      chan struct{} // input or acks moved
	inputDone chan struct{}
	inputErr  error
	mu        sync.Mutex
	total     int64 // PCM read from the input and kept

	streamID string
	stopSent bool // on the current stream, with everything before it sent
	// probing is set when the server lost the stream: the next start, in
	// the same record, tells whether the record is still there (ready),
	// holds the stored stream (conflict: the rest goes into a new record)
	// or was destroyed (not_found: nothing more is sent).
	probing bool
}

func (r *runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// readInput reads the input in blocks of 100 ms into the buffer. The input
// ends at EOF, at an error, or when ctx is cancelled (SIGINT).
func (r *runner) readInput(ctx context.Context) {
	block := r.cfg.Rate * r.cfg.Channels * 2 / 10
	block -= block % (2 * r.cfg.Channels)
	type read struct {
		p   []byte
		err error
	}
	reads := make(chan read)
	go func() {
		// Blocked in Read after a cancel, this goroutine ends with the
		// process (a microphone never sends EOF).
		for {
			p := make([]byte, block)
			n, err := io.ReadFull(r.cfg.Input, p)
			select {
			case reads <- read{p[:n], err}:
			case <-r.inputDone:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(r.inputDone)
	defer r.notify()
	for {
		var rd read
		select {
		case rd = <-reads:
		case <-ctx.Done():
			return
		}
		n := len(rd.p) - len(rd.p)%(2*r.cfg.Channels)
		if n > 0 {
			dropped, err := r.buf.append(rd.p[:n])
			if dropped > 0 {
				r.cfg.Warn(fmt.Sprintf("BUFFER FULL: the server has not acknowledged the audio for too long; dropped the oldest %.1f s of audio to keep the newest (raise --buffer-mb)", r.seconds(dropped)))
			}
			if err != nil {
				r.inputErr = fmt.Errorf("buffer: %w", err)
				return
			}
			r.mu.Lock()
			r.total += int64(n)
			r.mu.Unlock()
			r.notify()
		}
		if rd.err != nil {
			if !errors.Is(rd.err, io.EOF) && !errors.Is(rd.err, io.ErrUnexpectedEOF) {
				r.inputErr = fmt.Errorf("reading the input: %w", rd.err)
			}
			return
		}
	}
}

func (r *runner) seconds(n int64) float64 {
	return float64(n) / float64(r.cfg.Rate*r.cfg.Channels*2)
}

// errFatal wraps an error that reconnecting cannot cure.
type errFatal struct{ err error }

func (e *errFatal) Error() string { return e.err.Error() }
func (e *errFatal) Unwrap() error { return e.err }

// run connects, streams and reconnects until the server stores the stream.
func (r *runner) run(ctx context.Context) (*Result, error) {
	backoff := r.cfg.MinBackoff
	var finishBy time.Time
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	for {
		progressed, err := r.session(ctx, progress.C)
		if err == nil {
			r.printProgress(true)
			return r.res, nil
		}
		var fe *errFatal
		if errors.As(err, &fe) {
			r.printProgress(true)
			return r.res, fe.err
		}
		select {
		case <-r.inputDone:
			if finishBy.IsZero() {
				finishBy = time.Now().Add(r.cfg.FinishTimeout)
			}
		default:
		}
		if !finishBy.IsZero() && time.Now().After(finishBy) {
			r.printProgress(true)
			return r.res, fmt.Errorf("gave up after the input ended: %.1f s of audio were not delivered (%v)", r.seconds(r.buf.unacked()), err)
		}
		if progressed {
			backoff = r.cfg.MinBackoff
		}
		r.res.Reconnects++
		r.cfg.Warn(fmt.Sprintf("connection lost (%v); reconnecting in %v", err, backoff.Round(time.Millisecond)))
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
	sleep:
		for {
			select {
			case <-t.C:
				break sleep
			case <-progress.C:
				r.printProgress(false)
			}
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

// session runs one connection. It returns nil once stored, an *errFatal
// for what reconnecting cannot cure, and other errors for a lost
// connection; progressed says whether the server acknowledged anything.
func (r *runner) session(ctx context.Context, tick <-chan time.Time) (progressed bool, err error) {
	c, err := r.dial(ctx)
	if err != nil {
		return false, err
	}
	defer c.close()
	go c.readLoop()

	if r.streamID == "" {
		start := proto.Start{Format: proto.FormatPCM16, SampleRate: r.cfg.Rate, Channels: r.cfg.Channels, Source: r.cfg.Source}
		b, _ := proto.Marshal(start)
		err = c.write(ws.OpText, b)
	} else {
		b, _ := proto.Marshal(proto.Resume{StreamID: r.streamID})
		err = c.write(ws.OpText, b)
	}
	if err != nil {
		return false, err
	}
	var sent int64
	m, err := c.next(time.After(30 * time.Second))
	if err != nil {
		if r.streamID == "" {
			// A start without an answer may have made a stream on the
			// server: the next start probes, as after a lost stream (a
			// not_found then means the record was destroyed meanwhile).
			r.probing = true
		}
		return false, err
	}
	{
		switch m := m.(type) {
		case proto.Ready:
			if r.streamID != "" && m.StreamID != r.streamID {
				return false, &errFatal{errors.New("the server resumed another stream")}
			}
			r.streamID = m.StreamID
			gap, err := r.buf.renumber(m.Offset)
			if err != nil {
				return false, &errFatal{err}
			}
			if gap > 0 {
				r.cfg.Warn(fmt.Sprintf("%.1f s of audio were lost while the buffer was full", r.seconds(gap)))
			}
			sent = m.Offset
			r.stopSent = false
			r.probing = false
		case proto.Error:
			return false, r.refused(ctx, m)
		default:
			return false, fmt.Errorf("server sent %T before ready", m)
		}
	}

	for {
		// Send everything buffered, chunk by chunk.
		for {
			data, err := r.buf.read(sent)
			if errors.Is(err, errGone) {
				// Dropped while full, before it was sent: the server goes on
				// from where it is.
				gap, rerr := r.buf.renumber(sent)
				if rerr != nil {
					return progressed, &errFatal{rerr}
				}
				r.cfg.Warn(fmt.Sprintf("%.1f s of audio were lost while the buffer was full", r.seconds(gap)))
				continue
			}
			if err != nil {
				return progressed, &errFatal{fmt.Errorf("buffer: %w", err)}
			}
			if len(data) == 0 {
				break
			}
			if err := c.write(ws.OpBinary, data); err != nil {
				return progressed, err
			}
			sent += int64(len(data))
		}
		if !r.stopSent && r.inputEnded() {
			if r.inputErr != nil {
				r.cfg.Warn(r.inputErr.Error() + ": storing what was read")
			}
			b, _ := proto.Marshal(proto.Stop{})
			if err := c.write(ws.OpText, b); err != nil {
				return progressed, err
			}
			r.stopSent = true
			r.res.Bytes = sent
		}
		var m proto.ServerMessage
		select {
		case <-r.wake:
		case <-tick:
			r.printProgress(false)
		case m = <-c.msgs:
		case err := <-c.done:
			c.done <- err
			if m, err = c.next(nil); err != nil {
				return progressed, err
			}
		}
		if m != nil {
			switch m := m.(type) {
			case proto.Ack:
				r.buf.ack(m.Offset)
				progressed = true
				r.notify()
			case proto.Stored:
				r.res.Stored = m
				if want := r.res.Bytes + 44; r.stopSent && m.SizeBytes != want {
					r.cfg.Warn(fmt.Sprintf("the server stored %d bytes, %d were expected", m.SizeBytes, want))
				}
				r.res.Dropped = r.buf.dropped
				return true, nil
			case proto.Error:
				return progressed, r.refused(ctx, m)
			}
		}
	}
}

func (r *runner) inputEnded() bool {
	select {
	case <-r.inputDone:
		return true
	default:
		return false
	}
}

// refused handles an error message from the server.
func (r *runner) refused(ctx context.Context, m proto.Error) error {
	switch m.Code {
	case proto.CodeUnknownStream:
		held := r.buf.ackedOffset()
		if m.Offset != nil {
			held = *m.Offset // what the server stored of this stream
		}
		if (r.stopSent && held >= r.res.Bytes) || (r.inputEnded() && held >= r.buf.end()) {
			return &errFatal{ErrUnconfirmed} // nothing is left to send
		}
		// The server finished the stream (its resume window ended, or the
		// record was destroyed) while audio is still here. A new start in
		// the same record tells which (probing).
		r.streamID = ""
		r.buf.restart(held)
		r.probing = true
		return errors.New("the server no longer holds the stream")
	case proto.CodeRecordDestroyed:
		return &errFatal{ErrRecordDestroyed}
	case "not_found":
		if r.probing {
			return &errFatal{ErrRecordDestroyed}
		}
	case "conflict":
		if !r.probing {
			break
		}
		// The record holds the stream the server stored: the rest goes
		// into a new record rather than lost.
		r.probing = false
		title := r.cfg.Title + " (continued)"
		if r.cfg.Title == "" {
			title = fmt.Sprintf("Continuation of record %d", r.res.RecordID)
		}
		id, err := r.createRecord(ctx, title)
		if err != nil {
			return err
		}
		r.cfg.Warn(fmt.Sprintf("the server could not resume the stream; the remaining audio goes into a new record, %d", id))
		r.res.RecordID = id
		r.res.Records = append(r.res.Records, id)
		return errors.New("stream restarted in a new record")
	}
	switch m.Code {
	case "conflict", "not_found", "forbidden", "unauthorized", "validation_error", proto.CodeProtocol, "payload_too_large":
		return &errFatal{fmt.Errorf("server refused: %s: %s", m.Code, m.Message)}
	}
	return fmt.Errorf("server: %s: %s", m.Code, m.Message)
}

// printProgress writes the status line: seconds read, acknowledged and
// buffered, reconnects.
func (r *runner) printProgress(final bool) {
	if r.cfg.Progress == nil {
		return
	}
	r.mu.Lock()
	total := r.total
	r.mu.Unlock()
	unacked := r.buf.unacked()
	end := "\r"
	if final {
		end = "\n"
	}
	fmt.Fprintf(r.cfg.Progress, "\rtyst stream: read %.1f s, acknowledged %.1f s, buffered %.1f s, reconnects %d   %s",
		r.seconds(total), r.seconds(total-unacked-r.buf.dropped), r.seconds(unacked), r.res.Reconnects, end)
}

// createRecord creates a record titled title and returns its id.
func (r *runner) createRecord(ctx context.Context, title string) (uint64, error) {
	if strings.TrimSpace(title) == "" {
		return 0, &errFatal{errors.New("give --record ID or --title TEXT")}
	}
	body, _ := json.Marshal(map[string]string{"title": title})
	req, err := http.NewRequestWithContext(ctx, "POST", r.base.String()+"/api/v1/record", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("creating the record: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		TranscriptID uint64 `json:"transcript_id"`
		Error        struct {
			Code, Message string
		} `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	if resp.StatusCode != http.StatusCreated || out.TranscriptID == 0 {
		return 0, &errFatal{fmt.Errorf("creating the record: %d %s: %s", resp.StatusCode, out.Error.Code, out.Error.Message)}
	}
	return out.TranscriptID, nil
}

// wsConn is one connection: a reader goroutine parses the server's
// messages; writes share a lock (pongs and data).
type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	fw   proto.FrameWriter
	msgs chan proto.ServerMessage
	done chan error    // the connection ended
	quit chan struct{} // closed by close
	once sync.Once
}

const (
	writeTimeout = 15 * time.Second
	readTimeout  = 90 * time.Second // the server pings every 20 s
)

func (r *runner) dial(ctx context.Context) (*wsConn, error) {
	u := *r.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path += fmt.Sprintf("/api/v1/record/%d/stream", r.res.RecordID)
	d := ws.Dialer{
		Header:  ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + r.cfg.Token}}),
		Timeout: 15 * time.Second,
	}
	nc, br, _, err := d.Dial(ctx, u.String())
	if err != nil {
		var se ws.StatusError
		if errors.As(err, &se) && (int(se) == http.StatusUnauthorized || int(se) == http.StatusForbidden || int(se) == http.StatusNotFound) {
			return nil, &errFatal{fmt.Errorf("server refused the connection: HTTP %d", int(se))}
		}
		return nil, err
	}
	if br == nil {
		br = bufio.NewReader(nc)
	}
	c := &wsConn{nc: nc, br: br, msgs: make(chan proto.ServerMessage, 16), done: make(chan error, 1), quit: make(chan struct{})}
	c.fw = proto.FrameWriter{W: nc, Mask: true}
	return c, nil
}

func (c *wsConn) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.fw.WriteFrame(op, p)
}

func (c *wsConn) close() {
	c.once.Do(func() { close(c.quit) })
	c.nc.Close()
}

// next returns the next message, or the error that ended the connection
// once every message before it was taken.
func (c *wsConn) next(timeout <-chan time.Time) (proto.ServerMessage, error) {
	select {
	case m := <-c.msgs:
		return m, nil
	case err := <-c.done:
		select {
		case m := <-c.msgs:
			c.done <- err // after this message
			return m, nil
		default:
			return nil, err
		}
	case <-timeout:
		return nil, errors.New("no answer from the server")
	}
}

// readLoop reads the server's frames: messages go to msgs, pings are
// answered, and the end (a close frame or an error) goes to done.
func (c *wsConn) readLoop() {
	var payload [proto.MaxTextBytes]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(readTimeout))
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			c.done <- err
			return
		}
		if h.Length > int64(len(payload)) || h.Masked {
			c.done <- errors.New("server sent a frame this client does not take")
			return
		}
		p := payload[:h.Length]
		if _, err := io.ReadFull(c.br, p); err != nil {
			c.done <- err
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			c.write(ws.OpPong, p)
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			c.write(ws.OpClose, proto.CloseBody(int(code), ""))
			c.done <- fmt.Errorf("server closed the connection: %d %s", code, reason)
			return
		case ws.OpText:
			m, err := proto.ParseServer(p)
			if err != nil {
				c.done <- fmt.Errorf("server sent a bad message: %w", err)
				return
			}
			select {
			case c.msgs <- m:
			case <-c.quit:
				return
			}
		}
	}
}
