package shred

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestData: the old database file's data is overwritten, and its
// holes are left holes, so the overwrite needs no free space (a full disk
// made it fail before it reached the pages that hold wrapped keys).
func TestData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tyst.db.old")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size, at = 8 << 20, 4 << 20
	if err := f.Truncate(size); err != nil { // sparse, as bbolt grows its file
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("wrapped record key "), 4000) // ~74 KiB
	if _, err := f.WriteAt(secret, at); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(secret[:4096], 0); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks
	}
	before := blocks()
	if before*512 >= size {
		t.Skip("this file system keeps no holes")
	}
	if err := Data(f, size); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	if after := blocks(); after != before {
		t.Fatalf("the overwrite filled holes: %d blocks, %d before", after, before)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte("wrapped record key")) {
		t.Fatal("data left after the overwrite")
	}
	if !bytes.Equal(got[1<<20:2<<20], make([]byte, 1<<20)) {
		t.Fatal("a hole was written")
	}
}

// TestFile: the file's bytes are overwritten before it is removed: a
// second name of the same file reads random bytes, not the old ones.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	path, link := filepath.Join(dir, "spool"), filepath.Join(dir, "second-name")
	secret := bytes.Repeat([]byte("interview audio "), 70000) // ~1 MiB
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	if err := File(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file is still there: %v", err)
	}
	got, err := os.ReadFile(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(secret) {
		t.Fatalf("size %d, want %d", len(got), len(secret))
	}
	if bytes.Contains(got, []byte("interview audio")) {
		t.Fatal("the old bytes are still in the file")
	}
	if bytes.Equal(got[:4096], make([]byte, 4096)) {
		t.Fatal("overwritten with zeros, want random bytes")
	}
	if err := File(path); !os.IsNotExist(err) {
		t.Fatalf("File of a missing file = %v, want not exist", err)
	}
}
