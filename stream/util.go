package stream

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"tyst/store"
	"tyst/stream/spool"

	"tyst/internal/pathfree"
)

// Log keys (STYLE §9).
const (
	keyStreamID = "stream_id"
	keyRecordID = "record_id"
	keyErr      = "err"
	keyCode     = "code"
	keyMiB      = "mib" // an audio size as its 1 MiB bucket (mibBucket), never in bytes
	keyDur      = "dur"
)

// mibBucket returns the 1 MiB bucket of an audio size of n bytes, which
// logs name instead of n: a whole number of MiB that n is under. It is the
// stream format's padding rule (store/fstream: a file's size is a function
// of n / 1 MiB), so a log shipped off the box tells no more of a
// recording's length, or of where a stream resumed, than its blob on disk.
func mibBucket(n int64) int64 { return n>>20 + 1 }

// spoolBody is the PCM of a spool as the store reads it. Its errors are
// internal_error (*store.Error), so the store does not take a damaged or
// unreadable spool for a client's incomplete upload.
type spoolBody struct{ r *spool.DataReader }

func (b *spoolBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &store.Error{Code: store.CodeInternal, Message: "internal error", Err: pathFree(err)}
	}
	return n, err
}

// pathFree drops the path of err's path error (package pathfree).
func pathFree(err error) error { return pathfree.Strip(err) }

// diskErr classifies a spool error for the client: a full disk is
// insufficient_storage, a store error stays as it is, anything else is
// internal. Paths are dropped from the cause.
func diskErr(err error) error {
	var se *store.Error
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &store.Error{Code: store.CodeDiskFull, Message: "insufficient storage", Err: pathFree(err)}
	}
	return &store.Error{Code: store.CodeInternal, Message: "internal error", Err: pathFree(err)}
}

func openRead(path string) (*os.File, error) { return os.Open(path) }

// wrap applies Config.WrapSpool.
func (s *Server) wrap(f *spool.File) SpoolFile {
	if s.cfg.WrapSpool != nil {
		return s.cfg.WrapSpool(f)
	}
	return f
}

// forget removes a finished stream from the tables.
func (s *Server) forget(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
	}
	if s.byRecord[st.m.RecordID] == st {
		delete(s.byRecord, st.m.RecordID)
	}
	s.releaseLocked(st)
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// asFinishError is errors.As for *finishError.
func asFinishError(err error, fe **finishError) bool { return errors.As(err, fe) }

// readDir lists dir; its error names no path.
func readDir(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("stream: spool directory cannot be read: %w", pathFree(err))
	}
	return entries, nil
}
