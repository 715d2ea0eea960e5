package media

import (
	"encoding/binary"
	"math"
	"strings"
)

// EBML and Matroska element IDs, length marker included, as in the file.
const (
	idEBML            = 0x1A45DFA3
	idDocType         = 0x4282
	idSegment         = 0x18538067
	idSeekHead        = 0x114D9B74
	idInfo            = 0x1549A966
	idTimecodeScale   = 0x2AD7B1
	idDuration        = 0x4489
	idTracks          = 0x1654AE6B
	idTrackEntry      = 0xAE
	idTrackNumber     = 0xD7
	idCodecID         = 0x86
	idDefaultDuration = 0x23E383
	idCluster         = 0x1F43B675
	idTimecode        = 0xE7
	idSimpleBlock     = 0xA3
	idBlockGroup      = 0xA0
	idBlock           = 0xA1
	idBlockDuration   = 0x9B
	idCues            = 0x1C53BB6B
	idChapters        = 0x1043A770
	idTags            = 0x1254C367
	idAttachments     = 0x1941A469
)

// ebmlMagic starts every EBML file: the EBML header's ID.
var ebmlMagic = []byte{0x1A, 0x45, 0xDF, 0xA3}

// topLevel lists the IDs that end a Cluster of unknown size: the Segment's
// other children, and a next Segment or EBML header (a chained file).
var topLevel = map[uint64]bool{
	idSeekHead: true, idInfo: true, idTracks: true, idCluster: true, idCues: true,
	idChapters: true, idTags: true, idAttachments: true, idSegment: true, idEBML: true,
}

// element is an EBML element: its ID, where its data starts and ends, and
// whether its size was "unknown" (all value bits set) or runs past its
// parent (cut), in which cases end is its parent's end.
type element struct {
	id           uint64
	data, end    int64
	unknown, cut bool
}

// readVint reads an EBML variable-size integer of at most maxLen bytes at
// off; marker keeps the length marker (for IDs). allOnes reports a value
// with every value bit set (the unknown size).
func readVint(s *source, off int64, maxLen int, marker bool) (n int, v uint64, allOnes, ok bool) {
	b := s.bytes(off, 1)
	if b == nil || b[0] == 0 {
		return 0, 0, false, false
	}
	for n = 1; b[0]&(0x80>>(n-1)) == 0; n++ {
	}
	if n > maxLen {
		return 0, 0, false, false
	}
	if b = s.bytes(off, n); b == nil {
		return 0, 0, false, false
	}
	mask := uint64(0xFF >> n)
	v = uint64(b[0]) & mask
	allOnes = v == mask
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	if marker {
		v |= uint64(0x80>>(n-1)) << (8 * (n - 1))
	}
	return n, v, allOnes, true
}

// readElement reads the element header at off inside a parent ending at
// parentEnd. A size past parentEnd (a cut file) ends the element there.
func readElement(s *source, off, parentEnd int64) (e element, ok bool) {
	n, id, _, ok := readVint(s, off, 4, true)
	if !ok {
		return e, false
	}
	m, size, unknown, ok := readVint(s, off+int64(n), 8, false)
	if !ok {
		return e, false
	}
	e.id, e.data, e.unknown = id, off+int64(n+m), unknown
	switch {
	case e.data > parentEnd:
		return e, false
	case unknown:
		e.end = parentEnd
	case size > uint64(parentEnd-e.data):
		e.end, e.cut = parentEnd, true
	default:
		e.end = e.data + int64(size)
	}
	return e, true
}

// uintData returns the unsigned integer in e's data (at most 8 bytes).
func uintData(s *source, e element) (uint64, bool) {
	n := e.end - e.data
	if n > 8 {
		return 0, false
	}
	b := s.bytes(e.data, int(n))
	if b == nil {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// stringData returns e's data as a string of at most maxLen bytes, without
// trailing NULs.
func stringData(s *source, e element, maxLen int) (string, bool) {
	n := e.end - e.data
	if n > int64(maxLen) {
		return "", false
	}
	b := s.bytes(e.data, int(n))
	if b == nil {
		return "", false
	}
	return strings.TrimRight(string(b), "\x00"), true
}

// docType returns the DocType of the EBML header that starts head:
// "matroska" when the whole header lies in head and has none (the
// default), "" when head is cut short before it or is no EBML header.
func docType(head []byte) string {
	s := memSource(head, int64(len(head)))
	h, ok := readElement(s, 0, s.size)
	if !ok || h.id != idEBML || h.unknown {
		return ""
	}
	for off := h.data; off < h.end; {
		e, ok := readElement(s, off, h.end)
		if !ok || e.unknown {
			return ""
		}
		if e.id == idDocType {
			t, _ := stringData(s, e, 32)
			return t
		}
		off = e.end
	}
	if h.cut {
		return ""
	}
	return "matroska"
}

// webmTrack is what webmDuration keeps of a track.
type webmTrack struct {
	number    uint64
	defaultNS uint64 // DefaultDuration, ns per frame; 0 if none
	opus      bool
}

// webmMovie is what webmDuration gathers.
type webmMovie struct {
	scale      uint64  // TimecodeScale: ns per tick
	duration   float64 // Info's Duration, in ticks; 0 if none
	tracks     [maxTracks]webmTrack
	n          int
	endNS      float64 // the end of the last block read, in ns
	haveBlocks bool
}

// webmDuration reads the EBML header and the Segment's children. Info's
// Duration × TimecodeScale is the answer when Info has it (ffmpeg and most
// muxers write it). Browsers' MediaRecorder writes none, nor Cues, and gives
// the Segment and every Cluster the unknown size; then the answer is the
// end of the last block: its cluster's Timecode plus its own, plus its
// duration (BlockDuration, else the track's DefaultDuration, else, for
// Opus, the frames in the packet's TOC byte). Clusters of known size are
// skipped but for the last; clusters of unknown size are walked block by
// block, as nothing else says where they end.
func webmDuration(s *source) (int64, bool) {
	h, ok := readElement(s, 0, s.size)
	if !ok || h.id != idEBML || h.unknown {
		return 0, false
	}
	seg, ok := readElement(s, h.end, s.size)
	if !ok || seg.id != idSegment {
		return 0, false
	}
	m := webmMovie{scale: 1_000_000}
	var last element // the last cluster of known size, not yet walked
	for off := seg.data; off < seg.end; {
		e, ok := readElement(s, off, seg.end)
		if !ok {
			break
		}
		switch e.id {
		case idInfo:
			m.readInfo(s, e)
			if m.duration > 0 {
				return floatMS(m.duration * float64(m.scale) / 1e6)
			}
		case idTracks:
			m.readTracks(s, e)
		case idCluster:
			if !e.unknown {
				last = e
				break
			}
			last = element{}
			e.end = m.walkCluster(s, e)
		default:
			if e.unknown {
				off = seg.end // nothing says where it ends
				continue
			}
		}
		off = e.end
	}
	if last.end > 0 {
		m.walkCluster(s, last)
	}
	if !m.haveBlocks {
		return 0, false
	}
	return floatMS(m.endNS / 1e6)
}

// floatMS returns ms rounded down, ok false when it is not a finite
// non-negative figure below 2^62.
func floatMS(ms float64) (int64, bool) {
	if math.IsNaN(ms) || ms < 0 || ms >= 1<<62 {
		return 0, false
	}
	return int64(ms), true
}

// readInfo reads TimecodeScale and Duration.
func (m *webmMovie) readInfo(s *source, info element) {
	for off := info.data; off < info.end; {
		e, ok := readElement(s, off, info.end)
		if !ok || e.unknown {
			return
		}
		switch e.id {
		case idTimecodeScale:
			if v, ok := uintData(s, e); ok && v > 0 {
				m.scale = v
			}
		case idDuration:
			switch b := s.bytes(e.data, int(min(e.end-e.data, 9))); len(b) {
			case 4:
				m.duration = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
			case 8:
				m.duration = math.Float64frombits(binary.BigEndian.Uint64(b))
			}
			if math.IsNaN(m.duration) || math.IsInf(m.duration, 0) || m.duration < 0 {
				m.duration = 0
			}
		}
		off = e.end
	}
}

// readTracks reads each TrackEntry's number, DefaultDuration and codec.
func (m *webmMovie) readTracks(s *source, tracks element) {
	for off := tracks.data; off < tracks.end; {
		e, ok := readElement(s, off, tracks.end)
		if !ok || e.unknown {
			return
		}
		off = e.end
		if e.id != idTrackEntry || m.n == maxTracks {
			continue
		}
		var t webmTrack
		for off := e.data; off < e.end; {
			c, ok := readElement(s, off, e.end)
			if !ok || c.unknown {
				break
			}
			switch c.id {
			case idTrackNumber:
				t.number, _ = uintData(s, c)
			case idDefaultDuration:
				t.defaultNS, _ = uintData(s, c)
			case idCodecID:
				codec, _ := stringData(s, c, 32)
				t.opus = codec == "A_OPUS"
			}
			off = c.end
		}
		m.tracks[m.n] = t
		m.n++
	}
}

// track returns the track with the given number, or nil.
func (m *webmMovie) track(number uint64) *webmTrack {
	for i := range m.tracks[:m.n] {
		if m.tracks[i].number == number {
			return &m.tracks[i]
		}
	}
	return nil
}

// walkCluster reads the cluster's Timecode and every block in it, and
// returns where the cluster ends: its end if its size is known, else the
// first element that is no child of a cluster.
func (m *webmMovie) walkCluster(s *source, c element) int64 {
	var tc uint64
	off := c.data
	for off < c.end {
		e, ok := readElement(s, off, c.end)
		if !ok {
			return c.end
		}
		if c.unknown && topLevel[e.id] {
			return off
		}
		if e.unknown {
			return c.end
		}
		switch e.id {
		case idTimecode:
			tc, _ = uintData(s, e)
		case idSimpleBlock:
			m.block(s, tc, e.data, e.end, -1)
		case idBlockGroup:
			var block element
			dur := int64(-1)
			for off := e.data; off < e.end; {
				b, ok := readElement(s, off, e.end)
				if !ok || b.unknown {
					break
				}
				switch b.id {
				case idBlock:
					block = b
				case idBlockDuration:
					if v, ok := uintData(s, b); ok && v < 1<<53 {
						dur = int64(v)
					}
				}
				off = b.end
			}
			if block.end > 0 {
				m.block(s, tc, block.data, block.end, dur)
			}
		}
		off = e.end
	}
	return c.end
}

// block records the end of the block with data in [start, end) in a cluster
// of timecode tc; dur is its BlockDuration in ticks, or -1 if none.
func (m *webmMovie) block(s *source, tc uint64, start, end int64, dur int64) {
	n, number, _, ok := readVint(s, start, 8, false)
	if !ok {
		return
	}
	h := s.bytes(start+int64(n), 3)
	if h == nil || start+int64(n)+3 > end {
		return
	}
	rel := int16(binary.BigEndian.Uint16(h[0:2]))
	lacing := h[2] >> 1 & 3
	ns := (float64(tc) + float64(rel)) * float64(m.scale)
	t := m.track(number)
	switch {
	case dur >= 0:
		ns += float64(dur) * float64(m.scale)
	case t != nil && t.defaultNS > 0:
		ns += float64(t.defaultNS)
	case t != nil && t.opus && lacing == 0:
		if toc := s.bytes(start+int64(n)+3, int(min(2, end-start-int64(n)-3))); len(toc) > 0 {
			ns += float64(opusPacketNS(toc))
		}
	}
	if !m.haveBlocks || ns > m.endNS {
		m.endNS, m.haveBlocks = ns, true
	}
}

// opusPacketNS returns the duration of the Opus packet that starts with
// b (its TOC byte and, for code 3, the frame count byte), in ns (RFC 6716
// §3.1), or 0 when b is too short to say.
func opusPacketNS(b []byte) int64 {
	config := b[0] >> 3
	var frame int64 // ns
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]int64{10e6, 20e6, 40e6, 60e6}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		frame = [2]int64{10e6, 20e6}[config%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]int64{2.5e6, 5e6, 10e6, 20e6}[config%4]
	}
	switch b[0] & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	}
	if len(b) < 2 {
		return 0
	}
	return int64(b[1]&0x3F) * frame
}
