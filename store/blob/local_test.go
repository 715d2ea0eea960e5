package blob_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/store/blob"
	"tyst/store/blob/blobtest"
)

func blobOptions() blob.LocalOptions {
	return blob.LocalOptions{Names: blobNames, FanOut: true, Ext: ".bin"}
}

func exportOptions() blob.LocalOptions {
	return blob.LocalOptions{Names: exportNames, Ext: ".zip.enc"}
}

func mustLocal(tb testing.TB, root string, opts blob.LocalOptions) *blob.Local {
	tb.Helper()
	l, err := blob.NewLocal(root, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func TestLocal_Blobs(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return mustLocal(t, filepath.Join(t.TempDir(), "blobs"), blobOptions())
	}, blobName)
}

func TestLocal_Exports(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return mustLocal(t, filepath.Join(t.TempDir(), "exports"), exportOptions())
	}, exportName)
}

// canaryRoot returns a store root whose path holds a canary, so a test can
// tell a leaked path in an error.
func canaryRoot(t *testing.T) (parent, root string) {
	t.Helper()
	parent = filepath.Join(t.TempDir(), "canary-source-name")
	return parent, filepath.Join(parent, "blobs")
}

// mustNoPath fails if err's text holds a path or the canary.
func mustNoPath(t *testing.T, err error, paths ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "canary") || strings.Contains(msg, "/") {
		t.Fatalf("error carries a path: %q", msg)
	}
	for _, p := range paths {
		if strings.Contains(msg, p) {
			t.Fatalf("error carries a path: %q", msg)
		}
	}
}

func mustMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode(); got != want {
		t.Fatalf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

func mustWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustFileContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
}

func mustNames(t *testing.T, s blob.Store) []string {
	t.Helper()
	var names []string
	if err := s.List(func(i blob.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func mustCommit(t *testing.T, s blob.Store, name, content string) {
	t.Helper()
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(name); err != nil {
		t.Fatal(err)
	}
}

// tempFiles returns the names in the temp directory.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestLocal_Layout: objects land where the blob directory always put them,
// files 0600 and directories 0700, the temp file too.
func TestLocal_Layout(t *testing.T) {
	t.Run("Blobs", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		s := mustLocal(t, root, blobOptions())
		w, err := s.Create()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("ciphertext"))
		tmp := tempFiles(t, root)
		if len(tmp) != 1 || !strings.HasPrefix(tmp[0], "up-") || !strings.HasSuffix(tmp[0], ".tmp") {
			t.Fatalf("temp directory holds %v, want one up-*.tmp", tmp)
		}
		mustMode(t, filepath.Join(root, "tmp", tmp[0]), 0o600)
		name := blobName(3)
		if err := w.Commit(name); err != nil {
			t.Fatal(err)
		}
		mustFileContent(t, filepath.Join(root, name[:2], name+".bin"), "ciphertext")
		mustMode(t, filepath.Join(root, name[:2], name+".bin"), 0o600)
		for _, dir := range []string{root, filepath.Join(root, "tmp"), filepath.Join(root, name[:2])} {
			mustMode(t, dir, fs.ModeDir|0o700)
		}
		if tmp := tempFiles(t, root); len(tmp) != 0 {
			t.Fatalf("temp directory holds %v after Commit", tmp)
		}
	})
	t.Run("Exports", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "exports")
		s := mustLocal(t, root, exportOptions())
		mustCommit(t, s, exportName(1), "package")
		path := filepath.Join(root, exportName(1)+".zip.enc")
		mustFileContent(t, path, "package")
		mustMode(t, path, 0o600)
		mustMode(t, root, fs.ModeDir|0o700)
	})
	t.Run("Reopen", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		mustCommit(t, mustLocal(t, root, blobOptions()), blobName(1), "kept")
		if got := mustNames(t, mustLocal(t, root, blobOptions())); !slices.Equal(got, []string{blobName(1)}) {
			t.Fatalf("a new Local lists %v, want the object of the first", got)
		}
	})
}

// failingDisk returns ENOSPC, with a path in the error as os.File does,
// once limit bytes are written.
type failingDisk struct {
	w     io.Writer
	limit int
}

func (d *failingDisk) Write(p []byte) (int, error) {
	if len(p) > d.limit {
		n, _ := d.w.Write(p[:d.limit])
		d.limit = 0
		return n, &fs.PathError{Op: "write", Path: "/data/canary-source-name/blobs/tmp/up-1.tmp", Err: syscall.ENOSPC}
	}
	d.limit -= len(p)
	return d.w.Write(p)
}

// TestLocal_DiskFull: a full disk surfaces as ENOSPC without a path, and
// the failed write leaves no temp file behind, even before Abort.
func TestLocal_DiskFull(t *testing.T) {
	_, root := canaryRoot(t)
	opts := blobOptions()
	opts.WrapWriter = func(w io.Writer) io.Writer { return &failingDisk{w: w, limit: 5000} }
	s := mustLocal(t, root, opts)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 4000)); err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(make([]byte, 4000))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write err=%v, want ENOSPC", err)
	}
	mustNoPath(t, err, root)
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("temp directory holds %v after the failed write", tmp)
	}
	if err := w.Commit(blobName(1)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Commit after the failure: err=%v, want the ENOSPC again", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if got := mustNames(t, s); len(got) != 0 {
		t.Fatalf("List=%v after a failed write", got)
	}
}

// TestLocal_ErrorsHaveNoPath provokes the errors a disk can give and shows
// that none names a path, while the errno stays visible.
func TestLocal_ErrorsHaveNoPath(t *testing.T) {
	parent, root := canaryRoot(t)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Run("RootIsAFile", func(t *testing.T) {
		mustWriteFile(t, root, "not a directory")
		defer os.Remove(root)
		_, err := blob.NewLocal(root, blobOptions())
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("err=%v, want ENOTDIR", err)
		}
		mustNoPath(t, err, root)
	})
	t.Run("FanOutDirIsAFile", func(t *testing.T) {
		s := mustLocal(t, root, blobOptions())
		name := blobName(5)
		mustWriteFile(t, filepath.Join(root, name[:2]), "in the way")
		w, err := s.Create()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		err = w.Commit(name)
		if !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.EEXIST) {
			t.Fatalf("err=%v, want ENOTDIR", err)
		}
		mustNoPath(t, err, root)
		if tmp := tempFiles(t, root); len(tmp) != 0 {
			t.Fatalf("temp directory holds %v after a failed Commit", tmp)
		}
	})
	t.Run("BadOptions", func(t *testing.T) {
		for setting, opts := range map[string]blob.LocalOptions{
			"Names": {Ext: ".bin"},
			"Ext":   {Names: blobNames, Ext: "bin/../x"},
		} {
			_, err := blob.NewLocal(root, opts)
			if err == nil || !strings.Contains(err.Error(), setting) {
				t.Fatalf("err=%v, want one that names %s", err, setting)
			}
			mustNoPath(t, err, root)
		}
	})
	t.Run("ReadAfterClose", func(t *testing.T) {
		s := mustLocal(t, root, blobOptions())
		mustCommit(t, s, blobName(6), "data")
		o, err := s.Open(blobName(6))
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		_, err = o.ReadAt(make([]byte, 1), 0)
		mustNoPath(t, err, root)
	})
}

// TestLocal_Symlinks: nothing below the root is reached through a symlink,
// whatever its name: not listed, not opened, not deleted, not written
// through.
func TestLocal_Symlinks(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	mustWriteFile(t, secret, "outside")

	t.Run("ObjectLink", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		s := mustLocal(t, root, blobOptions())
		name := blobName(7)
		os.MkdirAll(filepath.Join(root, name[:2]), 0o700)
		link := filepath.Join(root, name[:2], name+".bin")
		if err := os.Symlink(secret, link); err != nil {
			t.Fatal(err)
		}
		mustNotExistLocal(t, s, name)
		if err := s.Delete(name); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustFileContent(t, secret, "outside")
		if _, err := os.Lstat(link); err != nil {
			t.Fatal("Delete removed a link that is not the store's")
		}
		// Commit replaces the link itself; the target stays as it was.
		mustCommit(t, s, name, "object")
		mustFileContent(t, secret, "outside")
		mustMode(t, link, 0o600)
	})
	t.Run("FanOutDirLink", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		s := mustLocal(t, root, blobOptions())
		name := blobName(8)
		dir := t.TempDir()
		target := filepath.Join(dir, name+".bin")
		mustWriteFile(t, target, "outside")
		if err := os.Symlink(dir, filepath.Join(root, name[:2])); err != nil {
			t.Fatal(err)
		}
		mustNotExistLocal(t, s, name)
		if err := s.Delete(name); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustFileContent(t, target, "outside")
		w, err := s.Create()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("object"))
		if err := w.Commit(name); err == nil {
			t.Fatal("Commit wrote through a linked directory")
		}
		mustFileContent(t, target, "outside")
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("linked directory holds %d files, want 1", len(ents))
		}
	})
	t.Run("FlatLink", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "exports")
		s := mustLocal(t, root, exportOptions())
		if err := os.Symlink(secret, filepath.Join(root, exportName(2)+".zip.enc")); err != nil {
			t.Fatal(err)
		}
		mustNotExistLocal(t, s, exportName(2))
		s.Delete(exportName(2))
		mustFileContent(t, secret, "outside")
	})
	t.Run("TempDirLink", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		os.MkdirAll(root, 0o700)
		dir := t.TempDir()
		if err := os.Symlink(dir, filepath.Join(root, "tmp")); err != nil {
			t.Fatal(err)
		}
		_, err := blob.NewLocal(root, blobOptions())
		if err == nil {
			t.Fatal("NewLocal accepted a temp directory that is a symlink")
		}
		mustNoPath(t, err, root)
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("NewLocal wrote %d files through the link", len(ents))
		}
	})
	t.Run("LinkInTemp", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "blobs")
		s := mustLocal(t, root, blobOptions())
		link := filepath.Join(root, "tmp", "up-1.tmp")
		if err := os.Symlink(secret, link); err != nil {
			t.Fatal(err)
		}
		if n, err := s.CleanTemp(time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("CleanTemp removed %d (err %v), want 0", n, err)
		}
		mustFileContent(t, secret, "outside")
		if _, err := os.Lstat(link); err != nil {
			t.Fatal("CleanTemp removed a link")
		}
	})
	t.Run("FIFO", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "exports")
		s := mustLocal(t, root, exportOptions())
		fifo := filepath.Join(root, exportName(3)+".zip.enc")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		mustNotExistLocal(t, s, exportName(3)) // and does not hang
		if err := s.Delete(exportName(3)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(fifo); err != nil {
			t.Fatal("Delete removed a FIFO that is not the store's")
		}
	})
}

func mustNotExistLocal(t *testing.T, s blob.Store, name string) {
	t.Helper()
	if _, err := s.Stat(name); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("Stat err=%v, want ErrNotExist", err)
	}
	if _, err := s.Open(name); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("Open err=%v, want ErrNotExist", err)
	}
	if got := mustNames(t, s); slices.Contains(got, name) {
		t.Fatal("List shows what is not the store's")
	}
}

// TestLocal_ForeignFiles: files that do not match the store's names are not
// the store's: List skips them and nothing removes them.
func TestLocal_ForeignFiles(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	s := mustLocal(t, root, blobOptions())
	good := blobName(9)
	mustCommit(t, s, good, "mine")
	sub := filepath.Join(root, good[:2])
	foreign := []string{
		filepath.Join(root, "README"),
		filepath.Join(root, strings.ToUpper(good)+".bin"),
		filepath.Join(sub, strings.ToUpper(good)+".bin"),
		filepath.Join(sub, good+".txt"),
		filepath.Join(sub, good[:60]+".bin"),
		filepath.Join(root, "tmp", "notes.tmp"),
		filepath.Join(root, "tmp", "up-abc.tmp"),
	}
	other := blobName(10)
	os.MkdirAll(filepath.Join(root, "zz"), 0o700)
	foreign = append(foreign, filepath.Join(root, "zz", other+".bin")) // in the wrong directory
	old := time.Now().Add(-48 * time.Hour)
	for _, f := range foreign {
		mustWriteFile(t, f, "foreign")
		os.Chtimes(f, old, old)
	}
	if got := mustNames(t, s); !slices.Equal(got, []string{good}) {
		t.Fatalf("List=%v, want only the store's object", got)
	}
	if n, err := s.CleanTemp(time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("CleanTemp removed %d (err %v), want 0", n, err)
	}
	for _, f := range foreign {
		mustFileContent(t, f, "foreign")
	}
}

// TestLocal_CleanTempAge: CleanTemp goes by the temp file's last write:
// a crash leftover of the old blob directory goes, a live write stays.
func TestLocal_CleanTempAge(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	s := mustLocal(t, root, blobOptions())
	leftover := filepath.Join(root, "tmp", "up-123456.tmp")
	mustWriteFile(t, leftover, "crash")
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(leftover, old, old); err != nil {
		t.Fatal(err)
	}
	live, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	live.Write([]byte("live"))
	if n, err := s.CleanTemp(time.Now().Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("CleanTemp removed %d (err %v), want the leftover", n, err)
	}
	if _, err := os.Lstat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the leftover is still there")
	}
	if err := live.Commit(blobName(1)); err != nil {
		t.Fatalf("the live write: %v", err)
	}
}

// TestLocal_DeleteOverwrites: Delete overwrites the file before removing
// it; a reader that had it open sees other bytes of the same length.
func TestLocal_DeleteOverwrites(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	s := mustLocal(t, root, blobOptions())
	name := blobName(4)
	content := bytes.Repeat([]byte("ciphertext"), 1000)
	mustCommit(t, s, name, string(content))
	o, err := s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := s.Delete(name); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(content))
	if n, err := o.ReadAt(got, 0); n != len(content) || err != nil {
		t.Fatalf("read of the deleted file: n=%d err=%v", n, err)
	}
	if bytes.Equal(got, content) || bytes.Contains(got, []byte("ciphertext")) {
		t.Fatal("Delete left the old bytes in place")
	}
	if _, err := os.Lstat(filepath.Join(root, name[:2], name+".bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the file is still there")
	}
}

// BenchmarkLocal_Put writes, syncs and commits an 8 MiB object, then
// deletes it (overwrite included).
func BenchmarkLocal_Put(b *testing.B) {
	s, err := blob.NewLocal(filepath.Join(b.TempDir(), "blobs"), blobOptions())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(8 << 20)
	b.ReportAllocs()
	for b.Loop() {
		w, err := s.Create()
		if err != nil {
			b.Fatal(err)
		}
		for range 128 {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(blobName(1)); err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(blobName(1)); err != nil {
			b.Fatal(err)
		}
	}
}
