package fstream

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/fernet/fernet-go"
)

// Writer encrypts what is written to it into the stream format. Close writes
// the final data chunk and the padding; without Close the file is incomplete
// and reads as corrupt.
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

// Write buffers p and writes every chunk as soon as it is full. It returns
// the first error of the underlying writer.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.closed {
		return 0, errors.New("fstream: write after close")
	}
	n := 0
	for len(p) > 0 {
		k := copy(sw.buf[len(sw.buf):HeaderSize+ChunkSize], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
		n += k
		if len(sw.buf) == HeaderSize+ChunkSize {
			// The last flag sits on padding, so a full chunk is never
			// the last one and need not wait.
			if err := sw.flush(0); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Close writes the final data chunk (shorter than ChunkSize, empty when the
// size is a multiple of it) and two padding chunks that bring the file to
// EncryptedSize of the bytes written. It does not close the underlying
// writer.
func (sw *Writer) Close() error {
	if sw.closed {
		return sw.err
	}
	sw.closed = true
	if sw.err != nil {
		return sw.err
	}
	a, b, ok := paddingLens(len(sw.buf) - HeaderSize)
	if !ok { // paddingLens finds a pair for every length: see its test
		sw.err = errors.New("fstream: no padding fits")
		return sw.err
	}
	if err := sw.flush(0); err != nil {
		return err
	}
	if err := sw.pad(a, flagPadding); err != nil {
		return err
	}
	return sw.pad(b, flagPadding|flagLast)
}

// pad writes a padding chunk of n zero bytes.
func (sw *Writer) pad(n int, flags byte) error {
	sw.buf = sw.buf[:HeaderSize+n]
	clear(sw.buf[HeaderSize:])
	return sw.flush(flags)
}

// flush writes the buffered chunk with flags and empties the buffer.
func (sw *Writer) flush(flags byte) error {
	putHeader(sw.buf[:HeaderSize], flags, sw.index, sw.fileID)
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
