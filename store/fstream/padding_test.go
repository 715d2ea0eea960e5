package fstream

import (
	"crypto/aes"
	"testing"

	"github.com/fernet/fernet-go"
)

// TestPaddingLens walks every distinct length the final data chunk's line
// can have (one per AES block count, data of 0 to ChunkSize-1 bytes) and
// shows that two padding chunks always bring the tail to tailSize.
func TestPaddingLens(t *testing.T) {
	if got, want := tailSize, int64(1_398_463); got != want {
		t.Fatalf("tailSize=%d, want %d (LineSize + two empty lines)", got, want)
	}
	seen := 0
	for m := minBlocks; m <= blocks(ChunkSize-1); m++ {
		n := dataOfBlocks(m)
		if blocks(n) != m || n >= ChunkSize || n > 0 && blocks(n-1) == m {
			t.Fatalf("dataOfBlocks(%d)=%d is not the fewest bytes of %d blocks", m, n, m)
		}
		a, b, ok := paddingLens(n)
		if !ok {
			t.Fatalf("final data of %d bytes: no padding pair", n)
		}
		if a < 0 || a > ChunkSize || b < 0 || b > ChunkSize {
			t.Fatalf("final data of %d bytes: padding %d and %d out of range", n, a, b)
		}
		if got := lineLen(n) + lineLen(a) + lineLen(b); got != tailSize {
			t.Fatalf("final data of %d bytes: tail %d bytes, want %d", n, got, tailSize)
		}
		seen++
	}
	if want := ChunkSize/aes.BlockSize + 1; seen != want {
		t.Fatalf("walked %d final line lengths, want %d", seen, want)
	}
}

// TestLineLen checks the line length arithmetic against real tokens, at
// every length of the first blocks and around ChunkSize.
func TestLineLen(t *testing.T) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		t.Fatal(err)
	}
	s := newSealer(&k)
	plain := make([]byte, HeaderSize+ChunkSize)
	check := func(n int) {
		line, err := s.line(plain[:HeaderSize+n])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int64(len(line)), lineLen(n); got != want {
			t.Fatalf("data of %d bytes: line of %d bytes, lineLen says %d", n, got, want)
		}
		if m, ok := blocksOfLine(int64(len(line))); !ok || m != blocks(n) {
			t.Fatalf("data of %d bytes: blocksOfLine=%d,%v, want %d", n, m, ok, blocks(n))
		}
	}
	for n := range 600 {
		check(n)
	}
	for n := ChunkSize - 40; n <= ChunkSize; n++ {
		check(n)
	}
	if _, ok := blocksOfLine(lineLen(0) + 1); ok {
		t.Fatal("blocksOfLine accepts a length no token has")
	}
}

func BenchmarkPaddingLens(b *testing.B) {
	n := 0
	for b.Loop() {
		if _, _, ok := paddingLens(n); !ok {
			b.Fatal("no pair")
		}
		n = (n + 7919) % ChunkSize
	}
}
