package spool_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/stream/spool"
)

// FuzzReader feeds the spool reader arbitrary bytes: it must end or fail
// cleanly, never panic, and never return more data than the input holds.
func FuzzReader(f *testing.F) {
	key, _ := fernet.DecodeKey("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
	f.Add([]byte{})
	f.Add([]byte("\n\n\n"))
	f.Add(make([]byte, 300))
	f.Add([]byte("gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := spool.NewReader(bytes.NewReader(in), []*fernet.Key{key})
		total := 0
		for {
			c, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("error from a bytes.Reader: %v", err)
			}
			total += len(c.Data)
			if total > len(in) {
				t.Fatal("more data than input")
			}
		}
		if r.Offset() > int64(len(in)) {
			t.Fatal("offset past the input")
		}
	})
}
