package blob

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// localWriter is a Local write in progress: a temp file in <root>/tmp.
type localWriter struct {
	l    *Local
	tmp  int    // the temp directory, open until the writer is finished
	name string // the temp file's name in it
	f    *os.File
	w    io.Writer // f, or what WrapWriter made of it
	err  error     // why the write failed, once it has
	done bool
}

func (w *localWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, w.finishedErr()
	}
	n, err := w.w.Write(p)
	if err != nil {
		return n, w.fail(fmt.Errorf("blob: write: %w", stripPath(err)))
	}
	return n, nil
}

// Commit syncs, closes and renames the temp file into place, then syncs
// the directories so the rename survives a power cut.
func (w *localWriter) Commit(name string) error {
	if w.done {
		return w.finishedErr()
	}
	if err := w.l.checkName(name); err != nil {
		return w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("blob: commit: %w", stripPath(err)))
	}
	// Close, then rename: the file is complete before it gets its name.
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return w.fail(fmt.Errorf("blob: commit: %w", stripPath(err)))
	}
	root, dir, err := w.l.openObjectDir(name, true)
	if err != nil {
		return w.fail(fmt.Errorf("blob: commit: %w", err))
	}
	defer closeDirs(root, dir)
	_, file := w.l.fileName(name)
	if err := unix.Renameat(w.tmp, w.name, dir, file); err != nil {
		return w.fail(fmt.Errorf("blob: commit: rename: %w", err))
	}
	w.finish()
	if err := unix.Fsync(dir); err != nil {
		return fmt.Errorf("blob: commit: sync directory: %w", err)
	}
	if dir != root {
		if err := unix.Fsync(root); err != nil {
			return fmt.Errorf("blob: commit: sync directory: %w", err)
		}
	}
	return nil
}

// Abort removes the temp file.
func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	err := w.discard()
	w.finish()
	if err != nil {
		return fmt.Errorf("blob: abort: %w", err)
	}
	return nil
}

// fail records err as the reason the write is over, removes the temp file
// and returns err.
func (w *localWriter) fail(err error) error {
	w.discard()
	w.err = err
	w.finish()
	return err
}

// discard closes and removes the temp file.
func (w *localWriter) discard() error {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if err := unix.Unlinkat(w.tmp, w.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// finish releases the temp directory; the writer is done.
func (w *localWriter) finish() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	unix.Close(w.tmp)
	w.done = true
}

func (w *localWriter) finishedErr() error {
	if w.err != nil {
		return w.err
	}
	return ErrFinished
}

// localObject is an open object file.
type localObject struct {
	f    *os.File
	size int64
}

// ReadAt implements io.ReaderAt; io.EOF stays unwrapped.
func (o *localObject) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("blob: read: %w", stripPath(err))
	}
	return n, err
}

func (o *localObject) Close() error {
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("blob: close: %w", stripPath(err))
	}
	return nil
}

func (o *localObject) Size() int64 { return o.size }
