package export

import (
	"hash"
	"io"
)

// hashWriter writes to w while a second goroutine hashes the same bytes, so
// an export of long audio uses more than one core: encryption, the original's
// hash and the entry's hash each run beside the others. It holds no copy of
// the data. Close ends the goroutine; Sum is valid after Close.
type hashWriter struct {
	w      io.Writer
	h      hash.Hash
	todo   chan []byte
	done   chan struct{}
	closed bool
}

func newHashWriter(w io.Writer, h hash.Hash) *hashWriter {
	hw := &hashWriter{w: w, h: h, todo: make(chan []byte), done: make(chan struct{})}
	go func() {
		for p := range hw.todo {
			hw.h.Write(p) // hash.Hash never returns an error
			hw.done <- struct{}{}
		}
		close(hw.done)
	}()
	return hw
}

// Write hands p to the hashing goroutine, writes it to w, and returns once
// both are done with p.
func (hw *hashWriter) Write(p []byte) (int, error) {
	hw.todo <- p
	n, err := hw.w.Write(p)
	<-hw.done
	return n, err
}

// Close stops the hashing goroutine; it does not close w. A second Close
// does nothing.
func (hw *hashWriter) Close() {
	if hw.closed {
		return
	}
	hw.closed = true
	close(hw.todo)
	<-hw.done
}
