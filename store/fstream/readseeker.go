package fstream

import (
	"errors"
	"io"

	"github.com/fernet/fernet-go"
)

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
