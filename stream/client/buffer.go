package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/fernet/fernet-go"

	"tyst/internal/shred"
	"tyst/stream/spool"
)

// segmentBytes is the PCM a buffer segment file holds before the next one
// starts; whole segments are freed when acknowledged or dropped.
const segmentBytes = 1 << 20

// buffer keeps the audio read from the input that the server has not
// acknowledged, encrypted in segment files of the spool format under a key
// that (unless the operator keeps it in a file) lives only in memory: no
// plaintext reaches the disk. It is bounded: when full, the oldest
// segments go, newest audio kept.
//
// Positions are stream offsets. Dropped audio leaves a gap the server must
// not see: the segments after it are renumbered to continue from where the
// server is (renumber).
type buffer struct {
	dir   string
	codec *spool.Codec
	keys  []*fernet.Key
	limit int64
	shred bool // overwrite segments before removing them

	mu      sync.Mutex
	segs    []*segment // oldest first; the last takes appends
	nextSeg int
	size    int64 // PCM held
	acked   int64
	dropped int64 // PCM dropped while full, in total
	line    []byte
}

type segment struct {
	path   string
	f      *spool.File
	start  int64 // stream offset of its first byte
	n      int64 // PCM bytes
	chunks []chunkRef
	index  uint64 // index of the next chunk
}

type chunkRef struct {
	off   int64 // of its line in the file
	line  int32 // line length
	n     int32 // PCM bytes
	at    int64 // offset of its first byte within the segment
	index uint64
}

func newBuffer(dir string, key *fernet.Key, limit int64) (*buffer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("buffer directory cannot be created: %w", err)
	}
	return &buffer{dir: dir, codec: spool.NewCodec(key), keys: []*fernet.Key{key}, limit: limit}, nil
}

// end returns the offset after the last byte held.
func (b *buffer) end() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.endLocked()
}

// endLocked returns the offset after the last byte held.
func (b *buffer) endLocked() int64 {
	if len(b.segs) == 0 {
		return b.acked
	}
	last := b.segs[len(b.segs)-1]
	return last.start + last.n
}

// append adds PCM (at most spool.MaxChunk bytes) read from the input. It
// returns the bytes dropped to make room (0 normally).
func (b *buffer) append(p []byte) (dropped int64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.size+int64(len(p)) > b.limit && len(b.segs) > 1 {
		dropped += b.dropOldestLocked()
	}
	if len(b.segs) == 0 || b.segs[len(b.segs)-1].n >= segmentBytes {
		if err := b.newSegmentLocked(); err != nil {
			return dropped, err
		}
	}
	s := b.segs[len(b.segs)-1]
	off := s.f.End()
	if err := s.f.Append(p); err != nil {
		return dropped, err
	}
	s.chunks = append(s.chunks, chunkRef{off: off, line: int32(s.f.End() - off), n: int32(len(p)), at: s.n, index: s.index})
	s.index++
	s.n += int64(len(p))
	b.size += int64(len(p))
	return dropped, nil
}

func (b *buffer) newSegmentLocked() error {
	path := filepath.Join(b.dir, fmt.Sprintf("seg-%06d.buf", b.nextSeg))
	b.nextSeg++
	f, err := spool.Create(path, b.codec, []byte(`{}`), 0)
	if err != nil {
		return err
	}
	b.segs = append(b.segs, &segment{path: path, f: f, start: b.endLocked(), index: 1})
	return nil
}

// dropOldestLocked removes the oldest segment and returns the PCM of it
// the server had not acknowledged.
func (b *buffer) dropOldestLocked() int64 {
	s := b.segs[0]
	lost := s.n - max(0, min(s.n, b.acked-s.start))
	b.removeLocked()
	b.dropped += lost
	return lost
}

func (b *buffer) removeLocked() {
	s := b.segs[0]
	s.f.Close()
	if !b.shred || shred.File(s.path) != nil { // best effort, as every overwrite on flash
		os.Remove(s.path)
	}
	b.segs = b.segs[1:]
	b.size -= s.n
}

// ack frees what the server holds durably: every segment before off but
// the one taking appends.
func (b *buffer) ack(off int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked = max(b.acked, off)
	for len(b.segs) > 1 && b.segs[0].start+b.segs[0].n <= b.acked {
		b.removeLocked()
	}
}

// unacked returns the PCM held that the server has not acknowledged.
func (b *buffer) unacked() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(0, b.endLocked()-b.acked)
}

// renumber makes the buffer continue at server offset at. When the server
// holds less than the oldest audio kept (audio was dropped while full),
// the kept audio moves down to follow directly; it returns the bytes of
// that gap. An offset past what was ever buffered is an error.
func (b *buffer) renumber(at int64) (gap int64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if at > b.endLocked() {
		return 0, errors.New("the server holds more audio than was sent")
	}
	b.acked = max(b.acked, at)
	if len(b.segs) == 0 || at >= b.segs[0].start {
		return 0, nil
	}
	gap = b.segs[0].start - at
	for _, s := range b.segs {
		s.start -= gap
	}
	b.acked = at
	return gap, nil
}

// restart makes offset from (the end of what the server stored) offset 0
// of a new stream; audio before it is forgotten.
func (b *buffer) restart(from int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked = max(b.acked, from)
	for len(b.segs) > 1 && b.segs[0].start+b.segs[0].n <= b.acked {
		b.removeLocked()
	}
	if len(b.segs) > 0 && b.segs[0].start > b.acked {
		b.acked = b.segs[0].start // dropped while full: nothing between
	}
	for _, s := range b.segs {
		s.start -= b.acked
	}
	b.acked = 0
}

// ackedOffset returns the highest offset the server acknowledged.
func (b *buffer) ackedOffset() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked
}

// errGone is returned by read for audio that was dropped while the buffer
// was full.
var errGone = errors.New("audio no longer buffered")

// read returns the PCM from offset at to the end of its chunk, or nil when
// nothing is held from there yet.
func (b *buffer) read(at int64) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.segs), func(i int) bool { return b.segs[i].start+b.segs[i].n > at })
	if i == len(b.segs) {
		return nil, nil
	}
	s := b.segs[i]
	if at < s.start {
		return nil, errGone
	}
	rel := at - s.start
	j := sort.Search(len(s.chunks), func(j int) bool { return s.chunks[j].at+int64(s.chunks[j].n) > rel })
	c := s.chunks[j]
	if b.line == nil {
		b.line = make([]byte, spool.MaxLine)
	}
	data, err := spool.ReadChunkAt(s.f, c.off, int(c.line), c.index, s.f.FileID(), b.keys, b.line)
	if err != nil {
		return nil, err
	}
	return data[rel-c.at:], nil
}

// close removes every segment file and the directory.
func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.segs) > 0 {
		b.removeLocked()
	}
	os.Remove(b.dir)
}
