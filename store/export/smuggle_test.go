package export_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"testing"

	"tyst/store/export"
)

// pkgParts is a package cut at its records: each entry's local part (local
// header, name, extra field, data, data descriptor) and central header, in
// order, and the end record.
type pkgParts struct {
	local, central [][]byte
	end            []byte
}

// cut cuts a package Write wrote (no zip64) into its parts.
func cut(tb testing.TB, b []byte) pkgParts {
	tb.Helper()
	le := binary.LittleEndian
	end := b[len(b)-22:]
	dirSize, dirOff := int(le.Uint32(end[12:])), int(le.Uint32(end[16:]))
	dir := b[dirOff : dirOff+dirSize]
	var p pkgParts
	var offs []int
	for len(dir) > 0 {
		if le.Uint32(dir) != 0x02014b50 {
			tb.Fatal("cut: not a central header")
		}
		n := 46 + int(le.Uint16(dir[28:])) + int(le.Uint16(dir[30:])) + int(le.Uint16(dir[32:]))
		p.central = append(p.central, bytes.Clone(dir[:n]))
		offs = append(offs, int(le.Uint32(dir[42:])))
		dir = dir[n:]
	}
	offs = append(offs, dirOff)
	for i := range p.central {
		p.local = append(p.local, bytes.Clone(b[offs[i]:offs[i+1]]))
	}
	p.end = bytes.Clone(end)
	return p
}

// join puts the parts together with insert[i] before local part i
// (insert[len(local)] before the directory), and sets every offset of the
// central directory and the end record to where its part now is: what a
// forger does to keep the directory right.
func (p pkgParts) join(insert map[int][]byte) []byte {
	le := binary.LittleEndian
	var out []byte
	offs := make([]int, len(p.local))
	for i, l := range p.local {
		out = append(out, insert[i]...)
		offs[i] = len(out)
		out = append(out, l...)
	}
	out = append(out, insert[len(p.local)]...)
	dirOff := len(out)
	for i, c := range p.central {
		c = bytes.Clone(c)
		le.PutUint32(c[42:], uint32(offs[i]))
		out = append(out, c...)
	}
	end := bytes.Clone(p.end)
	le.PutUint32(end[12:], uint32(len(out)-dirOff))
	le.PutUint32(end[16:], uint32(dirOff))
	return append(out, end...)
}

// index returns the position of the entry named name.
func (p pkgParts) index(tb testing.TB, name string) int {
	tb.Helper()
	for i, l := range p.local {
		if string(l[30:30+binary.LittleEndian.Uint16(l[26:])]) == name {
			return i
		}
	}
	tb.Fatalf("no entry %s", name)
	return -1
}

// forgedEntry is a stored local entry, as the adversary's repro makes it:
// a valid header, name and data, listed in no central directory.
func forgedEntry(name string, data []byte) []byte {
	le := binary.LittleEndian
	h := make([]byte, 30, 30+len(name)+len(data))
	le.PutUint32(h[0:], 0x04034b50)
	le.PutUint16(h[4:], 20)
	le.PutUint16(h[12:], 0x21)
	le.PutUint32(h[14:], crc32.ChecksumIEEE(data))
	le.PutUint32(h[18:], uint32(len(data)))
	le.PutUint32(h[22:], uint32(len(data)))
	le.PutUint16(h[26:], uint16(len(name)))
	return append(append(h, name...), data...)
}

// withExtra returns part (a local or central header at its start, whose
// name ends at 30 or 46) with block appended to its extra field.
func withExtra(part []byte, headerLen int, block []byte) []byte {
	le := binary.LittleEndian
	lens := 26 // of the name and the extra field
	if headerLen == 46 {
		lens = 28
	}
	n, e := int(le.Uint16(part[lens:])), int(le.Uint16(part[lens+2:]))
	at := headerLen + n + e
	out := slices.Concat(part[:at], block, part[at:])
	le.PutUint16(out[lens+2:], uint16(e+len(block)))
	return out
}

// readsAll reports whether archive/zip opens b and reads every entry with
// its CRC right: the ZIP is sound to a reader of its central directory.
func readsAll(b []byte) bool {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return false
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return false
		}
	}
	return true
}

// TestVerify_Smuggled: bytes the central directory does not account for
// (a forged entry a streaming reader shows, hidden data) or local headers
// that say something else than the directory are refused as not intact,
// though archive/zip reads every entry of each of these ZIPs, each checks
// out against its hash and the signature is the newsroom's.
func TestVerify_Smuggled(t *testing.T) {
	fx := mustFixture(t, "tone.m4a")
	pkg, _ := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	p := cut(t, pkg)
	if got := p.join(nil); !bytes.Equal(got, pkg) {
		t.Fatal("cut and join do not give back the package: the test proves nothing")
	}
	le := binary.LittleEndian
	forged := forgedEntry("transcript.json", []byte(`{"transcript_id": 1, "title": "FORGED: the source never said that", "segments": []}`+"\n"))
	tr, au, sig := p.index(t, "transcript.json"), p.index(t, "audit.json"), p.index(t, "manifest.json.sig")
	if au != tr+1 {
		t.Fatal("Write no longer puts audit.json after transcript.json: the Overlap case needs another pair")
	}
	n := len(p.local)

	renamed := p
	renamed.local = slices.Clone(p.local)
	renamed.local[tr] = bytes.Clone(p.local[tr])
	copy(renamed.local[tr][30:], "transcripX.json")

	stored := p // the local header says stored, the directory deflated
	stored.local = slices.Clone(p.local)
	stored.local[tr] = bytes.Clone(p.local[tr])
	le.PutUint16(stored.local[tr][8:], 0)

	descriptor := p // the data descriptor claims another size
	descriptor.local = slices.Clone(p.local)
	descriptor.local[tr] = bytes.Clone(p.local[tr])
	dl := len(descriptor.local[tr])
	le.PutUint32(descriptor.local[tr][dl-8:], le.Uint32(descriptor.local[tr][dl-8:])+1)

	overlap := bytes.Clone(pkg) // audit.json's directory entry points at transcript.json's local header
	{
		dirOff := int(le.Uint32(pkg[len(pkg)-6:]))
		at := dirOff
		for i := range au {
			at += len(p.central[i])
		}
		le.PutUint32(overlap[at+42:], le.Uint32(overlap[at-len(p.central[tr])+42:]))
	}

	hidden := []byte{0x07, 0x70, 4, 0, 'd', 'a', 't', 'a'} // an unknown extra block, in both headers
	extra := p
	extra.local, extra.central = slices.Clone(p.local), slices.Clone(p.central)
	extra.local[tr] = withExtra(p.local[tr], 30, hidden)
	extra.central[tr] = withExtra(p.central[tr], 46, hidden)

	localZip64 := p // a zip64 block in the local header only, as a streaming reader would read sizes from it
	localZip64.local = slices.Clone(p.local)
	localZip64.local[tr] = withExtra(p.local[tr], 30, append([]byte{1, 0, 16, 0}, make([]byte, 16)...))

	end := p.join(nil)
	zip64Ext := toZip64(pkg, uint64(len(p.local))) // the zip64 end record claims extensible data
	le.PutUint64(zip64Ext[len(zip64Ext)-22-20-56+4:], 45)
	zip64Part := toZip64(pkg, uint64(len(p.local))) // the end record marks one field only
	le.PutUint32(zip64Part[len(zip64Part)-22+12:], le.Uint32(pkg[len(pkg)-22+12:]))
	fakeEnd := bytes.Clone(pkg[len(pkg)-22:])
	commented := bytes.Clone(pkg) // a comment that is itself an end record
	le.PutUint16(commented[len(commented)-2:], 22)
	commented = append(commented, fakeEnd...)

	for name, c := range map[string]struct {
		zip     []byte
		problem string
	}{
		// The adversary's repro (t_zipsmuggle.py): Java's ZipInputStream,
		// Python's zipfile as a stream and bsdtar show this transcript.
		"ForgedEntryFirst": {p.join(map[int][]byte{0: forged}),
			"not a tyst package ZIP: a local entry the central directory does not list, at the start of the file, before README.txt"},
		"BytesPrepended": {p.join(map[int][]byte{0: []byte("MZ\x90\x00 any bytes at all")}),
			"not a tyst package ZIP: bytes the central directory does not account for, at the start of the file, before README.txt"},
		"BytesBetween": {p.join(map[int][]byte{tr: []byte("hidden between two entries")}),
			"not a tyst package ZIP: bytes the central directory does not account for, before transcript.json"},
		"ForgedEntryBetween": {p.join(map[int][]byte{tr: forged}),
			"not a tyst package ZIP: a local entry the central directory does not list, before transcript.json"},
		"ForgedEntryLast": {p.join(map[int][]byte{sig + 1: forged}),
			"not a tyst package ZIP: a local entry the central directory does not list, before the central directory"},
		"GapBeforeDirectory": {p.join(map[int][]byte{n: bytes.Repeat([]byte{0}, 4096)}),
			"not a tyst package ZIP: bytes the central directory does not account for, before the central directory"},
		"LocalName": {renamed.join(nil),
			"not a tyst package ZIP: the local header of transcript.json disagrees with the central directory (name)"},
		"LocalMethod": {stored.join(nil),
			"not a tyst package ZIP: the local header of transcript.json disagrees with the central directory (compression)"},
		"DescriptorSize": {descriptor.join(nil),
			"not a tyst package ZIP: the data descriptor of transcript.json disagrees with the central directory"},
		"Overlap": {overlap,
			"not a tyst package ZIP: audit.json overlaps the entry before it"},
		"ExtraBlock": {extra.join(nil),
			"not a tyst package ZIP: an extra field tyst does not write"},
		"LocalZip64": {localZip64.join(nil),
			"not a tyst package ZIP: the local header of transcript.json disagrees with the central directory (extra field)"},
		"Zip64Extensible": {zip64Ext, "not a tyst package ZIP: bad zip64 record"},
		"Zip64OneMarker":  {zip64Part, "not a tyst package ZIP: bad zip64 record"},
		"TrailingBytes": {append(bytes.Clone(end), "after the end"...),
			"not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)"},
		"TrailingEndRecord": {append(bytes.Clone(end), fakeEnd...),
			"not a tyst package ZIP: central directory out of place"},
		"CommentEndRecord": {commented,
			"not a tyst package ZIP: central directory out of place"},
	} {
		t.Run(name, func(t *testing.T) {
			// Each but the overlap and those with a changed end is a sound
			// ZIP to archive/zip, whose entries all match their hashes:
			// only the layout tells.
			if !strings.HasPrefix(name, "Trailing") && !strings.HasPrefix(name, "Zip64") && name != "CommentEndRecord" && name != "Overlap" && !readsAll(c.zip) {
				t.Fatal("archive/zip does not read the crafted ZIP: the test proves nothing")
			}
			rep, err := verifyBytes(c.zip, fx.trusted())
			if !errors.Is(err, export.ErrInvalid) || rep.OK || rep.Intact {
				t.Fatalf("Verify accepted it: %v %+v", err, rep)
			}
			if rep.Problems[0] != c.problem {
				t.Fatalf("problems %q, want %q first", rep.Problems, c.problem)
			}
		})
	}
	t.Run("Unchanged", func(t *testing.T) { // the parts themselves are sound
		if rep, err := verifyBytes(end, fx.trusted()); err != nil || !rep.OK || !rep.Intact {
			t.Fatalf("%v %+v", err, rep)
		}
	})
}
