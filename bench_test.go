package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/store"
	"tyst/store/fstream"
	"tyst/store/media"
)

// BenchmarkUpload compares the in-process limit of the upload path (SHA-256
// and Fernet stream encryption to a file, one goroutine) with a real upload
// over loopback HTTP to a running "tyst serve", and reports the server's
// peak RSS (DESIGN §4: memory never grows with the file size). Targets:
// ratio ≥ 0.5, peak_rss_MiB ≤ 64 at every size.
func BenchmarkUpload(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Fatalf("BenchmarkUpload reads the server's peak RSS (VmHWM) from /proc, which is not available: %v", err)
	}
	// Built once per run of BenchmarkUpload, in its temp dir, for all sizes.
	bin := sync.OnceValues(func() (string, error) { return buildBinary(b.TempDir()) })
	for _, size := range []int64{20e6, 200e6} {
		b.Run(fmt.Sprintf("%dMB", size/1e6), func(b *testing.B) {
			path, err := bin()
			if err != nil {
				b.Fatal(err)
			}
			benchUpload(b, path, size)
		})
	}
}

const (
	benchMaxRSSMiB = 64
	benchMinRatio  = 0.5
	benchWAVHeader = 44
)

func benchUpload(b *testing.B, bin string, size int64) {
	data, key := b.TempDir(), store.GenerateKey()
	token := offlineToken(b, bin, data, key) // the server hashes no password: its peak RSS is the upload's
	srv := startServer(b, bin, data, key, "TYST_MAX_UPLOAD_MB=256")
	client := &http.Client{Transport: bearer{token, &http.Transport{DisableCompression: true}}, Timeout: 5 * time.Minute}
	fileDir := b.TempDir()

	b.SetBytes(size)
	b.ReportAllocs()
	var limitDur, uploadDur time.Duration
	var n int64
	for b.Loop() {
		b.StopTimer()
		id := benchCreateRecord(b, client, srv.base)
		b.StartTimer()

		d, sum := benchLimit(b, filepath.Join(fileDir, "limit.fst"), size)
		limitDur += d
		uploadDur += benchPostAudio(b, client, srv.base, id, size, sum)
		n++

		b.StopTimer()
		os.Remove(filepath.Join(fileDir, "limit.fst"))
		b.StartTimer()
	}
	b.StopTimer()
	peak := benchPeakRSSMiB(b, srv.cmd.Process.Pid)
	srv.stop(b)

	limit := float64(n*size) / 1e6 / limitDur.Seconds()
	upload := float64(n*size) / 1e6 / uploadDur.Seconds()
	ratio := upload / limit
	b.ReportMetric(limit, "limit_MB/s")
	b.ReportMetric(upload, "upload_MB/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(peak, "peak_rss_MiB")
	if ratio < benchMinRatio {
		b.Logf("TARGET MISSED: ratio %.2f < %.2f", ratio, benchMinRatio)
	}
	if peak > benchMaxRSSMiB {
		b.Logf("TARGET MISSED: peak RSS %.1f MiB > %d MiB", peak, benchMaxRSSMiB)
	}
}

// benchWriteInput writes size bytes to w: a 16 kHz mono s16le PCM WAV header
// followed by deterministic pseudo-random samples, 64 KiB at a time, so
// nothing compresses and nothing is held whole in memory.
func benchWriteInput(w io.Writer, size int64) error {
	if size < benchWAVHeader {
		return errors.New("bench: input smaller than a WAV header")
	}
	if _, err := w.Write(media.WAVHeader(size-benchWAVHeader, 16000, 1)); err != nil {
		return err
	}
	src := rand.NewChaCha8([32]byte{'t', 'y', 's', 't'})
	buf := make([]byte, 64<<10)
	for left := size - benchWAVHeader; left > 0; {
		p := buf[:min(int64(len(buf)), left)]
		src.Read(p)
		if _, err := w.Write(p); err != nil {
			return err
		}
		left -= int64(len(p))
	}
	return nil
}

// benchLimit is the in-process limit: the input through SHA-256 and the
// Fernet stream writer into a real file, synced, on one goroutine. It
// returns the time taken and the input's SHA-256 (hex).
func benchLimit(b *testing.B, path string, size int64) (time.Duration, string) {
	b.StopTimer()
	kr, err := store.NewKeyring(store.GenerateKey())
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fw, err := fstream.NewWriter(f, kr.Primary())
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.New()
	if err := benchWriteInput(io.MultiWriter(fw, sum), size); err != nil {
		b.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), hex.EncodeToString(sum.Sum(nil))
}

func benchCreateRecord(b *testing.B, client *http.Client, base string) uint64 {
	b.Helper()
	req, err := http.NewRequest("POST", base+"/api/v1/record", strings.NewReader(`{"title":"bench"}`))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, body := doRead(b, client, req)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST /api/v1/record: status %d: %s", resp.StatusCode, body)
	}
	var rec struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	if err := json.Unmarshal(body, &rec); err != nil || rec.TranscriptID == 0 {
		b.Fatalf("POST /api/v1/record: bad body %q: %v", body, err)
	}
	return rec.TranscriptID
}

// benchPostAudio uploads the input as the multipart field "file", streamed
// through a pipe with chunked transfer encoding, and returns the time from
// the request's start to the 201 response.
func benchPostAudio(b *testing.B, client *http.Client, base string, id uint64, size int64, wantSum string) time.Duration {
	b.Helper()
	pr, pw := io.Pipe()
	defer pr.Close()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		base+"/api/v1/record/"+strconv.FormatUint(id, 10)+"/audio", pr)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.ContentLength = -1 // unknown: chunked, nothing buffered

	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		err := func() error {
			ph := make(textproto.MIMEHeader)
			ph.Set("Content-Disposition", `form-data; name="file"; filename="bench.wav"`)
			ph.Set("Content-Type", "audio/wav")
			part, err := mw.CreatePart(ph)
			if err != nil {
				return err
			}
			if err := benchWriteInput(part, size); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
		werr <- err
	}()
	resp, body := doRead(b, client, req)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST audio: status %d: %s", resp.StatusCode, body)
	}
	pr.Close()
	if err := <-werr; err != nil {
		b.Fatalf("writing the upload body: %v", err)
	}
	var got struct {
		SHA256    string `json:"sha256"`
		SizeBytes int64  `json:"size_bytes"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		b.Fatalf("POST audio: bad body %q: %v", body, err)
	}
	if got.SizeBytes != size {
		b.Fatalf("size_bytes=%d, want %d", got.SizeBytes, size)
	}
	if got.SHA256 != wantSum {
		b.Fatalf("sha256=%s, want %s", got.SHA256, wantSum)
	}
	return elapsed
}

// benchPeakRSSMiB returns the process's VmHWM (peak resident set size since
// it started) in MiB.
func benchPeakRSSMiB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("reading the server's peak RSS needs /proc: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return float64(kib) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
