// Package blob stores opaque objects — ciphertext under opaque names — for
// tyst's encrypted audio blobs and export packages (DESIGN §3). Nothing that
// passes through it may be plaintext or a name that says anything about a
// source; the callers encrypt (store/fstream) and name (keyed hashes, random
// ids) before they get here.
//
// Store is the one interface every backend implements: Local (a directory on
// the local disk, the layout tyst has always used) and Memory (for tests, and
// to show the interface does not lean on a file system). A later
// S3-compatible backend needs nothing but a new implementation that passes
// the conformance suite in store/blob/blobtest.
//
// The contract, which blobtest checks:
//   - A write is invisible until Commit, and Commit is atomic: a reader sees
//     the whole object or nothing, never a part. Commit under a name that
//     exists replaces the object atomically; an Object opened before goes on
//     reading the version it opened.
//   - Read after write: once Commit returns, Open, Stat and List see the
//     object.
//   - Names are validated by every method: at most MaxNameLen characters of
//     0-9, a-z and "-", matching the store's own pattern. A bad name is
//     ErrBadName and changes nothing.
//   - Errors carry no path and no name, but keep their cause (an errno such
//     as syscall.ENOSPC stays visible to errors.Is).
package blob

import (
	"errors"
	"io"
	"regexp"
	"time"

	"tyst/internal/pathfree"
)

// Store holds opaque objects by name. Its methods are safe for concurrent
// use; a Writer or Object is used by one goroutine at a time.
type Store interface {
	// Create begins a new object, invisible until its Writer commits.
	Create() (Writer, error)
	// Open opens a committed object for reading. Returns ErrNotExist when
	// there is none under name.
	Open(name string) (Object, error)
	// Stat describes a committed object. Returns ErrNotExist when there is
	// none under name.
	Stat(name string) (Info, error)
	// List calls fn for every committed object, in no particular order,
	// and stops at the first error fn returns, which List returns. fn may
	// call the store's other methods (Delete, say).
	List(fn func(Info) error) error
	// Delete removes the object under name, overwriting it first where the
	// backend can (best effort: an SSD or a copy-on-write file system may
	// keep the old blocks). An absent object is no error. An Object still
	// open may read the overwritten bytes.
	Delete(name string) error
	// CleanTemp removes the writes in progress last written to before
	// olderThan (a crash leaves them behind) and returns how many it
	// removed. The Writer of a removed write fails to commit.
	CleanTemp(olderThan time.Time) (int, error)
}

// Writer is an object being written. After Commit or Abort, whatever their
// result, it is finished: Write and Commit return an error. A Writer whose
// Write failed has already discarded what it wrote.
type Writer interface {
	io.Writer
	// Commit makes what was written the object name, replacing any object
	// of that name. A failed Commit leaves nothing visible.
	Commit(name string) error
	// Abort discards the write. It is a no-op after Commit or Abort, so
	// `defer w.Abort()` is the way to make sure.
	Abort() error
}

// Object is a committed object opened for reading. ReadAt returns io.EOF,
// unwrapped, at the end; after Close it returns an error that matches
// fs.ErrClosed.
type Object interface {
	io.ReaderAt
	io.Closer
	// Size returns the object's size in bytes.
	Size() int64
}

// Info describes a committed object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time // when it was last written (about when it was committed)
}

// MaxNameLen is the longest name any store accepts.
const MaxNameLen = 128

// ErrNotExist is returned by Open and Stat for a name that holds no object.
var ErrNotExist = errors.New("blob: no such object")

// ErrBadName is returned for a name that breaks the store's rules; nothing
// is changed.
var ErrBadName = errors.New("blob: bad object name")

// ErrFinished is returned by Write and Commit of a Writer already committed
// or aborted.
var ErrFinished = errors.New("blob: write already committed or aborted")

// nameChars is what every name is made of, whatever the store's pattern:
// nothing that could step out of a directory or hide in a case-insensitive
// file system.
var nameChars = regexp.MustCompile(`^[0-9a-z][0-9a-z-]*$`)

// checkName returns ErrBadName unless name follows the rules of every store
// and matches pattern (when there is one).
func checkName(pattern *regexp.Regexp, name string) error {
	if len(name) > MaxNameLen || !nameChars.MatchString(name) || pattern != nil && !pattern.MatchString(name) {
		return ErrBadName
	}
	return nil
}

// stripPath drops the path of err's path error (package pathfree).
func stripPath(err error) error { return pathfree.Strip(err) }
