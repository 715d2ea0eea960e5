package media

import (
	"encoding/binary"
	"math"
)

// WAV format codes whose byte rate is constant, so that the data size over
// the block size is the number of sample frames: PCM, IEEE float, A-law,
// µ-law. WAVE_FORMAT_EXTENSIBLE is looked through to its sub-format.
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveMuLaw      = 0x0007
	waveExtensible = 0xFFFE
)

// WAVHeaderSize is the size of the canonical PCM WAV header.
const WAVHeaderSize = 44

// WAVHeader returns the canonical 44-byte header of a PCM WAV holding n
// bytes of 16-bit samples at rate Hz on channels channels: what a live
// stream is stored with, and what tests build their audio on.
func WAVHeader(n int64, rate, channels int) []byte {
	h := make([]byte, WAVHeaderSize)
	blockAlign := 2 * channels
	copy(h[0:4], "RIFF")
	binary.LittleEndian.PutUint32(h[4:8], uint32(36+n))
	copy(h[8:12], "WAVE")
	copy(h[12:16], "fmt ")
	binary.LittleEndian.PutUint32(h[16:20], 16)
	binary.LittleEndian.PutUint16(h[20:22], wavePCM)
	binary.LittleEndian.PutUint16(h[22:24], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:28], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:32], uint32(rate*blockAlign))
	binary.LittleEndian.PutUint16(h[32:34], uint16(blockAlign))
	binary.LittleEndian.PutUint16(h[34:36], 16)
	copy(h[36:40], "data")
	binary.LittleEndian.PutUint32(h[40:44], uint32(n))
	return h
}

// WAVDurationMS returns the duration, in whole milliseconds (rounded down), of
// a WAV file of totalSize bytes whose first bytes are head, as Duration does
// for WAV but looking only at head (HeadSize bytes, or the whole file if
// shorter): ok is false when the "data" chunk's header does not lie in head.
//
// Deprecated: use Duration, which reads the chunks wherever they are.
func WAVDurationMS(head []byte, totalSize int64) (ms int64, ok bool) {
	return wavDuration(memSource(head, totalSize))
}

// wavDuration walks the RIFF chunks to "fmt ", an optional "fact" and
// "data". For a constant-rate format (PCM, float, A-law, µ-law, or
// extensible of those) the duration is the data size over the byte rate,
// as ffmpeg has it; for another format, fact's sample count over the sample
// rate, else the data size over the average byte rate "fmt " declares.
//
// When the data chunk's size is 0 or 0xFFFFFFFF (a writer that streamed and
// never came back to fix the header) or larger than the file allows (a
// truncated file), the data is taken to run from its start to the end of
// the file. Chunks after "data" are not read. ok is false when there is no
// "fmt " of at least 16 bytes before "data", no rate, or no "data".
func wavDuration(s *source) (int64, bool) {
	h := s.bytes(0, 12)
	if h == nil || string(h[0:4]) != "RIFF" || string(h[8:12]) != "WAVE" {
		return 0, false
	}
	var (
		haveFmt  bool
		constant bool   // a constant-rate format
		rate     uint64 // sample frames a second
		byteRate uint64
		samples  uint64 // from "fact"; 0 if none
	)
	for off := int64(12); ; {
		c := s.bytes(off, 8)
		if c == nil {
			return 0, false
		}
		size := int64(binary.LittleEndian.Uint32(c[4:8]))
		body := off + 8
		switch string(c[0:4]) {
		case "fmt ":
			if size < 16 {
				return 0, false
			}
			f := s.bytes(body, int(min(size, 40)))
			if f == nil {
				return 0, false
			}
			format := binary.LittleEndian.Uint16(f[0:2])
			if format == waveExtensible && len(f) >= 26 {
				format = binary.LittleEndian.Uint16(f[24:26]) // first bytes of the sub-format GUID
			}
			switch format {
			case wavePCM, waveFloat, waveALaw, waveMuLaw:
				constant = true
			}
			rate = uint64(binary.LittleEndian.Uint32(f[4:8]))
			byteRate = uint64(binary.LittleEndian.Uint32(f[8:12]))
			haveFmt = true
		case "fact":
			if f := s.bytes(body, 4); f != nil && size >= 4 {
				samples = uint64(binary.LittleEndian.Uint32(f))
			}
		case "data":
			if !haveFmt {
				return 0, false
			}
			avail := s.size - body
			if size == 0 || size == math.MaxUint32 || size > avail {
				size = avail
			}
			if !constant && samples > 0 {
				return scaleMS(samples, rate)
			}
			return scaleMS(uint64(size), byteRate)
		}
		off = body + size + size&1 // chunks are padded to an even size
	}
}
