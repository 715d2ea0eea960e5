package export_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"tyst/store/export"
)

// rawEntry writes an entry whose header says what the test wants, not what
// the data is (archive/zip's CreateRaw).
func rawEntry(tb testing.TB, zw *zip.Writer, fh *zip.FileHeader, raw []byte) {
	tb.Helper()
	w, err := zw.CreateRaw(fh)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
}

// withRaw rebuilds the package es with an extra hand-made entry appended by
// add.
func withRaw(tb testing.TB, es []entry, add func(zw *zip.Writer)) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(e.data)
	}
	add(zw)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(tb testing.TB, r io.Reader) ([]byte, uint32, uint64) {
	tb.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	crc := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(fw, crc), r)
	if err != nil {
		tb.Fatal(err)
	}
	fw.Close()
	return buf.Bytes(), crc.Sum32(), uint64(n)
}

// toZip64 rewrites the end of a ZIP into the zip64 form (zip64 end record,
// locator, and an end record of 0xffff… markers), as a writer does for a
// package over 4 GiB, with the given record count.
func toZip64(b []byte, records uint64) []byte {
	le := binary.LittleEndian
	eocd := b[len(b)-22:]
	dirSize, dirOff := uint64(le.Uint32(eocd[12:])), uint64(le.Uint32(eocd[16:]))
	out := bytes.Clone(b[:len(b)-22])
	p := uint64(len(out))
	z := make([]byte, 56)
	le.PutUint32(z[0:], 0x06064b50)
	le.PutUint64(z[4:], 44)
	le.PutUint16(z[12:], 45)
	le.PutUint16(z[14:], 45)
	le.PutUint64(z[24:], records)
	le.PutUint64(z[32:], records)
	le.PutUint64(z[40:], dirSize)
	le.PutUint64(z[48:], dirOff)
	out = append(out, z...)
	l := make([]byte, 20)
	le.PutUint32(l[0:], 0x07064b50)
	le.PutUint64(l[8:], p)
	le.PutUint32(l[16:], 1)
	out = append(out, l...)
	e := bytes.Clone(eocd)
	le.PutUint16(e[8:], 0xffff)
	le.PutUint16(e[10:], 0xffff)
	le.PutUint32(e[12:], 0xffffffff)
	le.PutUint32(e[16:], 0xffffffff)
	return append(out, e...)
}

// TestVerify_Hostile: ZIPs built to mislead or exhaust a checker are refused
// with a clear problem, before any entry is read into memory.
func TestVerify_Hostile(t *testing.T) {
	fx := mustFixture(t, "tone.m4a")
	pkg, _ := fx.mustWrite(t, fx.input(export.ModeDecrypted, "m4a"))
	es := asEntries(t, pkg)
	idx := func(name string) int {
		return slices.IndexFunc(es, func(e entry) bool { return e.name == name })
	}
	renamed := func(old, new string) []byte {
		out := slices.Clone(es)
		out[idx(old)].name = new
		return rebuild(t, out)
	}
	appended := func(extra ...entry) []byte { return rebuild(t, append(slices.Clone(es), extra...)) }
	without := func(name string) []byte {
		return rebuild(t, slices.DeleteFunc(slices.Clone(es), func(e entry) bool { return e.name == name }))
	}
	zeroBomb(t, 1<<20, true) // the generator is sound
	bomb, bombCRC, bombSize := zeroBomb(t, 300<<20, false)

	many := make([]entry, 17)
	for i := range many {
		many[i] = entry{name: strings.Repeat("x", i+1), method: zip.Store}
	}
	var comment bytes.Buffer
	zw := zip.NewWriter(&comment)
	for _, e := range es {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		w.Write(e.data)
	}
	zw.SetComment("made by someone else")
	zw.Close()

	for name, c := range map[string]struct {
		zip     []byte
		problem string
	}{
		"ExtraEntry":      {appended(entry{"secret-source.mp3", []byte("x"), zip.Store}), "an entry that is not part of a tyst package"},
		"ExtraDirectory":  {appended(entry{"audio/", nil, zip.Store}), "an entry that is not part of a tyst package"},
		"Duplicate":       {appended(entry{"transcript.json", []byte(`{}`), zip.Deflate}), "an entry appears twice"},
		"DuplicateSig":    {appended(entry{"manifest.json.sig", []byte(`x`), zip.Deflate}), "an entry appears twice"},
		"TwoAudio":        {appended(entry{"audio.bin", []byte(`x`), zip.Store}), "more than one audio entry"},
		"Traversal":       {renamed("README.txt", "../README.txt"), "an entry that is not part of a tyst package"},
		"Absolute":        {renamed("README.txt", "/etc/README.txt"), "an entry that is not part of a tyst package"},
		"Subdirectory":    {renamed("transcript.json", "x/transcript.json"), "an entry that is not part of a tyst package"},
		"Backslash":       {renamed("audit.json", `..\audit.json`), "an entry that is not part of a tyst package"},
		"AudioTraversal":  {renamed("audio.m4a", "audio.m4a/../../x"), "an entry that is not part of a tyst package"},
		"AudioUpperExt":   {renamed("audio.m4a", "audio.M4A"), "an entry that is not part of a tyst package"},
		"Missing":         {without("VERIFY.txt"), "missing VERIFY.txt"},
		"MissingManifest": {without("manifest.json"), "missing manifest.json"},
		"TooManyEntries":  {rebuild(t, many), "not a tyst package ZIP: 17 entries"},
		"Empty":           {nil, "not a tyst package ZIP: too short"},
		"NotZip":          {bytes.Repeat([]byte("RIFF....WAVE"), 10), "not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)"},
		"Truncated":       {pkg[:len(pkg)/2], "not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)"},
		"TruncatedEnd":    {pkg[:len(pkg)-1], "not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)"},
		"Comment":         {comment.Bytes(), "not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)"},
		"Prepended":       {append([]byte("MZ self-extracting stub"), pkg...), "not a tyst package ZIP: central directory out of place"},
		"AudioDeflated": {withRaw(t, slices.DeleteFunc(slices.Clone(es), func(e entry) bool { return e.name == "audio.m4a" }), func(zw *zip.Writer) {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: "audio.m4a", Method: zip.Deflate})
			w.Write(es[idx("audio.m4a")].data)
		}), "audio.m4a uses a compression tyst does not write"},
		"HugeDeclared": {withRaw(t, slices.Delete(slices.Clone(es), idx("transcript.json"), idx("transcript.json")+1), func(zw *zip.Writer) {
			raw, crc, _ := deflate(t, strings.NewReader(`{}`))
			rawEntry(t, zw, &zip.FileHeader{Name: "transcript.json", Method: zip.Deflate, CRC32: crc,
				CompressedSize64: uint64(len(raw)), UncompressedSize64: 1 << 50}, raw)
		}), "transcript.json declares a size beyond the format's bounds"},
		"DeflateBomb": {withRaw(t, slices.Delete(slices.Clone(es), idx("audit.json"), idx("audit.json")+1), func(zw *zip.Writer) {
			rawEntry(t, zw, &zip.FileHeader{Name: "audit.json", Method: zip.Deflate, CRC32: bombCRC,
				CompressedSize64: uint64(len(bomb)), UncompressedSize64: bombSize}, bomb)
		}), "audit.json declares a size beyond the format's bounds"},
		"BombUnderstated": {withRaw(t, slices.Delete(slices.Clone(es), idx("audit.json"), idx("audit.json")+1), func(zw *zip.Writer) {
			rawEntry(t, zw, &zip.FileHeader{Name: "audit.json", Method: zip.Deflate, CRC32: bombCRC,
				CompressedSize64: uint64(len(bomb)), UncompressedSize64: 1000}, bomb)
		}), "audit.json cannot be read (damaged or truncated)"},
		"StoredBeyondEnd": {withRaw(t, slices.Delete(slices.Clone(es), idx("audio.m4a"), idx("audio.m4a")+1), func(zw *zip.Writer) {
			rawEntry(t, zw, &zip.FileHeader{Name: "audio.m4a", Method: zip.Store,
				CompressedSize64: 1 << 40, UncompressedSize64: 1 << 40}, []byte("tiny"))
		}), "audio.m4a declares a size beyond the format's bounds"},
		"ZipEncrypted": {withRaw(t, slices.Delete(slices.Clone(es), idx("audit.json"), idx("audit.json")+1), func(zw *zip.Writer) {
			d := es[idx("audit.json")].data
			rawEntry(t, zw, &zip.FileHeader{Name: "audit.json", Method: zip.Store, Flags: 0x1, CRC32: crc32.ChecksumIEEE(d),
				CompressedSize64: uint64(len(d)), UncompressedSize64: uint64(len(d))}, d)
		}), "audit.json is encrypted by ZIP"},
		"Zip64Records": {toZip64(pkg, 1<<40), "not a tyst package ZIP: 1099511627776 entries"},
		"ManyHeaders":  {manyHeaders(t), "not a tyst package ZIP: central directory too large"},
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := verifyBytes(c.zip, fx.trusted())
			if !errors.Is(err, export.ErrInvalid) || rep.OK {
				t.Fatalf("Verify accepted it: %v", err)
			}
			if rep.Problems[0] != c.problem {
				t.Fatalf("problems %q, want %q first", rep.Problems, c.problem)
			}
			for _, p := range rep.Problems {
				if strings.Contains(p, "secret-source") || strings.Contains(p, "..") || strings.Contains(p, "/etc") {
					t.Fatalf("a problem repeats a name the ZIP chose: %q", p)
				}
			}
		})
	}
	t.Run("Zip64OK", func(t *testing.T) { // the form of a package over 4 GiB is read
		z := toZip64(pkg, uint64(len(es)))
		if _, err := zip.NewReader(bytes.NewReader(z), int64(len(z))); err != nil {
			t.Fatalf("archive/zip refuses the test's zip64 form: %v", err)
		}
		if rep, err := verifyBytes(z, fx.trusted()); err != nil {
			t.Fatalf("%v %+v", err, rep)
		}
	})
}

// zeroBomb returns a raw deflate stream of n zero bytes (n-1 a multiple of
// 258), its CRC-32 and n: one literal, then copies of 258 bytes at distance
// 1 in a fixed-Huffman block, 13 bits for every 258 bytes. Handmade, because
// compress/flate takes seconds under the race detector to find the same.
// With check, it inflates the stream with compress/flate to check it.
func zeroBomb(tb testing.TB, n int, check bool) ([]byte, uint32, uint64) {
	tb.Helper()
	copies := (n - 1) / 258
	n = 1 + copies*258
	var out []byte
	var acc uint64
	var nbits uint
	put := func(v uint64, bits uint) { // LSB first, as deflate packs bits
		acc |= v << nbits
		nbits += bits
		for nbits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			nbits -= 8
		}
	}
	code := func(c uint64, bits uint) { // Huffman codes go MSB first
		var r uint64
		for i := range bits {
			r |= (c >> i & 1) << (bits - 1 - i)
		}
		put(r, bits)
	}
	put(1, 1)     // BFINAL
	put(1, 2)     // BTYPE 01: fixed Huffman
	code(0x30, 8) // literal 0
	for range copies {
		code(0xc5, 8) // length 258 (symbol 285)
		code(0, 5)    // distance 1
	}
	code(0, 7) // end of block
	put(0, 7)  // flush
	crc := crc32.NewIEEE()
	zero := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zero) {
		crc.Write(zero[:min(left, len(zero))])
	}
	if check {
		got, err := io.Copy(io.Discard, flate.NewReader(bytes.NewReader(out)))
		if err != nil || got != int64(n) {
			tb.Fatalf("zeroBomb inflates to %d bytes (%v), want %d", got, err, n)
		}
	}
	return out, crc.Sum32(), uint64(n)
}

// manyHeaders returns a ZIP of 65537 entries whose end record claims one:
// archive/zip alone would read every header (it checks the count modulo
// 65536).
func manyHeaders(tb testing.TB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for range 65537 {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: "README.txt", Method: zip.Store}); err != nil {
			tb.Fatal(err)
		}
	}
	zw.Close()
	b := buf.Bytes()
	// Drop the zip64 records archive/zip wrote and end with a plain record
	// that claims one entry and the whole directory.
	le := binary.LittleEndian
	eocd := b[len(b)-22:]
	loc := b[len(b)-42 : len(b)-22]
	z := b[le.Uint64(loc[8:]):]
	dirSize, dirOff := le.Uint64(z[40:]), le.Uint64(z[48:])
	out := bytes.Clone(b[:dirOff+dirSize])
	e := bytes.Clone(eocd)
	le.PutUint16(e[8:], 1)
	le.PutUint16(e[10:], 1)
	le.PutUint32(e[12:], uint32(dirSize))
	le.PutUint32(e[16:], uint32(dirOff))
	return append(out, e...)
}

// TestVerify_HostileMemory: refusing a ZIP of 65537 headers allocates next
// to nothing, where archive/zip alone would hold every header.
func TestVerify_HostileMemory(t *testing.T) {
	z := manyHeaders(t)
	if _, err := zip.NewReader(bytes.NewReader(z), int64(len(z))); err != nil {
		t.Fatalf("archive/zip refuses the crafted ZIP (%v): the test proves nothing", err)
	}
	alloc := func(f func()) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	zipAlloc := alloc(func() { zip.NewReader(bytes.NewReader(z), int64(len(z))) })
	ours := alloc(func() { verifyBytes(z, export.VerifyOptions{}) })
	if ours > 1<<20 || ours*10 > zipAlloc {
		t.Fatalf("Verify allocated %d bytes, archive/zip alone %d", ours, zipAlloc)
	}
	t.Logf("Verify allocated %d bytes; archive/zip alone %d", ours, zipAlloc)
}

// TestVerify_ReaderFails: an error of the reader is reported as such, not as
// a damaged package, and without a path.
func TestVerify_ReaderFails(t *testing.T) {
	fx := mustFixture(t, "tone.wav")
	pkg, _ := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	rep, err := export.Verify(failingReaderAt{pkg}, int64(len(pkg)), fx.trusted())
	if err == nil || errors.Is(err, export.ErrInvalid) || rep.OK || rep.Problems[0] != "the package cannot be read" {
		t.Fatalf("%v %+v", err, rep)
	}
}

type failingReaderAt struct{ b []byte }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("input/output error")
}
