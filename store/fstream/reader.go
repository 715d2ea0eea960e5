package fstream

import (
	"bufio"
	"errors"
	"io"

	"github.com/fernet/fernet-go"
)

// Reader decrypts a stream-format file read front to back (a pipe, stdin).
// It returns ErrCorrupt for any chunk out of place and at the end of a file
// whose last chunk is missing. It delivers the data of each chunk once the
// chunk is checked; only its io.EOF vouches for the whole file.
type Reader struct {
	r      *bufio.Reader
	keys   []*fernet.Key
	index  uint64
	fileID [FileIDSize]byte
	state  readState
	data   []byte
	err    error
}

// readState is where a Reader stands in the sequence of chunks.
type readState int

const (
	wantData    readState = iota // full data chunks so far
	wantPadding                  // after a short data chunk or a padding chunk
	ended                        // after the chunk with the last flag
)

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
		if sr.state == ended {
			sr.err = sr.checkEnd()
			return 0, sr.err
		}
		sr.err = sr.next()
	}
	n := copy(p, sr.data)
	sr.data = sr.data[n:]
	return n, nil
}

// next reads one chunk and checks it against the ones before.
func (sr *Reader) next() error {
	c, err := sr.readChunk()
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
	switch {
	case c.padding:
		if sr.state != wantPadding {
			return ErrCorrupt // padding before the short final data chunk
		}
	case sr.state != wantData:
		return ErrCorrupt // data after the final data chunk
	case c.last:
		// An unpadded file of the first release: its last chunk is data.
		sr.data = c.data
	case len(c.data) < ChunkSize:
		sr.data = c.data
		sr.state = wantPadding
	default:
		sr.data = c.data
	}
	if c.last {
		sr.state = ended
	}
	return nil
}

// readChunk reads and decrypts the next line in a pooled buffer.
func (sr *Reader) readChunk() (chunk, error) {
	bp := linePool.Get().(*[]byte)
	defer linePool.Put(bp)
	line, err := readLine(sr.r, *bp)
	if err != nil {
		return chunk{}, err
	}
	return open(line, sr.keys)
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

// readLine reads one line of at most LineSize bytes into buf (of LineSize
// bytes) and returns it without its "\n". A file that ends without one is
// truncated: ErrCorrupt.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		frag, err := r.ReadSlice('\n')
		if len(frag) > len(buf)-n {
			return nil, ErrCorrupt
		}
		n += copy(buf[n:], frag)
		switch {
		case err == nil:
			return buf[:n-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, ErrCorrupt // no last chunk, or a cut line
		default:
			return nil, err
		}
	}
}
