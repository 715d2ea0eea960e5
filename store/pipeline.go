package store

import (
	"errors"
	"hash"
	"io"
	"sync"
)

// The upload path is three jobs on every byte: two hashes (SHA-256 and the
// keyed blob name), encryption, and the disk write. They run on separate
// goroutines so an upload uses more than one core; memory stays a few fixed
// buffers whatever the file size.

// copyHashed copies at most max+1 bytes of src to dst (the encrypting writer)
// while hashing them into hs on a second goroutine. It returns the bytes
// copied; a read error of src is returned as it is.
func copyHashed(dst io.Writer, src io.Reader, max int64, hs ...hash.Hash) (int64, error) {
	buf := make([]byte, 256<<10)
	src = io.LimitReader(src, max+1)
	todo := make(chan []byte)
	done := make(chan struct{})
	defer close(todo)
	go func() {
		for p := range todo {
			for _, h := range hs {
				h.Write(p) // hash.Hash never returns an error
			}
			done <- struct{}{}
		}
	}()
	var n int64
	for {
		k, rerr := io.ReadFull(src, buf)
		if k > 0 {
			todo <- buf[:k] // hashed while dst encrypts the same bytes
			_, werr := dst.Write(buf[:k])
			<-done // buf is free again once both are done with it
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		switch {
		case rerr == io.EOF, rerr == io.ErrUnexpectedEOF:
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}

// asyncWriter writes to w on its own goroutine, so the disk write of one
// chunk overlaps the encryption of the next. Write copies p into one of two
// buffers; errors surface at a later Write or at Close.
type asyncWriter struct {
	w    io.Writer
	todo chan []byte
	free chan []byte
	done chan struct{}

	mu  sync.Mutex
	err error
}

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, todo: make(chan []byte, 1), free: make(chan []byte, 2), done: make(chan struct{})}
	a.free <- nil
	a.free <- nil
	go a.loop()
	return a
}

func (a *asyncWriter) loop() {
	defer close(a.done)
	for p := range a.todo {
		if a.failed() == nil {
			if _, err := a.w.Write(p); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		a.free <- p
	}
}

func (a *asyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	buf := append((<-a.free)[:0], p...)
	a.todo <- buf
	return len(p), nil
}

// Close waits for every write and returns the first error. It does not
// close w.
func (a *asyncWriter) Close() error {
	select {
	case <-a.done:
		return errors.New("store: async writer closed twice")
	default:
	}
	close(a.todo)
	<-a.done
	return a.failed()
}

// readAhead reads r on its own goroutine into a few buffers ahead of its
// reader, so decrypting a blob overlaps what is done with its bytes (an
// export hashes and encrypts them again). Memory: depth buffers of size.
// A send to full never blocks: there are only depth buffers.
type readAhead struct {
	full chan []byte // filled buffers, in order; closed after the last
	free chan []byte // buffers to fill
	buf  []byte      // the buffer being read from
	cur  []byte      // what is left of it
	errc chan error  // the error that ended reading (io.EOF at the end)
	err  error
	stop chan struct{}
}

func newReadAhead(r io.Reader, size, depth int) *readAhead {
	ra := &readAhead{full: make(chan []byte, depth), free: make(chan []byte, depth), errc: make(chan error, 1), stop: make(chan struct{})}
	for range depth {
		ra.free <- make([]byte, size)
	}
	go func() {
		defer close(ra.full)
		for {
			var b []byte
			select {
			case b = <-ra.free:
			case <-ra.stop:
				ra.errc <- errors.New("store: read-ahead stopped")
				return
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				ra.full <- b[:n]
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				ra.errc <- err
				return
			}
		}
	}()
	return ra
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		b, ok := <-ra.full
		if !ok {
			if ra.err == nil {
				ra.err = <-ra.errc
			}
			return 0, ra.err
		}
		ra.buf, ra.cur = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the read-ahead goroutine once it has finished the read it is
// in; call it when done with the reader, also after an early stop.
func (ra *readAhead) Close() { close(ra.stop) }
