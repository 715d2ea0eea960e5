package media

import (
	"bytes"
	"encoding/binary"
	"errors"
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
// (602+ bytes) and "iXML" (a few KiB) chunks before it, and so that a
// QuickTime file's leading "free" atoms can be looked past.
const HeadSize = 8192

// Errors returned by Resolve. Callers compare with errors.Is; store maps both
// to the API code unsupported_media_type (DESIGN §5, 415).
var (
	// ErrUnsupported is returned when the declared type is not an accepted
	// audio type (for example text/plain or image/png, or a malformed
	// Content-Type), when the declared type is generic and the bytes match
	// no accepted type, and, whatever the declared type, when the bytes are
	// of a kind tyst refuses: Matroska that is not WebM, an HEIF or AVIF
	// image. The caller's message then lists the accepted types.
	ErrUnsupported = errors.New("media: type not accepted")

	// ErrMismatch is returned when the declared type is an accepted audio type
	// but the bytes are of another type, or of no accepted type at all.
	ErrMismatch = errors.New("media: bytes do not match the declared type")
)

// Detect returns the canonical type of the audio that starts head, or "" if
// head is of no accepted type. It looks at no more than HeadSize bytes of head.
//
//   - WAV:  "RIFF", 4 size bytes, "WAVE".
//   - MP3:  an ID3v2 header ("ID3", version bytes other than 0xFF, a syncsafe
//     size), or an MPEG audio frame header: 11 sync bits, version not
//     reserved (01), layer not 00 (00 is ADTS or reserved), bitrate index
//     not 1111, sample-rate index not 11. When the whole ID3v2 tag lies in
//     head and an ADTS header follows it, the result is AAC instead: HLS
//     and some encoders put ID3 tags in front of raw AAC.
//   - MP4:  the ISO base media family (M4A, MP4, QuickTime .mov, 3GPP and
//     3GPP2): "ftyp" at offset 4 with a major brand that is not a still
//     image (HEIF, AVIF), or, for QuickTime files older than ftyp, a
//     "moov" or "mdat" atom first or after leading "free", "skip", "wide"
//     or "pnot" atoms, all within head.
//   - AAC:  an ADTS header: 12 sync bits, layer 00, sample-rate index not
//     reserved (13 to 15).
//   - OGG:  "OggS".
//   - WebM: the EBML magic 1A 45 DF A3 and, in the EBML header, DocType
//     "webm". Matroska files (DocType "matroska", also when the header
//     leaves DocType out) share the magic; they are refused (see Resolve).
//
// An MPEG frame sync is only 11 bits, so some non-audio bytes starting with
// 0xFF 0xE0 or more are taken for MP3; the policy only needs to tell the
// accepted types apart and refuse what is plainly something else.
func Detect(head []byte) string {
	mimeType, _ := detect(head)
	return mimeType
}

// detect is Detect that also reports refused: head is of a known kind tyst
// does not accept (Matroska, an ISO BMFF still image), so that Resolve can
// refuse it as unsupported whatever the declared type.
func detect(head []byte) (mimeType string, refused bool) {
	if len(head) > HeadSize {
		head = head[:HeadSize]
	}
	switch {
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return WAV, false
	case len(head) >= 8 && string(head[4:8]) == "ftyp":
		if len(head) >= 12 && imageBrands[string(head[8:12])] {
			return "", true
		}
		return MP4, false
	case isQuickTime(head):
		return MP4, false
	case bytes.HasPrefix(head, []byte("OggS")):
		return OGG, false
	case bytes.HasPrefix(head, ebmlMagic):
		switch docType(head) {
		case "webm":
			return WebM, false
		case "matroska":
			return "", true
		}
		return "", false
	case isADTS(head):
		return AAC, false
	case isMPEGAudio(head):
		return MP3, false
	}
	if n, ok := id3Size(head); ok {
		if n < int64(len(head)) && isADTS(head[n:]) {
			return AAC, false
		}
		return MP3, false
	}
	return "", false
}

// imageBrands are ftyp major brands of still images and image sequences
// (HEIF, HEVC and AVIF images, Canon raw): ISO BMFF files, but no audio.
var imageBrands = map[string]bool{
	"mif1": true, "msf1": true, "heic": true, "heix": true, "heim": true,
	"heis": true, "hevc": true, "hevx": true, "hevm": true, "hevs": true,
	"avif": true, "avis": true, "crx ": true,
}

// isQuickTime reports whether head starts with QuickTime atoms without an
// ftyp: a "moov" or "mdat" atom, first or after up to a few "free", "skip",
// "wide" or "pnot" atoms, found within head. Each atom must have a size
// that covers at least its header.
func isQuickTime(head []byte) bool {
	off := 0
	for range 8 {
		if off+8 > len(head) {
			return false
		}
		size := uint64(binary.BigEndian.Uint32(head[off : off+4]))
		hdr := uint64(8)
		if size == 1 { // 64-bit size after the type
			if off+16 > len(head) {
				return false
			}
			size, hdr = binary.BigEndian.Uint64(head[off+8:off+16]), 16
		}
		if size < hdr {
			return false
		}
		switch string(head[off+4 : off+8]) {
		case "moov", "mdat":
			return true
		case "free", "skip", "wide", "pnot":
			if size > uint64(len(head)-off) {
				return false
			}
			off += int(size)
		default:
			return false
		}
	}
	return false
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

	// MP4/M4A and the rest of the ISO base media family. Only names of the
	// container: audio/mp4a-latm and the like name a codec stream, not a
	// file. video/mp4 is what some phones and browsers declare for any .mp4,
	// video/quicktime what iPhones declare for .mov, audio/ and video/3gpp
	// (RFC 3839) and 3gpp2 (RFC 4393) what Android and older phones declare
	// for .3gp and .3g2; the bytes are the same family, and tyst keeps the
	// container as audio.
	MP4:               MP4,
	"audio/x-m4a":     MP4,
	"audio/m4a":       MP4,
	"audio/x-mp4":     MP4,
	"video/mp4":       MP4,
	"video/x-m4v":     MP4,
	"video/quicktime": MP4,
	"audio/3gpp":      MP4,
	"video/3gpp":      MP4,
	"audio/3gpp2":     MP4,
	"video/3gpp2":     MP4,

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

	// WebM. Browsers' MediaRecorder declares video/webm even for audio only,
	// and phones record interviews on video. WebM is a subset of Matroska,
	// so a WebM file saved as .mka or .mkv and declared with a Matroska name
	// is still accepted; the bytes decide, and a Matroska file that is not
	// WebM is refused under any name (see Resolve).
	WebM:               WebM,
	"video/webm":       WebM,
	"audio/x-webm":     WebM,
	"video/x-matroska": WebM,
	"audio/x-matroska": WebM,
	"video/matroska":   WebM,
	"audio/matroska":   WebM,
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
// One rule for every container: the bytes decide. Bytes of a kind tyst
// refuses (Matroska that is not WebM, an HEIF or AVIF image) fail with
// ErrUnsupported whatever the declared type. A generic declared type (see
// Canonical) takes the type Detect finds, or fails with ErrUnsupported when
// the bytes match none. A specific declared type must be accepted (else
// ErrUnsupported) and the bytes must be of its family (else ErrMismatch):
// a .mov declared video/quicktime and the same file undeclared are both
// audio/mp4.
func Resolve(declared string, head []byte) (string, error) {
	want, generic, ok := Canonical(declared)
	if !ok {
		return "", ErrUnsupported
	}
	got, refused := detect(head)
	if refused {
		return "", ErrUnsupported
	}
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
