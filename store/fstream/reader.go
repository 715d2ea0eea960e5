package fstream

import (
	"bufio"
	"errors"
	"io"

	"github.com/fernet/fernet-go"
)

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
