package fstream

import (
	"crypto/aes"
	"sort"
)

// The block counts a chunk's token can have: an empty chunk's, a full one's.
var (
	minBlocks = blocks(0)
	maxBlocks = blocks(ChunkSize)
)

// paddingLens returns the data lengths a and b of the two padding chunks
// that follow a final data chunk of n bytes (0 <= n < ChunkSize), chosen so
// that the three lines take exactly tailSize bytes. Line lengths move in
// steps of 20 or 24 bytes (one AES block in base64), so not every sum is
// reachable; the first line takes the most it can and the second the rest,
// stepping the first down until the rest is a possible line. The test walks
// every final line length: a pair always exists and one step finds it.
// ok is false only if no pair exists, which that test rules out.
func paddingLens(n int) (a, b int, ok bool) {
	need := tailSize - lineLen(n) // bytes the two padding lines must take
	small := lineLen(0)
	// The largest first line that leaves room for the smallest second one.
	m := sort.Search(maxBlocks-minBlocks+1, func(i int) bool {
		return lineOfBlocks(minBlocks+i) > need-small
	}) + minBlocks - 1
	for ; m >= minBlocks; m-- {
		rest := need - lineOfBlocks(m)
		if rest > LineSize {
			break // smaller first lines leave even more
		}
		if m2, ok := blocksOfLine(rest); ok {
			return dataOfBlocks(m), dataOfBlocks(m2), true
		}
	}
	return 0, 0, false
}

// blocksOfLine returns the block count of a token whose line is size bytes
// long, if there is one.
func blocksOfLine(size int64) (int, bool) {
	i := sort.Search(maxBlocks-minBlocks+1, func(i int) bool {
		return lineOfBlocks(minBlocks+i) >= size
	})
	m := minBlocks + i
	return m, m <= maxBlocks && lineOfBlocks(m) == size
}

// dataOfBlocks returns the fewest data bytes a chunk of m blocks carries.
func dataOfBlocks(m int) int {
	return max(0, (m-1)*aes.BlockSize-HeaderSize)
}
