package fstream_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

// fuzzKey is fixed so that the committed corpus (valid files among them)
// stays meaningful.
var fuzzKey = fernet.MustDecodeKeys("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")

// FuzzReader feeds arbitrary bytes to both readers: they return data or an
// error, never panic, and agree with each other.
func FuzzReader(f *testing.F) {
	for _, n := range []int{0, 1, 100} {
		var buf bytes.Buffer
		w, _ := fstream.NewWriter(&buf, fuzzKey[0])
		w.Write(bytes.Repeat([]byte{7}, n))
		w.Close()
		f.Add(buf.Bytes())
	}
	f.Add([]byte("gAAAAA\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, seqErr := io.ReadAll(fstream.NewReader(bytes.NewReader(data), fuzzKey))
		rnd, rndErr := readAllSeeker(data, fuzzKey...)
		if (seqErr == nil) != (rndErr == nil) {
			t.Fatalf("readers disagree: %v vs %v", seqErr, rndErr)
		}
		if seqErr == nil && !bytes.Equal(seq, rnd) {
			t.Fatal("readers return different plaintext")
		}
		if seqErr != nil && !errors.Is(seqErr, fstream.ErrCorrupt) {
			t.Fatalf("unexpected error class: %v", seqErr)
		}
	})
}
