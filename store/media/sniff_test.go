package media_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store/media"
)

// audioDir holds the real audio files made by testdata/audio/make.sh.
var audioDir = filepath.Join("..", "..", "testdata", "audio")

// realFiles lists every accepted file in audioDir and the type it is.
var realFiles = []struct {
	name string
	want string
}{
	{"tone.wav", media.WAV},
	{"stereo-48k.wav", media.WAV},
	{"voice-bext.wav", media.WAV},
	{"tone.mp3", media.MP3},
	{"tone-noid3.mp3", media.MP3},
	{"voice-vbr.mp3", media.MP3},
	{"voice-cover.mp3", media.MP3},
	{"tone.m4a", media.MP4},
	{"phone-video.mp4", media.MP4},
	{"phone-video.mov", media.MP4},
	{"voice-noftyp.mov", media.MP4},
	{"voice.3gp", media.MP4},
	{"voice-fragmented.m4a", media.MP4},
	{"tone.aac", media.AAC},
	{"tone.ogg", media.OGG},
	{"voice.opus", media.OGG},
	{"tone.webm", media.WebM},
	{"phone-video.webm", media.WebM},
	{"voice-mediarecorder.webm", media.WebM},
}

// refusedFiles lists the real files in audioDir of a kind tyst refuses
// under any declared type: their bytes are known, but not accepted.
var refusedFiles = []string{
	"voice.mka", // Matroska, DocType "matroska"
}

// notAudio lists the files in audioDir that are no test input.
var notAudio = map[string]bool{"make.sh": true, "mediarecorder.go": true, "durations.json": true}

// badFiles lists every file in audioDir/bad and the type its name claims.
var badFiles = []struct {
	name     string
	declared string
}{
	{"empty.wav", "audio/wav"},
	{"text.txt", "audio/mpeg"},
	{"riff-not-wave.wav", "audio/x-wav"},
	{"truncated-header.wav", "audio/wav"},
	{"png-as-audio.mp3", "audio/mpeg"},
}

// mustReadFile returns the bytes of a file under audioDir.
func mustReadFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(audioDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustReadHead returns at most the first media.HeadSize bytes of a file under
// audioDir, as a caller peeking an upload would.
func mustReadHead(tb testing.TB, name string) []byte {
	tb.Helper()
	b := mustReadFile(tb, name)
	if len(b) > media.HeadSize {
		b = b[:media.HeadSize]
	}
	return b
}

// TestTestdata_EveryFileHasCase keeps realFiles and badFiles in step with
// what make.sh writes.
func TestTestdata_EveryFileHasCase(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range realFiles {
		listed[f.name] = true
	}
	for _, name := range refusedFiles {
		listed[name] = true
	}
	for _, f := range badFiles {
		listed[filepath.Join("bad", f.name)] = true
	}
	for _, dir := range []string{".", "bad"} {
		entries, err := os.ReadDir(filepath.Join(audioDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := filepath.Join(dir, e.Name())
			if e.IsDir() || notAudio[name] {
				continue
			}
			if !listed[name] {
				t.Errorf("%s has no test case", name)
			}
			delete(listed, name)
		}
	}
	for name := range listed {
		t.Errorf("%s is missing: run testdata/audio/make.sh", name)
	}
}

func TestDetect(t *testing.T) {
	t.Run("RealFiles", func(t *testing.T) {
		for _, tt := range realFiles {
			t.Run(tt.name, func(t *testing.T) {
				if got, want := media.Detect(mustReadHead(t, tt.name)), tt.want; got != want {
					t.Fatalf("Detect=%q, want %q", got, want)
				}
			})
		}
	})

	t.Run("RefusedFilesMatchNothing", func(t *testing.T) {
		for _, name := range refusedFiles {
			t.Run(name, func(t *testing.T) {
				if got := media.Detect(mustReadHead(t, name)); got != "" {
					t.Fatalf("Detect=%q, want \"\"", got)
				}
			})
		}
	})

	t.Run("MalformedFilesMatchNothing", func(t *testing.T) {
		for _, tt := range badFiles {
			t.Run(tt.name, func(t *testing.T) {
				if got := media.Detect(mustReadHead(t, filepath.Join("bad", tt.name))); got != "" {
					t.Fatalf("Detect=%q, want \"\"", got)
				}
			})
		}
	})

	t.Run("ID3BeforeADTSIsAAC", func(t *testing.T) {
		// The 20-byte ID3v2 tag ffmpeg wrote in front of tone.mp3, then tone.aac.
		mp3 := mustReadFile(t, "tone.mp3")
		if got, want := mp3[20], byte(0xFF); got != want {
			t.Fatalf("tone.mp3[20]=%#x, want %#x (frame after a 20-byte tag)", got, want)
		}
		head := append(append([]byte{}, mp3[:20]...), mustReadFile(t, "tone.aac")...)
		if got, want := media.Detect(head), media.AAC; got != want {
			t.Fatalf("Detect=%q, want %q", got, want)
		}
	})

	t.Run("ID3TagLongerThanHeadIsMP3", func(t *testing.T) {
		// A tag of 0x7F<<7 = 16256 bytes: the ADTS header after it lies beyond HeadSize.
		head := []byte("ID3\x04\x00\x00\x00\x00\x7f\x00")
		head = append(head, make([]byte, 16256)...)
		head = append(head, mustReadFile(t, "tone.aac")...)
		if got, want := media.Detect(head), media.MP3; got != want {
			t.Fatalf("Detect=%q, want %q", got, want)
		}
	})

	t.Run("Headers", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			head string
			want string
		}{
			{"EmptyIsNothing", "", ""},
			{"RIFFWithoutWAVEIsNothing", "RIFF\x00\x00\x00\x00AVI ", ""},
			{"RIFFWAVEIsWAV", "RIFF\x00\x00\x00\x00WAVE", media.WAV},
			{"ShortRIFFIsNothing", "RIFF\x00\x00\x00\x00WAV", ""},
			{"FtypIsMP4", "\x00\x00\x00\x18ftypisom", media.MP4},
			{"FtypQuickTimeIsMP4", "\x00\x00\x00\x14ftypqt  ", media.MP4},
			{"Ftyp3GPIsMP4", "\x00\x00\x00\x18ftyp3gp4", media.MP4},
			{"FtypShortIsMP4", "\x00\x00\x00\x18ftyp", media.MP4},
			{"FtypHEICIsNothing", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", ""},
			{"FtypAVIFIsNothing", "\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", ""},
			{"MoovFirstIsMP4", "\x00\x00\x00\x08moov", media.MP4},
			{"MdatFirstIsMP4", "\x00\x00\x10\x00mdat", media.MP4},
			{"MdatLargeSizeIsMP4", "\x00\x00\x00\x01mdat\x00\x00\x00\x01\x00\x00\x00\x00", media.MP4},
			{"WideThenMdatIsMP4", "\x00\x00\x00\x08wide\x00\x00\x10\x00mdat", media.MP4},
			{"FreeSkipThenMoovIsMP4", "\x00\x00\x00\x0cfree\x00\x00\x00\x00\x00\x00\x00\x08skip\x00\x00\x00\x08moov", media.MP4},
			{"FreeAloneIsNothing", "\x00\x00\x00\x08free", ""},
			{"FreePastHeadIsNothing", "\x00\x01\x00\x00free\x00\x00\x00\x08moov", ""},
			{"WideThenOtherIsNothing", "\x00\x00\x00\x08wide\x00\x00\x00\x08abcd", ""},
			{"MoovTooSmallIsNothing", "\x00\x00\x00\x04moov", ""},
			{"MdatSizeZeroIsNothing", "\x00\x00\x00\x00mdat", ""},
			{"TextWithFreeIsNothing", "Feelfree to call", ""},
			{"OggSIsOGG", "OggS\x00", media.OGG},
			{"EBMLWebMIsWebM", "\x1a\x45\xdf\xa3\x88\x42\x82\x84webm\x42\x87\x81\x04", media.WebM},
			{"EBMLWebMPaddedIsWebM", "\x1a\x45\xdf\xa3\x87\x42\x82\x85webm\x00", media.WebM},
			{"EBMLMatroskaIsNothing", "\x1a\x45\xdf\xa3\x8b\x42\x82\x88matroska", ""},
			{"EBMLNoDocTypeIsNothing", "\x1a\x45\xdf\xa3\x84\x42\x87\x81\x04", ""},
			{"EBMLOtherDocTypeIsNothing", "\x1a\x45\xdf\xa3\x87\x42\x82\x84mkv3", ""},
			{"EBMLMagicAloneIsNothing", "\x1a\x45\xdf\xa3", ""},
			{"EBMLCutBeforeDocTypeIsNothing", "\x1a\x45\xdf\xa3\x8f\x42\x87\x81\x04", ""},
			{"ID3v2IsMP3", "ID3\x03\x00\x00\x00\x00\x00\x00", media.MP3},
			{"ShortID3IsNothing", "ID3\x03", ""},
			{"ID3BadSizeIsNothing", "ID3\x03\x00\x00\x80\x00\x00\x00", ""},
			{"MPEG1Layer3IsMP3", "\xff\xfb\x90\x00", media.MP3},
			{"MPEG2Layer3IsMP3", "\xff\xf3\x48\xc4", media.MP3},
			{"MPEG25Layer3IsMP3", "\xff\xe3\x18\xc4", media.MP3},
			{"MPEG1Layer2IsMP3", "\xff\xfd\x90\x00", media.MP3},
			{"MPEGReservedVersionIsNothing", "\xff\xeb\x90\x00", ""},
			{"MPEGBadBitrateIsNothing", "\xff\xfb\xf0\x00", ""},
			{"MPEGReservedRateIsNothing", "\xff\xfb\x9c\x00", ""},
			{"ADTSMPEG4IsAAC", "\xff\xf1\x60\x40", media.AAC},
			{"ADTSMPEG2IsAAC", "\xff\xf9\x60\x40", media.AAC},
			{"ADTSReservedRateIsNothing", "\xff\xf1\x78\x40", ""},
			{"MPEG25Layer0IsNothing", "\xff\xe1\x60\x40", ""},
			{"FrameSyncAloneIsNothing", "\xff\xfb", ""},
			{"PNGIsNothing", "\x89PNG\r\n\x1a\n", ""},
			{"TextIsNothing", "hello, world", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got, want := media.Detect([]byte(tt.head)), tt.want; got != want {
					t.Fatalf("Detect(%q)=%q, want %q", tt.head, got, want)
				}
			})
		}
	})
}

func TestCanonical(t *testing.T) {
	for _, tt := range []struct {
		declared string
		want     string
		generic  bool
		ok       bool
	}{
		{"", "", true, true},
		{"   ", "", true, true},
		{"application/octet-stream", "", true, true},
		{"Application/Octet-Stream; name=x", "", true, true},
		{"binary/octet-stream", "", true, true},

		{"audio/wav", media.WAV, false, true},
		{"audio/WAV; codecs=1", media.WAV, false, true},
		{" audio/wave ", media.WAV, false, true},
		{"audio/x-wav", media.WAV, false, true},
		{"audio/vnd.wave", media.WAV, false, true},
		{"audio/vnd.wave; codec=1", media.WAV, false, true},
		{"audio/x-pn-wav", media.WAV, false, true},

		{"audio/mpeg", media.MP3, false, true},
		{"audio/mp3", media.MP3, false, true},
		{"audio/x-mp3", media.MP3, false, true},
		{"audio/mpeg3", media.MP3, false, true},
		{"audio/x-mpeg3", media.MP3, false, true},
		{"audio/x-mpeg", media.MP3, false, true},
		{"audio/mpa", media.MP3, false, true},
		{"audio/mpg", media.MP3, false, true},

		{"audio/mp4", media.MP4, false, true},
		{"audio/x-m4a", media.MP4, false, true},
		{"audio/m4a", media.MP4, false, true},
		{"audio/x-mp4", media.MP4, false, true},
		{"video/mp4", media.MP4, false, true},
		{`audio/mp4; codecs="mp4a.40.2"`, media.MP4, false, true},

		{"audio/aac", media.AAC, false, true},
		{"audio/aacp", media.AAC, false, true},
		{"audio/x-aac", media.AAC, false, true},
		{"audio/x-hx-aac-adts", media.AAC, false, true},

		{"audio/ogg", media.OGG, false, true},
		{"audio/ogg; codecs=opus", media.OGG, false, true},
		{"application/ogg", media.OGG, false, true},
		{"audio/x-ogg", media.OGG, false, true},
		{"video/ogg", media.OGG, false, true},
		{"audio/vorbis", media.OGG, false, true},
		{"audio/opus", media.OGG, false, true},
		{"audio/x-vorbis+ogg", media.OGG, false, true},
		{"audio/x-opus+ogg", media.OGG, false, true},

		{"video/quicktime", media.MP4, false, true},
		{"video/x-m4v", media.MP4, false, true},
		{"audio/3gpp", media.MP4, false, true},
		{"video/3gpp", media.MP4, false, true},
		{"audio/3gpp2", media.MP4, false, true},
		{"video/3gpp2", media.MP4, false, true},

		{"audio/webm", media.WebM, false, true},
		{"video/webm", media.WebM, false, true},
		{"video/webm;codecs=opus", media.WebM, false, true},
		{"audio/x-webm", media.WebM, false, true},
		// WebM is a subset of Matroska: the bytes decide (see TestResolve).
		{"audio/x-matroska", media.WebM, false, true},
		{"video/x-matroska", media.WebM, false, true},
		{"audio/matroska", media.WebM, false, true},
		{"video/matroska", media.WebM, false, true},

		// Malformed parameters are ignored, a malformed type is not accepted.
		{"audio/wav; =broken", media.WAV, false, true},
		{"audio/", "", false, false},
		{"/wav", "", false, false},
		{"audio wav", "", false, false},

		// Not accepted.
		{"text/plain", "", false, false},
		{"image/png", "", false, false},
		{"audio/flac", "", false, false},
		{"audio/mp4a-latm", "", false, false},
		{"image/heic", "", false, false},
		{"video/x-msvideo", "", false, false},
		{"audio/*", "", false, false},
		{"multipart/form-data; boundary=x", "", false, false},
	} {
		t.Run(tt.declared, func(t *testing.T) {
			got, generic, ok := media.Canonical(tt.declared)
			if got != tt.want || generic != tt.generic || ok != tt.ok {
				t.Fatalf("Canonical(%q)=(%q, %v, %v), want (%q, %v, %v)",
					tt.declared, got, generic, ok, tt.want, tt.generic, tt.ok)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Run("GenericTakesSniffedType", func(t *testing.T) {
		for _, declared := range []string{"", "application/octet-stream"} {
			for _, tt := range realFiles {
				got, err := media.Resolve(declared, mustReadHead(t, tt.name))
				if err != nil {
					t.Fatalf("Resolve(%q, %s): %v", declared, tt.name, err)
				}
				if want := tt.want; got != want {
					t.Fatalf("Resolve(%q, %s)=%q, want %q", declared, tt.name, got, want)
				}
			}
		}
	})

	t.Run("GenericMalformedIsErrUnsupported", func(t *testing.T) {
		for _, tt := range badFiles {
			if _, err := media.Resolve("", mustReadHead(t, filepath.Join("bad", tt.name))); !errors.Is(err, media.ErrUnsupported) {
				t.Fatalf("Resolve(\"\", %s) err=%v, want ErrUnsupported", tt.name, err)
			}
		}
	})

	t.Run("DeclaredMalformedIsErrMismatch", func(t *testing.T) {
		for _, tt := range badFiles {
			if _, err := media.Resolve(tt.declared, mustReadHead(t, filepath.Join("bad", tt.name))); !errors.Is(err, media.ErrMismatch) {
				t.Fatalf("Resolve(%q, %s) err=%v, want ErrMismatch", tt.declared, tt.name, err)
			}
		}
	})

	for _, tt := range []struct {
		name     string
		declared string
		file     string
		want     string
		err      error
	}{
		{"OK/WAV", "audio/wav", "tone.wav", media.WAV, nil},
		{"OK/WAVAlias", "audio/x-wav", "tone.wav", media.WAV, nil},
		{"OK/MP3", "audio/mpeg", "tone.mp3", media.MP3, nil},
		{"OK/MP3NoID3", "audio/mp3", "tone-noid3.mp3", media.MP3, nil},
		{"OK/M4A", "audio/x-m4a", "tone.m4a", media.MP4, nil},
		{"OK/AAC", "audio/aac", "tone.aac", media.AAC, nil},
		{"OK/OGG", "audio/ogg; codecs=vorbis", "tone.ogg", media.OGG, nil},
		{"OK/WebM", "video/webm;codecs=opus", "tone.webm", media.WebM, nil},
		{"ErrMismatch/MP3DeclaredWAVBytes", "audio/mpeg", "tone.wav", "", media.ErrMismatch},
		{"ErrMismatch/WAVDeclaredMP3Bytes", "audio/wav", "tone.mp3", "", media.ErrMismatch},
		{"ErrMismatch/MP3DeclaredADTSBytes", "audio/mpeg", "tone.aac", "", media.ErrMismatch},
		{"ErrMismatch/AACDeclaredMP3FrameBytes", "audio/aac", "tone-noid3.mp3", "", media.ErrMismatch},
		{"ErrMismatch/AACDeclaredM4ABytes", "audio/aac", "tone.m4a", "", media.ErrMismatch},
		{"ErrMismatch/OpusDeclaredWebMBytes", "audio/opus", "tone.webm", "", media.ErrMismatch},
		{"ErrMismatch/WebMDeclaredOGGBytes", "audio/webm", "tone.ogg", "", media.ErrMismatch},
		{"OK/MOVDeclaredQuickTime", "video/quicktime", "phone-video.mov", media.MP4, nil},
		{"OK/MOVWithoutFtypDeclaredQuickTime", "video/quicktime", "voice-noftyp.mov", media.MP4, nil},
		{"OK/3GPDeclared3GPP", "audio/3gpp", "voice.3gp", media.MP4, nil},
		{"OK/PhoneVideoDeclaredVideoMP4", "video/mp4", "phone-video.mp4", media.MP4, nil},
		{"OK/PhoneVideoDeclaredVideoWebM", "video/webm", "phone-video.webm", media.WebM, nil},
		{"OK/WebMDeclaredMatroska", "video/x-matroska", "tone.webm", media.WebM, nil},
		{"ErrMismatch/QuickTimeDeclaredWebMBytes", "video/quicktime", "tone.webm", "", media.ErrMismatch},
		{"ErrUnsupported/MatroskaUndeclared", "", "voice.mka", "", media.ErrUnsupported},
		{"ErrUnsupported/MatroskaDeclaredWebM", "audio/webm", "voice.mka", "", media.ErrUnsupported},
		{"ErrUnsupported/MatroskaDeclaredMatroska", "audio/x-matroska", "voice.mka", "", media.ErrUnsupported},
		{"ErrUnsupported/MatroskaDeclaredMP3", "audio/mpeg", "voice.mka", "", media.ErrUnsupported},
		{"ErrUnsupported/TextPlain", "text/plain", "tone.wav", "", media.ErrUnsupported},
		{"ErrUnsupported/ImagePNG", "image/png", "bad/png-as-audio.mp3", "", media.ErrUnsupported},
		{"ErrUnsupported/FLAC", "audio/flac", "tone.wav", "", media.ErrUnsupported},
		{"ErrUnsupported/MalformedType", "audio/", "tone.wav", "", media.ErrUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := media.Resolve(tt.declared, mustReadHead(t, tt.file))
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Resolve(%q, %s) err=%v, want %v", tt.declared, tt.file, err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("Resolve(%q, %s)=%q, want %q", tt.declared, tt.file, got, tt.want)
			}
		})
	}
}

// aliasFamilies is every accepted declared type and the canonical type it
// stands for, written out here so that a change to the list in sniff.go
// shows in review; TestResolve_EveryAliasEveryFile checks it is complete.
var aliasFamilies = map[string]string{
	"audio/wav": media.WAV, "audio/wave": media.WAV, "audio/x-wav": media.WAV,
	"audio/vnd.wave": media.WAV, "audio/x-pn-wav": media.WAV,

	"audio/mpeg": media.MP3, "audio/mp3": media.MP3, "audio/x-mp3": media.MP3,
	"audio/mpeg3": media.MP3, "audio/x-mpeg": media.MP3, "audio/x-mpeg3": media.MP3,
	"audio/mpa": media.MP3, "audio/mpg": media.MP3,

	"audio/mp4": media.MP4, "audio/x-m4a": media.MP4, "audio/m4a": media.MP4,
	"audio/x-mp4": media.MP4, "video/mp4": media.MP4, "video/x-m4v": media.MP4,
	"video/quicktime": media.MP4, "audio/3gpp": media.MP4, "video/3gpp": media.MP4,
	"audio/3gpp2": media.MP4, "video/3gpp2": media.MP4,

	"audio/aac": media.AAC, "audio/aacp": media.AAC, "audio/x-aac": media.AAC,
	"audio/x-hx-aac-adts": media.AAC,

	"audio/ogg": media.OGG, "application/ogg": media.OGG, "audio/x-ogg": media.OGG,
	"video/ogg": media.OGG, "audio/vorbis": media.OGG, "audio/opus": media.OGG,
	"audio/x-vorbis+ogg": media.OGG, "audio/x-opus+ogg": media.OGG,

	"audio/webm": media.WebM, "video/webm": media.WebM, "audio/x-webm": media.WebM,
	"video/x-matroska": media.WebM, "audio/x-matroska": media.WebM,
	"video/matroska": media.WebM, "audio/matroska": media.WebM,
}

// TestResolve_EveryAliasEveryFile declares every real, refused and
// malformed file under every accepted alias, every generic type and some
// refused types, and checks the one rule: the bytes decide.
func TestResolve_EveryAliasEveryFile(t *testing.T) {
	if got, want := len(aliasFamilies), len(media.Aliases); got != want {
		t.Errorf("aliasFamilies has %d aliases, sniff.go %d", got, want)
	}
	for alias, family := range media.Aliases {
		if aliasFamilies[alias] != family {
			t.Errorf("alias %q: sniff.go says %q, aliasFamilies %q", alias, family, aliasFamilies[alias])
		}
	}

	type file struct {
		name string
		want string // the canonical type; "" for no accepted type
		kind string // "real", "refused" or "bad"
	}
	var files []file
	for _, f := range realFiles {
		files = append(files, file{f.name, f.want, "real"})
	}
	for _, name := range refusedFiles {
		files = append(files, file{name, "", "refused"})
	}
	for _, f := range badFiles {
		files = append(files, file{filepath.Join("bad", f.name), "", "bad"})
	}

	generic := []string{"", "application/octet-stream", "binary/octet-stream", "application/octet-stream; name=x"}
	refused := []string{"text/plain", "image/heic", "audio/flac", "video/x-msvideo", "audio/"}
	for _, f := range files {
		head := mustReadHead(t, f.name)
		check := func(declared, want string, wantErr error) {
			t.Helper()
			got, err := media.Resolve(declared, head)
			if got != want || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Errorf("Resolve(%q, %s)=(%q, %v), want (%q, %v)", declared, f.name, got, err, want, wantErr)
			}
		}
		for alias, family := range aliasFamilies {
			for _, declared := range []string{alias, strings.ToUpper(alias) + "; codecs=x"} {
				switch {
				case f.kind == "refused":
					check(declared, "", media.ErrUnsupported)
				case f.want == family:
					check(declared, family, nil)
				default:
					check(declared, "", media.ErrMismatch)
				}
			}
		}
		for _, declared := range generic {
			if f.want != "" {
				check(declared, f.want, nil)
			} else {
				check(declared, "", media.ErrUnsupported)
			}
		}
		for _, declared := range refused {
			check(declared, "", media.ErrUnsupported)
		}
	}
}

func TestExt(t *testing.T) {
	for _, tt := range []struct{ mimeType, want string }{
		{media.WAV, "wav"},
		{media.MP3, "mp3"},
		{media.MP4, "m4a"},
		{media.AAC, "aac"},
		{media.OGG, "ogg"},
		{media.WebM, "webm"},
		{"audio/x-wav", "bin"}, // an alias: canonicalise first
		{"", "bin"},
		{"text/plain", "bin"},
	} {
		t.Run(tt.want+"/"+tt.mimeType, func(t *testing.T) {
			if got := media.Ext(tt.mimeType); got != tt.want {
				t.Fatalf("Ext(%q)=%q, want %q", tt.mimeType, got, tt.want)
			}
		})
	}
}

// bodySize is the dataSize of wavFile that declares the data chunk's real size.
const bodySize = -1

// wavFile builds a RIFF WAVE file from chunks, given as id and body pairs;
// bodies other than "data" are padded to an even size. The "data" chunk
// declares dataSize as its size, or its real size if dataSize is bodySize.
func wavFile(dataSize int64, chunks ...string) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVE")
	for i := 0; i+1 < len(chunks); i += 2 {
		id, body := chunks[i], chunks[i+1]
		size := uint32(len(body))
		if id == "data" && dataSize != bodySize {
			size = uint32(dataSize)
		}
		b = append(b, id...)
		b = binary.LittleEndian.AppendUint32(b, size)
		b = append(b, body...)
		if len(body)%2 == 1 && id != "data" {
			b = append(b, 0)
		}
	}
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return b
}

// pcmFmt is the body of a "fmt " chunk: format, channels, rate, 16-bit samples.
func pcmFmt(format uint16, channels uint16, rate uint32) string {
	b := binary.LittleEndian.AppendUint16(nil, format)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels)*2)
	b = binary.LittleEndian.AppendUint16(b, channels*2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	return string(b)
}

// extensibleFmt is the body of a WAVE_FORMAT_EXTENSIBLE "fmt " chunk with the
// given sub-format code.
func extensibleFmt(sub uint16, rate uint32) string {
	b := []byte(pcmFmt(0xFFFE, 1, rate))
	b = binary.LittleEndian.AppendUint16(b, 22) // cbSize
	b = binary.LittleEndian.AppendUint16(b, 16) // valid bits
	b = binary.LittleEndian.AppendUint32(b, 4)  // channel mask
	b = binary.LittleEndian.AppendUint16(b, sub)
	b = append(b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...)
	return string(b)
}

func TestWAVDurationMS(t *testing.T) {
	t.Run("ToneWAVIsOneSecond", func(t *testing.T) {
		b := mustReadFile(t, "tone.wav")
		// make.sh asks sox for 1 s at 16 kHz, 16-bit mono: 32000 data bytes.
		if got, want := len(b), 44+32000; got != want {
			t.Fatalf("len(tone.wav)=%d, want %d", got, want)
		}
		ms, ok := media.WAVDurationMS(mustReadHead(t, "tone.wav"), int64(len(b)))
		if !ok {
			t.Fatal("ok=false")
		}
		if got, want := ms, int64(1000); got != want {
			t.Fatalf("ms=%d, want %d", got, want)
		}
	})

	t.Run("NotWAV", func(t *testing.T) {
		for _, tt := range realFiles {
			if tt.want == media.WAV {
				continue
			}
			b := mustReadHead(t, tt.name)
			if ms, ok := media.WAVDurationMS(b, int64(len(b))); ok || ms != 0 {
				t.Fatalf("WAVDurationMS(%s)=(%d, %v), want (0, false)", tt.name, ms, ok)
			}
		}
		for _, tt := range badFiles {
			b := mustReadHead(t, filepath.Join("bad", tt.name))
			if ms, ok := media.WAVDurationMS(b, int64(len(b))); ok || ms != 0 {
				t.Fatalf("WAVDurationMS(%s)=(%d, %v), want (0, false)", tt.name, ms, ok)
			}
		}
	})

	pcm := pcmFmt(1, 1, 16000) // 32000 bytes a second
	second := strings.Repeat("\x00", 32000)
	for _, tt := range []struct {
		name  string
		file  []byte
		total int64 // 0: len(file)
		ms    int64
		ok    bool
	}{
		{"OK/Plain", wavFile(bodySize, "fmt ", pcm, "data", second), 0, 1000, true},
		{"OK/Stereo48k", wavFile(bodySize, "fmt ", pcmFmt(1, 2, 48000), "data", strings.Repeat("\x00", 192000/4)), 0, 250, true},
		{"OK/RoundsDown", wavFile(bodySize, "fmt ", pcm, "data", second[:31999]), 0, 999, true},
		{"OK/ChunksBeforeFmtAndData", wavFile(bodySize, "LIST", "odd", "fmt ", pcm, "bext", strings.Repeat("b", 602), "data", second), 0, 1000, true},
		{"OK/ChunkAfterDataNotCounted", wavFile(bodySize, "fmt ", pcm, "data", second, "LIST", strings.Repeat("x", 3200)), 0, 1000, true},
		{"OK/StreamedSizeZero", wavFile(0, "fmt ", pcm, "data", second[:16000]), 44 + 32000, 1000, true},
		{"OK/StreamedSizeMax", wavFile(0xFFFFFFFF, "fmt ", pcm, "data", second), 0, 1000, true},
		{"OK/TruncatedFile", wavFile(32000, "fmt ", pcm, "data", second[:16000]), 0, 500, true},
		{"OK/NoData", wavFile(bodySize, "fmt ", pcm, "data", ""), 0, 0, true},
		{"OK/Float", wavFile(bodySize, "fmt ", pcmFmt(3, 1, 8000), "data", second[:16000]), 0, 1000, true},
		{"OK/Extensible", wavFile(bodySize, "fmt ", extensibleFmt(1, 16000), "data", second), 0, 1000, true},
		{"OK/HugeTotalSize", wavFile(0xFFFFFFFF, "fmt ", pcm, "data", ""), 44 + 32000*1000, 1000 * 1000, true},
		// A compressed format: fact's sample count over the sample rate, else
		// the data size over the average byte rate, as ffprobe has it.
		{"OK/ExtensibleCompressedByteRate", wavFile(bodySize, "fmt ", extensibleFmt(0x55, 16000), "data", second), 0, 1000, true},
		{"OK/CompressedByteRate", wavFile(bodySize, "fmt ", pcmFmt(0x55, 1, 16000), "data", second), 0, 1000, true},
		{"OK/CompressedFact", wavFile(bodySize, "fmt ", pcmFmt(0x11, 1, 16000), "fact", "\x00\x7d\x00\x00", "data", second[:8000]), 0, 2000, true},
		{"OK/PCMIgnoresFact", wavFile(bodySize, "fmt ", pcm, "fact", "\x00\x7d\x00\x00", "data", second), 0, 1000, true},
		{"OK/ExtensibleShortFmtByteRate", wavFile(bodySize, "fmt ", pcmFmt(0xFFFE, 1, 16000), "data", second), 0, 1000, true},
		{"NotOK/ZeroByteRate", wavFile(bodySize, "fmt ", pcmFmt(1, 1, 0), "data", second), 0, 0, false},
		{"NotOK/ShortFmt", wavFile(bodySize, "fmt ", pcm[:14], "data", second), 0, 0, false},
		{"NotOK/DataBeforeFmt", wavFile(bodySize, "data", second, "fmt ", pcm), 0, 0, false},
		{"NotOK/NoFmt", wavFile(bodySize, "data", second), 0, 0, false},
		{"NotOK/NoDataInHead", wavFile(bodySize, "fmt ", pcm), 0, 0, false},
		{"NotOK/TotalEndsBeforeData", wavFile(bodySize, "fmt ", pcm, "data", second), 40, 0, false},
		{"NotOK/NegativeTotal", wavFile(bodySize, "fmt ", pcm, "data", second), -1, 0, false},
		{"NotOK/OverflowingTotal", wavFile(bodySize, "fmt ", pcmFmt(1, 1, 1), "data", ""), 1 << 62, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			total := tt.total
			if total == 0 {
				total = int64(len(tt.file))
			}
			head := tt.file
			if len(head) > media.HeadSize {
				head = head[:media.HeadSize]
			}
			ms, ok := media.WAVDurationMS(head, total)
			if ms != tt.ms || ok != tt.ok {
				t.Fatalf("WAVDurationMS=(%d, %v), want (%d, %v)", ms, ok, tt.ms, tt.ok)
			}
		})
	}
}

func ExampleResolve() {
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt ")
	for _, declared := range []string{"", "audio/x-wav", "audio/mpeg", "text/plain"} {
		mimeType, err := media.Resolve(declared, wav)
		fmt.Printf("%q: %q %v\n", declared, mimeType, err)
	}
	// Output:
	// "": "audio/wav" <nil>
	// "audio/x-wav": "audio/wav" <nil>
	// "audio/mpeg": "" media: bytes do not match the declared type
	// "text/plain": "" media: type not accepted
}
