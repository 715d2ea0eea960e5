// Package fstream implements tyst's Fernet stream format (DESIGN §4), the one
// file format for blobs, stream spools, export packages and debug dumps.
//
// The plaintext is cut into chunks of ChunkSize bytes. Each chunk becomes one
// Fernet token, written on a line of its own ("\n"), whose plaintext is a
// HeaderSize-byte header followed by the data:
//
//	version (1 byte) | flags (1 byte) | index (8 bytes, big-endian) | file id (16 bytes)
//
// Flags bit 0 marks the last chunk of the file, bit 1 a padding chunk; other
// bits are corrupt. A file is its full data chunks, then one final data chunk
// shorter than ChunkSize (possibly empty), then padding chunks, the last of
// which carries bit 0:
//
//	data (ChunkSize) ... | data (< ChunkSize) | padding ... | padding, last
//
// Padding data is not part of the file; readers drop it. Writer appends two
// padding chunks sized so that the file is EncryptedSize(n) bytes, a function
// of n/ChunkSize alone: a file's size tells its plaintext size only to within
// 1 MiB, so a copy of a known recording cannot be matched to a stored file by
// its length. Readers accept any number of padding chunks (a later writer may
// pad to larger buckets) and the unpadded files of the first release, whose
// last chunk is a data chunk carrying bit 0.
//
// The header binds every chunk to its file and position, so a swapped,
// reordered, dropped, foreign or truncated chunk is an error on every read,
// partial reads included. Every full chunk has a line of the same length
// (LineSize), so a reader seeks by arithmetic; ReadSeeker finds the final
// data chunk by walking back over the padding from the end. Tokens carry the
// Unix epoch as their timestamp, so a stored file reveals no timeline of
// activity. Any Fernet library can decrypt a file line by line, drop the
// header and skip the lines whose flags have bit 1 set.
//
// Nothing here holds more than one chunk in memory.
package fstream

import (
	"bytes"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/fernet/fernet-go"
)

const (
	// Version is the format version written in every chunk header.
	Version = 1
	// ChunkSize is the plaintext data carried by every data chunk but the
	// final one, and the most any chunk carries.
	ChunkSize = 1 << 20
	// HeaderSize is the length of the header that starts each chunk's plaintext.
	HeaderSize = 26
	// FileIDSize is the length of the random file id in each header.
	FileIDSize = 16

	flagLast    = 1 << 0 // the last chunk of the file
	flagPadding = 1 << 1 // data not part of the file

	fernetOverhead = 1 + 8 + aes.BlockSize + sha256.Size // version, time, iv, hmac
)

// LineSize is the length in bytes of the line (token and "\n") of a full chunk.
var LineSize = lineLen(ChunkSize)

// tailSize is the length of the last three lines Writer writes: the final
// data chunk and two padding chunks.
var tailSize = LineSize + 2*lineLen(0)

// ErrCorrupt is returned when a file is not a whole, unaltered file of this
// format under the given keys: a token that does not verify, a chunk out of
// place or from another file, padding where data belongs or data where
// padding belongs, a missing last chunk, or bytes after it.
var ErrCorrupt = errors.New("fstream: corrupt or foreign data")

// epoch is the timestamp written into every token (DESIGN §4).
var epoch = time.Unix(0, 0)

// lineLen returns the length of the line that carries n bytes of data.
func lineLen(n int) int64 {
	return lineOfBlocks(blocks(n))
}

// blocks returns the number of AES blocks that encrypt a chunk of n bytes of
// data: header and data, then PKCS #7 padding of 1 to 16 bytes.
func blocks(n int) int {
	return (HeaderSize+n)/aes.BlockSize + 1
}

// lineOfBlocks returns the length of the line of a token of m AES blocks.
func lineOfBlocks(m int) int64 {
	return int64(base64.URLEncoding.EncodedLen(m*aes.BlockSize+fernetOverhead)) + 1
}

// EncryptedSize returns the size of the file Writer makes of n bytes of
// plaintext: n/ChunkSize full lines, then a tail of constant size. Every n of
// the same MiB gives the same size.
func EncryptedSize(n int64) int64 {
	return n/ChunkSize*LineSize + tailSize
}

func putHeader(h []byte, flags byte, index uint64, fileID [FileIDSize]byte) {
	h[0] = Version
	h[1] = flags
	binary.BigEndian.PutUint64(h[2:10], index)
	copy(h[10:HeaderSize], fileID[:])
}

// chunk is one decrypted chunk whose header is well-formed. Where it may
// stand is for the reader to check.
type chunk struct {
	last    bool // flags bit 0
	padding bool // flags bit 1
	index   uint64
	fileID  [FileIDSize]byte
	data    []byte
}

// open verifies and decrypts one line (without its "\n") under keys.
func open(line []byte, keys []*fernet.Key) (chunk, error) {
	// Check the shape before fernet sees it: a well-formed token has a
	// whole number of cipher blocks after the fixed fields.
	raw := base64.URLEncoding.DecodedLen(len(line))
	if len(line)%4 != 0 || raw < fernetOverhead+aes.BlockSize {
		return chunk{}, ErrCorrupt
	}
	// fernet-go decodes leniently: it skips "\r" and ignores what follows
	// padding. Only the canonical line is accepted, so a file has exactly
	// one valid form and both readers agree on it.
	if bytes.IndexByte(line, '\r') >= 0 {
		return chunk{}, ErrCorrupt
	}
	if i := bytes.IndexByte(line, '='); i >= 0 && i < len(line)-2 || i == len(line)-2 && line[len(line)-1] != '=' {
		return chunk{}, ErrCorrupt
	}
	// The lenient decoder also ignores the unused low bits of the last
	// character before "="; the strict one refuses them.
	var q [3]byte
	if _, err := base64.URLEncoding.Strict().Decode(q[:], line[len(line)-4:]); err != nil {
		return chunk{}, ErrCorrupt
	}
	plain := fernet.VerifyAndDecrypt(line, 0, keys)
	if len(plain) < HeaderSize || plain[0] != Version || plain[1]&^(flagLast|flagPadding) != 0 {
		return chunk{}, ErrCorrupt
	}
	c := chunk{
		last:    plain[1]&flagLast != 0,
		padding: plain[1]&flagPadding != 0,
		index:   binary.BigEndian.Uint64(plain[2:10]),
		data:    plain[HeaderSize:],
	}
	copy(c.fileID[:], plain[10:HeaderSize])
	if len(c.data) > ChunkSize {
		return chunk{}, ErrCorrupt
	}
	return c, nil
}

// linePool holds line buffers of LineSize bytes. Readers take one per line
// and give it back as soon as the line is decrypted, so a reader whose
// client stalls holds only the plaintext of its current chunk.
var linePool = sync.Pool{New: func() any {
	b := make([]byte, LineSize)
	return &b
}}
