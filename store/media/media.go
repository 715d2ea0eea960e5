// Package media knows the audio files tyst accepts (DESIGN §5, "Accepted
// audio"): what kind of audio an upload holds, from its declared Content-Type
// and its first bytes, and how long it plays.
//
// It owns the list of accepted types, their canonical MIME types and
// aliases, the magic bytes of each, the one policy that reconciles a
// declared type with the bytes (Resolve), the file extension of each type,
// and one duration parser per container (Duration): wav.go, mp3.go, adts.go,
// mp4.go, ogg.go and webm.go. It promises:
//
//   - Nothing here panics, on any input; a malformed file is "unknown", never
//     an error. Every parser is fuzzed.
//   - Detect and Resolve look at no more than HeadSize bytes; the caller
//     peeks them (for example with bufio.Reader.Peek) and passes them in.
//   - Every type returned is one of the six canonical constants.
//   - A declared type that the bytes contradict is refused, never corrected.
//   - Duration holds at most one read buffer (readAhead bytes) whatever the
//     file's size or what its headers claim, allocates nothing sized by a
//     field of the file, and does work linear in the bytes it reads.
//
// The package holds no state. Nothing here logs, and errors carry no part
// of the input.
package media

import (
	"io"
	"math"
	"math/bits"
)

// readAhead is the size of Duration's one read buffer: each read from the
// io.ReaderAt fetches this much, so the parsers' many small reads (box,
// chunk, element and frame headers) are served from memory. It also holds
// the largest Ogg page (27 + 255 + 255*255 bytes).
const readAhead = 64 << 10

// Duration returns the playing time, in whole milliseconds (rounded down), of
// the audio in r (size bytes) of canonical type mimeType (as Resolve returns
// it). ok is false, with ms 0, when the file gives no way to know: a type
// that is not canonical, a malformed or truncated file, a header that is
// missing. err is an I/O error of r only; a read that ends before size
// counts as io.ErrUnexpectedEOF.
//
// What it reads, per type (see each container's file for details):
//
//   - WAV: the chunk headers up to "data"; data size / byte rate.
//   - MP3: the ID3v2 tag's size, then the first frame: Xing/Info or VBRI
//     frame count; else every frame header (a frame walk).
//   - MP4 family: the top-level box headers and the moov box wherever it
//     is (mdat is skipped by its size): mvhd; for a fragmented file also
//     mehd or every moof's track runs; else the tracks' mdhd.
//   - AAC (ADTS): every frame header; frames × 1024 / sample rate.
//   - Ogg: the first pages (the stream's codec and rate), then the tail
//     backwards, one buffer at a time and at most 1 MiB, to the stream's
//     last page (its granule position); Vorbis, Opus (less pre-skip), FLAC
//     and Speex.
//   - WebM: the EBML header, Info's Duration × TimecodeScale; without
//     Duration (MediaRecorder) the end of the last block, walking clusters
//     of unknown size block by block.
//
// r is read forward through one buffer, apart from the Ogg tail, so an r
// that decrypts in chunks (fstream.ReadSeeker) decrypts each chunk about
// once at most.
func Duration(r io.ReaderAt, size int64, mimeType string) (ms int64, ok bool, err error) {
	return duration(r, size, mimeType, readAhead)
}

// duration is Duration with a read buffer of bufSize bytes (tests use
// small ones to move the buffer often).
func duration(r io.ReaderAt, size int64, mimeType string, bufSize int) (ms int64, ok bool, err error) {
	var parse func(*source) (int64, bool)
	switch mimeType {
	case WAV:
		parse = wavDuration
	case MP3:
		parse = mp3Duration
	case MP4:
		parse = mp4Duration
	case AAC:
		parse = adtsDuration
	case OGG:
		parse = oggDuration
	case WebM:
		parse = webmDuration
	default:
		return 0, false, nil
	}
	if r == nil || size <= 0 {
		return 0, false, nil
	}
	s := &source{r: r, size: size, mem: make([]byte, min(int64(bufSize), size))}
	ms, ok = parse(s)
	if s.err != nil {
		return 0, false, s.err
	}
	if !ok || ms < 0 {
		return 0, false, nil
	}
	return ms, true, nil
}

// source reads a file of size bytes through one buffer: buf holds the bytes
// at [off, off+len(buf)). A source over bytes already in memory (memSource)
// has no r and reads nothing more.
type source struct {
	r    io.ReaderAt
	size int64
	mem  []byte // the buffer's storage, readAhead bytes; nil for memSource
	buf  []byte
	off  int64
	err  error // the first read error of r; every later read fails
}

// memSource returns a source over b, the first bytes of a file of size
// bytes (size may exceed len(b): reads past b then fail, as past the end).
func memSource(b []byte, size int64) *source {
	return &source{size: size, buf: b}
}

// bytes returns the n bytes at off, valid until the next call, or nil when
// they do not all lie in the file, when n exceeds the buffer, or on a read
// error (kept in s.err).
func (s *source) bytes(off int64, n int) []byte {
	if n < 0 || off < 0 || off > s.size || int64(n) > s.size-off {
		return nil
	}
	if off >= s.off && off-s.off <= int64(len(s.buf)) && int64(n) <= int64(len(s.buf))-(off-s.off) {
		i := int(off - s.off)
		return s.buf[i : i+n]
	}
	if s.r == nil || s.err != nil || n > len(s.mem) {
		return nil
	}
	m := int64(len(s.mem))
	if m > s.size-off {
		m = s.size - off
	}
	buf := s.mem[:m]
	k, err := s.r.ReadAt(buf, off)
	if k < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		s.err, s.buf = err, nil
		return nil
	}
	s.buf, s.off = buf, off
	return buf[:n]
}

// SeekReaderAt adapts rs, for example an fstream.ReadSeeker over an
// encrypted blob, to the io.ReaderAt that Duration takes: each ReadAt seeks
// and then reads until p is full, so it moves rs's position and serves one
// goroutine at a time. A read that reaches the end returns io.EOF with the
// bytes it got.
func SeekReaderAt(rs io.ReadSeeker) io.ReaderAt { return seekReaderAt{rs} }

type seekReaderAt struct{ rs io.ReadSeeker }

func (s seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.rs, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// scaleMS returns n ticks of a clock of rate ticks a second in whole
// milliseconds, rounded down; ok is false for a zero rate or a result that
// does not fit an int64.
func scaleMS(n, rate uint64) (int64, bool) {
	if rate == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(n, 1000)
	if hi >= rate {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, rate)
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}
