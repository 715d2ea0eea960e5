package fstream_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

// mustCorrupt fails unless both readers refuse bad with ErrCorrupt.
func mustCorrupt(tb testing.TB, bad []byte, key *fernet.Key) {
	tb.Helper()
	if _, err := readAllReader(bad, key); !errors.Is(err, fstream.ErrCorrupt) {
		tb.Fatalf("Reader err=%v, want ErrCorrupt", err)
	}
	if _, err := readAllSeeker(bad, key); !errors.Is(err, fstream.ErrCorrupt) {
		tb.Fatalf("ReadSeeker err=%v, want ErrCorrupt", err)
	}
}

// TestTamper shows that every kind of damage to a padded file is an error for
// the front-to-back reader and for the seeking reader, including a partial
// read of the damaged place only.
func TestTamper(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(t, 2*C+10)
	enc := mustEncrypt(t, key, plain)
	other := mustEncrypt(t, key, randomBytes(t, 2*C+10))
	// Lines: 0-1 full data, 2 final data (10 bytes), 3 padding, 4 padding+last.
	ls, ols := lines(enc), lines(other)
	if len(ls) != 5 {
		t.Fatalf("%d lines, want 5", len(ls))
	}
	d0, d1, fin, p1, p2 := ls[0], ls[1], ls[2], ls[3], ls[4]
	eq := bytes.IndexByte(enc, '=') // a token with base64 padding
	if eq < 0 {
		t.Fatal("test needs a token with base64 padding")
	}
	// The character before "=" with its unused low bit set: the lenient
	// decoder reads the same bytes from it.
	lowBit := bytes.Clone(enc)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	lowBit[eq-1] = alphabet[bytes.IndexByte([]byte(alphabet), enc[eq-1])^1]

	// A file of exactly 2 MiB whose empty final data chunk is cut out and its
	// padding renumbered: padding right after a full chunk.
	whole := lines(mustEncrypt(t, key, randomBytes(t, 2*C)))
	noFinal := join(whole[0], whole[1], reseal(t, key, whole[3], setIndex(2)), reseal(t, key, whole[4], setIndex(3)))
	// An empty file whose empty data chunk is turned into padding.
	empty := lines(mustEncrypt(t, key, nil))
	onlyPadding := join(reseal(t, key, empty[0], setFlags(2)), empty[1], empty[2])

	cases := map[string][]byte{
		"SwappedData":          join(d1, d0, fin, p1, p2),
		"DroppedData":          join(d0, fin, p1, p2),
		"DroppedFinalData":     join(d0, d1, p1, p2),
		"DroppedPadding":       join(d0, d1, fin, p2),
		"DroppedLastPadding":   join(d0, d1, fin, p1),
		"DroppedBothPadding":   join(d0, d1, fin),
		"SwappedPadding":       join(d0, d1, fin, p2, p1),
		"RepeatedPadding":      join(d0, d1, fin, p1, p1, p2),
		"PaddingBeforeFinal":   join(d0, d1, p1, fin, p2),
		"ForeignData":          join(d0, ols[1], fin, p1, p2),
		"ForeignFinalData":     join(d0, d1, ols[2], p1, p2),
		"ForeignPadding":       join(d0, d1, fin, ols[3], p2),
		"ForeignLastPadding":   join(d0, d1, fin, p1, ols[4]),
		"AppendedGarbage":      join(enc, []byte("x\n")),
		"AppendedChunk":        join(enc, reseal(t, key, p2, setIndex(5))),
		"AppendedForeignChunk": join(enc, ols[0]),
		"PaddingAfterFull":     noFinal,
		"OnlyPadding":          onlyPadding,
		"CutMidLine":           enc[:len(enc)-7],
		"CutNewline":           enc[:len(enc)-1],
		"CutAfterFinalData":    join(d0, d1, fin),
		"FlippedBit":           flip(enc, int(fstream.LineSize)+100),
		"FlippedBitInPadding":  flip(enc, len(enc)-int(fstream.LineSize)/2),
		"Empty":                {},
		"CRLF":                 bytes.ReplaceAll(enc, []byte("\n"), []byte("\r\n")),
		"AfterBase64Padding":   join(enc[:eq+1], []byte("AAAA"), enc[eq+1:]),
		"Base64UnusedBits":     lowBit,
		// Flags changed by someone holding the key.
		"FinalDataMarkedPadding": join(d0, d1, reseal(t, key, fin, setFlags(2)), p1, p2),
		"FinalDataMarkedLast":    join(d0, d1, reseal(t, key, fin, setFlags(1)), p1, p2),
		"FullDataMarkedLast":     join(reseal(t, key, d0, setFlags(1)), d1, fin, p1, p2),
		"FullDataMarkedPadding":  join(reseal(t, key, d0, setFlags(2)), d1, fin, p1, p2),
		"FirstPaddingMarkedLast": join(d0, d1, fin, reseal(t, key, p1, setFlags(3)), p2),
		"LastPaddingUnmarked":    join(d0, d1, fin, p1, reseal(t, key, p2, setFlags(2))),
		"LastPaddingMadeData":    join(d0, d1, fin, p1, reseal(t, key, p2, setFlags(1))),
		"UnknownFlagOnData":      join(d0, d1, reseal(t, key, fin, setFlags(4)), p1, p2),
		"UnknownFlagOnPadding":   join(d0, d1, fin, p1, reseal(t, key, p2, setFlags(0x83))),
		"ShortDataMidFile": join(reseal(t, key, d0, func(m []byte) []byte {
			return m[:len(m)-1] // a line as long as a full one
		}), d1, fin, p1, p2),
		"DataOverChunkSize": join(d0, d1, reseal(t, key, fin, func(m []byte) []byte {
			return append(m[:fstream.HeaderSize], make([]byte, C+1)...)
		}), p1, p2),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) { mustCorrupt(t, bad, key) })
	}

	t.Run("WrongKey", func(t *testing.T) { mustCorrupt(t, enc, mustKey(t)) })
	t.Run("OldKeyStillReads", func(t *testing.T) {
		got, err := readAllSeeker(enc, mustKey(t), key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("err=%v", err)
		}
		got, err = readAllReader(enc, mustKey(t), key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("err=%v", err)
		}
	})
	for _, name := range []string{"SwappedData", "ForeignData"} {
		t.Run("PartialReadOf"+name, func(t *testing.T) {
			bad := cases[name]
			rs, err := fstream.NewReadSeeker(bytes.NewReader(bad), int64(len(bad)), []*fernet.Key{key})
			if err != nil {
				t.Fatal(err) // the tail is intact, so opening works
			}
			if _, err := rs.Seek(C+5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := rs.Read(make([]byte, 10)); !errors.Is(err, fstream.ErrCorrupt) {
				t.Fatalf("err=%v, want ErrCorrupt", err)
			}
		})
	}
}

// TestExtraPadding: readers accept any number of padding chunks after the
// short final data chunk, as a writer with larger buckets would write them.
func TestExtraPadding(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{0, 7, C + 3} {
		plain := randomBytes(t, n)
		ls := lines(mustEncrypt(t, key, plain))
		k := len(ls)
		// Four more padding chunks: copies of the last, renumbered.
		more := join(ls[k-3], ls[k-2])
		for i := range 5 {
			flags := byte(2)
			if i == 4 {
				flags = 3
			}
			more = join(more, reseal(t, key, ls[k-1], func(m []byte) []byte {
				return setIndex(uint64(k - 1 + i))(setFlags(flags)(m))
			}))
		}
		one := join(ls[k-3], reseal(t, key, ls[k-2], setFlags(3)))
		for name, tail := range map[string][]byte{"Six": more, "One": one} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				enc := join(append(ls[:k-3:k-3], tail)...)
				mustReadBoth(t, enc, plain, key)
				if n > 0 {
					mustSeekRead(t, enc, plain, key)
				}
			})
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	// Change one base64 character to another valid one.
	if c[i] == 'A' {
		c[i] = 'B'
	} else {
		c[i] = 'A'
	}
	return c
}
