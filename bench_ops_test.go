package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/store"
)

// BenchmarkExport measures an export of a recording of each size, from the
// POST that builds the package to the last byte of its download, in both
// audio modes, against the in-process limit of the upload path measured in
// the same run (SHA-256 and stream encryption to a synced file), and the
// server's peak RSS over the whole run. Targets: ratio ≥ 0.25 (an export
// decrypts, hashes, encrypts and, for the download, decrypts the audio
// again) and peak RSS ≤ 64 MiB, flat in size.
func BenchmarkExport(b *testing.B) {
	bin := sync.OnceValues(func() (string, error) { return buildBinary(b.TempDir()) })
	sizes := []int64{20e6, 200e6}
	if v, err := strconv.ParseInt(os.Getenv("TYST_BENCH_EXPORT_MB"), 10, 64); err == nil && v > 0 {
		sizes = []int64{v * 1e6}
	}
	for _, size := range sizes {
		for _, mode := range []string{"encrypted", "decrypted"} {
			b.Run(fmt.Sprintf("%dMB/%s", size/1e6, mode), func(b *testing.B) {
				path, err := bin()
				if err != nil {
					b.Fatal(err)
				}
				benchExport(b, path, size, mode)
			})
		}
	}
}

func benchExport(b *testing.B, bin string, size int64, mode string) {
	data, key := b.TempDir(), store.GenerateKey()
	token := offlineUserToken(b, bin, data, key, "benchadmin", "admin")
	srv := startServer(b, bin, data, key, "TYST_MAX_UPLOAD_MB=256", "TYST_EXPORT_QUOTA_MB=1000000") // every iteration's package stays
	client := &http.Client{Transport: bearer{token, &http.Transport{DisableCompression: true}}, Timeout: 10 * time.Minute}
	id := benchCreateRecord(b, client, srv.base)
	_, sum := benchLimit(b, b.TempDir()+"/limit.fst", size)
	benchPostAudio(b, client, srv.base, id, size, sum)
	limitDir := b.TempDir()

	b.SetBytes(size)
	var limitDur, exportDur time.Duration
	var n int64
	for b.Loop() {
		d, _ := benchLimit(b, limitDir+"/limit.fst", size)
		limitDur += d
		start := time.Now()
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/record/%d/export", srv.base, id),
			strings.NewReader(`{"confirm":true,"reason":"benchmark of the export path","export_audio_mode":"`+mode+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, body := doRead(b, client, req)
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("export: %d %s", resp.StatusCode, body)
		}
		url := string(body[strings.Index(string(body), `"download_url":"`)+16:])
		url = url[:strings.IndexByte(url, '"')]
		dl, err := client.Get(srv.base + url)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, dl.Body)
		dl.Body.Close()
		if err != nil || dl.StatusCode != 200 || got < size {
			b.Fatalf("download: %d, %d bytes, %v", dl.StatusCode, got, err)
		}
		exportDur += time.Since(start)
		n++
	}
	b.StopTimer()
	peak := benchPeakRSSMiB(b, srv.cmd.Process.Pid)
	srv.stop(b)
	limit := float64(n*size) / 1e6 / limitDur.Seconds()
	export := float64(n*size) / 1e6 / exportDur.Seconds()
	b.ReportMetric(limit, "limit_MB/s")
	b.ReportMetric(export, "export_MB/s")
	b.ReportMetric(export/limit, "ratio")
	b.ReportMetric(peak, "peak_rss_MiB")
	if export/limit < 0.25 {
		b.Logf("TARGET MISSED: ratio %.2f < 0.25", export/limit)
	}
	if peak > benchMaxRSSMiB {
		b.Logf("TARGET MISSED: peak RSS %.1f MiB > %d MiB", peak, benchMaxRSSMiB)
	}
}

// BenchmarkServeStart measures the start of the real `tyst serve` on a data
// directory of TYST_BENCH_RECORDS records (default 10,000): from the
// process's start to its "tyst serving" line. Target ≤ 200 ms.
func BenchmarkServeStart(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("TYST_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	bin, err := buildBinary(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data, key := b.TempDir(), store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(data, store.Options{Keys: kr, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := db.CreateRecord(context.Background(), store.NewRecord{Title: "r" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.CreateUser(context.Background(), store.NewUser{Username: "admin", Password: "an admin password 99", Role: store.RoleAdmin}); err != nil {
		b.Fatal(err)
	}
	db.Close()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		srv := startServer(b, bin, data, key)
		total += time.Since(start)
		b.StopTimer()
		srv.stop(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "start_ms")
	b.ReportMetric(float64(n), "records")
}
