package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

// wavHeaderSize is the size of the canonical PCM WAV header.
const wavHeaderSize = 44

// wavHeader returns the 44-byte header of a PCM WAV holding n bytes of
// 16-bit samples at rate Hz on channels channels.
func wavHeader(n int64, rate, channels int) []byte {
	h := make([]byte, wavHeaderSize)
	blockAlign := 2 * channels
	copy(h[0:4], "RIFF")
	binary.LittleEndian.PutUint32(h[4:8], uint32(36+n))
	copy(h[8:12], "WAVE")
	copy(h[12:16], "fmt ")
	binary.LittleEndian.PutUint32(h[16:20], 16)
	binary.LittleEndian.PutUint16(h[20:22], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:24], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:28], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:32], uint32(rate*blockAlign))
	binary.LittleEndian.PutUint16(h[32:34], uint16(blockAlign))
	binary.LittleEndian.PutUint16(h[34:36], 16)
	copy(h[36:40], "data")
	binary.LittleEndian.PutUint32(h[40:44], uint32(n))
	return h
}

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

// removeSync removes path and syncs its directory.
func removeSync(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

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
