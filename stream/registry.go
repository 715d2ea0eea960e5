package stream

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"tyst/store"
	"tyst/stream/proto"
	"tyst/stream/spool"
)

// storeTimeout bounds the store calls of start.
const storeTimeout = 10 * time.Second

// start opens a new stream on c's record: the record must be visible to
// c's principal and have no audio, and no other stream may hold it.
func (s *Server) start(c *conn, m proto.Start) (*stream, error) {
	ctx, cancel := context.WithTimeout(store.WithPrincipal(context.Background(), c.p), storeTimeout)
	defer cancel()
	rec, err := s.cfg.Store.Record(ctx, c.recordID)
	if err != nil {
		return nil, err
	}
	if rec.Audio != nil {
		return nil, policy(store.CodeConflict, "the record already has audio")
	}
	md := meta{
		V: 1, StreamID: newStreamID(), RecordID: c.recordID,
		UserID: c.p.UserID, Role: c.p.Role, Scope: c.p.Scope, TokenID: c.p.TokenID,
		SampleRate: m.SampleRate, Channels: m.Channels, Source: m.Source, CreatedAt: s.now().UTC(),
	}
	st := newStream(s, md)
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return nil, policy(store.CodeUnavailable, "server is shutting down")
	case s.byRecord[c.recordID] != nil:
		s.mu.Unlock()
		return nil, policy(store.CodeConflict, "a stream is already running for this record: resume it")
	}
	// Counted now, with the check, so that concurrent starts never pass a
	// bound together; forget uncounts it.
	if err := s.admitLocked(st); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.byRecord[c.recordID] = st // claimed while the spool is made
	s.mu.Unlock()
	// Held first, then checked: an upload checks for streams the same way
	// round (store.NewAudio.Exclusive), so the two never both go ahead.
	if s.cfg.Store.Uploading(c.recordID) {
		s.forget(st)
		return nil, policy(store.CodeConflict, "an upload into this record is running")
	}

	b, err := json.Marshal(md)
	var f *spool.File
	if err == nil {
		f, err = spool.Create(s.spoolPath(md.StreamID), s.codec, b, spool.Grow1MiB)
	}
	if err != nil {
		s.forget(st)
		return nil, diskErr(err)
	}
	st.mu.Lock()
	st.file = s.wrap(f)
	st.conn, st.state = c, stateAttached
	st.pending = make([]byte, 0, st.pendingCap)
	st.nextFlush = time.Now().Add(s.cfg.AckInterval)
	st.mu.Unlock()
	s.mu.Lock()
	s.streams[md.StreamID] = st
	s.mu.Unlock()
	// A destroy that committed after the record was read above, and whose
	// RecordGone ran before the stream was in s.streams, is seen here:
	// either this check or RecordGone finds the stream.
	if gone, err := s.cfg.Store.RecordGone(c.recordID); err == nil && gone {
		st.erase()
		return nil, errGone
	}
	s.log.Info("stream started", keyStreamID, md.StreamID, keyRecordID, md.RecordID)
	return st, nil
}

// resume attaches c to the stream id and returns the offset to send from.
// A stream that is unknown, finished, or not of c's user and record is
// unknown_stream; one that another connection holds is taken from it (that
// client is gone, or this one would not resume).
func (s *Server) resume(c *conn, id string) (*stream, int64, error) {
	unknown := policy(proto.CodeUnknownStream, "no such stream to resume: start a new one")
	s.mu.Lock()
	st := s.streams[id]
	fin, wasStored := s.finished[id]
	s.mu.Unlock()
	if st == nil && wasStored && fin.userID == c.p.UserID && fin.recordID == c.recordID {
		return nil, 0, fin.resumeErr()
	}
	if st == nil || st.m.UserID != c.p.UserID || st.m.RecordID != c.recordID {
		return nil, 0, unknown
	}
	for tries := 0; ; tries++ {
		if tries > 3 {
			return nil, 0, policy(store.CodeConflict, "the stream is busy: try again")
		}
		st.mu.Lock()
		switch st.state {
		case stateFinished:
			st.mu.Unlock()
			s.mu.Lock()
			fin, wasStored := s.finished[id]
			s.mu.Unlock()
			if wasStored {
				return nil, 0, fin.resumeErr()
			}
			return nil, 0, unknown
		case stateFinalising:
			done := st.finalDone
			st.mu.Unlock()
			select {
			case <-done:
			case <-time.After(time.Minute):
			}
			continue
		case stateAttached:
			old := st.conn
			st.mu.Unlock()
			old.kill()
			select {
			case <-old.done:
			case <-time.After(10 * time.Second):
			}
			continue
		}
		off, err := st.attachLocked(c)
		st.mu.Unlock()
		if err != nil {
			st.warn("spool cannot be resumed", err)
			return nil, 0, diskErr(err)
		}
		s.log.Info("stream resumed", keyStreamID, id, keyRecordID, st.m.RecordID, keyMiB, mibBucket(off))
		return st, off, nil
	}
}

// resumeErr is what a resume of the finished stream is told:
// unknown_stream, with the bytes stored, or that its record was destroyed
// (no offset: nothing is stored).
func (fin finishedStream) resumeErr() error {
	if fin.gone {
		return &wsError{code: proto.CodeUnknownStream, message: "the record was destroyed: nothing of this stream is kept"}
	}
	n := fin.stored
	return &wsError{code: proto.CodeUnknownStream, message: "the stream was stored: start a new one for more audio", offset: &n}
}

// syncLoop is the group commit's dispatcher: every SyncTick it hands the
// streams whose flush is due (about every AckInterval each) to the sync
// workers, which write, sync and acknowledge them. Many syncs run at once,
// so the file system commits them together, and each stream is
// acknowledged as soon as its own sync is done, not the slowest of a
// batch's.
func (s *Server) syncLoop() {
	defer s.loops.Done()
	defer close(s.syncq)
	t := time.NewTicker(s.cfg.SyncTick)
	defer t.Stop()
	var due []*stream
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		s.mu.Lock()
		for _, st := range s.streams {
			st.mu.Lock()
			if st.state == stateAttached && st.broken == nil && !st.syncing && !now.Before(st.nextFlush) {
				st.syncing = true
				st.nextFlush = now.Add(s.cfg.AckInterval)
				due = append(due, st)
			}
			st.mu.Unlock()
		}
		s.mu.Unlock()
		for _, st := range due {
			select {
			case s.syncq <- st:
			case <-s.quit:
				return
			}
		}
		clear(due)
		due = due[:0]
	}
}

// requestSync hands st to the sync workers unless it is there already or
// the queue is full (the ticker then gets it). No allocation: it runs on
// the frame read path.
func (s *Server) requestSync(st *stream) {
	st.mu.Lock()
	if st.state != stateAttached || st.broken != nil || st.syncing {
		st.mu.Unlock()
		return
	}
	st.syncing = true
	st.nextFlush = time.Now().Add(s.cfg.AckInterval)
	st.mu.Unlock()
	select {
	case s.syncq <- st:
	default:
		st.mu.Lock()
		st.syncing = false
		st.mu.Unlock()
	}
}

// maxSyncers is the number of sync workers: syncs run at once so that the
// file system commits them together.
const maxSyncers = 64

// syncWorker writes, syncs and acknowledges the streams it is handed.
func (s *Server) syncWorker() {
	defer s.loops.Done()
	for st := range s.syncq {
		s.commit(st)
	}
}

// commit writes st's pending PCM to its spool, syncs it, and acknowledges
// it; a failure ends the connection, which resumes from what is durable.
func (s *Server) commit(st *stream) {
	st.mu.Lock()
	if st.state != stateAttached || st.broken != nil {
		st.syncing = false
		st.mu.Unlock()
		return
	}
	err := st.flushLocked()
	upto, file := st.written, st.file
	st.mu.Unlock()
	if err == nil && upto > st.durable.Load() {
		err = file.Sync()
	}
	st.mu.Lock()
	st.syncing = false
	c := st.conn
	if err == nil {
		st.setDurable(upto)
	} else if st.state == stateAttached {
		st.broken = err
	} else {
		c, err = nil, nil // stored or detached meanwhile: nothing to tell
	}
	st.mu.Unlock()
	switch {
	case c == nil:
	case err != nil:
		st.warn("spool write failed", err)
		c.abort(err)
	default:
		c.wakeAck()
	}
}

// janitorLoop stores streams whose resume window has ended.
func (s *Server) janitorLoop() {
	defer s.loops.Done()
	tick := min(max(s.cfg.EmptyWindow/20, 10*time.Millisecond), 5*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.expireDue()
	}
}

// expireDue starts storing every detached stream past its deadline.
func (s *Server) expireDue() {
	now := s.now()
	s.mu.Lock()
	var due []*stream
	for _, st := range s.streams {
		st.mu.Lock()
		if st.state == stateDetached && !st.expiring && !now.Before(st.deadline) {
			st.expiring = true
			due = append(due, st)
		}
		st.mu.Unlock()
	}
	s.mu.Unlock()
	for _, st := range due {
		s.finals.Add(1)
		go func() {
			defer s.finals.Done()
			select {
			case s.finalSlot <- struct{}{}:
			case <-s.quit:
				return
			}
			defer func() { <-s.finalSlot }()
			s.expire(st)
		}()
	}
}

// expire stores an abandoned stream.
func (s *Server) expire(st *stream) {
	defer func() {
		st.mu.Lock()
		st.expiring = false
		st.mu.Unlock()
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	audio, err := st.finalise(ctx, nil)
	var fe *finishError
	switch {
	case errors.Is(err, errGone), errors.Is(err, errBusy):
		// Erased with its record (logged there), or stored by another.
	case err == nil && audio == nil:
		s.log.Info("abandoned stream held no audio and is removed", keyStreamID, st.id, keyRecordID, st.m.RecordID)
	case err == nil:
		s.log.Info("abandoned stream stored", keyStreamID, st.id, keyRecordID, st.m.RecordID, keyMiB, mibBucket(audio.SizeBytes),
			keyDur, time.Since(start).Round(time.Millisecond).String())
	case asFinishError(err, &fe) && fe.permanent:
		s.log.Error("abandoned stream refused by the store and discarded", keyStreamID, st.id, keyRecordID, st.m.RecordID,
			keyCode, string(store.ErrorCode(err)))
	case asFinishError(err, &fe):
		s.log.Error("abandoned stream could not be stored; retrying later", keyStreamID, st.id, keyRecordID, st.m.RecordID,
			keyCode, string(store.ErrorCode(err)), keyErr, pathFree(err).Error())
	}
}

// recoverSpools registers the spools a previous run left: each stays
// resumable until its recorded deadline, or for a whole window from now if
// it was live when the previous run ended.
func (s *Server) recoverSpools() error {
	entries, err := readDir(s.dir)
	if err != nil {
		return err
	}
	now := s.now()
	for _, e := range entries {
		id, ok := stripExt(e.Name(), spoolExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		// Destroyed or purged while the server was down (or before its
		// RecordGone ran): the stream goes with its record, erased before
		// a rekey could copy it.
		if md, err := s.spoolMeta(s.spoolPath(id)); err == nil && md.StreamID == id {
			if gone, err := s.cfg.Store.RecordGone(md.RecordID); err == nil && gone {
				s.eraseGoneSpool(id, md.RecordID)
				continue
			}
		}
		if ok, err := s.rekeySpool(s.spoolPath(id)); err != nil {
			s.log.Warn("spool not encrypted again under the primary key; it stays under its old one", keyStreamID, id, keyErr, pathFree(err).Error())
		} else if ok {
			s.log.Info("spool encrypted again under the primary key", keyStreamID, id)
		}
		f, scan, err := spool.Open(s.spoolPath(id), s.codec, s.cfg.Keys.All(), spool.Grow1MiB)
		if err != nil {
			s.log.Warn("spool cannot be read and is left in place: is its newsroom key configured?", keyStreamID, id, keyErr, pathFree(err).Error())
			continue
		}
		var md meta
		if err := json.Unmarshal(scan.Meta, &md); err != nil || md.StreamID != id || md.Channels < 1 || md.Channels > 2 {
			f.Close()
			s.log.Warn("spool metadata is not readable; left in place", keyStreamID, id)
			continue
		}
		st := newStream(s, md)
		st.file = s.wrap(f)
		st.written = scan.DataBytes
		st.durable.Store(scan.DataBytes)
		st.state = stateDetached
		st.deadline = now.Add(s.cfg.ResumeWindow)
		if md.Deadline != nil {
			st.deadline = *md.Deadline
		}
		if scan.DataBytes == 0 {
			st.deadline = minTime(st.deadline, now.Add(s.cfg.EmptyWindow))
		}
		s.streams[id] = st
		s.countLocked(st)
		if s.byRecord[md.RecordID] == nil {
			s.byRecord[md.RecordID] = st
		}
		s.log.Info("stream found after restart; resumable until its window ends", keyStreamID, id, keyRecordID, md.RecordID, keyMiB, mibBucket(scan.DataBytes))
	}
	return nil
}
