// Package media decides what kind of audio an upload holds, from its declared
// Content-Type and its first bytes (DESIGN §5, "Accepted audio").
//
// It owns the list of audio types tyst accepts, their canonical MIME types and
// aliases, the magic bytes of each, the policy that reconciles a declared type
// with the bytes (Resolve), the file extension of each type, and reading the
// duration of a PCM WAV from its header. It promises:
//
//   - Detect, Resolve and WAVDurationMS never panic, on any input, and never
//     look at more than the bytes they are given; Detect and Resolve look at
//     no more than HeadSize of them.
//   - Every type returned is one of the six canonical constants below.
//   - A declared type that the bytes contradict is refused, never corrected.
//
// The package holds no state and does no I/O; the caller peeks HeadSize bytes
// (for example with bufio.Reader.Peek) and passes them in. Nothing here logs,
// and errors carry no part of the input.
package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"mime"
	"strings"
)

// Canonical MIME types tyst stores.
const (
	WAV  = "audio/wav"
	MP3  = "audio/mpeg"
	MP4  = "audio/mp4"
	AAC  = "audio/aac"
	OGG  = "audio/ogg"
	WebM = "audio/webm"
)

// HeadSize is how many leading bytes Detect and Resolve look at at most; a
// caller peeks this many (fewer when the input is shorter) and passes them in.
// It is 8 KiB rather than a few bytes so that WAVDurationMS also finds the
// "data" chunk of Broadcast WAV files from field recorders, which put "bext"
// (602+ bytes) and "iXML" (a few KiB) chunks before it.
const HeadSize = 8192

// Errors returned by Resolve. Callers compare with errors.Is; store maps both
// to the API code unsupported_media_type (DESIGN §5, 415).
var (
	// ErrUnsupported is returned when the declared type is not an accepted
	// audio type (for example text/plain or image/png, or a malformed
	// Content-Type), or when the declared type is generic and the bytes match
	// no accepted type.
	ErrUnsupported = errors.New("media: type not accepted")

	// ErrMismatch is returned when the declared type is an accepted audio type
	// but the bytes are of another type, or of no accepted type at all.
	ErrMismatch = errors.New("media: bytes do not match the declared type")
)

// Detect returns the canonical type whose magic bytes start head, or "" if
// none matches. It looks at no more than HeadSize bytes of head.
//
//   - WAV:  "RIFF", 4 size bytes, "WAVE".
//   - MP3:  an ID3v2 header ("ID3", version bytes other than 0xFF, a syncsafe
//     size), or an MPEG audio frame header: 11 sync bits, version not
//     reserved (01), layer not 00 (00 is ADTS or reserved), bitrate index
//     not 1111, sample-rate index not 11. When the whole ID3v2 tag lies in
//     head and an ADTS header follows it, the result is AAC instead: HLS
//     and some encoders put ID3 tags in front of raw AAC.
//   - MP4:  "ftyp" at offset 4 (M4A, MP4 and other ISO BMFF brands).
//   - AAC:  an ADTS header: 12 sync bits, layer 00, sample-rate index not
//     reserved (13 to 15).
//   - OGG:  "OggS".
//   - WebM: the EBML magic 1A 45 DF A3. Matroska files share it and are
//     taken as WebM.
//
// An MPEG frame sync is only 11 bits, so some non-audio bytes starting with
// 0xFF 0xE0 or more are taken for MP3; the policy only needs to tell the
// accepted types apart and refuse what is plainly something else.
func Detect(head []byte) string {
	if len(head) > HeadSize {
		head = head[:HeadSize]
	}
	switch {
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return WAV
	case len(head) >= 8 && string(head[4:8]) == "ftyp":
		return MP4
	case bytes.HasPrefix(head, []byte("OggS")):
		return OGG
	case bytes.HasPrefix(head, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return WebM
	case isADTS(head):
		return AAC
	case isMPEGAudio(head):
		return MP3
	}
	if n, ok := id3Size(head); ok {
		if n < int64(len(head)) && isADTS(head[n:]) {
			return AAC
		}
		return MP3
	}
	return ""
}

// id3Size reports whether head starts with an ID3v2 header and, if so, the
// length of the whole tag (header, body and optional footer).
func id3Size(head []byte) (int64, bool) {
	if len(head) < 10 || string(head[0:3]) != "ID3" || head[3] == 0xFF || head[4] == 0xFF {
		return 0, false
	}
	var n int64
	for _, b := range head[6:10] {
		if b >= 0x80 {
			return 0, false
		}
		n = n<<7 | int64(b)
	}
	n += 10
	if head[5]&0x10 != 0 { // footer present
		n += 10
	}
	return n, true
}

// isMPEGAudio reports whether head starts with an MPEG-1/2/2.5 audio frame
// header (layers I to III).
func isMPEGAudio(head []byte) bool {
	if len(head) < 3 || head[0] != 0xFF || head[1]&0xE0 != 0xE0 {
		return false
	}
	version := head[1] >> 3 & 0x3
	layer := head[1] >> 1 & 0x3
	bitrate := head[2] >> 4
	rate := head[2] >> 2 & 0x3
	return version != 0x1 && layer != 0x0 && bitrate != 0xF && rate != 0x3
}

// isADTS reports whether head starts with an ADTS (raw AAC) frame header.
func isADTS(head []byte) bool {
	if len(head) < 3 || head[0] != 0xFF || head[1]&0xF6 != 0xF0 {
		return false
	}
	return head[2]>>2&0xF <= 12
}

// aliases maps every accepted declared media type (lower case, without
// parameters) to its canonical type.
var aliases = map[string]string{
	// WAV. audio/wave and audio/vnd.wave (RFC 2361) are the registered names,
	// audio/x-wav and audio/x-pn-wav what browsers and old servers send.
	WAV:              WAV,
	"audio/wave":     WAV,
	"audio/x-wav":    WAV,
	"audio/vnd.wave": WAV,
	"audio/x-pn-wav": WAV,

	// MP3. audio/mpeg is the registered name (RFC 3003); the rest are
	// unregistered names in common use. audio/mpa (RFC 3555) names MPEG
	// audio in general, which the bytes then have to prove.
	MP3:             MP3,
	"audio/mp3":     MP3,
	"audio/x-mp3":   MP3,
	"audio/mpeg3":   MP3,
	"audio/x-mpeg":  MP3,
	"audio/x-mpeg3": MP3,
	"audio/mpa":     MP3,
	"audio/mpg":     MP3,

	// MP4/M4A. Only names of the container: audio/mp4a-latm and the like name
	// a codec stream, not a file. video/mp4 is what some phones and browsers
	// declare for any .mp4; tyst keeps the container as audio.
	MP4:           MP4,
	"audio/x-m4a": MP4,
	"audio/m4a":   MP4,
	"audio/x-mp4": MP4,
	"video/mp4":   MP4,

	// AAC in ADTS frames. audio/aacp is HE-AAC (AAC+) in ADTS, as sent by
	// streaming servers; audio/x-hx-aac-adts is the name in shared-mime-info.
	AAC:                   AAC,
	"audio/aacp":          AAC,
	"audio/x-aac":         AAC,
	"audio/x-hx-aac-adts": AAC,

	// Ogg. application/ogg and video/ogg are registered (RFC 5334).
	// audio/vorbis and audio/opus name codecs, but .oga/.opus files declared
	// with them are Ogg files in practice; the bytes must still say OggS, so
	// an Opus file in WebM declared audio/opus is a mismatch.
	// audio/x-vorbis+ogg and audio/x-opus+ogg are the shared-mime-info names
	// Linux desktops hand to browsers.
	OGG:                  OGG,
	"application/ogg":    OGG,
	"audio/x-ogg":        OGG,
	"video/ogg":          OGG,
	"audio/vorbis":       OGG,
	"audio/opus":         OGG,
	"audio/x-vorbis+ogg": OGG,
	"audio/x-opus+ogg":   OGG,

	// WebM. Browsers' MediaRecorder declares video/webm even for audio only.
	// Matroska names (video/x-matroska, audio/x-matroska) are not accepted.
	WebM:           WebM,
	"video/webm":   WebM,
	"audio/x-webm": WebM,
}

// Canonical normalises a declared Content-Type to a canonical type. Case,
// surrounding space and parameters ("audio/WAV; codecs=1") are ignored; a
// malformed parameter list is ignored too, a malformed type is not accepted.
//
// generic is true, with mimeType "" and ok true, for an empty declared type
// and for application/octet-stream and binary/octet-stream: the caller then
// takes the type Detect finds. ok is false, with mimeType "", for a type tyst
// does not accept. The accepted aliases of each type are listed, with the
// reason for each, in the source.
func Canonical(declared string) (mimeType string, generic bool, ok bool) {
	if strings.TrimSpace(declared) == "" {
		return "", true, true
	}
	mt, _, err := mime.ParseMediaType(declared)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return "", false, false
	}
	switch mt {
	case "application/octet-stream", "binary/octet-stream":
		return "", true, true
	}
	if c, found := aliases[mt]; found {
		return c, false, true
	}
	return "", false, false
}

// Resolve applies tyst's policy to a declared Content-Type and the first bytes
// of the upload (at most HeadSize of them are looked at) and returns the
// canonical type to store.
//
// A generic declared type (see Canonical) takes the type Detect finds, or
// fails with ErrUnsupported when the bytes match none. A specific declared
// type must be accepted (else ErrUnsupported) and the bytes must be of that
// very type (else ErrMismatch).
func Resolve(declared string, head []byte) (string, error) {
	want, generic, ok := Canonical(declared)
	if !ok {
		return "", ErrUnsupported
	}
	got := Detect(head)
	if generic {
		if got == "" {
			return "", ErrUnsupported
		}
		return got, nil
	}
	if got != want {
		return "", ErrMismatch
	}
	return want, nil
}

// Ext returns the file extension, without a dot, for a canonical type: wav,
// mp3, m4a, aac, ogg or webm, and "bin" for anything else (aliases included:
// pass the result of Canonical or Resolve).
func Ext(mimeType string) string {
	switch mimeType {
	case WAV:
		return "wav"
	case MP3:
		return "mp3"
	case MP4:
		return "m4a"
	case AAC:
		return "aac"
	case OGG:
		return "ogg"
	case WebM:
		return "webm"
	}
	return "bin"
}

// WAV format codes whose byte rate is constant, so that size / byte rate is
// the duration: PCM, IEEE float, A-law, µ-law; WAVE_FORMAT_EXTENSIBLE is
// looked through to its sub-format.
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveMuLaw      = 0x0007
	waveExtensible = 0xFFFE
)

// WAVDurationMS returns the duration, in whole milliseconds (rounded down), of
// a PCM WAV file of totalSize bytes whose first bytes are head. It walks the
// RIFF chunks in head to find "fmt " and then "data", and divides the data
// size by the byte rate of "fmt ". It uses all of head, which should be
// HeadSize bytes or the whole file if shorter.
//
// When the data chunk's size is 0 or 0xFFFFFFFF (a writer that streamed and
// never came back to fix the header) or larger than totalSize allows (a
// truncated file), the data is taken to run from its start to totalSize.
//
// ok is false, with ms 0, when head is not a RIFF WAVE, does not hold a
// parsable "fmt " chunk of a constant-rate format (PCM, float, A-law, µ-law,
// or extensible of those) followed by the header of the "data" chunk, or when
// totalSize ends before the data starts.
func WAVDurationMS(head []byte, totalSize int64) (ms int64, ok bool) {
	if len(head) < 12 || string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return 0, false
	}
	var byteRate int64
	n := int64(len(head))
	for off := int64(12); off+8 <= n; {
		id := string(head[off : off+4])
		size := int64(binary.LittleEndian.Uint32(head[off+4 : off+8]))
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || body+size > n {
				return 0, false
			}
			byteRate = fmtByteRate(head[body : body+size])
			if byteRate == 0 {
				return 0, false
			}
		case "data":
			if byteRate == 0 || totalSize < body {
				return 0, false
			}
			avail := totalSize - body
			if size == 0 || size == math.MaxUint32 || size > avail {
				size = avail
			}
			q, r := size/byteRate, size%byteRate
			if q > (math.MaxInt64-999)/1000 {
				return 0, false // only for a totalSize no file has
			}
			return q*1000 + r*1000/byteRate, true // r < byteRate < 2^32: no overflow
		}
		off = body + size + size&1 // chunks are padded to an even size
	}
	return 0, false
}

// fmtByteRate returns the byte rate of a "fmt " chunk body of at least 16
// bytes, or 0 when its format has no constant byte rate or the rate is 0.
func fmtByteRate(f []byte) int64 {
	format := binary.LittleEndian.Uint16(f[0:2])
	if format == waveExtensible {
		if len(f) < 40 {
			return 0
		}
		format = binary.LittleEndian.Uint16(f[24:26]) // first bytes of the sub-format GUID
	}
	switch format {
	case wavePCM, waveFloat, waveALaw, waveMuLaw:
		return int64(binary.LittleEndian.Uint32(f[8:12]))
	}
	return 0
}
