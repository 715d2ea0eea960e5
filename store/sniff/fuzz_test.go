package sniff_test

import (
	"errors"
	"math"
	"testing"

	"tyst/store/sniff"
)

// FuzzSniff feeds arbitrary bytes to Detect, Resolve and WAVDurationMS. Seeds
// (the first 64 bytes of every file in testdata/audio and edge cases) and any
// crashers live in testdata/fuzz/FuzzSniff. The seeds are kept short: the
// fuzzer minimises every new input it finds, and minimising a HeadSize input
// takes longer than a whole -fuzztime run.
func FuzzSniff(f *testing.F) {
	canonical := map[string]bool{
		sniff.WAV: true, sniff.MP3: true, sniff.MP4: true,
		sniff.AAC: true, sniff.OGG: true, sniff.WebM: true,
	}
	declared := []string{
		"", "application/octet-stream", "text/plain",
		sniff.WAV, sniff.MP3, sniff.MP4, sniff.AAC, sniff.OGG, sniff.WebM,
		"audio/x-wav", "video/webm; codecs=opus",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := sniff.Detect(data)
		if got != "" && !canonical[got] {
			t.Fatalf("Detect=%q, not a canonical type", got)
		}
		if len(data) > sniff.HeadSize {
			if head := sniff.Detect(data[:sniff.HeadSize]); head != got {
				t.Fatalf("Detect=%q, but %q on the first HeadSize bytes", got, head)
			}
		}
		if ext := sniff.Ext(got); (ext == "bin") != (got == "") {
			t.Fatalf("Ext(%q)=%q", got, ext)
		}

		for _, d := range declared {
			mimeType, err := sniff.Resolve(d, data)
			switch {
			case err == nil:
				if mimeType != got {
					t.Fatalf("Resolve(%q)=%q, but Detect=%q", d, mimeType, got)
				}
			case !errors.Is(err, sniff.ErrUnsupported) && !errors.Is(err, sniff.ErrMismatch):
				t.Fatalf("Resolve(%q) err=%v, not a sentinel", d, err)
			case mimeType != "":
				t.Fatalf("Resolve(%q)=(%q, %v), want \"\" with an error", d, mimeType, err)
			}
		}

		for _, total := range []int64{0, int64(len(data)), int64(len(data)) + 1<<20, math.MaxInt64, -1} {
			ms, ok := sniff.WAVDurationMS(data, total)
			if ms < 0 {
				t.Fatalf("WAVDurationMS(total %d)=%d, negative", total, ms)
			}
			if !ok && ms != 0 {
				t.Fatalf("WAVDurationMS(total %d)=(%d, false), want 0", total, ms)
			}
			if ok && got != sniff.WAV {
				t.Fatalf("WAVDurationMS(total %d) ok, but Detect=%q", total, got)
			}
		}
	})
}
