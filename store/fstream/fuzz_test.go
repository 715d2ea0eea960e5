package fstream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

// fuzzKey is fixed so that the committed corpus (valid files among them)
// stays meaningful.
var fuzzKey = fernet.MustDecodeKeys("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")

// craftFile seals one line per flags value, each chunk carrying data and
// numbered from 0, with one file id: small files of any shape, for seeds.
// The Writer's own files are 1.4 MB at least, too big to mutate well.
func craftFile(tb testing.TB, key *fernet.Key, data []byte, flags ...byte) []byte {
	tb.Helper()
	var out []byte
	for i, f := range flags {
		msg := make([]byte, fstream.HeaderSize, fstream.HeaderSize+len(data))
		msg[0], msg[1] = fstream.Version, f
		binary.BigEndian.PutUint64(msg[2:10], uint64(i))
		copy(msg[10:], "fuzz-file-id-16b")
		out = append(out, mustSealLine(tb, key, append(msg, data...))...)
	}
	return out
}

// FuzzReader feeds arbitrary bytes to both readers: they return data or an
// error, never panic, and agree with each other. The committed corpus holds
// files of the first release (valid-*), small padded files (padded-*) and
// damaged ones.
func FuzzReader(f *testing.F) {
	// The Writer's own files (1.4 MB at least) are covered by the other
	// tests; mutating them makes the fuzzer crawl.
	f.Add(craftFile(f, fuzzKey[0], []byte("x"), 0, 2, 3))
	f.Add([]byte("gAAAAA\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, seqErr := readAllReader(data, fuzzKey...)
		rnd, rndErr := readAllSeeker(data, fuzzKey...)
		if (seqErr == nil) != (rndErr == nil) {
			t.Fatalf("readers disagree: %v vs %v", seqErr, rndErr)
		}
		if seqErr == nil && !bytes.Equal(seq, rnd) {
			t.Fatal("readers return different plaintext")
		}
		if seqErr != nil && (!errors.Is(seqErr, fstream.ErrCorrupt) || !errors.Is(rndErr, fstream.ErrCorrupt)) {
			t.Fatalf("unexpected error class: %v, %v", seqErr, rndErr)
		}
	})
}

// TestReader_Corpus pins what the committed seeds are: the valid ones read
// to their plaintext with both readers, the rest are corrupt for both.
func TestReader_Corpus(t *testing.T) {
	valid := map[string]string{
		"padded-small":        "fifty b",
		"padded-one-padding":  "fifty b",
		"padded-four-padding": "",
		"valid-50":            strings.Repeat("a", 50),
		"valid-empty":         "",
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzReader"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			enc := mustReadSeed(t, e.Name())
			if want, ok := valid[e.Name()]; ok {
				mustReadBoth(t, enc, []byte(want), fuzzKey[0])
				return
			}
			mustCorrupt(t, enc, fuzzKey[0])
		})
	}
}
