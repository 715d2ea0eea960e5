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
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
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

// Writer encrypts what is written to it into the stream format. Close writes
// the last chunk; without Close the file is incomplete and reads as corrupt.
//
// Writer builds each Fernet token in buffers it reuses (sealer), so a long
// stream allocates nothing per chunk; the tokens are standard Fernet, which
// the tests check against the spec's known answers and fernet-go.
type Writer struct {
	w      io.Writer
	seal   *sealer
	fileID [FileIDSize]byte
	buf    []byte // header + up to ChunkSize bytes of data
	index  uint64
	err    error
	closed bool
}

// NewWriter returns a Writer that encrypts under key into w, with a new random
// file id.
func NewWriter(w io.Writer, key *fernet.Key) (*Writer, error) {
	sw := &Writer{w: w, seal: newSealer(key), buf: make([]byte, HeaderSize, HeaderSize+ChunkSize)}
	if _, err := io.ReadFull(rand.Reader, sw.fileID[:]); err != nil {
		return nil, fmt.Errorf("fstream: file id: %w", err)
	}
	return sw, nil
}

// FileID returns the random id that binds this file's chunks together.
func (sw *Writer) FileID() [FileIDSize]byte { return sw.fileID }

// Write buffers p and writes every chunk that is full and known not to be the
// last. It returns the first error of the underlying writer.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.closed {
		return 0, errors.New("fstream: write after close")
	}
	n := 0
	for len(p) > 0 {
		if len(sw.buf) == HeaderSize+ChunkSize {
			// A full chunk is written only when more data follows, because
			// only Close knows which chunk is the last.
			if err := sw.flush(false); err != nil {
				return n, err
			}
		}
		k := copy(sw.buf[len(sw.buf):HeaderSize+ChunkSize], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

// Close writes the last chunk (an empty one for an empty file). It does not
// close the underlying writer.
func (sw *Writer) Close() error {
	if sw.closed {
		return sw.err
	}
	sw.closed = true
	if sw.err != nil {
		return sw.err
	}
	return sw.flush(true)
}

func (sw *Writer) flush(last bool) error {
	putHeader(sw.buf[:HeaderSize], last, sw.index, sw.fileID)
	line, err := sw.seal.line(sw.buf)
	if err != nil {
		sw.err = fmt.Errorf("fstream: encrypt: %w", err)
		return sw.err
	}
	if _, err := sw.w.Write(line); err != nil {
		sw.err = err
		return err
	}
	sw.index++
	sw.buf = sw.buf[:HeaderSize]
	return nil
}

// sealer makes Fernet tokens (spec version 0x80: AES-128-CBC with PKCS #7
// padding, then HMAC-SHA256 over version, time, IV and ciphertext) with the
// epoch as their time, into buffers it reuses.
type sealer struct {
	block cipher.Block
	mac   hash.Hash
	raw   []byte // version | time | iv | ciphertext | hmac
	out   []byte // base64url(raw) + "\n"
	iv    [aes.BlockSize]byte
}

func newSealer(key *fernet.Key) *sealer {
	block, err := aes.NewCipher(key[16:]) // Fernet: second half encrypts
	if err != nil {
		panic("fstream: aes: " + err.Error()) // a 16-byte key cannot fail
	}
	return &sealer{block: block, mac: hmac.New(sha256.New, key[:16])}
}

// line returns the token for plain followed by "\n", valid until the next
// call.
func (s *sealer) line(plain []byte) ([]byte, error) {
	if _, err := io.ReadFull(rand.Reader, s.iv[:]); err != nil {
		return nil, err
	}
	return s.lineAt(plain, s.iv, epoch), nil
}

// lineAt is line with a given IV and time, for the spec's known answers.
func (s *sealer) lineAt(plain []byte, iv [aes.BlockSize]byte, ts time.Time) []byte {
	const payOffset = 1 + 8 + aes.BlockSize
	padded := len(plain)/aes.BlockSize*aes.BlockSize + aes.BlockSize
	n := payOffset + padded + sha256.Size
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	raw := s.raw[:payOffset+padded]
	raw[0] = 0x80
	binary.BigEndian.PutUint64(raw[1:9], uint64(ts.Unix()))
	copy(raw[9:payOffset], iv[:])
	pay := raw[payOffset:]
	copy(pay, plain)
	for i := len(plain); i < padded; i++ {
		pay[i] = byte(padded - len(plain))
	}
	cipher.NewCBCEncrypter(s.block, iv[:]).CryptBlocks(pay, pay)
	s.mac.Reset()
	s.mac.Write(raw)
	raw = s.mac.Sum(raw) // appends in place: cap(s.raw) >= n
	enc := base64.URLEncoding.EncodedLen(len(raw))
	if cap(s.out) < enc+1 {
		s.out = make([]byte, enc+1)
	}
	line := s.out[:enc+1]
	base64.URLEncoding.Encode(line, raw)
	line[enc] = '\n'
	return line
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

// Reader decrypts a stream-format file read front to back (a pipe, stdin).
// It returns ErrCorrupt for any chunk out of place and at the end of a file
// whose last chunk is missing.
type Reader struct {
	r      *bufio.Reader
	keys   []*fernet.Key
	index  uint64
	fileID [FileIDSize]byte
	data   []byte
	done   bool
	err    error
}

// NewReader returns a Reader that decrypts r with any of keys.
func NewReader(r io.Reader, keys []*fernet.Key) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), keys: keys}
}

// Read implements io.Reader.
func (sr *Reader) Read(p []byte) (int, error) {
	for len(sr.data) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			sr.err = sr.checkEnd()
			return 0, sr.err
		}
		sr.err = sr.next()
	}
	n := copy(p, sr.data)
	sr.data = sr.data[n:]
	return n, nil
}

func (sr *Reader) next() error {
	line, err := readLine(sr.r)
	if err != nil {
		return err
	}
	c, err := open(line, sr.keys)
	if err != nil {
		return err
	}
	if sr.index == 0 {
		sr.fileID = c.fileID
	}
	if c.index != sr.index || c.fileID != sr.fileID {
		return ErrCorrupt
	}
	sr.index++
	sr.data = c.data
	sr.done = c.last
	return nil
}

// checkEnd makes sure nothing follows the last chunk.
func (sr *Reader) checkEnd() error {
	if _, err := sr.r.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return ErrCorrupt
	}
	return io.EOF
}

// readLine reads one line of at most LineSize bytes, without its "\n". A file
// that ends without one is truncated: ErrCorrupt.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if int64(len(line)) > LineSize {
			return nil, ErrCorrupt
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, ErrCorrupt // no last chunk, or a cut line
		default:
			return nil, err
		}
	}
}

// ReadSeeker decrypts a stream-format file with random access, for playback
// with HTTP Range. Every chunk it reads is checked against its position and
// against the file id of the last chunk, read when it was opened.
type ReadSeeker struct {
	ra      io.ReaderAt
	keys    []*fernet.Key
	encSize int64
	fileID  [FileIDSize]byte
	chunks  int64 // number of chunks
	size    int64 // plaintext size
	pos     int64
	cur     int64 // index of the chunk in data, -1 for none
	data    []byte
	lineBuf []byte
}

// NewReadSeeker opens the file of encSize bytes in ra. It decrypts the last
// chunk to learn the plaintext size and file id, so a file that is truncated,
// extended or not of these keys is an error here already.
func NewReadSeeker(ra io.ReaderAt, encSize int64, keys []*fernet.Key) (*ReadSeeker, error) {
	if encSize <= 0 {
		return nil, ErrCorrupt
	}
	chunks := (encSize + LineSize - 1) / LineSize
	rs := &ReadSeeker{ra: ra, keys: keys, encSize: encSize, chunks: chunks, cur: -1}
	c, err := rs.load(chunks - 1)
	if err != nil {
		return nil, err
	}
	rs.fileID = c.fileID
	rs.size = (chunks-1)*ChunkSize + int64(len(c.data))
	if EncryptedSize(rs.size) != encSize {
		return nil, ErrCorrupt
	}
	rs.cur, rs.data = chunks-1, c.data
	return rs, nil
}

// Size returns the plaintext size.
func (rs *ReadSeeker) Size() int64 { return rs.size }

// FileID returns the file id shared by every chunk.
func (rs *ReadSeeker) FileID() [FileIDSize]byte { return rs.fileID }

// load reads and checks chunk i against its position. The caller compares
// the file id.
func (rs *ReadSeeker) load(i int64) (chunk, error) {
	off := i * LineSize
	n := min(LineSize, rs.encSize-off)
	if int64(cap(rs.lineBuf)) < n {
		rs.lineBuf = make([]byte, n)
	}
	buf := rs.lineBuf[:n]
	if _, err := rs.ra.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return chunk{}, ErrCorrupt
		}
		return chunk{}, err
	}
	if buf[n-1] != '\n' {
		return chunk{}, ErrCorrupt
	}
	c, err := open(buf[:n-1], rs.keys)
	if err != nil {
		return chunk{}, err
	}
	if c.index != uint64(i) || c.last != (i == rs.chunks-1) {
		return chunk{}, ErrCorrupt
	}
	return c, nil
}

// Read implements io.Reader.
func (rs *ReadSeeker) Read(p []byte) (int, error) {
	if rs.pos >= rs.size {
		return 0, io.EOF
	}
	i := rs.pos / ChunkSize
	if i != rs.cur {
		c, err := rs.load(i)
		if err != nil {
			return 0, err
		}
		if c.fileID != rs.fileID {
			return 0, ErrCorrupt
		}
		rs.cur, rs.data = i, c.data
	}
	n := copy(p, rs.data[rs.pos-i*ChunkSize:])
	rs.pos += int64(n)
	return n, nil
}

// Seek implements io.Seeker over the plaintext.
func (rs *ReadSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += rs.pos
	case io.SeekEnd:
		offset += rs.size
	default:
		return 0, errors.New("fstream: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("fstream: negative position")
	}
	rs.pos = offset
	return offset, nil
}
