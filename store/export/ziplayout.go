package export

import (
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// centralEntry is one header of the central directory, read as archive/zip
// reads it.
type centralEntry struct {
	name          []byte
	flags, method uint16
	time, date    uint16
	crc           uint32
	csize, usize  uint64
	offset        uint64 // of the local header
	localExtra    []byte // the extra field its local header must have
}

// checkLayout checks that the entries the central directory d lists tile
// the file: sorted by offset, the first local header at offset 0, each
// entry (local header, name, extra field, data, data descriptor) ending
// where the next begins, the last where the central directory begins.
// Each local header and data descriptor must say what the central
// directory says. So no byte of the file is outside what Verify checks: a
// streaming reader, which reads local headers front to back and never the
// central directory, sees the same entries with the same data.
//
// files is what archive/zip read of the same directory; checkLayout makes
// sure it read the same. It reads the directory (at most maxDirBytes, as
// checkDirectory bounded it) and the headers, never an entry's data.
func checkLayout(r io.ReaderAt, d directory, files []*zip.File) error {
	dir := make([]byte, d.size)
	if err := readFull(r, dir, d.offset); err != nil {
		return err
	}
	if len(files) != d.records {
		return invalid("not a tyst package ZIP: the central directory does not hold what its end record counts")
	}
	type entry struct {
		c centralEntry
		f *zip.File
	}
	es := make([]entry, 0, len(files))
	for _, f := range files {
		c, n, err := parseCentral(dir)
		if err != nil {
			return err
		}
		dir = dir[n:]
		if !c.same(f) {
			return invalid("not a tyst package ZIP: the central directory entry of %s is ambiguous", f.Name)
		}
		es = append(es, entry{c, f})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.c.offset, b.c.offset) })
	next := uint64(0) // where the next local header must start
	for _, e := range es {
		switch {
		case e.c.offset > next:
			return unaccounted(r, next, e.f.Name)
		case e.c.offset < next:
			return invalid("not a tyst package ZIP: %s overlaps the entry before it", e.f.Name)
		}
		var err error
		if next, err = checkLocal(r, e.c, e.f); err != nil {
			return err
		}
	}
	if len(dir) != 0 {
		return invalid("not a tyst package ZIP: the central directory does not hold what its end record counts")
	}
	if next != d.offset {
		return unaccounted(r, next, "the central directory")
	}
	return nil
}

// parseCentral reads the central directory header at the start of b and
// returns it and its length. It accepts the forms archive/zip writes: no
// comment, one disk, an extra field of at most the extended timestamp and,
// for sizes or offsets past 4 GiB, the zip64 block with all three values.
func parseCentral(b []byte) (centralEntry, int, error) {
	le := binary.LittleEndian
	if len(b) < centralLen || le.Uint32(b) != sigCentral {
		return centralEntry{}, 0, invalid("not a tyst package ZIP: damaged central directory")
	}
	nameLen, extraLen, commentLen := int(le.Uint16(b[28:])), int(le.Uint16(b[30:])), le.Uint16(b[32:])
	n := centralLen + nameLen + extraLen
	if commentLen != 0 || le.Uint16(b[34:]) != 0 || len(b) < n {
		return centralEntry{}, 0, invalid("not a tyst package ZIP: damaged central directory")
	}
	c := centralEntry{
		name:   b[centralLen : centralLen+nameLen],
		flags:  le.Uint16(b[8:]),
		method: le.Uint16(b[10:]),
		time:   le.Uint16(b[12:]),
		date:   le.Uint16(b[14:]),
		crc:    le.Uint32(b[16:]),
		csize:  uint64(le.Uint32(b[20:])),
		usize:  uint64(le.Uint32(b[24:])),
		offset: uint64(le.Uint32(b[42:])),
	}
	local, z64, ok := splitExtra(b[centralLen+nameLen : n])
	if !ok {
		return centralEntry{}, 0, invalid("not a tyst package ZIP: an extra field tyst does not write")
	}
	c.localExtra = local
	if z64 != nil {
		// archive/zip takes each value from the block only when its
		// field holds the marker; Write's zip64 form marks both sizes.
		if c.csize != marker32 || c.usize != marker32 {
			return centralEntry{}, 0, invalid("not a tyst package ZIP: bad zip64 extra field")
		}
		c.usize, c.csize = le.Uint64(z64[4:]), le.Uint64(z64[12:])
		switch off := le.Uint64(z64[20:]); {
		case c.offset == marker32:
			c.offset = off
		case off != c.offset:
			return centralEntry{}, 0, invalid("not a tyst package ZIP: bad zip64 extra field")
		}
	}
	return c, n, nil
}

// splitExtra splits a central extra field into the part its local header
// repeats (the extended timestamp, or nothing) and the zip64 block (or nil)
// that follows it in the central directory only. ok is false for any other
// extra field: another block could hide bytes or mean something to another
// reader.
func splitExtra(extra []byte) (local, z64 []byte, ok bool) {
	le := binary.LittleEndian
	rest := extra
	if len(rest) >= timeExtLen && le.Uint16(rest) == extraTime {
		if le.Uint16(rest[2:]) != timeExtLen-4 || rest[4] != 1 {
			return nil, nil, false
		}
		local, rest = rest[:timeExtLen], rest[timeExtLen:]
	}
	switch {
	case len(rest) == 0:
		return local, nil, true
	case len(rest) == zip64ExtLen && le.Uint16(rest) == extraZip64 && le.Uint16(rest[2:]) == zip64ExtLen-4:
		return local, rest, true
	}
	return nil, nil, false
}

// same reports whether archive/zip read c as f.
func (c *centralEntry) same(f *zip.File) bool {
	return f.Name == string(c.name) && f.Flags == c.flags && f.Method == c.method &&
		f.ModifiedTime == c.time && f.ModifiedDate == c.date && f.CRC32 == c.crc &&
		f.CompressedSize64 == c.csize && f.UncompressedSize64 == c.usize
}

// checkLocal checks the local header of c (and its data descriptor, when it
// has one) against c and returns where the entry ends. f is c as
// archive/zip read it; the name is one of the format's (index checked it).
func checkLocal(r io.ReaderAt, c centralEntry, f *zip.File) (uint64, error) {
	le := binary.LittleEndian
	var h [localLen]byte
	if err := readFull(r, h[:], c.offset); err != nil {
		return 0, err
	}
	disagrees := func(what string) error {
		return invalid("not a tyst package ZIP: the local header of %s disagrees with the central directory (%s)", f.Name, what)
	}
	desc := c.flags&flagDesc != 0
	crc, csize, usize := le.Uint32(h[14:]), uint64(le.Uint32(h[18:])), uint64(le.Uint32(h[22:]))
	nameLen, extraLen := int(le.Uint16(h[26:])), int(le.Uint16(h[28:]))
	switch {
	case le.Uint32(h[0:]) != sigLocal:
		return 0, invalid("not a tyst package ZIP: no local header where the central directory puts %s", f.Name)
	case nameLen != len(c.name):
		return 0, disagrees("name")
	case le.Uint16(h[6:]) != c.flags:
		return 0, disagrees("flags")
	case le.Uint16(h[8:]) != c.method:
		return 0, disagrees("compression")
	case le.Uint16(h[10:]) != c.time || le.Uint16(h[12:]) != c.date:
		return 0, disagrees("time")
	case desc && (crc != 0 || csize != 0 || usize != 0), // the values are in the descriptor
		!desc && (crc != c.crc || csize != c.csize || usize != c.usize || csize == marker32 || usize == marker32):
		return 0, disagrees("CRC or sizes")
	case extraLen != len(c.localExtra):
		return 0, disagrees("extra field")
	}
	ne := make([]byte, nameLen+extraLen) // both as long as in the bounded directory
	if err := readFull(r, ne, c.offset+localLen); err != nil {
		return 0, err
	}
	switch {
	case !bytes.Equal(ne[:nameLen], c.name):
		return 0, disagrees("name")
	case !bytes.Equal(ne[nameLen:], c.localExtra):
		return 0, disagrees("extra field")
	}
	data := c.offset + localLen + uint64(nameLen+extraLen)
	if off, err := f.DataOffset(); err != nil || off < 0 || uint64(off) != data {
		return 0, invalid("not a tyst package ZIP: the central directory entry of %s is ambiguous", f.Name)
	}
	end := data + c.csize // index bounded csize by the file's size
	if !desc {
		return end, nil
	}
	// archive/zip writes the descriptor with its signature, with 64-bit
	// sizes when either size needs them.
	var d [desc64Len]byte
	dl := descLen
	if c.csize >= marker32 || c.usize >= marker32 {
		dl = desc64Len
	}
	if err := readFull(r, d[:dl], end); err != nil {
		return 0, err
	}
	ok := le.Uint32(d[0:]) == sigDesc && le.Uint32(d[4:]) == c.crc
	if dl == descLen {
		ok = ok && uint64(le.Uint32(d[8:])) == c.csize && uint64(le.Uint32(d[12:])) == c.usize
	} else {
		ok = ok && le.Uint64(d[8:]) == c.csize && le.Uint64(d[16:]) == c.usize
	}
	if !ok {
		return 0, invalid("not a tyst package ZIP: the data descriptor of %s disagrees with the central directory", f.Name)
	}
	return end + uint64(dl), nil
}

// unaccounted is the error for bytes at off, before the entry or the
// directory named before, that no entry of the central directory covers.
func unaccounted(r io.ReaderAt, off uint64, before string) error {
	what := "bytes the central directory does not account for"
	var s [4]byte
	if err := readFull(r, s[:], off); err == nil && binary.LittleEndian.Uint32(s[:]) == sigLocal {
		what = "a local entry the central directory does not list"
	} else if pe := (*problemError)(nil); err != nil && !errors.As(err, &pe) {
		return err
	}
	where := "before " + before
	if off == 0 {
		where = "at the start of the file, " + where
	}
	return invalid("not a tyst package ZIP: %s, %s", what, where)
}

// readFull reads len(p) bytes at off; the end of the input before them is
// a truncated package, any other error the reader's.
func readFull(r io.ReaderAt, p []byte, off uint64) error {
	if off > 1<<63-1 {
		return invalid("not a tyst package ZIP: truncated")
	}
	n, err := r.ReadAt(p, int64(off))
	switch {
	case n == len(p):
		return nil
	case err == nil, errors.Is(err, io.EOF):
		return invalid("not a tyst package ZIP: truncated")
	}
	return fmt.Errorf("read: %w", err)
}
