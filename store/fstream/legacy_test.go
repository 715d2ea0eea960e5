package fstream_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

// mustEncryptLegacy writes plain as the first release's Writer did: no
// padding; the last chunk (full when the size is a multiple of ChunkSize,
// empty for an empty file) carries the last flag.
func mustEncryptLegacy(tb testing.TB, key *fernet.Key, plain []byte) []byte {
	tb.Helper()
	var fileID [fstream.FileIDSize]byte
	if _, err := rand.Read(fileID[:]); err != nil {
		tb.Fatal(err)
	}
	var out []byte
	for i := uint64(0); ; i++ {
		n := min(len(plain), C)
		last := len(plain) <= C
		msg := make([]byte, fstream.HeaderSize, fstream.HeaderSize+n)
		msg[0] = fstream.Version
		if last {
			msg[1] = 1
		}
		binary.BigEndian.PutUint64(msg[2:10], i)
		copy(msg[10:], fileID[:])
		out = append(out, mustSealLine(tb, key, append(msg, plain[:n]...))...)
		plain = plain[n:]
		if last {
			return out
		}
	}
}

// TestLegacy: files of the first release, without padding, stay readable
// front to back and with seeks.
func TestLegacy(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{0, 1, 50, C - 1, C, 2 * C, 2*C + 7} {
		plain := randomBytes(t, n)
		enc := mustEncryptLegacy(t, key, plain)
		flags := flagsOf(t, key, enc)
		want := make([]byte, max(1, (n+C-1)/C))
		want[len(want)-1] = 1
		if !bytes.Equal(flags, want) {
			t.Fatalf("n=%d: legacy helper wrote flags %v, want %v", n, flags, want)
		}
		mustReadBoth(t, enc, plain, key)
		if n > 0 {
			mustSeekRead(t, enc, plain, key)
		}
	}
}

// TestLegacy_FirstReleaseFiles reads files the first release's Writer made
// (kept as fuzz seeds): 50 bytes and an empty file.
func TestLegacy_FirstReleaseFiles(t *testing.T) {
	for name, want := range map[string][]byte{"valid-50": bytes.Repeat([]byte("a"), 50), "valid-empty": {}} {
		t.Run(name, func(t *testing.T) {
			enc := mustReadSeed(t, name)
			if got := flagsOf(t, fuzzKey[0], enc); !bytes.Equal(got, []byte{1}) {
				t.Fatalf("flags %v, want one data chunk marked last", got)
			}
			mustReadBoth(t, enc, want, fuzzKey[0])
		})
	}
}

// mustReadSeed returns the bytes of a FuzzReader seed in testdata.
func mustReadSeed(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzReader", name))
	if err != nil {
		tb.Fatal(err)
	}
	_, lit, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n[]byte(")
	if !ok {
		tb.Fatalf("seed %s: not a []byte corpus file", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		tb.Fatalf("seed %s: %v", name, err)
	}
	return []byte(s)
}

// TestLegacy_Tamper: the old form is held to its own rules.
func TestLegacy_Tamper(t *testing.T) {
	key := mustKey(t)
	ls := lines(mustEncryptLegacy(t, key, randomBytes(t, 2*C+7)))
	full := lines(mustEncryptLegacy(t, key, randomBytes(t, 2*C)))
	pad := lines(mustEncrypt(t, key, nil))[2] // a last padding chunk of another file
	cases := map[string][]byte{
		"DroppedLast":        join(ls[0], ls[1]),
		"Swapped":            join(ls[1], ls[0], ls[2]),
		"ShortNotLast":       join(ls[0], ls[1], reseal(t, key, ls[2], setFlags(0))),
		"PaddingAfterLast":   join(ls[0], ls[1], ls[2], reseal(t, key, pad, func(m []byte) []byte { copy(m[2:], lastHeader(t, key, ls[2], 3)); return m })),
		"FullNotLastThenEnd": join(full[0], reseal(t, key, full[1], setFlags(0))),
		"ShortThenData": join(ls[0],
			reseal(t, key, ls[2], func(m []byte) []byte { return setIndex(1)(setFlags(0)(m)) }),
			reseal(t, key, ls[1], func(m []byte) []byte { return setIndex(2)(setFlags(1)(m)) })),
		"LastFlagThenMore": join(reseal(t, key, ls[0], setFlags(1)), ls[1], ls[2]),
		"LastOverChunkSize": join(full[0], reseal(t, key, full[1], func(m []byte) []byte {
			return append(m, 0) // a line as long as a full one
		})),
		"FullOverChunkSize": join(reseal(t, key, full[0], func(m []byte) []byte {
			return append(m, 0)
		}), full[1]),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) { mustCorrupt(t, bad, key) })
	}
}

// lastHeader returns index i+1 and the file id of line, as the header
// bytes 2 to 26 of the chunk that would follow it.
func lastHeader(tb testing.TB, key *fernet.Key, line []byte, next uint64) []byte {
	tb.Helper()
	h := bytes.Clone(mustOpenLine(tb, key, line)[2:fstream.HeaderSize])
	binary.BigEndian.PutUint64(h[:8], next)
	return h
}
