package fstream

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/fernet/fernet-go"
)

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
