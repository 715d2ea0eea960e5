package spool

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"

	"github.com/fernet/fernet-go"
)

// Chunk is one decrypted chunk of a spool.
type Chunk struct {
	Meta bool   // a metadata chunk
	Data []byte // valid until the next call of Next
}

// Reader reads a spool front to back. Its end is the first line that is
// not the next valid token of the file (see the package doc): Next returns
// io.EOF there, and only errors of the underlying reader otherwise.
type Reader struct {
	r      *bufio.Reader
	keys   []*fernet.Key
	index  uint64
	fileID [FileIDSize]byte
	off    int64 // bytes of valid lines read
	done   bool
}

// NewReader returns a Reader of the spool in r, decrypting with any of keys.
func NewReader(r io.Reader, keys []*fernet.Key) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, MaxLine+1), keys: keys}
}

// Offset returns the bytes of the valid lines read so far: where the next
// chunk is appended.
func (sr *Reader) Offset() int64 { return sr.off }

// Next returns the next chunk, or io.EOF at the end of the valid chunks.
func (sr *Reader) Next() (Chunk, error) {
	if sr.done {
		return Chunk{}, io.EOF
	}
	line, err := sr.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull), errors.Is(err, io.EOF):
		sr.done = true // a line too long (zeros), or a cut line: the end
		return Chunk{}, io.EOF
	case err != nil:
		return Chunk{}, err
	}
	c, fileID, index, ok := openLine(line[:len(line)-1], sr.keys)
	if sr.index == 0 {
		sr.fileID = fileID
		ok = ok && c.Meta // chunk 0 is the stream's metadata
	}
	if !ok || index != sr.index || fileID != sr.fileID {
		sr.done = true
		return Chunk{}, io.EOF
	}
	sr.index++
	sr.off += int64(len(line))
	return c, nil
}

// openLine verifies and decrypts one line without its "\n".
func openLine(line []byte, keys []*fernet.Key) (c Chunk, fileID [FileIDSize]byte, index uint64, ok bool) {
	if len(line)%4 != 0 || base64.URLEncoding.DecodedLen(len(line)) < fernetOverhead+aes.BlockSize ||
		bytes.IndexByte(line, '\r') >= 0 {
		return c, fileID, 0, false
	}
	plain := fernet.VerifyAndDecrypt(line, 0, keys)
	if len(plain) < HeaderSize || plain[0] != Version || plain[1]&^FlagMeta != 0 {
		return c, fileID, 0, false
	}
	c.Meta = plain[1]&FlagMeta != 0
	c.Data = plain[HeaderSize:]
	index = binary.BigEndian.Uint64(plain[2:10])
	copy(fileID[:], plain[10:HeaderSize])
	return c, fileID, index, true
}

// DataReader is an io.Reader of the first n data bytes of a spool; it skips
// metadata chunks. A spool that ends before n bytes is ErrShort.
type DataReader struct {
	sr   *Reader
	left int64
	data []byte
}

// NewDataReader returns a reader of the first n data bytes of the spool in r.
func NewDataReader(r io.Reader, keys []*fernet.Key, n int64) *DataReader {
	return &DataReader{sr: NewReader(r, keys), left: n}
}

// Read implements io.Reader.
func (d *DataReader) Read(p []byte) (int, error) {
	for len(d.data) == 0 {
		if d.left == 0 {
			return 0, io.EOF
		}
		c, err := d.sr.Next()
		if errors.Is(err, io.EOF) {
			return 0, ErrShort
		}
		if err != nil {
			return 0, err
		}
		if !c.Meta {
			d.data = c.Data[:min(int64(len(c.Data)), d.left)]
			d.left -= int64(len(d.data))
		}
	}
	n := copy(p, d.data)
	d.data = d.data[n:]
	return n, nil
}

// ReadChunkAt reads and decrypts the chunk whose line (with its "\n") is n
// bytes at off in r, and checks that it is data chunk index of file fileID.
// buf is used for the line when it is large enough. For readers that keep
// an index of the lines they wrote (the field client's buffer).
func ReadChunkAt(r io.ReaderAt, off int64, n int, index uint64, fileID [FileIDSize]byte, keys []*fernet.Key, buf []byte) ([]byte, error) {
	if n < 1 || n > MaxLine {
		return nil, ErrCorrupt
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	line := buf[:n]
	if _, err := r.ReadAt(line, off); err != nil {
		return nil, err
	}
	if line[n-1] != '\n' {
		return nil, ErrCorrupt
	}
	c, id, i, ok := openLine(line[:n-1], keys)
	if !ok || c.Meta || i != index || id != fileID {
		return nil, ErrCorrupt
	}
	return c.Data, nil
}
