package export

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Bounds of a package's ZIP structure, checked before archive/zip reads it.
const (
	maxEntries  = 16       // a package has 7 or 8
	maxDirBytes = 64 << 10 // the central directory of 16 short names is ~1 KiB
)

// Lengths and signatures of ZIP records (APPNOTE 4.3).
const (
	eocdLen      = 22 // end of central directory record, without comment
	locator64Len = 20 // zip64 end of central directory locator
	eocd64Len    = 56 // zip64 end of central directory record, without extension
	centralLen   = 46 // central directory header, without name, extra, comment
	localLen     = 30 // local file header, without name and extra
	descLen      = 16 // data descriptor with signature, 32-bit sizes
	desc64Len    = 24 // data descriptor with signature, 64-bit sizes

	sigEOCD     = 0x06054b50
	sigEOCD64   = 0x06064b50
	sigLocator  = 0x07064b50
	sigCentral  = 0x02014b50
	sigLocal    = 0x04034b50
	sigDesc     = 0x08074b50
	marker16    = 0xffff
	marker32    = 0xffffffff
	flagDesc    = 0x8    // sizes and CRC follow the data, in a data descriptor
	extraTime   = 0x5455 // Info-ZIP extended timestamp
	extraZip64  = 0x0001 // zip64 sizes and offset
	timeExtLen  = 4 + 5  // the timestamp block archive/zip writes: flags 1, mtime
	zip64ExtLen = 4 + 24 // the zip64 block archive/zip writes: usize, csize, offset
)

// directory is where checkDirectory found the central directory.
type directory struct {
	offset, size uint64
	records      int
}

// checkDirectory checks the end of the ZIP in r before archive/zip parses
// it. archive/zip reads central directory headers from the directory's
// offset to the end of the file, allocating as it goes, and checks their
// number only modulo 65536; a hostile file could make it allocate in
// proportion to the file's size. Here the end record must be the last 22
// bytes (no comment, as Write makes it), read exactly as archive/zip reads
// it, with the zip64 record where archive/zip looks for it and in the one
// form archive/zip writes; the directory must end where that record starts
// (nothing before the ZIP, nothing in between) and be at most maxDirBytes
// long with at most maxEntries entries. So archive/zip reads at most
// maxDirBytes and a few records.
func checkDirectory(r io.ReaderAt, size int64) (directory, error) {
	if size < eocdLen {
		return directory{}, invalid("not a tyst package ZIP: too short")
	}
	var e [eocdLen]byte
	if _, err := r.ReadAt(e[:], size-eocdLen); err != nil {
		return directory{}, fmt.Errorf("read: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(e[0:]) != sigEOCD {
		return directory{}, invalid("not a tyst package ZIP: no end record at the end (truncated, a comment, or not a ZIP)")
	}
	if le.Uint16(e[4:]) != 0 || le.Uint16(e[6:]) != 0 || le.Uint16(e[8:]) != le.Uint16(e[10:]) || le.Uint16(e[20:]) != 0 {
		return directory{}, invalid("not a tyst package ZIP: split archive or comment length")
	}
	records := uint64(le.Uint16(e[10:]))
	dirSize := uint64(le.Uint32(e[12:]))
	dirOffset := uint64(le.Uint32(e[16:]))
	end := uint64(size - eocdLen)

	// The same condition and the same look-up as archive/zip's
	// readDirectoryEnd and findDirectory64End.
	if records == marker16 || dirSize == marker32 || dirOffset == marker32 {
		if end >= locator64Len {
			var l [locator64Len]byte
			if _, err := r.ReadAt(l[:], int64(end-locator64Len)); err != nil {
				return directory{}, fmt.Errorf("read: %w", err)
			}
			if le.Uint32(l[0:]) == sigLocator && le.Uint32(l[4:]) == 0 && le.Uint32(l[16:]) == 1 {
				p := le.Uint64(l[8:])
				if p != end-locator64Len-eocd64Len {
					return directory{}, invalid("not a tyst package ZIP: zip64 record out of place")
				}
				var z [eocd64Len]byte
				if _, err := r.ReadAt(z[:], int64(p)); err != nil {
					return directory{}, fmt.Errorf("read: %w", err)
				}
				// As archive/zip writes it: every field of the end
				// record a marker, no extensible data, one disk.
				if le.Uint32(z[0:]) != sigEOCD64 || le.Uint64(z[4:]) != eocd64Len-12 ||
					le.Uint32(z[16:]) != 0 || le.Uint32(z[20:]) != 0 || le.Uint64(z[24:]) != le.Uint64(z[32:]) ||
					records != marker16 || dirSize != marker32 || dirOffset != marker32 {
					return directory{}, invalid("not a tyst package ZIP: bad zip64 record")
				}
				records = le.Uint64(z[32:])
				dirSize = le.Uint64(z[40:])
				dirOffset = le.Uint64(z[48:])
				end = p
			}
		}
	}
	switch {
	case records == 0 || records > maxEntries:
		return directory{}, invalid("not a tyst package ZIP: %d entries", records)
	case dirSize > maxDirBytes:
		return directory{}, invalid("not a tyst package ZIP: central directory too large")
	case dirOffset > end || end-dirOffset != dirSize:
		return directory{}, invalid("not a tyst package ZIP: central directory out of place")
	}
	return directory{offset: dirOffset, size: dirSize, records: int(records)}, nil
}
