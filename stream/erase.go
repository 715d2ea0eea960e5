package stream

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"tyst/internal/dirsync"
	"tyst/internal/shred"
	"tyst/stream/dump"
	"tyst/stream/proto"
)

// erasingExt marks a spool being overwritten: a start erases such files
// and never resumes them.
const erasingExt = ".erasing"

// errGone ends a stream whose record was destroyed or purged.
var errGone = &wsError{code: proto.CodeRecordDestroyed,
	message: "the record was destroyed: this stream and the audio it held are erased, nothing was stored"}

// RecordGone ends every stream of record id, which was destroyed or
// purged, live or resumable: its client is told record_destroyed (close
// 1008) and sends nothing more, its spool is overwritten and removed, its
// slot freed, and nothing of it is stored; a resume of it is answered
// unknown_stream. A stream being stored meanwhile is erased when its
// store call ends (the store refuses it, or the destroy removes what was
// stored). The record's debug dumps go too, those of streams stored
// earlier (or by an earlier run, or while the dump was on) included. It
// returns once the spools and dumps are erased. Register it with
// store.DB.OnRecordGone; it calls nothing of the store.
func (s *Server) RecordGone(id uint64) {
	s.mu.Lock()
	if s.closed {
		// The next start erases the spools: RecordGone of the store.
		s.mu.Unlock()
		return
	}
	var sts []*stream
	for _, st := range s.streams {
		if st.m.RecordID == id {
			sts = append(sts, st)
		}
	}
	for sid, fin := range s.finished {
		if fin.recordID == id {
			fin.gone, fin.stored = true, 0
			s.finished[sid] = fin
		}
	}
	s.mu.Unlock()
	for _, st := range sts {
		st.erase()
	}
	s.eraseRecordDumps(id)
}

// AudioRemoved erases the debug dumps of record id, whose audio was
// removed (a dump being written is left: it is of a stream not yet
// stored). Register it with store.DB.OnAudioRemoved.
func (s *Server) AudioRemoved(id uint64) { s.eraseRecordDumps(id) }

// eraseRecordDumps erases the closed debug dumps of record id, whether or
// not the dump is on now.
func (s *Server) eraseRecordDumps(id uint64) {
	dir := filepath.Join(s.cfg.DataDir, dump.DirName)
	if _, err := dump.EraseRecords(dir, s.cfg.Keys.All(), []uint64{id}, s.cfg.Dumper.Writing); err != nil {
		s.log.Warn("debug dumps of a record not erased", keyRecordID, id, keyErr, err.Error())
	}
}

// erase ends the stream of a destroyed record: the connection is told
// and closed, the spool overwritten and removed, the slot freed; the
// stream is never stored. A stream being stored is marked, and its
// finalisation erases it.
func (st *stream) erase() {
	st.mu.Lock()
	st.gone = true
	if st.state == stateFinalising || st.state == stateFinished {
		st.mu.Unlock()
		return
	}
	c := st.conn
	st.conn, st.state, st.pending = nil, stateFinished, nil
	st.closeDumpLocked()
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
	st.mu.Unlock()
	if c != nil {
		c.end(errGone)
	}
	if err := st.srv.eraseSpool(st.id); err != nil {
		st.warn("spool of a destroyed record not erased; the next start erases it", err)
	}
	st.srv.eraseDump(st.id, st.m.RecordID)
	st.srv.forget(st)
	st.srv.rememberFinished(st, 0, true)
	st.srv.log.Info("stream of a destroyed record ended and erased", keyStreamID, st.id, keyRecordID, st.m.RecordID)
}

// eraseDump erases the debug dumps of stream id, whose record recordID
// was destroyed (when the dump is on).
func (s *Server) eraseDump(id string, recordID uint64) {
	if s.cfg.Dumper == nil {
		return
	}
	if _, err := s.cfg.Dumper.Erase(id); err != nil {
		s.log.Warn("debug dump of a destroyed record not erased", keyStreamID, id, keyRecordID, recordID, keyErr, err.Error())
	}
}

func (s *Server) erasingPath(id string) string { return filepath.Join(s.dir, id+erasingExt) }

// eraseSpool overwrites and removes spool id (markErasing, then
// shredMarked). A spool already gone is no error.
func (s *Server) eraseSpool(id string) error {
	if err := s.markErasing(id); err != nil {
		return err
	}
	return s.shredMarked(id)
}

// markErasing renames spool id to its erasing name and syncs the
// directory: from here on no start takes it for a stream, whatever a
// crash leaves of it.
func (s *Server) markErasing(id string) error {
	err := os.Rename(s.spoolPath(id), s.erasingPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone already, or marked by an earlier try
	}
	if err != nil {
		return err
	}
	return dirsync.Sync(s.dir)
}

// shredMarked overwrites spool id under its erasing name with random
// bytes, syncs it, removes it and syncs the directory.
func (s *Server) shredMarked(id string) error {
	err := shred.File(s.erasingPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return dirsync.Sync(s.dir)
}

// shredLater overwrites and removes the marked spool id in the
// background (Close waits for it): a stop answers stored without waiting
// for the overwrite of a long stream's spool.
func (s *Server) shredLater(st *stream) {
	s.finals.Add(1)
	go func() {
		defer s.finals.Done()
		if err := s.shredMarked(st.id); err != nil {
			st.warn("spool not overwritten; the next start erases it", err)
		}
	}()
}

// eraseGoneSpool erases spool id (and its debug dump) of record, which
// was destroyed or purged while the server was down.
func (s *Server) eraseGoneSpool(id string, record uint64) {
	if err := s.eraseSpool(id); err != nil {
		s.log.Warn("spool of a destroyed record not erased", keyStreamID, id, keyRecordID, record, keyErr, pathFree(err).Error())
	} else {
		s.log.Info("spool of a destroyed record found after restart and erased", keyStreamID, id, keyRecordID, record)
	}
	s.eraseDump(id, record)
}

// sweepLeftovers finishes what a previous run left when it ended: the
// erasure of spools it was overwriting, and the copies of spools a rekey
// at its start was writing (their spools are whole under the old name).
func (s *Server) sweepLeftovers() error {
	entries, err := readDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if id, ok := stripExt(e.Name(), erasingExt); ok {
			if err := s.shredMarked(id); err != nil {
				s.log.Warn("spool being erased at the last stop not erased", keyStreamID, id, keyErr, pathFree(err).Error())
				continue
			}
			s.log.Info("spool being erased at the last stop erased", keyStreamID, id)
		} else if id, ok := stripExt(e.Name(), spoolExt+rekeyExt); ok {
			if err := shred.File(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("copy of a spool left by an interrupted rekey not erased", keyStreamID, id, keyErr, pathFree(err).Error())
			}
		}
	}
	return dirsync.Sync(s.dir)
}

// stripExt returns the stream id of a file named <id><ext>.
func stripExt(name, ext string) (string, bool) {
	if len(name) != proto.StreamIDLen+len(ext) || name[proto.StreamIDLen:] != ext {
		return "", false
	}
	id := name[:proto.StreamIDLen]
	return id, proto.ValidStreamID(id)
}

// end ends the connection from another goroutine with we: the error and
// the close go out together (no ack after them), and the reader wakes
// within a second.
func (c *conn) end(we *wsError) {
	c.writeClose(closeCode(we.code), &proto.Error{Code: we.code, Message: we.message, Offset: we.offset})
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
}
