package media

import (
	"bytes"
	"encoding/binary"
)

const (
	// maxSync is how far past a tag, or past bytes that are no frame, the
	// MPEG parser looks for the next frame before it gives up.
	maxSync = 64 << 10
	// syncFrames is how many frames in a row, each where the previous one
	// ends, make a sync: an 11-bit sync word and a few valid fields turn
	// up by chance in other data (ADTS, Opus, a cover picture).
	syncFrames = 4
)

// mpegFrame is an MPEG-1, -2 or -2.5 audio frame header (layers I to III).
type mpegFrame struct {
	kind    byte   // version and layer bits: the same in every frame of a stream
	rate    uint32 // samples a second
	length  int    // bytes in the frame, header included
	samples int    // samples per channel in the frame
	side    int    // bytes of layer III side information after the header
}

// Bitrates in kbit/s by [MPEG-1?][layer-1][index]; index 0 is the free
// format, whose frame length no header gives.
var mpegBitrates = [2][3][15]uint32{
	{ // MPEG-2 and 2.5
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	},
	{ // MPEG-1
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	},
}

// mpegRates are the sample rates by version bits (00 MPEG-2.5, 10 MPEG-2,
// 11 MPEG-1) and rate index.
var mpegRates = [4][3]uint32{
	{11025, 12000, 8000},
	{},
	{22050, 24000, 16000},
	{44100, 48000, 32000},
}

// parseMPEGFrame parses the frame header at h[0:4]. ok is false for what
// is no frame: no sync, a reserved version, layer, bitrate or rate, and the
// free format.
func parseMPEGFrame(h []byte) (f mpegFrame, ok bool) {
	if len(h) < 4 || h[0] != 0xFF || h[1]&0xE0 != 0xE0 {
		return f, false
	}
	version := h[1] >> 3 & 3
	layer := 4 - int(h[1]>>1&3) // 1, 2 or 3; 4 is reserved
	index := h[2] >> 4
	rateIndex := h[2] >> 2 & 3
	if version == 1 || layer == 4 || index == 0 || index == 15 || rateIndex == 3 {
		return f, false
	}
	mpeg1 := version == 3
	v := 0
	if mpeg1 {
		v = 1
	}
	bitrate := mpegBitrates[v][layer-1][index] * 1000
	f.kind = h[1] & 0x1E
	f.rate = mpegRates[version][rateIndex]
	pad := int(h[2] >> 1 & 1)
	mono := h[3]>>6 == 3
	switch {
	case layer == 1:
		f.length = (int(12*bitrate/f.rate) + pad) * 4
		f.samples = 384
	case layer == 2 || mpeg1:
		f.length = int(144*bitrate/f.rate) + pad
		f.samples = 1152
	default: // layer III of MPEG-2 and 2.5
		f.length = int(72*bitrate/f.rate) + pad
		f.samples = 576
	}
	if layer == 3 {
		switch {
		case mpeg1 && mono:
			f.side = 17
		case mpeg1:
			f.side = 32
		case mono:
			f.side = 9
		default:
			f.side = 17
		}
	}
	return f, true
}

// skipID3 returns the offset after the ID3v2 tags that start the file, or
// 0 if there are none. A few files carry more than one.
func skipID3(s *source) int64 {
	off := int64(0)
	for range 8 {
		n, ok := id3Size(s.bytes(off, 10))
		if !ok {
			break
		}
		off += n
	}
	return off
}

// mp3Duration reads the ID3v2 tag's size and the first frame. With a Xing
// or Info header (LAME, ffmpeg) or a VBRI header (Fraunhofer) that counts
// frames, the duration is frames × samples per frame / rate, as ffprobe
// has it (the encoder's delay and padding are not taken off). Otherwise it
// walks every frame header to the end and sums the samples.
func mp3Duration(s *source) (int64, bool) {
	off, f, ok := mpegSync(s, skipID3(s), nil)
	if !ok {
		return 0, false
	}
	if frames, ok := mpegFrameCount(s, off, f); ok {
		return scaleMS(frames*uint64(f.samples), uint64(f.rate))
	}
	var samples uint64
	for {
		samples += uint64(f.samples)
		next := off + int64(f.length)
		g, ok := parseMPEGFrame(s.bytes(next, 4))
		if !ok || !g.follows(f) {
			if mpegTrailer(s, next) {
				break
			}
			if next, g, ok = mpegSync(s, next, &f); !ok {
				break
			}
		}
		off, f = next, g
	}
	return scaleMS(samples, uint64(f.rate))
}

// mpegFrameCount returns the frame count of a Xing, Info or VBRI header in
// the frame f at off, if there is one and it counts frames.
func mpegFrameCount(s *source, off int64, f mpegFrame) (uint64, bool) {
	b := s.bytes(off, f.length)
	if b == nil {
		return 0, false
	}
	if x := 4 + f.side; f.side > 0 && len(b) >= x+12 {
		tag := string(b[x : x+4])
		flags := binary.BigEndian.Uint32(b[x+4 : x+8])
		if (tag == "Xing" || tag == "Info") && flags&1 != 0 {
			if n := binary.BigEndian.Uint32(b[x+8 : x+12]); n > 0 {
				return uint64(n), true
			}
		}
	}
	// VBRI: 32 bytes after the header; id, version, delay, quality, bytes, frames.
	if len(b) >= 36+18 && string(b[36:40]) == "VBRI" {
		if n := binary.BigEndian.Uint32(b[50:54]); n > 0 {
			return uint64(n), true
		}
	}
	return 0, false
}

// mpegRun reports whether the frame f at off starts syncFrames frames in a
// row, or a shorter run that ends exactly at the end of the file or at a
// trailing tag.
func mpegRun(s *source, off int64, f mpegFrame) bool {
	for range syncFrames - 1 {
		off += int64(f.length)
		g, ok := parseMPEGFrame(s.bytes(off, 4))
		if !ok || !g.follows(f) {
			return off <= s.size && mpegTrailer(s, off)
		}
		f = g
	}
	return true
}

// mpegTrailer reports whether off is the end of the file or the start of a
// tag that follows the frames (ID3v1, APEv2, Lyrics3).
func mpegTrailer(s *source, off int64) bool {
	if off >= s.size {
		return true
	}
	b := s.bytes(off, int(min(8, s.size-off)))
	return bytes.HasPrefix(b, []byte("TAG")) || bytes.HasPrefix(b, []byte("APETAGEX")) ||
		bytes.HasPrefix(b, []byte("LYRICS"))
}

// follows reports whether g may follow f in one stream.
func (g mpegFrame) follows(f mpegFrame) bool { return g.kind == f.kind && g.rate == f.rate }

// mpegSync finds the first frame at or after off, within maxSync bytes,
// that starts syncFrames frames in a row (fewer if the file or the frames
// end first), each following the one before, and the first following prev
// unless prev is nil.
func mpegSync(s *source, off int64, prev *mpegFrame) (int64, mpegFrame, bool) {
	end := min(s.size, off+maxSync)
	for off < end {
		w := s.bytes(off, int(min(end-off, 4<<10)))
		if w == nil {
			break
		}
		n := len(w)
		for i := 0; i < n; {
			j := bytes.IndexByte(w[i:], 0xFF)
			if j < 0 {
				break
			}
			at := off + int64(i+j)
			if f, ok := parseMPEGFrame(s.bytes(at, 4)); ok && (prev == nil || f.follows(*prev)) && mpegRun(s, at, f) {
				return at, f, true
			}
			// The checks may have moved the buffer: at most once a window,
			// since the refill at off then holds the window and its runs.
			if w = s.bytes(off, n); w == nil {
				return 0, mpegFrame{}, false
			}
			i += j + 1
		}
		off += int64(max(n-3, 1)) // a header may straddle two windows
	}
	return 0, mpegFrame{}, false
}
