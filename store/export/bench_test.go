package export_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"tyst/store/export"
)

// audioStream yields n bytes of real audio (tone.wav, repeated) without
// holding them.
type audioStream struct {
	src  []byte
	off  int
	left int64
}

func newAudioStream(tb testing.TB, n int64) *audioStream {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(audioDir, "tone.wav"))
	if err != nil {
		tb.Fatal(err)
	}
	return &audioStream{src: src, left: n}
}

func (a *audioStream) Read(p []byte) (int, error) {
	if a.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.left {
		p = p[:a.left]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], a.src[a.off:])
		a.off = (a.off + k) % len(a.src)
		n += k
	}
	a.left -= int64(n)
	return n, nil
}

// streamSum returns the hex SHA-256 of n bytes of audioStream.
func streamSum(tb testing.TB, n int64) string {
	tb.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, newAudioStream(tb, n)); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeAlloc returns the bytes allocated by Write of n bytes of audio, the
// least of three runs: a GC during a run empties the pools that archive/zip
// and compress/flate keep, and a busy machine runs more of them.
func writeAlloc(tb testing.TB, fx *fixture, mode string, n int64, sum string) uint64 {
	tb.Helper()
	least := uint64(math.MaxUint64)
	for range 3 {
		in := fx.input(mode, "wav")
		in.Audio, in.AudioSHA256 = newAudioStream(tb, n), sum
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		if _, err := export.Write(io.Discard, in, fx.key); err != nil {
			tb.Fatal(err)
		}
		runtime.ReadMemStats(&b)
		least = min(least, b.TotalAlloc-a.TotalAlloc)
	}
	return least
}

// TestWrite_MemoryFlat: Write allocates about the same for 40 MB of audio
// as for 4 MB: its buffers, not the audio. The slack covers a deflate writer
// (about 1 MiB) that archive/zip takes anew when a GC emptied its pool.
func TestWrite_MemoryFlat(t *testing.T) {
	fx := mustFixture(t, "")
	const small, large = 4e6, 40e6
	sSmall, sLarge := streamSum(t, small), streamSum(t, large)
	for _, mode := range []string{export.ModeEncrypted, export.ModeDecrypted} {
		a, b := writeAlloc(t, fx, mode, small, sSmall), writeAlloc(t, fx, mode, large, sLarge)
		t.Logf("%s: %d bytes allocated for 4 MB, %d for 40 MB", mode, a, b)
		if b > a+2<<20 || b > 10<<20 {
			t.Fatalf("%s: Write allocated %d bytes for 4 MB of audio, %d for 40 MB", mode, a, b)
		}
	}
}

// BenchmarkWrite writes packages of 20 MB and 200 MB of audio in both modes
// to io.Discard: MB/s of audio, and B/op and allocs/op that do not grow with
// the size.
func BenchmarkWrite(b *testing.B) {
	fx := mustFixture(b, "")
	for _, size := range []int64{20e6, 200e6} {
		sum := streamSum(b, size)
		for _, mode := range []string{export.ModeEncrypted, export.ModeDecrypted} {
			b.Run(fmt.Sprintf("%s/%dMB", mode, size/1e6), func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					in := fx.input(mode, "wav")
					in.Audio, in.AudioSHA256 = newAudioStream(b, size), sum
					if _, err := export.Write(io.Discard, in, fx.key); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerify verifies a package of 200 MB of audio from a file, with
// the newsroom key (encrypted: decrypts in memory) and without.
func BenchmarkVerify(b *testing.B) {
	fx := mustFixture(b, "")
	const size = 200e6
	sum := streamSum(b, size)
	for _, mode := range []string{export.ModeEncrypted, export.ModeDecrypted} {
		path := filepath.Join(b.TempDir(), "pkg.zip")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		in := fx.input(mode, "wav")
		in.Audio, in.AudioSHA256 = newAudioStream(b, size), sum
		if _, err := export.Write(f, in, fx.key); err != nil {
			b.Fatal(err)
		}
		info, _ := f.Stat()
		b.Run(fmt.Sprintf("%s/%dMB", mode, int64(size)/1e6), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := export.Verify(f, info.Size(), fx.trusted()); err != nil {
					b.Fatal(err)
				}
			}
		})
		f.Close()
	}
}
