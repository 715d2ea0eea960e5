package fstream_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

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

func lines(enc []byte) [][]byte {
	ls := bytes.SplitAfter(enc, []byte("\n"))
	return ls[:len(ls)-1] // after the final "\n" comes an empty element
}

func readAllSeeker(enc []byte, keys ...*fernet.Key) ([]byte, error) {
	rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), keys)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(rs)
}

func TestRoundTrip(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{0, 1, fstream.ChunkSize - 1, fstream.ChunkSize, fstream.ChunkSize + 1, 3*fstream.ChunkSize + 5} {
		plain := randomBytes(t, n)
		enc := mustEncrypt(t, key, plain)

		if got, want := int64(len(enc)), fstream.EncryptedSize(int64(n)); got != want {
			t.Fatalf("n=%d: encrypted size=%d, EncryptedSize=%d", n, got, want)
		}
		got, err := io.ReadAll(fstream.NewReader(bytes.NewReader(enc), []*fernet.Key{key}))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: Reader: err=%v, equal=%v", n, err, bytes.Equal(got, plain))
		}
		got, err = readAllSeeker(enc, key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: ReadSeeker: err=%v, equal=%v", n, err, bytes.Equal(got, plain))
		}
		ls := lines(enc)
		for i, l := range ls[:len(ls)-1] {
			if got, want := int64(len(l)), fstream.LineSize; got != want {
				t.Fatalf("n=%d: line %d is %d bytes, want %d", n, i, got, want)
			}
		}
	}
}

// TestPlainFernet shows the promise of DESIGN §4: any Fernet library can
// decrypt a file line by line, then drop the 26-byte header. Every token
// carries the Unix epoch, not the time of writing.
func TestPlainFernet(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(t, 2*fstream.ChunkSize+100)
	enc := mustEncrypt(t, key, plain)
	var got []byte
	for i, l := range lines(enc) {
		tok := bytes.TrimSuffix(l, []byte("\n"))
		msg := fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{key})
		if msg == nil {
			t.Fatalf("line %d does not decrypt as a plain Fernet token", i)
		}
		if got, want := binary.BigEndian.Uint64(msg[2:10]), uint64(i); got != want {
			t.Fatalf("header index=%d, want %d", got, want)
		}
		raw, err := base64.URLEncoding.DecodeString(string(tok))
		if err != nil {
			t.Fatal(err)
		}
		if ts := binary.BigEndian.Uint64(raw[1:9]); ts != 0 {
			t.Fatalf("token %d timestamp=%d, want 0 (epoch)", i, ts)
		}
		got = append(got, msg[fstream.HeaderSize:]...)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("line-by-line plaintext differs")
	}
}

func TestSeek(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(t, 3*fstream.ChunkSize+777)
	enc := mustEncrypt(t, key, plain)
	rs, err := fstream.NewReadSeeker(bytes.NewReader(enc), int64(len(enc)), []*fernet.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rs.Size(), int64(len(plain)); got != want {
		t.Fatalf("Size=%d, want %d", got, want)
	}
	for _, off := range []int64{0, 5, fstream.ChunkSize - 3, fstream.ChunkSize, 2*fstream.ChunkSize + 9, int64(len(plain)) - 10} {
		if _, err := rs.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(rs, buf); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf, plain[off:off+10]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
	if end, _ := rs.Seek(0, io.SeekEnd); end != int64(len(plain)) {
		t.Fatalf("SeekEnd=%d, want %d", end, len(plain))
	}
	if n, err := rs.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read at end: n=%d err=%v, want 0, EOF", n, err)
	}
}

// TestTamper shows that every kind of damage is an error for the front-to-back
// reader and for the seeking reader, including a partial read of the damaged
// place only.
func TestTamper(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(t, 3*fstream.ChunkSize+10)
	enc := mustEncrypt(t, key, plain)
	other := mustEncrypt(t, key, randomBytes(t, 3*fstream.ChunkSize+10))
	ls, ols := lines(enc), lines(other)
	padded := mustEncrypt(t, key, nil) // its one token ends in "="
	if !bytes.HasSuffix(padded, []byte("=\n")) {
		t.Fatal("test needs a token with padding")
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	cases := map[string][]byte{
		"Swapped":      join(ls[0], ls[2], ls[1], ls[3]),
		"Dropped":      join(ls[0], ls[1], ls[3]),
		"DroppedLast":  join(ls[0], ls[1], ls[2]),
		"CutMidLine":   enc[:len(enc)-7],
		"CutNewline":   enc[:len(enc)-1],
		"Foreign":      join(ls[0], ols[1], ls[2], ls[3]),
		"Appended":     join(enc, []byte("x\n")),
		"Repeated":     join(ls[0], ls[1], ls[1], ls[2], ls[3]),
		"FlippedBit":   flip(enc, int(fstream.LineSize)+100),
		"Empty":        {},
		"LastReplaced": join(ls[0], ls[1], ls[2], ols[3]),
		"CRLF":         bytes.ReplaceAll(enc, []byte("\n"), []byte("\r\n")),
		"AfterPadding": bytes.Replace(padded, []byte("=\n"), []byte("=AAAA\n"), 1),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := io.ReadAll(fstream.NewReader(bytes.NewReader(bad), []*fernet.Key{key}))
			if !errors.Is(err, fstream.ErrCorrupt) {
				t.Fatalf("Reader err=%v, want ErrCorrupt", err)
			}
			if _, err := readAllSeeker(bad, key); !errors.Is(err, fstream.ErrCorrupt) {
				t.Fatalf("ReadSeeker err=%v, want ErrCorrupt", err)
			}
		})
	}

	t.Run("WrongKey", func(t *testing.T) {
		if _, err := readAllSeeker(enc, mustKey(t)); !errors.Is(err, fstream.ErrCorrupt) {
			t.Fatalf("err=%v, want ErrCorrupt", err)
		}
	})
	t.Run("OldKeyStillReads", func(t *testing.T) {
		got, err := readAllSeeker(enc, mustKey(t), key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("PartialReadOfSwappedChunk", func(t *testing.T) {
		bad := cases["Swapped"]
		rs, err := fstream.NewReadSeeker(bytes.NewReader(bad), int64(len(bad)), []*fernet.Key{key})
		if err != nil {
			t.Fatal(err) // the last chunk is intact, so opening works
		}
		if _, err := rs.Seek(fstream.ChunkSize+5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Read(make([]byte, 10)); !errors.Is(err, fstream.ErrCorrupt) {
			t.Fatalf("err=%v, want ErrCorrupt", err)
		}
	})
	t.Run("PartialReadOfForeignChunk", func(t *testing.T) {
		bad := cases["Foreign"]
		rs, err := fstream.NewReadSeeker(bytes.NewReader(bad), int64(len(bad)), []*fernet.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Seek(fstream.ChunkSize, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Read(make([]byte, 10)); !errors.Is(err, fstream.ErrCorrupt) {
			t.Fatalf("err=%v, want ErrCorrupt", err)
		}
	})
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	// Change one base64 character to another valid one.
	if c[i] == 'A' {
		c[i] = 'B'
	} else {
		c[i] = 'A'
	}
	return c
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
	_, werr := w.Write(randomBytes(t, 2*fstream.ChunkSize+1))
	if werr == nil {
		t.Fatal("Write to a read-only file succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

func TestFile(t *testing.T) {
	// Real file, as blobs are read: through *os.File's ReadAt.
	key := mustKey(t)
	plain := randomBytes(t, fstream.ChunkSize+3)
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

func BenchmarkReadSeeker(b *testing.B) {
	key := mustKey(b)
	enc := mustEncrypt(b, key, randomBytes(b, 8*fstream.ChunkSize))
	buf := make([]byte, 64<<10)
	b.SetBytes(8 * fstream.ChunkSize)
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
