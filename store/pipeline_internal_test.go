package store

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

// TestReadAhead: the bytes come through whole and in order, a read error
// reaches the reader after the bytes before it, and Close after an early
// stop ends the goroutine.
func TestReadAhead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB
	ra := newReadAhead(bytes.NewReader(data), 4096, 3)
	got, err := io.ReadAll(ra)
	ra.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
	}
	boom := errors.New("disk failed")
	ra = newReadAhead(io.MultiReader(bytes.NewReader(data[:10000]), errReader{boom}), 4096, 3)
	got, err = io.ReadAll(ra)
	ra.Close()
	if !errors.Is(err, boom) || !bytes.Equal(got, data[:10000]) {
		t.Fatalf("read %d bytes, err %v; want the 10000 before the failure, then it", len(got), err)
	}
	before := runtime.NumGoroutine()
	for range 50 {
		ra := newReadAhead(bytes.NewReader(data), 4096, 3)
		ra.Read(make([]byte, 10))
		ra.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines left after 50 early stops (%d before)", n, before)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
