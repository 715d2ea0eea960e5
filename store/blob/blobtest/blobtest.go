// Package blobtest is the conformance suite of store/blob: one set of tests
// that every blob.Store implementation passes, so that callers may rely on
// the contract whichever backend holds their objects (after perkeep's
// pkg/blobserver/storagetest).
package blobtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/store/blob"
)

// Run runs the suite. newStore returns a new, empty store for each subtest;
// name(i) returns the i-th of many distinct names valid in that store (the
// suite derives its bad names from them).
func Run(t *testing.T, newStore func(t *testing.T) blob.Store, name func(i int) string) {
	s := suite{newStore: newStore, name: name}
	t.Run("PutOpenReadAt", s.testPutOpenReadAt)
	t.Run("Empty", s.testEmpty)
	t.Run("Stat", s.testStat)
	t.Run("ListCommittedOnly", s.testListCommittedOnly)
	t.Run("ListStopsAtError", s.testListStopsAtError)
	t.Run("ListThenDelete", s.testListThenDelete)
	t.Run("AbortLeavesNothing", s.testAbortLeavesNothing)
	t.Run("FinishedWriter", s.testFinishedWriter)
	t.Run("CommitIsAtomic", s.testCommitIsAtomic)
	t.Run("CommitReplaces", s.testCommitReplaces)
	t.Run("Delete", s.testDelete)
	t.Run("BadNames", s.testBadNames)
	t.Run("CleanTemp", s.testCleanTemp)
	t.Run("ConcurrentWriters", s.testConcurrentWriters)
	t.Run("ClosedObject", s.testClosedObject)
}

type suite struct {
	newStore func(t *testing.T) blob.Store
	name     func(i int) string
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// mustPut writes data in a few pieces and commits it as name.
func mustPut(t *testing.T, s blob.Store, name string, data []byte) {
	t.Helper()
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 100_000)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Commit(name); err != nil {
		t.Fatal(err)
	}
}

// mustRead returns the whole object name.
func mustRead(t *testing.T, s blob.Store, name string) []byte {
	t.Helper()
	o, err := s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b := make([]byte, o.Size())
	if n, err := o.ReadAt(b, 0); n != len(b) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt whole object: n=%d of %d, err=%v", n, len(b), err)
	}
	return b
}

// mustNotExist fails unless Stat and Open report ErrNotExist for name.
func mustNotExist(t *testing.T, s blob.Store, name string) {
	t.Helper()
	if _, err := s.Stat(name); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("Stat err=%v, want ErrNotExist", err)
	}
	if _, err := s.Open(name); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("Open err=%v, want ErrNotExist", err)
	}
}

// list returns the sorted names and sizes List reports.
func list(t *testing.T, s blob.Store) []string {
	t.Helper()
	var got []string
	err := s.List(func(i blob.Info) error {
		got = append(got, fmt.Sprintf("%s:%d", i.Name, i.Size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func entry(name string, size int) string { return fmt.Sprintf("%s:%d", name, size) }

func (s suite) testPutOpenReadAt(t *testing.T) {
	st := s.newStore(t)
	data := randomBytes(t, 1<<20+12345)
	mustPut(t, st, s.name(0), data)
	o, err := st.Open(s.name(0))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got, want := o.Size(), int64(len(data)); got != want {
		t.Fatalf("Size=%d, want %d", got, want)
	}
	size := int64(len(data))
	for _, r := range []struct{ off, n int64 }{{0, 1}, {0, size}, {5, 100}, {1 << 20, 12345}, {size - 1, 1}, {size / 3, size / 3}} {
		b := make([]byte, r.n)
		n, err := o.ReadAt(b, r.off)
		if n != len(b) || err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d bytes at %d): n=%d err=%v", r.n, r.off, n, err)
		}
		if !bytes.Equal(b, data[r.off:r.off+r.n]) {
			t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", r.n, r.off)
		}
	}
	// Past the end: io.EOF, unwrapped, with the bytes there are.
	b := make([]byte, 10)
	if n, err := o.ReadAt(b, size-4); n != 4 || err != io.EOF || !bytes.Equal(b[:4], data[size-4:]) {
		t.Fatalf("ReadAt across the end: n=%d err=%v, want 4, io.EOF", n, err)
	}
	if n, err := o.ReadAt(b, size+5); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt after the end: n=%d err=%v, want 0, io.EOF", n, err)
	}
	if !bytes.Equal(mustRead(t, st, s.name(0)), data) {
		t.Fatal("a second Open reads other bytes")
	}
}

func (s suite) testEmpty(t *testing.T) {
	st := s.newStore(t)
	mustPut(t, st, s.name(0), nil)
	info, err := st.Stat(s.name(0))
	if err != nil || info.Size != 0 {
		t.Fatalf("Stat: %+v, %v; want size 0", info, err)
	}
	o, err := st.Open(s.name(0))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if n, err := o.ReadAt(make([]byte, 1), 0); o.Size() != 0 || n != 0 || err != io.EOF {
		t.Fatalf("Size=%d, ReadAt n=%d err=%v; want 0, 0, io.EOF", o.Size(), n, err)
	}
}

func (s suite) testStat(t *testing.T) {
	st := s.newStore(t)
	before := time.Now().Add(-time.Minute)
	mustPut(t, st, s.name(0), []byte("hello"))
	info, err := st.Stat(s.name(0))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != s.name(0) || info.Size != 5 || info.ModTime.Before(before) {
		t.Fatalf("Stat=%+v, want name, size 5 and a recent time", info)
	}
	mustNotExist(t, st, s.name(1))
}

func (s suite) testListCommittedOnly(t *testing.T) {
	st := s.newStore(t)
	if got := list(t, st); len(got) != 0 {
		t.Fatalf("new store lists %v", got)
	}
	for i := range 3 {
		mustPut(t, st, s.name(i), make([]byte, 10*i))
	}
	open, err := st.Create() // in progress
	if err != nil {
		t.Fatal(err)
	}
	defer open.Abort()
	open.Write([]byte("pending"))
	aborted, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	aborted.Write([]byte("aborted"))
	if err := aborted.Abort(); err != nil {
		t.Fatal(err)
	}
	want := []string{entry(s.name(0), 0), entry(s.name(1), 10), entry(s.name(2), 20)}
	slices.Sort(want)
	if got := list(t, st); !slices.Equal(got, want) {
		t.Fatalf("List=%v, want %v", got, want)
	}
}

func (s suite) testListStopsAtError(t *testing.T) {
	st := s.newStore(t)
	for i := range 3 {
		mustPut(t, st, s.name(i), []byte("x"))
	}
	stop := errors.New("stop")
	calls := 0
	err := st.List(func(blob.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List err=%v after %d calls, want fn's error after 1", err, calls)
	}
}

// testListThenDelete: fn may call the store, as an orphan sweep does.
func (s suite) testListThenDelete(t *testing.T) {
	st := s.newStore(t)
	for i := range 5 {
		mustPut(t, st, s.name(i), []byte("x"))
	}
	err := st.List(func(i blob.Info) error { return st.Delete(i.Name) })
	if err != nil {
		t.Fatal(err)
	}
	if got := list(t, st); len(got) != 0 {
		t.Fatalf("after deleting every listed object, List=%v", got)
	}
}

func (s suite) testAbortLeavesNothing(t *testing.T) {
	st := s.newStore(t)
	w, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(t, 5000)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v, want nil", err)
	}
	if got := list(t, st); len(got) != 0 {
		t.Fatalf("List=%v after Abort", got)
	}
	// An uncommitted writer leaves nothing either, and CleanTemp counts
	// nothing left of the aborted one.
	w2, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	w2.Write([]byte("never committed"))
	if got := list(t, st); len(got) != 0 {
		t.Fatalf("List=%v with a write in progress", got)
	}
	if n, err := st.CleanTemp(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("CleanTemp removed %d (err %v), want only the write in progress", n, err)
	}
	w2.Abort()
}

func (s suite) testFinishedWriter(t *testing.T) {
	st := s.newStore(t)
	committed, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	committed.Write([]byte("one"))
	if err := committed.Commit(s.name(0)); err != nil {
		t.Fatal(err)
	}
	aborted, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	for label, w := range map[string]blob.Writer{"committed": committed, "aborted": aborted} {
		if _, err := w.Write([]byte("more")); err == nil {
			t.Fatalf("Write after %s: no error", label)
		}
		if err := w.Commit(s.name(1)); err == nil {
			t.Fatalf("Commit after %s: no error", label)
		}
	}
	if err := committed.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v, want nil (a no-op)", err)
	}
	if got := mustRead(t, st, s.name(0)); string(got) != "one" {
		t.Fatalf("object=%q after the writer's later calls, want %q", got, "one")
	}
	mustNotExist(t, st, s.name(1))
}

// testCommitIsAtomic: while a large object is being written, concurrent
// readers see nothing; once committed, the whole object.
func (s suite) testCommitIsAtomic(t *testing.T) {
	st := s.newStore(t)
	data := randomBytes(t, 4<<20)
	name := s.name(0)
	committed := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for seenAfter := 0; seenAfter < 3; {
				done := false
				select {
				case <-committed:
					done = true
				default:
				}
				o, err := st.Open(name)
				if errors.Is(err, blob.ErrNotExist) {
					if done {
						errs <- errors.New("object missing after Commit returned")
						return
					}
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				b := make([]byte, o.Size())
				n, err := o.ReadAt(b, 0)
				o.Close()
				if o.Size() != int64(len(data)) || n != len(b) || err != nil && err != io.EOF || !bytes.Equal(b, data) {
					errs <- fmt.Errorf("reader saw %d of %d bytes (err %v)", n, len(data), err)
					return
				}
				if done {
					seenAfter++
				}
			}
		})
	}
	w, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; p = p[64<<10:] {
		if _, err := w.Write(p[:64<<10]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(name); err != nil {
		t.Fatal(err)
	}
	close(committed)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testCommitReplaces: Commit over an existing name swaps the whole object at
// once; readers see the old or the new one, and an Object opened before
// goes on reading the old version.
func (s suite) testCommitReplaces(t *testing.T) {
	st := s.newStore(t)
	name := s.name(0)
	// Version v is v+1 KiB of the byte v, so any mix is detectable.
	version := func(v int) []byte { return bytes.Repeat([]byte{byte(v)}, (v+1)<<10) }
	mustPut(t, st, name, version(0))
	old, err := st.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	stop := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o, err := st.Open(name)
				if err != nil {
					errs <- fmt.Errorf("Open during replace: %w", err)
					return
				}
				b := make([]byte, o.Size())
				n, err := o.ReadAt(b, 0)
				o.Close()
				if n != len(b) || err != nil && err != io.EOF || len(b) == 0 {
					errs <- fmt.Errorf("read %d of %d bytes: %v", n, len(b), err)
					return
				}
				if v := int(b[0]); !bytes.Equal(b, version(v)) {
					errs <- fmt.Errorf("reader saw a mix of versions (%d bytes starting with %d)", len(b), v)
					return
				}
			}
		})
	}
	for v := 1; v <= 30; v++ {
		mustPut(t, st, name, version(v))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustRead(t, st, name); !bytes.Equal(got, version(30)) {
		t.Fatalf("after the last Commit the object has %d bytes, want version 30", len(got))
	}
	b := make([]byte, old.Size())
	if n, err := old.ReadAt(b, 0); n != len(b) || err != nil && err != io.EOF || !bytes.Equal(b, version(0)) {
		t.Fatalf("the Object opened before reads %d bytes (err %v), want version 0", n, err)
	}
	if got := list(t, st); !slices.Equal(got, []string{entry(name, len(version(30)))}) {
		t.Fatalf("List=%v, want the one object", got)
	}
}

func (s suite) testDelete(t *testing.T) {
	st := s.newStore(t)
	if err := st.Delete(s.name(0)); err != nil {
		t.Fatalf("Delete of an absent object: %v, want nil", err)
	}
	mustPut(t, st, s.name(0), randomBytes(t, 3000))
	mustPut(t, st, s.name(1), []byte("kept"))
	if err := st.Delete(s.name(0)); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, st, s.name(0))
	if err := st.Delete(s.name(0)); err != nil {
		t.Fatalf("second Delete: %v, want nil", err)
	}
	if got := list(t, st); !slices.Equal(got, []string{entry(s.name(1), 4)}) {
		t.Fatalf("List=%v, want only the other object", got)
	}
	if got := mustRead(t, st, s.name(1)); string(got) != "kept" {
		t.Fatal("Delete touched another object")
	}
}

// badNames returns names no store may accept, derived from a good one.
func badNames(good string) map[string]string {
	return map[string]string{
		"Empty":     "",
		"DotDot":    "..",
		"Traversal": "../" + good,
		"Slash":     good[:2] + "/" + good[2:],
		"Backslash": good[:2] + `\` + good[2:],
		"Upper":     strings.ToUpper(good[:len(good)-1]) + "F",
		"TooLong":   good + strings.Repeat("0", blob.MaxNameLen),
		"Space":     good + " ",
		"NUL":       good + "\x00",
		"Dot":       "." + good,
	}
}

// testBadNames: every method refuses a bad name with ErrBadName and changes
// nothing.
func (s suite) testBadNames(t *testing.T) {
	for label, bad := range badNames(s.name(0)) {
		t.Run(label, func(t *testing.T) {
			st := s.newStore(t)
			mustPut(t, st, s.name(0), []byte("good"))
			if _, err := st.Open(bad); !errors.Is(err, blob.ErrBadName) {
				t.Fatalf("Open err=%v, want ErrBadName", err)
			}
			if _, err := st.Stat(bad); !errors.Is(err, blob.ErrBadName) {
				t.Fatalf("Stat err=%v, want ErrBadName", err)
			}
			if err := st.Delete(bad); !errors.Is(err, blob.ErrBadName) {
				t.Fatalf("Delete err=%v, want ErrBadName", err)
			}
			w, err := st.Create()
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("bad"))
			if err := w.Commit(bad); !errors.Is(err, blob.ErrBadName) {
				t.Fatalf("Commit err=%v, want ErrBadName", err)
			}
			if err := w.Abort(); err != nil {
				t.Fatalf("Abort after a refused Commit: %v", err)
			}
			if got := list(t, st); !slices.Equal(got, []string{entry(s.name(0), 4)}) {
				t.Fatalf("List=%v, want only the good object", got)
			}
			if n, err := st.CleanTemp(time.Now().Add(time.Hour)); err != nil || n != 0 {
				t.Fatalf("CleanTemp found %d writes left (err %v), want 0", n, err)
			}
		})
	}
}

// testCleanTemp: only writes in progress from before the given time go;
// their writers cannot commit; committed objects stay.
func (s suite) testCleanTemp(t *testing.T) {
	st := s.newStore(t)
	mustPut(t, st, s.name(0), []byte("committed"))
	w1, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("in progress"))
	if n, err := st.CleanTemp(time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("CleanTemp(an hour ago) removed %d (err %v), want 0", n, err)
	}
	if err := w1.Commit(s.name(1)); err != nil {
		t.Fatalf("a write newer than the cutoff was disturbed: %v", err)
	}
	w2, err := st.Create()
	if err != nil {
		t.Fatal(err)
	}
	w2.Write([]byte("left by a crash"))
	if n, err := st.CleanTemp(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("CleanTemp(in an hour) removed %d (err %v), want 1", n, err)
	}
	if err := w2.Commit(s.name(2)); err == nil {
		t.Fatal("a cleaned write committed")
	}
	mustNotExist(t, st, s.name(2))
	want := []string{entry(s.name(0), 9), entry(s.name(1), 11)}
	slices.Sort(want)
	if got := list(t, st); !slices.Equal(got, want) {
		t.Fatalf("List=%v, want %v", got, want)
	}
}

func (s suite) testConcurrentWriters(t *testing.T) {
	st := s.newStore(t)
	const n = 8
	datas := make([][]byte, n)
	for i := range datas {
		datas[i] = randomBytes(t, 50_000+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			w, err := st.Create()
			if err != nil {
				errs <- err
				return
			}
			defer w.Abort()
			for p := datas[i]; len(p) > 0; p = p[min(len(p), 7000):] {
				if _, err := w.Write(p[:min(len(p), 7000)]); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Commit(s.name(i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range n {
		if !bytes.Equal(mustRead(t, st, s.name(i)), datas[i]) {
			t.Fatalf("object %d holds other bytes", i)
		}
	}
	if got := list(t, st); len(got) != n {
		t.Fatalf("List has %d objects, want %d", len(got), n)
	}
}

func (s suite) testClosedObject(t *testing.T) {
	st := s.newStore(t)
	mustPut(t, st, s.name(0), []byte("data"))
	o, err := st.Open(s.name(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("ReadAt after Close: err=%v, want fs.ErrClosed", err)
	}
}
