package blob

import (
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sync"
	"time"
)

// MemoryOptions configure a Memory store.
type MemoryOptions struct {
	// Names is the pattern every name must match, on top of the rules of
	// every store (see Store). Nil: those rules alone.
	Names *regexp.Regexp
	// Now is the clock for ModTime and CleanTemp; nil is time.Now.
	Now func() time.Time
}

// Memory is a Store that keeps objects in memory: for tests, and as the
// proof that the interface needs no file system. A write in progress holds
// all its bytes.
type Memory struct {
	names *regexp.Regexp
	now   func() time.Time

	mu      sync.Mutex
	objects map[string]memObject
	writes  map[*memWriter]struct{} // in progress
}

// memObject is a committed object; its data is never changed, so readers
// share it.
type memObject struct {
	data []byte
	mod  time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{names: opts.Names, now: opts.Now, objects: map[string]memObject{}, writes: map[*memWriter]struct{}{}}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Create implements Store.
func (m *Memory) Create() (Writer, error) {
	w := &memWriter{m: m}
	m.mu.Lock()
	defer m.mu.Unlock()
	w.last = m.now()
	m.writes[w] = struct{}{}
	return w, nil
}

// Open implements Store.
func (m *Memory) Open(name string) (Object, error) {
	if err := checkName(m.names, name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return nil, ErrNotExist
	}
	return &memReader{data: o.data}, nil
}

// Stat implements Store.
func (m *Memory) Stat(name string) (Info, error) {
	if err := checkName(m.names, name); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return Info{}, ErrNotExist
	}
	return Info{Name: name, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

// List implements Store. It calls fn on a snapshot taken under the lock, so
// fn may call the store.
func (m *Memory) List(fn func(Info) error) error {
	m.mu.Lock()
	infos := make([]Info, 0, len(m.objects))
	for name, o := range m.objects {
		infos = append(infos, Info{Name: name, Size: int64(len(o.data)), ModTime: o.mod})
	}
	m.mu.Unlock()
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements Store. Readers of the object keep their copy: memory
// has no blocks to overwrite.
func (m *Memory) Delete(name string) error {
	if err := checkName(m.names, name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, name)
	return nil
}

// CleanTemp implements Store.
func (m *Memory) CleanTemp(olderThan time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for w := range m.writes {
		if w.last.Before(olderThan) {
			delete(m.writes, w)
			n++
		}
	}
	return n, nil
}

// memWriter is a Memory write in progress.
type memWriter struct {
	m    *Memory
	buf  []byte
	last time.Time // guarded by m.mu
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrFinished
	}
	w.buf = append(w.buf, p...)
	w.m.mu.Lock()
	w.last = w.m.now()
	w.m.mu.Unlock()
	return len(p), nil
}

func (w *memWriter) Commit(name string) error {
	if w.done {
		return ErrFinished
	}
	w.done = true
	m := w.m
	m.mu.Lock()
	defer m.mu.Unlock()
	_, live := m.writes[w]
	delete(m.writes, w)
	if err := checkName(m.names, name); err != nil {
		return err
	}
	if !live {
		return fmt.Errorf("blob: commit: the write was cleaned away")
	}
	m.objects[name] = memObject{data: w.buf, mod: m.now()}
	w.buf = nil
	return nil
}

func (w *memWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf = nil
	w.m.mu.Lock()
	delete(w.m.writes, w)
	w.m.mu.Unlock()
	return nil
}

// memReader reads a committed object's data.
type memReader struct {
	data   []byte
	closed bool
}

func (r *memReader) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case r.closed:
		return 0, fmt.Errorf("blob: read: %w", fs.ErrClosed)
	case off < 0:
		return 0, fmt.Errorf("blob: read: negative offset")
	case len(p) == 0:
		return 0, nil
	case off >= int64(len(r.data)):
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *memReader) Close() error {
	if r.closed {
		return fs.ErrClosed
	}
	r.closed = true
	return nil
}

func (r *memReader) Size() int64 { return int64(len(r.data)) }
