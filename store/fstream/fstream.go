// Package fstream implements tyst's Fernet stream format (DESIGN §4), the one
// file format for blobs, stream spools, export packages and debug dumps.
//
// The plaintext is cut into chunks of ChunkSize bytes (the last may be
// shorter). Each chunk becomes one Fernet token, written on a line of its own
// ("\n"), whose plaintext is a HeaderSize-byte header followed by the data:
//
//	version (1 byte) | flags (1 byte, bit 0 = last chunk) | index (8 bytes, big-endian) | file id (16 bytes)
//
// The header binds every chunk to its file and position, so a swapped,
// reordered, dropped, foreign or truncated chunk is an error on every read,
// partial reads included. Every full chunk has a line of the same length
// (LineSize), so a reader seeks by arithmetic. Tokens carry the Unix epoch as
// their timestamp, so a stored file reveals no timeline of activity. Any
// Fernet library can decrypt a file line by line and drop the header.
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
	"time"

	"github.com/fernet/fernet-go"
)

const (
	// Version is the format version written in every chunk header.
	Version = 1
	// ChunkSize is the plaintext data carried by every chunk but the last.
	ChunkSize = 1 << 20
	// HeaderSize is the length of the header that starts each chunk's plaintext.
	HeaderSize = 26
	// FileIDSize is the length of the random file id in each header.
	FileIDSize = 16

	flagLast = 1 << 0

	fernetOverhead = 1 + 8 + aes.BlockSize + sha256.Size // version, time, iv, hmac
)

// LineSize is the length in bytes of the line (token and "\n") of a full chunk.
var LineSize = lineLen(ChunkSize)

// ErrCorrupt is returned when a file is not a whole, unaltered file of this
// format under the given keys: a token that does not verify, a chunk out of
// place or from another file, a missing last chunk, or bytes after it.
var ErrCorrupt = errors.New("fstream: corrupt or foreign data")

// epoch is the timestamp written into every token (DESIGN §4).
var epoch = time.Unix(0, 0)

// lineLen returns the length of the line that carries n bytes of data.
func lineLen(n int) int64 {
	plain := HeaderSize + n
	raw := plain/aes.BlockSize*aes.BlockSize + aes.BlockSize + fernetOverhead
	return int64(base64.URLEncoding.EncodedLen(raw)) + 1
}

// EncryptedSize returns the size of the file that holds n bytes of plaintext.
func EncryptedSize(n int64) int64 {
	full := n / ChunkSize
	rest := n % ChunkSize
	if rest == 0 && full > 0 {
		return full * LineSize
	}
	return full*LineSize + lineLen(int(rest))
}

func putHeader(h []byte, last bool, index uint64, fileID [FileIDSize]byte) {
	h[0] = Version
	h[1] = 0
	if last {
		h[1] = flagLast
	}
	binary.BigEndian.PutUint64(h[2:10], index)
	copy(h[10:HeaderSize], fileID[:])
}

// chunk is one decrypted, checked chunk.
type chunk struct {
	last   bool
	index  uint64
	fileID [FileIDSize]byte
	data   []byte
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
	plain := fernet.VerifyAndDecrypt(line, 0, keys)
	if len(plain) < HeaderSize || plain[0] != Version || plain[1]&^flagLast != 0 {
		return chunk{}, ErrCorrupt
	}
	c := chunk{
		last:  plain[1]&flagLast != 0,
		index: binary.BigEndian.Uint64(plain[2:10]),
		data:  plain[HeaderSize:],
	}
	copy(c.fileID[:], plain[10:HeaderSize])
	if !c.last && len(c.data) != ChunkSize {
		return chunk{}, ErrCorrupt
	}
	return c, nil
}
