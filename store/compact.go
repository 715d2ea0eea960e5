package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/internal/dirsync"
	"tyst/internal/shred"
)

// view runs fn in a read transaction. Every transaction goes through view
// or update, so Compact can hold them back while it swaps the file.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	db.swap.RLock()
	defer db.swap.RUnlock()
	return db.bolt.View(fn)
}

// update runs fn in a write transaction; see view.
func (db *DB) update(fn func(*bolt.Tx) error) error {
	db.swap.RLock()
	defer db.swap.RUnlock()
	return db.bolt.Update(fn)
}

const (
	compactSuffix = ".compact" // a compaction in progress
	oldSuffix     = ".old"     // the file a compaction replaced, until overwritten
	// compactTxBytes bounds one transaction of the copy, so memory stays
	// flat in the database size.
	compactTxBytes = 16 << 20
)

// CompactStats says what a compaction did.
type CompactStats struct {
	BytesBefore int64
	BytesAfter  int64
	Took        time.Duration
}

// Compact copies the live keys of the database into a fresh file and swaps
// it in, so freed pages keep no wrapped key of a destroyed or purged record
// (DESIGN §4). Requests wait while the file is swapped rather than fail.
// The old file is overwritten with random bytes before it is removed (best
// effort: an SSD or a copy-on-write file system may keep old blocks).
//
// Crash safety: the copy is complete and synced before the old file is
// hard-linked aside and the copy renamed over it; a crash at any point
// leaves either the old or the new database, and Open cleans up the rest.
func (db *DB) Compact(ctx context.Context) (st CompactStats, err error) {
	defer func() { err = boundary("compact", err) }()
	start := time.Now()
	db.compactMu.Lock() // one compaction at a time
	defer db.compactMu.Unlock()
	db.swap.Lock()
	defer db.swap.Unlock()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	path := db.bolt.Path()
	if fi, err := os.Stat(path); err == nil {
		st.BytesBefore = fi.Size()
	}
	tmp := path + compactSuffix
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		os.Remove(tmp) // a full disk fails the new file's first pages
		return st, err
	}
	if err := bolt.Compact(dst, db.bolt, compactTxBytes); err != nil {
		dst.Close()
		os.Remove(tmp)
		return st, err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return st, err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return st, err
	}
	if err := db.faultAt(FaultCompactCopied); err != nil {
		os.Remove(tmp)
		return st, err
	}
	if err := db.bolt.Close(); err != nil {
		os.Remove(tmp)
		return st, err
	}
	// Keep the old file's inode reachable to overwrite it after the swap.
	old := path + oldSuffix
	os.Remove(old)
	linkErr := os.Link(path, old)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		os.Remove(old)
		return st, db.reopen(path, err)
	}
	if err := dirsync.Sync(filepath.Dir(path)); err != nil {
		return st, db.reopen(path, err)
	}
	if err := db.reopen(path, nil); err != nil {
		return st, err
	}
	if err := db.faultAt(FaultCompactRenamed); err != nil {
		return st, err // Open overwrites the old file the next time
	}
	if linkErr == nil {
		if err := shred.File(old); err != nil {
			db.log.Warn("old database file not overwritten", "err", stripPaths(err).Error())
		}
	}
	if fi, err := os.Stat(path); err == nil {
		st.BytesAfter = fi.Size()
	}
	st.Took = time.Since(start)
	db.log.Info("database compacted", "bytes_before", st.BytesBefore, "bytes_after", st.BytesAfter, "dur", st.Took.Round(time.Millisecond).String())
	return st, nil
}

// reopen opens the database file again after a swap; cause, when not
// nil, is the error to report after reopening.
func (db *DB) reopen(path string, cause error) error {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("database cannot be reopened after compaction: %w", errors.Join(cause, stripPaths(err)))
	}
	db.bolt = bdb
	return cause
}

// cleanCompaction removes what an interrupted compaction left beside the
// database at path: an unfinished copy, and the old file (overwritten
// first unless it is still the live one).
func cleanCompaction(path string) error {
	os.Remove(path + compactSuffix)
	old := path + oldSuffix
	oi, err := os.Stat(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if li, err := os.Stat(path); err == nil && os.SameFile(li, oi) {
		return os.Remove(old) // only a second name of the live file
	}
	return shred.File(old)
}
