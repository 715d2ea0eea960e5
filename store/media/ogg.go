package media

import (
	"bytes"
	"encoding/binary"
)

const (
	// oggTail is how far back from the end oggDuration looks for the last
	// page of the audio stream.
	oggTail = 1 << 20
	// oggMaxChecks bounds the candidate pages whose checksum oggDuration
	// computes in the tail, so that a tail full of "OggS" costs little.
	oggMaxChecks = 64
	// oggMaxBOS bounds the beginning-of-stream pages read at the start.
	oggMaxBOS = 16
)

// oggMagic starts every Ogg page.
var oggMagic = []byte("OggS")

// oggPage is an Ogg page header.
type oggPage struct {
	flags   byte
	granule uint64
	serial  uint32
	body    int64 // offset of the page's body
	end     int64 // offset after the page
}

// readOggPage reads the header and segment table of the page at off.
func readOggPage(s *source, off int64) (p oggPage, ok bool) {
	h := s.bytes(off, 27)
	if h == nil || !bytes.Equal(h[0:4], oggMagic) || h[4] != 0 {
		return p, false
	}
	p.flags = h[5]
	p.granule = binary.LittleEndian.Uint64(h[6:14])
	p.serial = binary.LittleEndian.Uint32(h[14:18])
	n := int(h[26])
	seg := s.bytes(off+27, n)
	if seg == nil {
		return p, false
	}
	body := 0
	for _, l := range seg {
		body += int(l)
	}
	p.body = off + 27 + int64(n)
	p.end = p.body + int64(body)
	return p, p.end <= s.size
}

// oggCodec recognises the identification header that starts an audio
// stream: its granule rate (Opus: always 48 kHz) and the samples to take
// off the last granule (Opus pre-skip). ok is false for any other stream
// (Theora video, Skeleton, an unknown codec).
func oggCodec(b []byte) (rate, skip uint64, ok bool) {
	switch {
	case len(b) >= 16 && string(b[0:7]) == "\x01vorbis":
		return uint64(binary.LittleEndian.Uint32(b[12:16])), 0, true
	case len(b) >= 12 && string(b[0:8]) == "OpusHead":
		return 48000, uint64(binary.LittleEndian.Uint16(b[10:12])), true
	case len(b) >= 30 && string(b[0:5]) == "\x7fFLAC" && string(b[9:13]) == "fLaC":
		// STREAMINFO follows its 4-byte block header; 20 bits of rate
		// after the block and frame size bounds.
		return uint64(b[27])<<12 | uint64(b[28])<<4 | uint64(b[29]>>4), 0, true
	case len(b) >= 40 && string(b[0:8]) == "Speex   ":
		return uint64(binary.LittleEndian.Uint32(b[36:40])), 0, true
	}
	return 0, 0, false
}

// oggDuration finds the first audio stream among the beginning-of-stream
// pages that start the file (Vorbis, Opus, FLAC or Speex), then the last
// page of that stream in the last oggTail bytes whose granule position is
// set and whose checksum holds. The duration is that granule position,
// less Opus's pre-skip, over the stream's rate. A chained file (streams one
// after another) whose last stream is another one gives ok false.
func oggDuration(s *source) (int64, bool) {
	var (
		serial     uint32
		rate, skip uint64
		found      bool
	)
	off := int64(0)
	for range oggMaxBOS {
		p, ok := readOggPage(s, off)
		if !ok || p.flags&0x02 == 0 {
			break
		}
		if r, k, ok := oggCodec(s.bytes(p.body, int(min(p.end-p.body, 64)))); ok && !found {
			serial, rate, skip, found = p.serial, r, k, true
		}
		off = p.end
	}
	if !found || rate == 0 {
		return 0, false
	}
	g, ok := oggLastGranule(s, serial)
	if !ok {
		return 0, false
	}
	if g < skip {
		return 0, true
	}
	return scaleMS(g-skip, rate)
}

// oggLastGranule searches the tail backwards for the last whole page of
// stream serial with a granule position, one window at a time. A window is
// a little shorter than the buffer, so that the header of a page that
// starts in it lies in the buffer too; only a page's checksum, over up to
// 64 KiB, may move the buffer, and those are bounded by oggMaxChecks.
func oggLastGranule(s *source, serial uint32) (uint64, bool) {
	lo := max(0, s.size-oggTail)
	win := max(int64(len(s.mem))*15/16, 64)
	checks := 0
	for winEnd := s.size; winEnd > lo; {
		winStart := max(lo, winEnd-win)
		n := int(winEnd - winStart)
		for i := n; ; {
			w := s.bytes(winStart, n) // again each time: a checksum may move the buffer
			if w == nil {
				return 0, false
			}
			j := bytes.LastIndex(w[:i], oggMagic)
			if j < 0 {
				break
			}
			i = j + len(oggMagic) - 1 // the next search ends before this match
			p, ok := readOggPage(s, winStart+int64(j))
			if !ok || p.serial != serial || p.granule == ^uint64(0) {
				continue
			}
			if checks++; checks > oggMaxChecks {
				return 0, false
			}
			if oggChecksumOK(s, winStart+int64(j), p.end) {
				return p.granule, true
			}
		}
		if winStart == lo {
			break
		}
		winEnd = winStart + int64(len(oggMagic)-1) // a magic may straddle two windows
	}
	return 0, false
}

// oggCRC is the table of Ogg's CRC-32: polynomial 0x04C11DB7, not
// reflected, initial value 0, no final XOR (hash/crc32 has only the
// reflected kind).
var oggCRC = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// oggChecksumOK reports whether the page at [start, end) carries its own
// checksum (computed with the checksum field taken as zero).
func oggChecksumOK(s *source, start, end int64) bool {
	b := s.bytes(start, int(end-start))
	if b == nil {
		return false
	}
	var crc uint32
	for i, c := range b {
		if i >= 22 && i < 26 {
			c = 0
		}
		crc = crc<<8 ^ oggCRC[byte(crc>>24)^c]
	}
	return crc == binary.LittleEndian.Uint32(b[22:26])
}
