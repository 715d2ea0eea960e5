package stream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"tyst/store"
	"tyst/store/media"
	"tyst/stream/dump"
	"tyst/stream/proto"
	"tyst/stream/spool"
)

// state is where a stream is in its life.
type state int

const (
	stateAttached   state = iota // a connection sends into it
	stateDetached                // resumable until its deadline
	stateFinalising              // being stored
	stateFinished                // stored or discarded; forgotten
)

// meta is the record of a stream kept encrypted in its spool: everything a
// restart needs to resume and store it. The last metadata chunk wins.
type meta struct {
	V          int       `json:"v"`
	StreamID   string    `json:"stream_id"`
	RecordID   uint64    `json:"record_id"`
	UserID     uint64    `json:"user_id"`
	Role       string    `json:"role"`
	Scope      string    `json:"scope,omitempty"`
	TokenID    uint64    `json:"token_id,omitempty"`
	SampleRate int       `json:"sample_rate"`
	Channels   int       `json:"channels"`
	Source     string    `json:"source"`
	CreatedAt  time.Time `json:"created_at"`
	// Deadline is set while the stream is detached by its client: the end
	// of its resume window. A stream that has none when a restart finds it
	// was live at the crash, and gets a whole window from the restart.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// principal rebuilds who started the stream, for the store.
func (m *meta) principal() *store.Principal {
	return &store.Principal{UserID: m.UserID, Role: m.Role, Scope: m.Scope, TokenID: m.TokenID}
}

func (m *meta) start() proto.Start {
	return proto.Start{Format: proto.FormatPCM16, SampleRate: m.SampleRate, Channels: m.Channels, Source: m.Source}
}

// stream is one live stream and its spool. Lock order: Server.mu, then
// stream.mu; never Server.mu while holding stream.mu.
type stream struct {
	srv        *Server
	id         string
	m          meta // fixed after start, but for Deadline (under mu)
	blockAlign int
	pendingCap int
	counted    bool // in the server's counts of streams held (Server.mu)

	mu        sync.Mutex
	file      SpoolFile // nil once finished
	pending   []byte    // received, not yet in the spool; nil while detached
	written   int64     // PCM bytes appended to the spool
	state     state
	conn      *conn // the attached connection
	deadline  time.Time
	nextFlush time.Time
	broken    error         // the spool failed: reopen it before use
	finalDone chan struct{} // closed when the finalisation running ends
	retries   int           // failed finalisations in a row
	expiring  bool          // the janitor is storing it
	gone      bool          // its record was destroyed: erased, never stored
	syncing   bool          // handed to a sync worker
	dump      *dump.File
	dumpOff   bool // the dump failed to open for this stream, or is full
	dumpErrs  int  // failed dump writes

	durable atomic.Int64 // PCM bytes synced: what an ack may name
}

// errDetached means the connection no longer owns the stream (another
// resumed it, or it was stored).
var errDetached = errors.New("stream: connection no longer attached")

func newStream(srv *Server, m meta) *stream {
	st := &stream{srv: srv, id: m.StreamID, m: m, blockAlign: 2 * m.Channels}
	// A pending buffer of about half a second: a flush about every second
	// writes it once or twice. Whole sample frames, at most one chunk.
	c := m.SampleRate * st.blockAlign / 2
	c = min(max(c, 4<<10), spool.MaxChunk)
	st.pendingCap = c - c%4
	return st
}

// warn logs a recovered problem of the stream, with ids only.
func (st *stream) warn(msg string, err error) {
	args := []any{keyStreamID, st.id, keyRecordID, st.m.RecordID}
	if err != nil {
		args = append(args, keyErr, pathFree(err).Error())
	}
	st.srv.log.Warn(msg, args...)
}

// add appends PCM received on c. The bytes are in the spool by the next
// flush.
func (st *stream) add(c *conn, p []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return errGone
	}
	if st.conn != c || st.state != stateAttached {
		return errDetached
	}
	if st.broken != nil {
		return st.broken
	}
	for len(p) > 0 {
		if len(st.pending) == cap(st.pending) {
			if err := st.flushLocked(); err != nil {
				return err
			}
		}
		k := copy(st.pending[len(st.pending):cap(st.pending)], p)
		st.pending = st.pending[:len(st.pending)+k]
		p = p[k:]
	}
	return nil
}

// received returns the offset of the next byte the stream takes.
func (st *stream) receivedLocked() int64 { return st.written + int64(len(st.pending)) }

// flushLocked appends the whole sample frames of pending to the spool (and
// the debug dump); a partial sample frame stays pending.
func (st *stream) flushLocked() error {
	if st.broken != nil {
		return st.broken
	}
	n := len(st.pending) - len(st.pending)%st.blockAlign
	if n == 0 {
		return nil
	}
	if err := st.file.Append(st.pending[:n]); err != nil {
		st.broken = err
		return err
	}
	st.dumpLocked(st.pending[:n])
	st.written += int64(n)
	st.pending = st.pending[:copy(st.pending, st.pending[n:])]
	return nil
}

// syncLocked flushes and syncs, then names everything written durable.
func (st *stream) syncLocked() error {
	if err := st.flushLocked(); err != nil {
		return err
	}
	if err := st.file.Sync(); err != nil {
		st.broken = err
		return err
	}
	st.setDurable(st.written)
	return nil
}

func (st *stream) setDurable(n int64) {
	for {
		old := st.durable.Load()
		if n <= old || st.durable.CompareAndSwap(old, n) {
			return
		}
	}
}

// syncNow syncs what c sent, whole sample frames, and returns the durable
// offset.
func (st *stream) syncNow(c *conn) (int64, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return 0, errGone
	}
	if st.conn != c || st.state != stateAttached {
		return 0, errDetached
	}
	if err := st.syncLocked(); err != nil {
		return 0, err
	}
	return st.written, nil
}

// writeMetaLocked appends the stream's metadata with deadline (nil: live).
func (st *stream) writeMetaLocked(deadline *time.Time) error {
	m := st.m
	m.Deadline = deadline
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := st.file.AppendMeta(b); err != nil {
		st.broken = err
		return err
	}
	return nil
}

// attachLocked makes c the stream's connection and returns the offset the
// client sends from: everything before it is durable.
func (st *stream) attachLocked(c *conn) (int64, error) {
	if st.broken != nil {
		if err := st.reopenLocked(); err != nil {
			return 0, err
		}
	}
	if err := st.writeMetaLocked(nil); err != nil {
		return 0, err
	}
	if err := st.syncLocked(); err != nil {
		return 0, err
	}
	st.conn = c
	st.state = stateAttached
	st.deadline = time.Time{}
	st.nextFlush = time.Now().Add(st.srv.cfg.AckInterval) // the group commit's clock
	if st.pending == nil {
		st.pending = make([]byte, 0, st.pendingCap)
	}
	return st.written, nil
}

// detach ends c's hold on the stream: what c sent, up to the last whole
// sample frame, is synced, and the stream stays resumable. clientGone
// records the resume deadline in the spool (not on server shutdown: after a
// restart the window starts anew).
func (st *stream) detach(c *conn, clientGone bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.conn != c || st.state != stateAttached {
		return
	}
	st.conn = nil
	st.state = stateDetached
	if st.broken == nil {
		st.pending = st.pending[:len(st.pending)-len(st.pending)%st.blockAlign]
		err := st.syncLocked()
		st.deadline = st.srv.now().Add(st.windowLocked())
		if err == nil && clientGone {
			d := st.deadline
			if err = st.writeMetaLocked(&d); err == nil {
				err = st.file.Sync()
			}
		}
		if err != nil {
			st.broken = err
			st.warn("spool write failed", err)
		}
	} else {
		st.deadline = st.srv.now().Add(st.windowLocked())
	}
	st.pending = nil // a resumable stream holds no buffer
}

// windowLocked is how long the stream stays resumable once dropped: the
// resume window, or the short EmptyWindow while it holds no audio (a start
// that never sends any holds a slot, a file and a descriptor no longer).
func (st *stream) windowLocked() time.Duration {
	if st.written == 0 {
		return st.srv.cfg.EmptyWindow
	}
	return st.srv.cfg.ResumeWindow
}

// reopenLocked reopens a spool after a failed write or sync: what the file
// holds now, read back and checked, is the stream. If it fails, the stream
// stays broken (with no file) for the next try.
func (st *stream) reopenLocked() error {
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
	f, scan, err := spool.Open(st.srv.spoolPath(st.id), st.srv.codec, st.srv.cfg.Keys.All(), spool.Grow1MiB)
	if err != nil {
		st.broken = err
		return err
	}
	st.file = st.srv.wrap(f)
	st.written = scan.DataBytes
	st.durable.Store(scan.DataBytes)
	st.pending = st.pending[:0]
	st.broken = nil
	return nil
}

// dumpLocked writes p to the debug dump; failures are logged and the
// stream goes on (DESIGN §9).
func (st *stream) dumpLocked(p []byte) {
	d := st.srv.cfg.Dumper
	if d == nil || st.dumpOff {
		return
	}
	if st.dump == nil {
		f, err := d.Open(st.id, st.m.Source, st.m.RecordID)
		if err != nil {
			st.dumpOff = true
			st.warn("debug dump disabled for this stream", err)
			return
		}
		st.dump = f
	}
	if err := st.dump.Write(p); err != nil {
		if errors.Is(err, dump.ErrFull) {
			st.dumpOff = true
			st.warn("debug dump of this stream reached its size limit", nil)
			return
		}
		if st.dumpErrs++; st.dumpErrs == 1 {
			st.warn("debug dump write failed; the stream goes on", err)
		}
	}
}

// closeFile syncs and closes the spool and the dump; the stream stays
// resumable after a restart.
func (st *stream) closeFile() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	var err error
	if st.file != nil {
		if st.broken == nil {
			err = st.syncLocked()
		}
		if cerr := st.file.Close(); err == nil {
			err = cerr
		}
		st.file = nil
	}
	st.closeDumpLocked()
	return err
}

func (st *stream) closeDumpLocked() {
	if st.dump != nil {
		if err := st.dump.Close(); err != nil {
			st.warn("debug dump close failed", err)
		}
		st.dump = nil
	}
}

// finishError is a finalisation that failed; permanent ones discard the
// stream.
type finishError struct {
	err       error
	permanent bool
}

func (e *finishError) Error() string { return e.err.Error() }
func (e *finishError) Unwrap() error { return e.err }

// errBusy means the stream is being stored by someone else.
var errBusy = errors.New("stream: already being stored")

// errEmpty is a stop before any audio.
var errEmpty = &store.Error{Code: store.CodeValidation, Message: "no audio received: nothing to store"}

// finalise stores the stream as its record's audio: a WAV of every durable
// byte. c is the connection that sent stop, or nil when the resume window
// ended. On success, and on a permanent failure, the stream is forgotten
// and its spool removed; on a transient one it stays resumable.
func (st *stream) finalise(ctx context.Context, c *conn) (*store.Audio, error) {
	st.mu.Lock()
	switch {
	case st.gone:
		st.mu.Unlock()
		return nil, errGone
	case st.state == stateFinalising || st.state == stateFinished:
		st.mu.Unlock()
		return nil, errBusy
	case c != nil && (st.conn != c || st.state != stateAttached):
		st.mu.Unlock()
		return nil, errDetached
	case c == nil && st.state != stateDetached:
		st.mu.Unlock()
		return nil, errBusy
	}
	// A spool whose write failed (a full disk) is read back first: what it
	// holds, checked, is the stream. Without this an abandoned stream that
	// once met a full disk would never be stored until a restart.
	err := st.broken
	if err != nil {
		err = st.reopenLocked()
	}
	if err == nil {
		err = st.syncLocked()
	}
	if err != nil {
		if c == nil {
			st.retryLaterLocked()
		}
		st.mu.Unlock()
		return nil, &finishError{err: err}
	}
	n := st.written
	if n == 0 && c != nil {
		st.mu.Unlock()
		return nil, &finishError{err: errEmpty}
	}
	st.state = stateFinalising
	st.conn = nil
	st.finalDone = make(chan struct{})
	st.mu.Unlock()

	var audio *store.Audio
	if n > 0 {
		audio, err = st.srv.storeSpool(ctx, st, n)
	}
	permanent := n == 0
	if err != nil {
		switch store.ErrorCode(err) {
		case store.CodeNotFound, store.CodeConflict, store.CodeForbidden, store.CodeValidation,
			store.CodeTooLarge, store.CodeUnsupported, store.CodeUnauthorized:
			permanent = true
		}
	}
	// A destroy that committed before the store call refused it as
	// not_found; the destroy's RecordGone may not have run yet.
	goneNow := store.ErrorCode(err) == store.CodeNotFound
	if goneNow {
		goneNow, _ = st.srv.cfg.Store.RecordGone(st.m.RecordID)
	}

	st.mu.Lock()
	done := st.finalDone
	st.finalDone = nil
	// Destroyed while being stored: whether the store took the audio
	// first (the destroy removed it) or refused it, nothing of it is kept.
	gone := st.gone || goneNow
	st.gone = gone
	if err != nil && !permanent && !gone {
		st.state = stateDetached
		st.retryLaterLocked()
		st.mu.Unlock()
		close(done)
		return nil, &finishError{err: err}
	}
	st.state = stateFinished
	st.closeDumpLocked()
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
	st.mu.Unlock()
	// The store holds the audio (or refused it for good, or the record is
	// gone): the spool goes. Renamed now, so that no restart resumes it;
	// overwritten in the background when stored (a stop answers first),
	// at once otherwise. Lock order: Server.mu before stream.mu, so forget
	// runs unlocked.
	if rerr := st.srv.markErasing(st.id); rerr != nil {
		st.warn("spool not removed; the next start erases it", rerr)
	} else if err == nil && !gone {
		st.srv.shredLater(st)
	} else if rerr := st.srv.shredMarked(st.id); rerr != nil {
		st.warn("spool not overwritten; the next start erases it", rerr)
	}
	st.srv.forget(st)
	if gone || (err == nil && n > 0) {
		st.srv.rememberFinished(st, n, gone)
	}
	close(done)
	if gone {
		st.srv.eraseDump(st.id, st.m.RecordID)
		st.srv.log.Info("stream of a destroyed record erased", keyStreamID, st.id, keyRecordID, st.m.RecordID)
		return nil, errGone
	}
	if err != nil {
		return nil, &finishError{err: err, permanent: true}
	}
	return audio, nil
}

// retryLaterLocked schedules the next try of a finalisation that failed
// for now (a full disk, a store error): later and later, so that a disk
// that stays full is logged a bounded number of times.
func (st *stream) retryLaterLocked() {
	st.retries++
	st.deadline = st.srv.now().Add(retryDelay(st.retries))
}

// retryDelay is how long a stream waits after its nth failed finalisation:
// 15 s, doubling up to 30 min.
func retryDelay(n int) time.Duration {
	d := 15 * time.Second << min(n-1, 7)
	return min(d, 30*time.Minute)
}

// storeSpool hands the WAV of the first n PCM bytes to the store as st's
// record's audio, as the principal that started the stream.
func (s *Server) storeSpool(ctx context.Context, st *stream, n int64) (*store.Audio, error) {
	f, err := openRead(s.spoolPath(st.id))
	if err != nil {
		return nil, fmt.Errorf("stream: open spool: %w", pathFree(err))
	}
	defer f.Close()
	body := &spoolBody{r: spool.NewDataReader(f, s.cfg.Keys.All(), n)}
	header := media.WAVHeader(n, st.m.SampleRate, st.m.Channels)
	ctx = store.WithPrincipal(ctx, st.m.principal())
	audio, err := s.cfg.Store.AttachAudio(ctx, st.m.RecordID, store.NewAudio{
		DeclaredType: "audio/wav",
		Body:         io.MultiReader(bytes.NewReader(header), body),
		MaxBytes:     int64(len(header)) + n,
	})
	if store.ErrorCode(err) == store.CodeConflict {
		// A crash (or a failure) after the store committed this very
		// stream, before its spool went, leaves the record with this
		// audio: that is a stored stream, not a refusal.
		if a := s.storedAlready(ctx, st, header, n); a != nil {
			return a, nil
		}
	}
	return audio, err
}

// storedAlready returns the audio of st's record when it is the WAV of
// the stream's first n bytes (header, then the spool's PCM), else nil.
func (s *Server) storedAlready(ctx context.Context, st *stream, header []byte, n int64) *store.Audio {
	rec, err := s.cfg.Store.Record(ctx, st.m.RecordID)
	if err != nil || rec.Audio == nil || rec.Audio.SizeBytes != int64(len(header))+n {
		return nil
	}
	f, err := openRead(s.spoolPath(st.id))
	if err != nil {
		return nil
	}
	defer f.Close()
	h := sha256.New()
	h.Write(header)
	if _, err := io.Copy(h, &spoolBody{r: spool.NewDataReader(f, s.cfg.Keys.All(), n)}); err != nil {
		return nil
	}
	if hex.EncodeToString(h.Sum(nil)) != rec.Audio.SHA256 {
		return nil
	}
	return rec.Audio
}
