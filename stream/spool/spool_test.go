package spool_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/stream/spool"
)

func mustKey(tb testing.TB) *fernet.Key {
	tb.Helper()
	var k fernet.Key
	if err := k.Generate(); err != nil {
		tb.Fatal(err)
	}
	return &k
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readAll returns the metadata chunks and the data of the spool at path.
func readAll(tb testing.TB, path string, keys []*fernet.Key) (metas []string, data []byte) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := spool.NewReader(f, keys)
	for {
		c, err := r.Next()
		if errors.Is(err, io.EOF) {
			return metas, data
		}
		if err != nil {
			tb.Fatal(err)
		}
		if c.Meta {
			metas = append(metas, string(c.Data))
		} else {
			data = append(data, c.Data...)
		}
	}
}

func TestSpool_RoundTrip(t *testing.T) {
	key := mustKey(t)
	path := filepath.Join(t.TempDir(), "s.spool")
	sf, err := spool.Create(path, spool.NewCodec(key), []byte(`{"m":1}`), spool.Grow1MiB)
	if err != nil {
		t.Fatal(err)
	}
	want := randomBytes(1, 300_000)
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 1+int(rest[0])*97) // short chunks of many sizes
		if err := sf.Append(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := sf.AppendMeta([]byte(`{"m":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := sf.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := sf.Close(); err != nil {
		t.Fatal(err)
	}
	metas, got := readAll(t, path, []*fernet.Key{key})
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
	}
	if len(metas) != 2 || metas[0] != `{"m":1}` || metas[1] != `{"m":2}` {
		t.Fatalf("metas = %q", metas)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size()%spool.Grow1MiB != 0 {
		t.Fatalf("size %d is not a multiple of 1 MiB", fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, want[1000:1032]) {
		t.Fatal("plaintext found in the spool")
	}

	// Reopen: the scan finds everything, and appends continue the file.
	sf, scan, err := spool.Open(path, spool.NewCodec(key), []*fernet.Key{key}, spool.Grow1MiB)
	if err != nil {
		t.Fatal(err)
	}
	if scan.DataBytes != int64(len(want)) || string(scan.Meta) != `{"m":2}` {
		t.Fatalf("scan = %d bytes, meta %q", scan.DataBytes, scan.Meta)
	}
	more := randomBytes(2, 5000)
	if err := sf.Append(more); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	_, got = readAll(t, path, []*fernet.Key{key})
	if !bytes.Equal(got, append(want, more...)) {
		t.Fatal("data after reopen and append differs")
	}
}

// TestSpool_SizeRevealsOnlyMiB checks that two spools of very different
// lengths under 1 MiB have the same size on disk, blocks included.
func TestSpool_SizeRevealsOnlyMiB(t *testing.T) {
	key := mustKey(t)
	dir := t.TempDir()
	var sizes, blocks []int64
	for i, n := range []int{10, 600_000} {
		path := filepath.Join(dir, string(rune('a'+i))+".spool")
		sf, err := spool.Create(path, spool.NewCodec(key), []byte(`{}`), spool.Grow1MiB)
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(uint64(i), n)
		for len(data) > 0 {
			k := min(len(data), spool.MaxChunk)
			if err := sf.Append(data[:k]); err != nil {
				t.Fatal(err)
			}
			data = data[k:]
		}
		sf.Sync()
		sf.Close()
		var st syscallStat
		if err := stat(path, &st); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.size)
		blocks = append(blocks, st.blocks)
	}
	if sizes[0] != sizes[1] || sizes[0] != spool.Grow1MiB {
		t.Fatalf("sizes %v, want both 1 MiB", sizes)
	}
	if blocks[0] != blocks[1] {
		t.Fatalf("allocated blocks %v differ: the disk usage tells the length", blocks)
	}
}

// TestSpool_NoAudioCostsItsMetadata: a spool without data is only its
// metadata lines, on disk too (a start that never sends audio costs no
// MiB), across a reopen and further metadata; its first data chunk grows
// it to the step.
func TestSpool_NoAudioCostsItsMetadata(t *testing.T) {
	key := mustKey(t)
	path := filepath.Join(t.TempDir(), "s.spool")
	sf, err := spool.Create(path, spool.NewCodec(key), []byte(`{"meta":1}`), spool.Grow1MiB)
	if err != nil {
		t.Fatal(err)
	}
	sf.AppendMeta([]byte(`{"meta":2}`))
	sf.Sync()
	sf.Close()
	sf, scan, err := spool.Open(path, spool.NewCodec(key), []*fernet.Key{key}, spool.Grow1MiB)
	if err != nil || scan.DataBytes != 0 || scan.Chunks != 2 {
		t.Fatalf("reopen: %v %+v", err, scan)
	}
	if err := sf.AppendMeta([]byte(`{"meta":3}`)); err != nil {
		t.Fatal(err)
	}
	sf.Sync()
	var st syscallStat
	if err := stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.size != sf.End() || st.size > 1024 || st.blocks*512 > 8192 {
		t.Fatalf("a spool of three metadata chunks takes %d bytes (%d blocks), want its %d bytes of tokens", st.size, st.blocks, sf.End())
	}
	if err := sf.Append(randomBytes(5, 640)); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	if err := stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.size != spool.Grow1MiB {
		t.Fatalf("after the first data chunk the spool is %d bytes, want 1 MiB", st.size)
	}
	metas, data := readAll(t, path, []*fernet.Key{key})
	if len(metas) != 3 || len(data) != 640 {
		t.Fatalf("read %d metadata chunks and %d data bytes", len(metas), len(data))
	}
}

// TestSpool_TornTail writes garbage and a stale valid token after the end,
// as a crash can leave them, and checks that Open ends the spool at the last
// valid token and zeroes the rest, so an append never revives the stale one.
func TestSpool_TornTail(t *testing.T) {
	key := mustKey(t)
	keys := []*fernet.Key{key}
	path := filepath.Join(t.TempDir(), "s.spool")
	sf, err := spool.Create(path, spool.NewCodec(key), []byte(`{}`), spool.Grow1MiB)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := randomBytes(1, 4000), randomBytes(2, 4000), randomBytes(3, 4000)
	sf.Append(a)
	sf.Append(b)
	sf.Append(c)
	sf.Close()

	// Tear chunk b: overwrite its first bytes. Chunk c stays a valid token
	// with the right index behind it.
	raw, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(raw, []byte("\n"))
	offB := len(lines[0]) + len(lines[1])
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte("XXXXXXXX"), int64(offB))
	f.Close()

	sf, scan, err := spool.Open(path, spool.NewCodec(key), keys, spool.Grow1MiB)
	if err != nil {
		t.Fatal(err)
	}
	if scan.DataBytes != int64(len(a)) {
		t.Fatalf("scan found %d bytes, want %d (up to the torn chunk)", scan.DataBytes, len(a))
	}
	// Append a chunk of exactly b's length: without zeroing, c would follow
	// it with the next index and be read as data.
	b2 := randomBytes(4, len(b))
	if err := sf.Append(b2); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	_, got := readAll(t, path, keys)
	if !bytes.Equal(got, append(append([]byte(nil), a...), b2...)) {
		t.Fatalf("read %d bytes after recovery, want %d: a stale chunk came back", len(got), 2*len(a))
	}
}

func TestSpool_OpenRefusesForeign(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.spool")
	sf, err := spool.Create(path, spool.NewCodec(key), []byte(`{}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	sf.Close()
	if _, _, err := spool.Open(path, spool.NewCodec(other), []*fernet.Key{other}, 0); !errors.Is(err, spool.ErrCorrupt) {
		t.Fatalf("open under another key: %v, want ErrCorrupt", err)
	}
	zeros := filepath.Join(dir, "z.spool")
	os.WriteFile(zeros, make([]byte, 1<<20), 0o600)
	if _, _, err := spool.Open(zeros, spool.NewCodec(key), []*fernet.Key{key}, 0); !errors.Is(err, spool.ErrCorrupt) {
		t.Fatalf("open zeros: %v, want ErrCorrupt", err)
	}
	// An old key still reads; new chunks go under the codec's key.
	sf, scan, err := spool.Open(path, spool.NewCodec(other), []*fernet.Key{other, key}, 0)
	if err != nil || scan.Chunks != 1 {
		t.Fatalf("open with the old key in the ring: %v %+v", err, scan)
	}
	sf.Append([]byte("abcd"))
	sf.Close()
	if _, got := readAll(t, path, []*fernet.Key{other, key}); string(got) != "abcd" {
		t.Fatalf("got %q", got)
	}
}

// TestSpool_AnyFernetLibrary decrypts a spool line by line with fernet-go,
// as the package doc promises.
func TestSpool_AnyFernetLibrary(t *testing.T) {
	key := mustKey(t)
	path := filepath.Join(t.TempDir(), "s.spool")
	sf, _ := spool.Create(path, spool.NewCodec(key), []byte(`{"x":1}`), spool.Grow1MiB)
	sf.Append([]byte("hello "))
	sf.Append([]byte("world"))
	sf.Close()
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, spool.MaxLine), spool.MaxLine)
	var data []byte
	for sc.Scan() {
		plain := fernet.VerifyAndDecrypt(sc.Bytes(), 0, []*fernet.Key{key})
		if plain == nil {
			break // the zeros after the last token
		}
		if plain[1]&spool.FlagMeta == 0 {
			data = append(data, plain[spool.HeaderSize:]...)
		}
	}
	if string(data) != "hello world" {
		t.Fatalf("fernet-go read %q", data)
	}
}

func TestDataReader(t *testing.T) {
	key := mustKey(t)
	keys := []*fernet.Key{key}
	path := filepath.Join(t.TempDir(), "s.spool")
	sf, _ := spool.Create(path, spool.NewCodec(key), []byte(`{}`), spool.Grow1MiB)
	sf.Append([]byte("0123"))
	sf.AppendMeta([]byte(`{"y":1}`))
	sf.Append([]byte("4567"))
	sf.Close()
	f, _ := os.Open(path)
	defer f.Close()
	got, err := io.ReadAll(spool.NewDataReader(f, keys, 6))
	if err != nil || string(got) != "012345" {
		t.Fatalf("got %q, %v", got, err)
	}
	f.Seek(0, io.SeekStart)
	if _, err := io.ReadAll(spool.NewDataReader(f, keys, 9)); !errors.Is(err, spool.ErrShort) {
		t.Fatalf("reading past the end: %v, want ErrShort", err)
	}
}

func TestAppend_RefusesOversizedChunk(t *testing.T) {
	key := mustKey(t)
	sf, err := spool.Create(filepath.Join(t.TempDir(), "s.spool"), spool.NewCodec(key), []byte(`{}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if err := sf.Append(make([]byte, spool.MaxChunk+1)); err == nil {
		t.Fatal("a chunk over MaxChunk was accepted")
	}
}
