package fstream

import (
	"bytes"
	"errors"
	"io"

	"github.com/fernet/fernet-go"
)

// ReadSeeker decrypts a stream-format file with random access, for playback
// with HTTP Range. Every chunk it reads is checked against its position and
// against the file id of the last chunk, read when it was opened.
//
// Between reads it holds the plaintext of one chunk and no line buffer, so
// a stalled client costs at most ChunkSize bytes.
type ReadSeeker struct {
	ra       io.ReaderAt
	keys     []*fernet.Key
	fileID   [FileIDSize]byte
	final    int64 // index of the final data chunk
	finalEnd int64 // end of its line ("\n" included)
	last     bool  // it carries the last flag: an unpadded file
	size     int64 // plaintext size
	pos      int64
	cur      int64 // index of the chunk in data, -1 for none
	data     []byte
}

// NewReadSeeker opens the file of encSize bytes in ra. It walks back from the
// end over the padding to the final data chunk, decrypting each line, to
// learn the plaintext size and file id; so a file that is truncated,
// extended, mis-padded or not of these keys is an error here already.
func NewReadSeeker(ra io.ReaderAt, encSize int64, keys []*fernet.Key) (*ReadSeeker, error) {
	if encSize <= 0 {
		return nil, ErrCorrupt
	}
	bp := linePool.Get().(*[]byte)
	defer linePool.Put(bp)
	back := &backLines{ra: ra, buf: (*bp)[:0], off: encSize}

	c, start, err := back.prev(encSize, keys)
	if err != nil {
		return nil, err
	}
	if !c.last {
		return nil, ErrCorrupt // cut after a chunk, or something appended
	}
	rs := &ReadSeeker{ra: ra, keys: keys, fileID: c.fileID, finalEnd: encSize, last: !c.padding}
	for c.padding {
		want := c.index - 1 // wraps for 0, and the bound check below refuses it
		rs.finalEnd = start
		if c, start, err = back.prev(start, keys); err != nil {
			return nil, err
		}
		if c.index != want || c.fileID != rs.fileID || c.last {
			return nil, ErrCorrupt
		}
	}
	// c is the final data chunk. Padded, it must be short; unpadded (c.last)
	// it may be full. Every chunk before it is full, so it starts at
	// index*LineSize.
	if !c.last && len(c.data) == ChunkSize || c.index > uint64(encSize/LineSize) ||
		int64(c.index)*LineSize != start {
		return nil, ErrCorrupt
	}
	rs.final = int64(c.index)
	rs.size = rs.final*ChunkSize + int64(len(c.data))
	rs.cur, rs.data = rs.final, c.data
	return rs, nil
}

// Size returns the plaintext size.
func (rs *ReadSeeker) Size() int64 { return rs.size }

// FileID returns the file id shared by every chunk.
func (rs *ReadSeeker) FileID() [FileIDSize]byte { return rs.fileID }

// load reads chunk i (at most the final data chunk), checks it against its
// position and the file, and makes it the current chunk.
func (rs *ReadSeeker) load(i int64) error {
	off, end := i*LineSize, (i+1)*LineSize
	if i == rs.final {
		end = rs.finalEnd
	}
	bp := linePool.Get().(*[]byte)
	c, err := readChunkAt(rs.ra, (*bp)[:end-off], off, rs.keys)
	linePool.Put(bp)
	if err != nil {
		return err
	}
	if c.index != uint64(i) || c.fileID != rs.fileID || c.padding || c.last != (i == rs.final && rs.last) ||
		int64(len(c.data)) != min(ChunkSize, rs.size-i*ChunkSize) {
		return ErrCorrupt
	}
	rs.cur, rs.data = i, c.data
	return nil
}

// readChunkAt decrypts the line that fills buf from off.
func readChunkAt(ra io.ReaderAt, buf []byte, off int64, keys []*fernet.Key) (chunk, error) {
	if err := readAt(ra, buf, off); err != nil {
		return chunk{}, err
	}
	if len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return chunk{}, ErrCorrupt
	}
	return open(buf[:len(buf)-1], keys)
}

// readAt fills p from off; a file shorter than that is corrupt.
func readAt(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	switch {
	case n == len(p):
		return nil // io.ReaderAt may report io.EOF with the last bytes
	case errors.Is(err, io.EOF):
		return ErrCorrupt
	case err == nil:
		return io.ErrUnexpectedEOF // a broken io.ReaderAt
	default:
		return err
	}
}

// backLines reads a file's lines from the end. Its window (buf, of at most
// LineSize bytes, from offset off) slides back with each line, so bytes
// already read are not read again.
type backLines struct {
	ra  io.ReaderAt
	buf []byte // capacity LineSize
	off int64
}

// prev decrypts the line that ends at end ("\n" at end-1) and returns its
// chunk and the offset where it starts. end must lie within the window:
// the file's size first, then the start of the line before.
func (b *backLines) prev(end int64, keys []*fernet.Key) (chunk, int64, error) {
	lo := max(0, end-LineSize)
	held := b.buf[:end-b.off] // [b.off, end), still valid
	buf := b.buf[:end-lo]
	copy(buf[b.off-lo:], held)
	if err := readAt(b.ra, buf[:b.off-lo], lo); err != nil {
		return chunk{}, 0, err
	}
	b.buf, b.off = buf, lo
	if len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return chunk{}, 0, ErrCorrupt
	}
	// A line longer than the window finds no "\n" before it and is cut
	// here; the next line back then does not end in "\n", or the final data
	// chunk does not sit at its place.
	start := bytes.LastIndexByte(buf[:len(buf)-1], '\n') + 1
	c, err := open(buf[start:len(buf)-1], keys)
	return c, lo + int64(start), err
}

// Read implements io.Reader.
func (rs *ReadSeeker) Read(p []byte) (int, error) {
	if rs.pos >= rs.size {
		return 0, io.EOF
	}
	if i := rs.pos / ChunkSize; i != rs.cur {
		if err := rs.load(i); err != nil {
			return 0, err
		}
	}
	n := copy(p, rs.data[rs.pos-rs.cur*ChunkSize:])
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
