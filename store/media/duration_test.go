package media_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
	"tyst/store/media"
)

var update = flag.Bool("update", false, "rewrite testdata/audio/durations.json with ffprobe's figures")

// goldenPath is the file of ffprobe's durations of the real files.
var goldenPath = filepath.Join(audioDir, "durations.json")

// goldenDuration is what ffprobe says one file lasts.
type goldenDuration struct {
	Seconds float64 `json:"seconds"`
	// From is "format=duration", or "packets" where ffprobe has no
	// format duration (MediaRecorder WebM): the end of the last packet
	// less the start of the first.
	From string `json:"from"`
}

// ffprobeDuration asks ffprobe how long the file at path lasts.
func ffprobeDuration(tb testing.TB, path string) goldenDuration {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil {
		return goldenDuration{v, "format=duration"}
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	first, end := math.Inf(1), math.Inf(-1)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		pts, err1 := strconv.ParseFloat(f[0], 64)
		dur, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		first, end = min(first, pts), max(end, pts+dur)
	}
	if end <= first {
		tb.Fatalf("ffprobe %s: no duration and no packets", path)
	}
	return goldenDuration{math.Round((end-first)*1e6) / 1e6, "packets"}
}

// mustGolden returns the durations in goldenPath, first rewriting it from
// ffprobe when -update is given.
func mustGolden(tb testing.TB) map[string]goldenDuration {
	tb.Helper()
	if *update {
		if _, err := exec.LookPath("ffprobe"); err != nil {
			tb.Fatal("-update needs ffprobe (apt-get install ffmpeg)")
		}
		g := map[string]goldenDuration{}
		for _, f := range realFiles {
			g[f.name] = ffprobeDuration(tb, filepath.Join(audioDir, f.name))
		}
		b, err := json.MarshalIndent(g, "", "\t")
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, append(b, '\n'), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		tb.Fatal(err)
	}
	var g map[string]goldenDuration
	if err := json.Unmarshal(b, &g); err != nil {
		tb.Fatal(err)
	}
	return g
}

// mustDuration returns Duration of the file under audioDir, failing on an
// error or an unknown duration.
func mustDuration(tb testing.TB, name, mimeType string) int64 {
	tb.Helper()
	b := mustReadFile(tb, name)
	ms, ok, err := media.Duration(bytes.NewReader(b), int64(len(b)), mimeType)
	if err != nil || !ok {
		tb.Fatalf("Duration(%s)=(%d, %v, %v), want a duration", name, ms, ok, err)
	}
	return ms
}

// within1pc fails unless ms is within 1 % (and 1 ms of rounding) of want.
func within1pc(tb testing.TB, what string, ms int64, want float64) {
	tb.Helper()
	if diff := math.Abs(float64(ms) - want); diff > want/100+1 {
		tb.Errorf("%s: Duration=%d ms, want %.1f ms ± 1 %%", what, ms, want)
	}
}

func TestDuration_RealFiles(t *testing.T) {
	golden := mustGolden(t)
	for _, tt := range realFiles {
		t.Run(tt.name, func(t *testing.T) {
			g, found := golden[tt.name]
			if !found {
				t.Fatalf("no ffprobe figure in %s: run go test ./store/media -update", goldenPath)
			}
			f, err := os.Open(filepath.Join(audioDir, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			ms, ok, err := media.Duration(f, fi.Size(), tt.want)
			if err != nil || !ok {
				t.Fatalf("Duration=(%d, %v, %v), want a duration", ms, ok, err)
			}
			within1pc(t, g.From, ms, g.Seconds*1000)
		})
	}
	for name := range golden {
		found := false
		for _, tt := range realFiles {
			found = found || tt.name == name
		}
		if !found {
			t.Errorf("%s has a figure but is no real file: run -update", name)
		}
	}
}

// TestDuration_SmallBuffer reads every real file through a 4 KiB buffer,
// which moves far more often than Duration's own: the same answers. (Every
// frame, page and window in these files fits in 4 KiB.)
func TestDuration_SmallBuffer(t *testing.T) {
	for _, tt := range realFiles {
		b := mustReadFile(t, tt.name)
		ms, ok, err := media.DurationBuf(bytes.NewReader(b), int64(len(b)), tt.want, 4096)
		if want := mustDuration(t, tt.name, tt.want); err != nil || !ok || ms != want {
			t.Errorf("%s: 4 KiB buffer: Duration=(%d, %v, %v), want (%d, true, nil)", tt.name, ms, ok, err, want)
		}
	}
}

// TestDuration_OtherTypeIsUnknown passes every real file as every other
// type: no parser takes another container for its own.
func TestDuration_OtherTypeIsUnknown(t *testing.T) {
	types := []string{media.WAV, media.MP3, media.MP4, media.AAC, media.OGG, media.WebM}
	for _, tt := range realFiles {
		b := mustReadFile(t, tt.name)
		for _, mimeType := range types {
			if mimeType == tt.want {
				continue
			}
			ms, ok, err := media.Duration(bytes.NewReader(b), int64(len(b)), mimeType)
			if err != nil || ok || ms != 0 {
				t.Errorf("Duration(%s as %s)=(%d, %v, %v), want (0, false, nil)", tt.name, mimeType, ms, ok, err)
			}
		}
	}
	for _, mimeType := range []string{"", "audio/x-wav", "text/plain", "video/x-matroska"} {
		b := mustReadFile(t, "tone.wav")
		if ms, ok, err := media.Duration(bytes.NewReader(b), int64(len(b)), mimeType); err != nil || ok || ms != 0 {
			t.Errorf("Duration(tone.wav as %q)=(%d, %v, %v), want (0, false, nil)", mimeType, ms, ok, err)
		}
	}
}

// TestDuration_Refused shows that the parsers would read a Matroska file,
// which Resolve refuses: the refusal is the policy's, not for want of a
// duration.
func TestDuration_Refused(t *testing.T) {
	within1pc(t, "voice.mka as WebM", mustDuration(t, "voice.mka", media.WebM), 4008)
}

// countingReaderAt counts the ReadAt calls and bytes read of r.
type countingReaderAt struct {
	r            io.ReaderAt
	reads, bytes atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	return n, err
}

// mustKey returns a new Fernet key.
func mustKey(tb testing.TB) *fernet.Key {
	tb.Helper()
	var k fernet.Key
	if err := k.Generate(); err != nil {
		tb.Fatal(err)
	}
	return &k
}

// mustEncryptFile writes plain in the stream format to a file in a temp dir
// and returns it open, with its size.
func mustEncryptFile(tb testing.TB, key *fernet.Key, plain io.Reader) (*os.File, int64) {
	tb.Helper()
	f, err := os.Create(filepath.Join(tb.TempDir(), "blob"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	w, err := fstream.NewWriter(f, key)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(w, plain); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return f, fi.Size()
}

// encryptedDuration returns Duration of plain read through an encrypted
// blob, as the store will call it, and how many chunks were decrypted for
// it (the encrypted file's ReadAt calls, less the one that opens it).
func encryptedDuration(tb testing.TB, plain io.Reader, mimeType string) (ms int64, ok bool, chunks int64) {
	tb.Helper()
	key := mustKey(tb)
	f, encSize := mustEncryptFile(tb, key, plain)
	counted := &countingReaderAt{r: f}
	rs, err := fstream.NewReadSeeker(counted, encSize, []*fernet.Key{key})
	if err != nil {
		tb.Fatal(err)
	}
	opened := counted.reads.Load()
	ms, ok, err = media.Duration(media.SeekReaderAt(rs), rs.Size(), mimeType)
	if err != nil {
		tb.Fatalf("Duration: %v", err)
	}
	return ms, ok, counted.reads.Load() - opened
}

func TestDuration_ThroughEncryptedBlob(t *testing.T) {
	for _, tt := range realFiles {
		t.Run(tt.name, func(t *testing.T) {
			b := mustReadFile(t, tt.name)
			ms, ok, _ := encryptedDuration(t, bytes.NewReader(b), tt.want)
			if want := mustDuration(t, tt.name, tt.want); !ok || ms != want {
				t.Fatalf("Duration=(%d, %v), want (%d, true) as from the plain file", ms, ok, want)
			}
		})
	}
}

// zeros is an io.Reader of n zero bytes.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// mp4Boxes splits an MP4 file into its top-level boxes.
func mp4Boxes(tb testing.TB, b []byte) map[string][]byte {
	tb.Helper()
	boxes := map[string][]byte{}
	for len(b) >= 8 {
		n := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		if n < 8 || n > len(b) {
			tb.Fatalf("box of size %d in %d bytes", n, len(b))
		}
		boxes[string(b[4:8])] = b[:n]
		b = b[n:]
	}
	return boxes
}

// freeBox returns the header of a "free" box of n bytes in all.
func freeBox(n int64) []byte {
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 'f', 'r', 'e', 'e'}
}

// TestDuration_LargeFiles reads 12 MB files through encrypted blobs of 1 MiB
// chunks: header formats decrypt a chunk or two; walks decrypt each chunk
// once; memory does not grow with the file.
func TestDuration_LargeFiles(t *testing.T) {
	const big = 12 << 20
	chunks := int64(big/fstream.ChunkSize + 2)

	t.Run("MP4MoovAfterLargeMdat", func(t *testing.T) {
		// phone-video.mp4 with 12 MB of free space before its moov: the
		// walk skips mdat and free by their sizes.
		boxes := mp4Boxes(t, mustReadFile(t, "phone-video.mp4"))
		file := io.MultiReader(bytes.NewReader(boxes["ftyp"]), bytes.NewReader(boxes["mdat"]),
			bytes.NewReader(freeBox(big)), zeros(big-8), bytes.NewReader(boxes["moov"]))
		ms, ok, n := encryptedDuration(t, file, media.MP4)
		if !ok || ms != 4000 {
			t.Fatalf("Duration=(%d, %v), want (4000, true)", ms, ok)
		}
		if n > 3 {
			t.Errorf("decrypted %d chunks, want at most 3 (start, moov)", n)
		}
		t.Logf("decrypted %d chunks of a %d MiB file", n, big>>20)
	})

	t.Run("WAVHeaderOnly", func(t *testing.T) {
		hdr := mustReadFile(t, "tone.wav")[:44]               // 16 kHz mono s16le
		hdr[40], hdr[41], hdr[42], hdr[43] = 0, 0, 0xC0, 0x00 // data: 12 MiB
		ms, ok, n := encryptedDuration(t, io.MultiReader(bytes.NewReader(hdr), zeros(big)), media.WAV)
		if want := int64(big * 1000 / 32000); !ok || ms != want {
			t.Fatalf("Duration=(%d, %v), want (%d, true)", ms, ok, want)
		}
		if n > 1 {
			t.Errorf("decrypted %d chunks, want 1", n)
		}
		t.Logf("decrypted %d chunks of a %d MiB file", n, big>>20)
	})

	t.Run("MP3FrameWalk", func(t *testing.T) {
		// tone-noid3.mp3 is 30 CBR frames and no header: repeated, a 12 MB
		// MP3 that only a frame walk can time.
		one := mustReadFile(t, "tone-noid3.mp3")
		reps := big / len(one)
		file := io.MultiReader(bytes.NewReader(bytes.Repeat(one, reps)))
		ms, ok, n := encryptedDuration(t, file, media.MP3)
		if want := int64(reps) * 1080; !ok || ms != want {
			t.Fatalf("Duration=(%d, %v), want (%d, true)", ms, ok, want)
		}
		if n > chunks {
			t.Errorf("decrypted %d chunks, want each of %d at most once", n, chunks)
		}
		t.Logf("decrypted %d chunks of a %d MiB file", n, big>>20)
	})

	t.Run("MemoryDoesNotGrow", func(t *testing.T) {
		one := mustReadFile(t, "tone-noid3.mp3")
		f, err := os.Create(filepath.Join(t.TempDir(), "big.mp3"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		reps := big / len(one)
		if _, err := f.Write(bytes.Repeat(one, reps)); err != nil {
			t.Fatal(err)
		}
		size := int64(reps * len(one))
		allocs := testing.AllocsPerRun(3, func() {
			if _, ok, err := media.Duration(f, size, media.MP3); !ok || err != nil {
				t.Fatalf("Duration: ok=%v err=%v", ok, err)
			}
		})
		if allocs > 4 {
			t.Errorf("%.0f allocations for a 12 MB frame walk, want the buffer and a few", allocs)
		}
	})
}

// errDisk is the error of a failing disk.
var errDisk = errors.New("disk failed")

// failingReaderAt returns errDisk for any read that reaches past ok bytes.
type failingReaderAt struct {
	b  []byte
	ok int64
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.ok {
		return 0, errDisk
	}
	return copy(p, f.b[off:]), nil
}

func TestDuration_ReadErrors(t *testing.T) {
	for _, tt := range realFiles {
		t.Run(tt.name, func(t *testing.T) {
			b := mustReadFile(t, tt.name)
			ms, ok, err := media.Duration(failingReaderAt{b, 0}, int64(len(b)), tt.want)
			if !errors.Is(err, errDisk) || ok || ms != 0 {
				t.Fatalf("failing disk: Duration=(%d, %v, %v), want (0, false, errDisk)", ms, ok, err)
			}
			// A file shorter than the size given: an I/O error, not a
			// malformed file.
			ms, ok, err = media.Duration(bytes.NewReader(b[:len(b)/2]), int64(len(b)), tt.want)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("short reader: err=%v, want nil or io.ErrUnexpectedEOF", err)
			}
			if err != nil && (ok || ms != 0) {
				t.Fatalf("short reader: Duration=(%d, %v, %v), want (0, false) with the error", ms, ok, err)
			}
		})
	}
	t.Run("NoReader", func(t *testing.T) {
		if ms, ok, err := media.Duration(nil, 100, media.WAV); ms != 0 || ok || err != nil {
			t.Fatalf("Duration(nil)=(%d, %v, %v), want (0, false, nil)", ms, ok, err)
		}
	})
	t.Run("EmptyFile", func(t *testing.T) {
		if ms, ok, err := media.Duration(bytes.NewReader(nil), 0, media.WAV); ms != 0 || ok || err != nil {
			t.Fatalf("Duration(empty)=(%d, %v, %v), want (0, false, nil)", ms, ok, err)
		}
	})
}

// TestDuration_CutFiles cuts every real file short, as an upload from a
// phone that died: never an error, and a duration only where the bytes
// still say one (never more than the whole file's but for headers that
// state the full length: Xing, Info, mvhd, Duration, a WAV data size).
func TestDuration_CutFiles(t *testing.T) {
	for _, tt := range realFiles {
		t.Run(tt.name, func(t *testing.T) {
			b := mustReadFile(t, tt.name)
			full := mustDuration(t, tt.name, tt.want)
			for _, n := range []int{1, 4, 11, 27, 100, len(b) / 3, len(b) / 2, len(b) - 100, len(b) - 1} {
				if n <= 0 || n >= len(b) {
					continue
				}
				for _, buf := range []int{media.ReadAhead, 256} {
					ms, ok, err := media.DurationBuf(bytes.NewReader(b[:n]), int64(n), tt.want, buf)
					if err != nil || ms < 0 || (!ok && ms != 0) {
						t.Fatalf("cut at %d, buffer %d: Duration=(%d, %v, %v)", n, buf, ms, ok, err)
					}
					if ok && ms > full*11/10+1 {
						t.Fatalf("cut at %d, buffer %d: Duration=%d, more than the whole file's %d", n, buf, ms, full)
					}
				}
			}
		})
	}
}

func ExampleDuration() {
	f, err := os.Open("../../testdata/audio/voice-mediarecorder.webm")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fmt.Println(err)
		return
	}
	ms, ok, err := media.Duration(f, fi.Size(), media.WebM)
	fmt.Println(ms, ok, err)
	// Output: 4021 true <nil>
}

func BenchmarkDuration(b *testing.B) {
	for _, tt := range realFiles {
		data := mustReadFile(b, tt.name)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := media.Duration(bytes.NewReader(data), int64(len(data)), tt.want); !ok || err != nil {
					b.Fatalf("ok=%v err=%v", ok, err)
				}
			}
		})
	}
	// A 12 MB MP3 without a header: the frame walk, the slowest path.
	walk := bytes.Repeat(mustReadFile(b, "tone-noid3.mp3"), 12<<20/4320)
	b.Run("12MB-mp3-frame-walk", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(walk)))
		for b.Loop() {
			if _, ok, err := media.Duration(bytes.NewReader(walk), int64(len(walk)), media.MP3); !ok || err != nil {
				b.Fatalf("ok=%v err=%v", ok, err)
			}
		}
	})
}

// TestWAVHeader: the header a live stream is stored with is one ffprobe
// reads as the rate, channels and length it was given, and one Detect and
// Duration agree with.
func TestWAVHeader(t *testing.T) {
	for _, c := range []struct{ rate, channels, ms int }{{16000, 1, 2500}, {48000, 2, 1500}, {8000, 1, 0}} {
		n := c.rate * c.channels * 2 * c.ms / 1000
		wav := append(media.WAVHeader(int64(n), c.rate, c.channels), make([]byte, n)...)
		if len(wav) != media.WAVHeaderSize+n || media.Detect(wav) != "audio/wav" {
			t.Fatalf("%+v: %d bytes, detected %q", c, len(wav), media.Detect(wav))
		}
		if ms, ok, err := media.Duration(bytes.NewReader(wav), int64(len(wav)), "audio/wav"); err != nil || !ok || ms != int64(c.ms) {
			t.Fatalf("%+v: Duration %d %v %v", c, ms, ok, err)
		}
		path := filepath.Join(t.TempDir(), "h.wav")
		if err := os.WriteFile(path, wav, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels", "-of", "csv=p=0", path).Output()
		if want := fmt.Sprintf("pcm_s16le,%d,%d", c.rate, c.channels); err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("%+v: ffprobe says %q (%v), want %q", c, out, err, want)
		}
	}
}
