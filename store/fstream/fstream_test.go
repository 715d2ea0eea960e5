package fstream_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

const C = fstream.ChunkSize

func mustKey(tb testing.TB) *fernet.Key {
	tb.Helper()
	var k fernet.Key
	if err := k.Generate(); err != nil {
		tb.Fatal(err)
	}
	return &k
}

func mustEncrypt(tb testing.TB, key *fernet.Key, plain []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	w, err := fstream.NewWriter(&out, key)
	if err != nil {
		tb.Fatal(err)
	}
	// Odd write sizes cross chunk borders at every offset.
	for p := plain; len(p) > 0; {
		n := min(len(p), 1+mrand.IntN(300_000))
		if _, err := w.Write(p[:n]); err != nil {
			tb.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// lines splits a file into its lines, each with its "\n".
func lines(enc []byte) [][]byte {
	ls := bytes.SplitAfter(enc, []byte("\n"))
	return ls[:len(ls)-1] // after the final "\n" comes an empty element
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// mustOpenLine decrypts one line with fernet-go and returns header and data.
func mustOpenLine(tb testing.TB, key *fernet.Key, line []byte) []byte {
	tb.Helper()
	msg := fernet.VerifyAndDecrypt(bytes.TrimSuffix(line, []byte("\n")), 0, []*fernet.Key{key})
	if msg == nil {
		tb.Fatal("line does not decrypt as a plain Fernet token")
	}
	return msg
}

// mustSealLine encrypts header and data into a line with fernet-go, as the
// writer does (epoch timestamp).
func mustSealLine(tb testing.TB, key *fernet.Key, msg []byte) []byte {
	tb.Helper()
	tok, err := fernet.EncryptAndSignAtTime(msg, key, time.Unix(0, 0))
	if err != nil {
		tb.Fatal(err)
	}
	return append(tok, '\n')
}

// reseal returns line re-encrypted after edit changed its header and data
// (what only a holder of the key can do).
func reseal(tb testing.TB, key *fernet.Key, line []byte, edit func(msg []byte) []byte) []byte {
	tb.Helper()
	return mustSealLine(tb, key, edit(mustOpenLine(tb, key, line)))
}

// setFlags and setIndex are edits for reseal.
func setFlags(f byte) func([]byte) []byte {
	return func(m []byte) []byte { m[1] = f; return m }
}

func setIndex(i uint64) func([]byte) []byte {
	return func(m []byte) []byte { binary.BigEndian.PutUint64(m[2:10], i); return m }
}

// flagsOf returns the flags byte of each line.
func flagsOf(tb testing.TB, key *fernet.Key, enc []byte) []byte {
	tb.Helper()
	var fs []byte
	for _, l := range lines(enc) {
		fs = append(fs, mustOpenLine(tb, key, l)[1])
	}
	return fs
}

func readAllSeeker(enc []byte, keys ...*fernet.Key) ([]byte, error) {
	rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), keys)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(rs)
}

func readAllReader(enc []byte, keys ...*fernet.Key) ([]byte, error) {
	return io.ReadAll(fstream.NewReader(bytes.NewReader(enc), keys))
}

// mustReadBoth reads enc with both readers and fails unless each returns want.
func mustReadBoth(tb testing.TB, enc, want []byte, key *fernet.Key) {
	tb.Helper()
	got, err := readAllReader(enc, key)
	if err != nil || !bytes.Equal(got, want) {
		tb.Fatalf("Reader: err=%v, equal=%v", err, bytes.Equal(got, want))
	}
	got, err = readAllSeeker(enc, key)
	if err != nil || !bytes.Equal(got, want) {
		tb.Fatalf("ReadSeeker: err=%v, equal=%v", err, bytes.Equal(got, want))
	}
}

// TestRoundTrip writes sizes across chunk borders and reads them back with
// both readers; the layout is full lines, the final data line, two padding
// lines, and the size is EncryptedSize.
func TestRoundTrip(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{0, 1, C - 1, C, C + 1, 3*C + 5, 5*C - 1} {
		plain := randomBytes(t, n)
		enc := mustEncrypt(t, key, plain)

		if got, want := int64(len(enc)), fstream.EncryptedSize(int64(n)); got != want {
			t.Fatalf("n=%d: encrypted size=%d, EncryptedSize=%d", n, got, want)
		}
		mustReadBoth(t, enc, plain, key)

		ls := lines(enc)
		if got, want := len(ls), n/C+3; got != want {
			t.Fatalf("n=%d: %d lines, want %d", n, got, want)
		}
		for i, l := range ls[:n/C] {
			if got, want := int64(len(l)), fstream.LineSize; got != want {
				t.Fatalf("n=%d: line %d is %d bytes, want %d", n, i, got, want)
			}
		}
		flags := flagsOf(t, key, enc)
		want := append(make([]byte, n/C+1), 2, 3) // data..., padding, padding+last
		if !bytes.Equal(flags, want) {
			t.Fatalf("n=%d: flags %v, want %v", n, flags, want)
		}
	}
}

// TestEncryptedSize_Buckets: the size of a file tells its plaintext size only
// to within a MiB. Two files in the same MiB have the same size; the size
// steps by LineSize at each MiB.
func TestEncryptedSize_Buckets(t *testing.T) {
	key := mustKey(t)
	pairs := [][2]int{{0, 1}, {1, C - 1}, {0, C - 1}, {C, 2*C - 1}, {C + 1, C + 700_000}, {3*C + 10, 4*C - 1}}
	for _, p := range pairs {
		a := mustEncrypt(t, key, randomBytes(t, p[0]))
		b := mustEncrypt(t, key, randomBytes(t, p[1]))
		if len(a) != len(b) {
			t.Fatalf("sizes %d and %d encrypt to %d and %d bytes, want equal", p[0], p[1], len(a), len(b))
		}
	}
	for k := int64(0); k < 6; k++ {
		lo, hi := fstream.EncryptedSize(k*C), fstream.EncryptedSize((k+1)*C-1)
		if lo != hi {
			t.Fatalf("MiB %d: EncryptedSize %d at its start, %d at its end", k, lo, hi)
		}
		if next := fstream.EncryptedSize((k + 1) * C); next-hi != fstream.LineSize {
			t.Fatalf("MiB %d: size steps by %d at the next MiB, want LineSize", k, next-hi)
		}
	}
}

// TestPlainFernet shows the promise of DESIGN §4: any Fernet library can
// decrypt a file line by line, drop the 26-byte header and skip padding
// lines (flags bit 1). Every token carries the Unix epoch, not the time of
// writing.
func TestPlainFernet(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(t, 2*C+100)
	enc := mustEncrypt(t, key, plain)
	var got []byte
	padding := 0
	for i, l := range lines(enc) {
		msg := mustOpenLine(t, key, l)
		if got, want := binary.BigEndian.Uint64(msg[2:10]), uint64(i); got != want {
			t.Fatalf("header index=%d, want %d", got, want)
		}
		raw, err := base64.URLEncoding.DecodeString(string(bytes.TrimSuffix(l, []byte("\n"))))
		if err != nil {
			t.Fatal(err)
		}
		if ts := binary.BigEndian.Uint64(raw[1:9]); ts != 0 {
			t.Fatalf("token %d timestamp=%d, want 0 (epoch)", i, ts)
		}
		if msg[1]&2 != 0 {
			padding++
			if bytes.ContainsFunc(msg[fstream.HeaderSize:], func(r rune) bool { return r != 0 }) {
				t.Fatalf("padding line %d holds non-zero data", i)
			}
			continue
		}
		got = append(got, msg[fstream.HeaderSize:]...)
	}
	if padding != 2 {
		t.Fatalf("%d padding lines, want 2", padding)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("line-by-line plaintext differs")
	}
}

// mustSeekRead reads want's bytes at offsets in an order that jumps back and
// forth, the final data chunk included, as HTTP Range playback does.
func mustSeekRead(tb testing.TB, enc, plain []byte, key *fernet.Key) {
	tb.Helper()
	rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), []*fernet.Key{key})
	if err != nil {
		tb.Fatal(err)
	}
	size := int64(len(plain))
	if got := rs.Size(); got != size {
		tb.Fatalf("Size=%d, want %d", got, size)
	}
	offs := []int64{size - 1, 0, 5, C - 3, C, 2*C + 9, size - 10, size / 2, size - 1, 0}
	for _, off := range offs {
		if off < 0 || off >= size {
			continue
		}
		if _, err := rs.Seek(off, io.SeekStart); err != nil {
			tb.Fatal(err)
		}
		want := plain[off:min(size, off+10)]
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(rs, buf); err != nil {
			tb.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf, want) {
			tb.Fatalf("bytes at %d differ", off)
		}
	}
	if end, _ := rs.Seek(0, io.SeekEnd); end != size {
		tb.Fatalf("SeekEnd=%d, want %d", end, size)
	}
	if n, err := rs.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		tb.Fatalf("read at end: n=%d err=%v, want 0, EOF", n, err)
	}
}

func TestSeek(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{1, 20, C, 3*C + 777, 4 * C} {
		plain := randomBytes(t, n)
		mustSeekRead(t, mustEncrypt(t, key, plain), plain, key)
	}
	t.Run("Empty", func(t *testing.T) {
		rs, err := fstream.NewReadSeeker(bytes.NewReader(mustEncrypt(t, key, nil)), fstream.EncryptedSize(0), []*fernet.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := rs.Read(make([]byte, 1)); rs.Size() != 0 || n != 0 || err != io.EOF {
			t.Fatalf("Size=%d, read n=%d err=%v; want 0, 0, EOF", rs.Size(), n, err)
		}
	})
}

// TestWriterError shows that a failing disk surfaces on Write or Close and
// that the Writer refuses further use.
func TestWriterError(t *testing.T) {
	key := mustKey(t)
	f, err := os.Open(os.DevNull) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := fstream.NewWriter(f, key)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(randomBytes(t, 2*C+1))
	if werr == nil {
		t.Fatal("Write to a read-only file succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after a failure succeeded")
	}
}

func TestFile(t *testing.T) {
	// Real file, as blobs are read: through *os.File's ReadAt.
	key := mustKey(t)
	plain := randomBytes(t, C+3)
	path := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(path, mustEncrypt(t, key, plain), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	rs, err := fstream.NewReadSeeker(f, st.Size(), []*fernet.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rs)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("err=%v", err)
	}
}

// TestReadSeeker_IdleMemory: a ReadSeeker whose client stalls keeps one
// chunk of plaintext and no line buffer, so many stalled playbacks cost
// about a MiB each.
func TestReadSeeker_IdleMemory(t *testing.T) {
	key := mustKey(t)
	enc := mustEncrypt(t, key, randomBytes(t, 3*C+5))
	const n = 16
	held := make([]*fstream.ReadSeeker, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // twice: the line pool's victim cache goes too
	runtime.ReadMemStats(&before)
	for i := range held {
		rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), []*fernet.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Seek(C+1, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Read(make([]byte, 1)); err != nil { // loads a full chunk
			t.Fatal(err)
		}
		held[i] = rs
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perReader := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	if perReader > C+16<<10 {
		t.Fatalf("an idle ReadSeeker holds %d bytes, want at most one chunk (%d) and a little", perReader, C)
	}
	runtime.KeepAlive(held)
}

func BenchmarkWriter(b *testing.B) {
	key := mustKey(b)
	buf := randomBytes(b, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	w, err := fstream.NewWriter(io.Discard, key)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterClose is the cost of the final data chunk and the padding
// of a file that ends mid-chunk.
func BenchmarkWriterClose(b *testing.B) {
	key := mustKey(b)
	buf := randomBytes(b, C/2)
	b.ReportAllocs()
	for b.Loop() {
		w, err := fstream.NewWriter(io.Discard, key)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(buf)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSeeker(b *testing.B) {
	key := mustKey(b)
	enc := mustEncrypt(b, key, randomBytes(b, 8*C))
	buf := make([]byte, 64<<10)
	b.SetBytes(8 * C)
	b.ReportAllocs()
	for b.Loop() {
		rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), []*fernet.Key{key})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, rs, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewReadSeeker is the cost of opening a file for one HTTP Range
// request: the walk back over the padding to the final data chunk.
func BenchmarkNewReadSeeker(b *testing.B) {
	key := mustKey(b)
	enc := mustEncrypt(b, key, randomBytes(b, 3*C+C/3))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), []*fernet.Key{key}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	key := mustKey(b)
	enc := mustEncrypt(b, key, randomBytes(b, 8*C))
	buf := make([]byte, 64<<10)
	b.SetBytes(8 * C)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.CopyBuffer(io.Discard, fstream.NewReader(bytes.NewReader(enc), []*fernet.Key{key}), buf); err != nil {
			b.Fatal(err)
		}
	}
}
