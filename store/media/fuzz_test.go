package media_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"tyst/store/media"
)

// FuzzSniff feeds arbitrary bytes to Detect, Resolve and WAVDurationMS. Seeds
// (the first 64 bytes of every file in testdata/audio and edge cases) and any
// crashers live in testdata/fuzz/FuzzSniff. The seeds are kept short: the
// fuzzer minimises every new input it finds, and minimising a HeadSize input
// takes longer than a whole -fuzztime run.
func FuzzSniff(f *testing.F) {
	canonical := map[string]bool{
		media.WAV: true, media.MP3: true, media.MP4: true,
		media.AAC: true, media.OGG: true, media.WebM: true,
	}
	declared := []string{
		"", "application/octet-stream", "text/plain",
		media.WAV, media.MP3, media.MP4, media.AAC, media.OGG, media.WebM,
		"audio/x-wav", "video/webm; codecs=opus",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := media.Detect(data)
		if got != "" && !canonical[got] {
			t.Fatalf("Detect=%q, not a canonical type", got)
		}
		if len(data) > media.HeadSize {
			if head := media.Detect(data[:media.HeadSize]); head != got {
				t.Fatalf("Detect=%q, but %q on the first HeadSize bytes", got, head)
			}
		}
		if ext := media.Ext(got); (ext == "bin") != (got == "") {
			t.Fatalf("Ext(%q)=%q", got, ext)
		}

		for _, d := range declared {
			mimeType, err := media.Resolve(d, data)
			switch {
			case err == nil:
				if mimeType != got {
					t.Fatalf("Resolve(%q)=%q, but Detect=%q", d, mimeType, got)
				}
			case !errors.Is(err, media.ErrUnsupported) && !errors.Is(err, media.ErrMismatch):
				t.Fatalf("Resolve(%q) err=%v, not a sentinel", d, err)
			case mimeType != "":
				t.Fatalf("Resolve(%q)=(%q, %v), want \"\" with an error", d, mimeType, err)
			}
		}

		for _, total := range []int64{0, int64(len(data)), int64(len(data)) + 1<<20, math.MaxInt64, -1} {
			ms, ok := media.WAVDurationMS(data, total)
			if ms < 0 {
				t.Fatalf("WAVDurationMS(total %d)=%d, negative", total, ms)
			}
			if !ok && ms != 0 {
				t.Fatalf("WAVDurationMS(total %d)=(%d, false), want 0", total, ms)
			}
			if ok && got != media.WAV {
				t.Fatalf("WAVDurationMS(total %d) ok, but Detect=%q", total, got)
			}
		}
	})
}

// fuzzDuration feeds arbitrary bytes to Duration as mimeType. Seeds (real
// files, cut or with their mdat emptied to stay small, from
// testdata/audio) and any crashers live in testdata/fuzz/<target>. It
// checks: no panic; no error from a reader that holds every byte; ms 0
// unless ok; the same answer from a 4 KiB buffer, which moves more often,
// as from the full one (but for Ogg, whose pages may be larger); no panic
// either with a buffer too small for some reads; and only
// io.ErrUnexpectedEOF from a reader shorter than the size given.
func fuzzDuration(f *testing.F, mimeType string) {
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		ms, ok, err := media.Duration(bytes.NewReader(data), size, mimeType)
		if err != nil {
			t.Fatalf("Duration err=%v", err)
		}
		if ms < 0 || (!ok && ms != 0) {
			t.Fatalf("Duration=(%d, %v)", ms, ok)
		}
		if mimeType != media.OGG {
			ms4, ok4, err := media.DurationBuf(bytes.NewReader(data), size, mimeType, 4096)
			if ms4 != ms || ok4 != ok || err != nil {
				t.Fatalf("4 KiB buffer: Duration=(%d, %v, %v), full buffer (%d, %v)", ms4, ok4, err, ms, ok)
			}
		}
		if ms, ok, err := media.DurationBuf(bytes.NewReader(data), size, mimeType, 100); err != nil || ms < 0 || (!ok && ms != 0) {
			t.Fatalf("100-byte buffer: Duration=(%d, %v, %v)", ms, ok, err)
		}
		ms, ok, err = media.Duration(bytes.NewReader(data), size+1000, mimeType)
		if err != nil && (!errors.Is(err, io.ErrUnexpectedEOF) || ok || ms != 0) {
			t.Fatalf("short reader: Duration=(%d, %v, %v)", ms, ok, err)
		}
	})
}

func FuzzDurationWAV(f *testing.F)  { fuzzDuration(f, media.WAV) }
func FuzzDurationMP3(f *testing.F)  { fuzzDuration(f, media.MP3) }
func FuzzDurationMP4(f *testing.F)  { fuzzDuration(f, media.MP4) }
func FuzzDurationAAC(f *testing.F)  { fuzzDuration(f, media.AAC) }
func FuzzDurationOgg(f *testing.F)  { fuzzDuration(f, media.OGG) }
func FuzzDurationWebM(f *testing.F) { fuzzDuration(f, media.WebM) }
