package media

import "encoding/binary"

// maxTracks bounds the tracks mp4Duration keeps; more are ignored.
const maxTracks = 16

// box is an ISO BMFF (MP4, QuickTime) box: its type, where its data starts
// and where it ends.
type box struct {
	typ       [4]byte
	data, end int64
}

// readBox reads the header of the box at off inside a parent ending at
// parentEnd. A size of 0 (to the end) and a size past the parent's end (a
// cut file) both end the box at parentEnd. ok is false when no header fits
// or the size is shorter than the header.
func readBox(s *source, off, parentEnd int64) (b box, ok bool) {
	if parentEnd-off < 8 {
		return b, false
	}
	h := s.bytes(off, 8)
	if h == nil {
		return b, false
	}
	size := uint64(binary.BigEndian.Uint32(h[0:4]))
	b.typ = [4]byte(h[4:8])
	b.data = off + 8
	if size == 1 {
		if parentEnd-off < 16 {
			return b, false
		}
		if h = s.bytes(off+8, 8); h == nil {
			return b, false
		}
		size = binary.BigEndian.Uint64(h)
		b.data += 8
	}
	hdr := uint64(b.data - off)
	switch {
	case size == 0 || size > uint64(parentEnd-off):
		b.end = parentEnd
	case size < hdr:
		return b, false
	default:
		b.end = off + int64(size)
	}
	return b, true
}

// mp4Track is what mp4Duration keeps of a track.
type mp4Track struct {
	id        uint32
	timescale uint32
	duration  uint64 // mdhd, in timescale units
	audio     bool   // handler "soun"
	defaultD  uint32 // trex default sample duration
	fragEnd   uint64 // end of the last fragment read, in timescale units
}

// mp4Movie is what mp4Duration gathers from moov and the fragments.
type mp4Movie struct {
	haveMoov   bool
	timescale  uint32 // mvhd
	duration   uint64 // mvhd, in movie timescale units; 0 if unknown
	fragmented bool   // moov holds mvex
	fragDur    uint64 // mehd, in movie timescale units
	tracks     [maxTracks]mp4Track
	n          int
}

// mp4Duration walks the top-level boxes, reading moov wherever it lies and
// skipping mdat by its size. It returns:
//
//   - for a plain file, mvhd's duration over its timescale, which is what
//     ffprobe reports (writers put the edited presentation's length
//     there); else the longest audio track's mdhd duration, else the
//     longest track's;
//   - for a fragmented file (mvex in moov, as Safari's MediaRecorder and
//     ffmpeg's frag_keyframe write), whose mvhd covers at most the samples
//     in moov, the longest of mvhd, mehd's fragment duration, and the end
//     of the last fragment of the longest audio track (tfdt plus the track
//     run's sample durations) read from every moof. mehd, when there is
//     one, spares the walk through the moofs.
//
// ok is false without moov (a recording cut before its moov was written).
func mp4Duration(s *source) (int64, bool) {
	var m mp4Movie
	for off := int64(0); off < s.size; {
		b, ok := readBox(s, off, s.size)
		if !ok {
			break
		}
		switch string(b.typ[:]) {
		case "moov":
			if m.haveMoov {
				break
			}
			m.readMoov(s, b)
			if (!m.fragmented && m.duration > 0) || m.fragDur > 0 {
				return scaleMS(max(m.duration, m.fragDur), uint64(m.timescale))
			}
		case "moof":
			if m.haveMoov {
				m.readMoof(s, b)
			}
		}
		off = b.end
	}
	if !m.haveMoov {
		return 0, false
	}
	ms, ok := scaleMS(m.duration, uint64(m.timescale))
	ok = ok && ms > 0
	if m.fragmented {
		if f, found := m.longest(func(t *mp4Track) uint64 { return t.fragEnd }); found && (!ok || f > ms) {
			ms, ok = f, true
		}
	}
	if ok {
		return ms, true
	}
	return m.longest(func(t *mp4Track) uint64 { return t.duration })
}

// longest returns the longest of the audio tracks' durations as given by
// f, or of all tracks' if no audio track has one; ok is false if none has.
func (m *mp4Movie) longest(f func(*mp4Track) uint64) (int64, bool) {
	for _, audioOnly := range []bool{true, false} {
		best, found := int64(0), false
		for i := range m.tracks[:m.n] {
			t := &m.tracks[i]
			if audioOnly && !t.audio {
				continue
			}
			if d := f(t); d > 0 {
				if ms, ok := scaleMS(d, uint64(t.timescale)); ok && ms >= best {
					best, found = ms, true
				}
			}
		}
		if found {
			return best, true
		}
	}
	return 0, false
}

// fullBox returns the version and flags of the full box b and the n bytes
// after them, or a nil body if they do not lie in b.
func fullBox(s *source, b box, n int) (version byte, flags uint32, body []byte) {
	if b.end-b.data < int64(4+n) {
		return 0, 0, nil
	}
	p := s.bytes(b.data, 4+n)
	if p == nil {
		return 0, 0, nil
	}
	return p[0], uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]), p[4:]
}

// timeHeader parses an mvhd or mdhd body: timescale and duration. A
// duration of all ones means unknown and is returned as 0.
func timeHeader(s *source, b box) (timescale uint32, duration uint64) {
	v, _, p := fullBox(s, b, 28)
	switch {
	case v == 1 && p != nil:
		timescale, duration = binary.BigEndian.Uint32(p[16:20]), binary.BigEndian.Uint64(p[20:28])
		if duration == ^uint64(0) {
			duration = 0
		}
	default:
		if v, _, p = fullBox(s, b, 16); v != 0 || p == nil {
			return 0, 0
		}
		timescale, duration = binary.BigEndian.Uint32(p[8:12]), uint64(binary.BigEndian.Uint32(p[12:16]))
		if duration == 0xFFFFFFFF {
			duration = 0
		}
	}
	if timescale == 0 {
		return 0, 0
	}
	return timescale, duration
}

// readMoov reads mvhd, each trak and mvex.
func (m *mp4Movie) readMoov(s *source, moov box) {
	m.haveMoov = true
	for off := moov.data; ; {
		b, ok := readBox(s, off, moov.end)
		if !ok {
			return
		}
		switch string(b.typ[:]) {
		case "mvhd":
			m.timescale, m.duration = timeHeader(s, b)
		case "trak":
			if m.n < maxTracks {
				m.tracks[m.n] = readTrak(s, b)
				m.n++
			}
		case "mvex":
			m.fragmented = true
			m.readMvex(s, b)
		}
		off = b.end
	}
}

// readTrak reads tkhd's track id and mdia's mdhd and hdlr.
func readTrak(s *source, trak box) (t mp4Track) {
	for off := trak.data; ; {
		b, ok := readBox(s, off, trak.end)
		if !ok {
			return t
		}
		switch string(b.typ[:]) {
		case "tkhd":
			if v, _, p := fullBox(s, b, 20); v == 1 && p != nil {
				t.id = binary.BigEndian.Uint32(p[16:20])
			} else if v, _, p := fullBox(s, b, 12); v == 0 && p != nil {
				t.id = binary.BigEndian.Uint32(p[8:12])
			}
		case "mdia":
			for off := b.data; ; {
				c, ok := readBox(s, off, b.end)
				if !ok {
					break
				}
				switch string(c.typ[:]) {
				case "mdhd":
					t.timescale, t.duration = timeHeader(s, c)
				case "hdlr":
					if _, _, p := fullBox(s, c, 8); p != nil {
						t.audio = string(p[4:8]) == "soun"
					}
				}
				off = c.end
			}
		}
		off = b.end
	}
}

// readMvex reads mehd's fragment duration and each trex's default sample
// duration.
func (m *mp4Movie) readMvex(s *source, mvex box) {
	for off := mvex.data; ; {
		b, ok := readBox(s, off, mvex.end)
		if !ok {
			return
		}
		switch string(b.typ[:]) {
		case "mehd":
			if v, _, p := fullBox(s, b, 8); v == 1 && p != nil {
				m.fragDur = binary.BigEndian.Uint64(p)
			} else if v, _, p := fullBox(s, b, 4); v == 0 && p != nil {
				m.fragDur = uint64(binary.BigEndian.Uint32(p))
			}
		case "trex":
			if _, _, p := fullBox(s, b, 12); p != nil {
				if t := m.track(binary.BigEndian.Uint32(p[0:4])); t != nil {
					t.defaultD = binary.BigEndian.Uint32(p[8:12])
				}
			}
		}
		off = b.end
	}
}

// track returns the track with the given id, or nil.
func (m *mp4Movie) track(id uint32) *mp4Track {
	for i := range m.tracks[:m.n] {
		if m.tracks[i].id == id {
			return &m.tracks[i]
		}
	}
	return nil
}

// trun flags.
const (
	trunDataOffset  = 0x000001
	trunFirstFlags  = 0x000004
	trunSampleDur   = 0x000100
	trunSize        = 0x000200
	trunFlags       = 0x000400
	trunCompOffsets = 0x000800
	tfhdBaseOffset  = 0x000001
	tfhdDescIndex   = 0x000002
	tfhdDuration    = 0x000008
)

// readMoof reads each traf: tfhd's track and default duration, tfdt's
// decode time, and the sum of the sample durations of its truns; the
// track's fragment end is decode time + that sum (without tfdt, the
// previous end + that sum).
func (m *mp4Movie) readMoof(s *source, moof box) {
	for off := moof.data; ; {
		traf, ok := readBox(s, off, moof.end)
		if !ok {
			return
		}
		off = traf.end
		if string(traf.typ[:]) != "traf" {
			continue
		}
		var (
			t               *mp4Track
			defaultD        uint32
			start, sum      uint64
			haveStart, over bool
		)
		for off := traf.data; ; {
			b, ok := readBox(s, off, traf.end)
			if !ok {
				break
			}
			off = b.end
			switch string(b.typ[:]) {
			case "tfhd":
				_, flags, p := fullBox(s, b, 4)
				if p == nil {
					break
				}
				if t = m.track(binary.BigEndian.Uint32(p)); t == nil {
					break
				}
				defaultD = t.defaultD
				at := 8
				if flags&tfhdBaseOffset != 0 {
					at += 8
				}
				if flags&tfhdDescIndex != 0 {
					at += 4
				}
				if flags&tfhdDuration != 0 {
					if _, _, p := fullBox(s, b, at); p != nil {
						defaultD = binary.BigEndian.Uint32(p[at-4 : at])
					}
				}
			case "tfdt":
				if v, _, p := fullBox(s, b, 8); v == 1 && p != nil {
					start, haveStart = binary.BigEndian.Uint64(p), true
				} else if v, _, p := fullBox(s, b, 4); v == 0 && p != nil {
					start, haveStart = uint64(binary.BigEndian.Uint32(p)), true
				}
			case "trun":
				d, ok := trunSum(s, b, defaultD)
				sum += d
				over = over || !ok || sum < d
			}
		}
		if t == nil || over {
			continue
		}
		if !haveStart {
			start = t.fragEnd
		}
		if end := start + sum; end >= start && end > t.fragEnd {
			t.fragEnd = end
		}
	}
}

// trunSum returns the sum of the sample durations of the trun box b:
// each sample's own, or count × defaultD. ok is false if the sum overflows.
func trunSum(s *source, b box, defaultD uint32) (uint64, bool) {
	_, flags, p := fullBox(s, b, 4)
	if p == nil {
		return 0, true
	}
	count := uint64(binary.BigEndian.Uint32(p))
	if flags&trunSampleDur == 0 {
		return count * uint64(defaultD), true // both < 2^32: no overflow
	}
	pos := b.data + 8
	if flags&trunDataOffset != 0 {
		pos += 4
	}
	if flags&trunFirstFlags != 0 {
		pos += 4
	}
	entry := int64(4)
	for _, f := range []uint32{trunSize, trunFlags, trunCompOffsets} {
		if flags&f != 0 {
			entry += 4
		}
	}
	// Only the samples whose entries lie in the box; a count larger than
	// the box holds is a lie and is cut to it.
	if fit := uint64((b.end - pos) / entry); b.end > pos && count > fit {
		count = fit
	} else if b.end <= pos {
		return 0, true
	}
	var sum uint64
	for i := uint64(0); i < count; i++ {
		e := s.bytes(pos, 4)
		if e == nil {
			break
		}
		d := uint64(binary.BigEndian.Uint32(e))
		if sum+d < sum {
			return 0, false
		}
		sum += d
		pos += entry
	}
	return sum, true
}
