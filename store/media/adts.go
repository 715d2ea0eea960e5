package media

// adtsRates are the sample rates by ADTS sampling-frequency index; 13 to 15
// are reserved.
var adtsRates = [13]uint32{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adtsFrame parses the ADTS header at h[0:7]: the frame's length in bytes
// (header included), its number of AAC frames of 1024 samples, and its
// sample rate. ok is false for what is no ADTS header or a length shorter
// than the header.
func adtsFrame(h []byte) (length int, frames int, rate uint32, ok bool) {
	if len(h) < 7 || !isADTS(h) {
		return 0, 0, 0, false
	}
	length = int(h[3]&3)<<11 | int(h[4])<<3 | int(h[5]>>5)
	hdr := 7
	if h[1]&1 == 0 { // protection_absent clear: a CRC follows
		hdr = 9
	}
	if length < hdr {
		return 0, 0, 0, false
	}
	return length, int(h[6]&3) + 1, adtsRates[h[2]>>2&0xF], true
}

// adtsDuration walks every ADTS frame header from the first, after any
// ID3v2 tag, and counts 1024 samples per raw data block at the first
// frame's rate (for HE-AAC that is the core rate, so the time is still
// right). The walk ends at the end of the file, at a header that is not
// ADTS or changes the rate, or at a cut last frame, which is not counted.
// ffprobe estimates the same figure from the first frames' average size.
func adtsDuration(s *source) (int64, bool) {
	off := skipID3(s)
	length, frames, rate, ok := adtsFrame(s.bytes(off, 7))
	if !ok {
		return 0, false
	}
	first := rate
	var samples uint64
	for ok && rate == first && int64(length) <= s.size-off {
		samples += uint64(frames) * 1024
		off += int64(length)
		length, frames, rate, ok = adtsFrame(s.bytes(off, 7))
	}
	return scaleMS(samples, uint64(first))
}
