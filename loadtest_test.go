package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"tyst/store"
	"tyst/stream/proto"
)

// The load test (docs/RELIABILITY.md, `make loadtest`): for
// TYST_LOAD_DURATION, loadUploaders clients upload loadUploadBytes files
// at once, again and again, while others play back, export and list
// records, all on loopback against the real binary. It fails on any error
// and when the server's peak RSS passes loadMaxRSSMiB.
const (
	loadUploaders   = 16
	loadUploadBytes = 200e6
	loadPlayers     = 4
	loadListers     = 2
	loadMaxRSSMiB   = 512
	loadPlayBytes   = 20e6 // the record that is played back and exported
	loadStreamers   = 8
	loadStreamBytes = 16000 * 2 * 60 // a minute of 16 kHz mono PCM per stream
	loadStreamSpeed = 10             // times real time
)

// loadStats collects the latencies of one kind of operation.
type loadStats struct {
	mu     sync.Mutex
	lat    []time.Duration
	bytes  int64
	errors int
}

func (s *loadStats) add(d time.Duration, n int64) {
	s.mu.Lock()
	s.lat = append(s.lat, d)
	s.bytes += n
	s.mu.Unlock()
}

func (s *loadStats) fail(t *testing.T, format string, args ...any) {
	s.mu.Lock()
	s.errors++
	s.mu.Unlock()
	t.Errorf(format, args...)
}

// loadFigure is one kind of operation's result.
type loadFigure struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	MBps   float64 `json:"throughput_MB_per_s,omitempty"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func (s *loadStats) figure(elapsed time.Duration) loadFigure {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := loadFigure{Count: len(s.lat), Errors: s.errors}
	if s.bytes > 0 {
		f.MBps = round1(float64(s.bytes) / 1e6 / elapsed.Seconds())
	}
	if len(s.lat) == 0 {
		return f
	}
	sorted := append([]time.Duration(nil), s.lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	q := func(p float64) float64 {
		return round1(float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]) / float64(time.Millisecond))
	}
	f.P50ms, f.P99ms, f.MaxMs = q(0.50), q(0.99), q(1)
	return f
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// TestLoad is the load test; it runs only when TYST_LOAD_DURATION is set
// (e.g. 3m; `make loadtest`), and writes its figures to
// TYST_LOAD_FIGURES when that is set.
func TestLoad(t *testing.T) {
	v := os.Getenv("TYST_LOAD_DURATION")
	if v == "" {
		t.Skip("set TYST_LOAD_DURATION (make loadtest) to run the load test")
	}
	duration, err := time.ParseDuration(v)
	if err != nil || duration <= 0 {
		t.Fatal("TYST_LOAD_DURATION must be a duration such as 3m")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, key := t.TempDir(), store.GenerateKey()
	token := offlineUser(t, bin, data, key, "load", store.RoleEditor, "")
	// The upload caps default to 8 in all and 2 per account, the stream
	// caps to 8 per account and 4 per token: raised so that every uploader
	// and streamer runs at once.
	srv := startServer(t, bin, data, key, "TYST_MAX_UPLOAD_MB=256",
		fmt.Sprintf("TYST_MAX_UPLOADS=%d", loadUploaders), fmt.Sprintf("TYST_MAX_UPLOADS_PER_USER=%d", loadUploaders),
		"TYST_MAX_DOWNLOADS=32", "TYST_MAX_DOWNLOADS_PER_USER=32",
		fmt.Sprintf("TYST_MAX_STREAMS_PER_TOKEN=%d", loadStreamers), fmt.Sprintf("TYST_MAX_STREAMS_PER_USER=%d", loadStreamers),
		"TYST_EXPORT_QUOTA_MB=1000000") // the exporter keeps every package it makes
	pid := srv.cmd.Process.Pid
	idle := procMiB(t, pid, "VmRSS")
	client := &http.Client{Transport: bearer{token, &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}, Timeout: 10 * time.Minute}

	// The record that is played back and exported.
	var play bytes.Buffer
	benchWriteInput(&play, loadPlayBytes)
	playData := play.Bytes()
	playID := loadCreate(t, client, srv.base)
	if status, body := loadUpload(client, srv.base, playID, int64(len(playData)), func(w io.Writer) error {
		_, err := w.Write(playData)
		return err
	}); status != 201 {
		t.Fatalf("upload of the playback record: %d %s", status, body)
	}
	playSum := sha256.Sum256(playData)
	var uploadSum string
	{
		h := sha256.New()
		benchWriteInput(h, loadUploadBytes)
		uploadSum = hex.EncodeToString(h.Sum(nil))
	}

	stats := map[string]*loadStats{"upload": {}, "playback_range": {}, "playback_whole": {}, "export": {}, "export_download": {}, "list": {}, "destroy": {},
		"stream": {}, "stream_stop": {}}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range loadUploaders {
		wg.Go(func() {
			for ctx.Err() == nil {
				id := loadCreate(t, client, srv.base)
				t0 := time.Now()
				status, body := loadUpload(client, srv.base, id, loadUploadBytes, func(w io.Writer) error { return benchWriteInput(w, loadUploadBytes) })
				var got struct {
					SHA256 string `json:"sha256"`
				}
				if status != 201 || json.Unmarshal(body, &got) != nil || got.SHA256 != uploadSum {
					stats["upload"].fail(t, "upload: %d %s", status, body)
					return
				}
				stats["upload"].add(time.Since(t0), loadUploadBytes)
				// Destroyed at once, so the disk holds a round at a time.
				t0 = time.Now()
				resp, body := doRead(t, client, loadJSON(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/destroy", srv.base, id),
					`{"dry_run":false,"confirm":true,"reason":"load test"}`))
				if resp.StatusCode != 200 {
					stats["destroy"].fail(t, "destroy: %d %s", resp.StatusCode, body)
					return
				}
				stats["destroy"].add(time.Since(t0), 0)
			}
		})
	}
	for p := range loadPlayers {
		rng := rand.New(rand.NewPCG(uint64(p), 7))
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, playID), nil)
				whole := rng.IntN(10) == 0
				from, to := 0, len(playData)-1
				if !whole {
					from = rng.IntN(len(playData) - 1)
					to = min(len(playData)-1, from+rng.IntN(1<<20))
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
				}
				t0 := time.Now()
				resp, body := doRead(t, client, req)
				kind := "playback_range"
				if whole {
					kind = "playback_whole"
				}
				if (whole && (resp.StatusCode != 200 || sha256.Sum256(body) != playSum)) ||
					(!whole && (resp.StatusCode != 206 || !bytes.Equal(body, playData[from:to+1]))) {
					stats[kind].fail(t, "playback: %d, %d bytes", resp.StatusCode, len(body))
					return
				}
				stats[kind].add(time.Since(t0), int64(len(body)))
			}
		})
	}
	wg.Go(func() { // exports of the playback record, each downloaded
		for ctx.Err() == nil {
			t0 := time.Now()
			resp, body := doRead(t, client, loadJSON(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/export", srv.base, playID),
				`{"confirm":true,"reason":"load test"}`))
			var out struct {
				PackageID string `json:"package_id"`
			}
			if resp.StatusCode != 201 || json.Unmarshal(body, &out) != nil {
				stats["export"].fail(t, "export: %d %s", resp.StatusCode, body)
				return
			}
			stats["export"].add(time.Since(t0), 0)
			t0 = time.Now()
			req, _ := http.NewRequest("GET", srv.base+"/api/v1/exports/"+out.PackageID, nil)
			resp, body = doRead(t, client, req)
			if resp.StatusCode != 200 || len(body) < loadPlayBytes {
				stats["export_download"].fail(t, "export download: %d, %d bytes", resp.StatusCode, len(body))
				return
			}
			stats["export_download"].add(time.Since(t0), int64(len(body)))
		}
	})
	for i := range loadStreamers {
		pcm := make([]byte, loadStreamBytes)
		rand.NewChaCha8([32]byte{byte(i), 'l'}).Read(pcm)
		want := sha256.Sum256(wavBytes(pcm))
		wg.Go(func() { // live streams at loadStreamSpeed × real time, each stopped and checked
			for ctx.Err() == nil {
				id := loadCreate(t, client, srv.base)
				t0 := time.Now()
				c := dialStream(t, srv.base, token, id)
				c.text(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`)
				if m, _ := c.next(); m == nil {
					stats["stream"].fail(t, "stream start: closed")
					return
				}
				frame := 3200 // 100 ms
				for off := 0; off < len(pcm); off += frame {
					if err := wsutil.WriteClientBinary(c.w, pcm[off:off+frame]); err != nil {
						stats["stream"].fail(t, "stream send: %v", err)
						return
					}
					time.Sleep(100 * time.Millisecond / loadStreamSpeed)
				}
				stats["stream"].add(time.Since(t0), int64(len(pcm)))
				t0 = time.Now()
				c.text(`{"type":"stop"}`)
				m, _ := c.next()
				st, ok := m.(proto.Stored)
				if !ok || st.SHA256 != hex.EncodeToString(want[:]) {
					stats["stream_stop"].fail(t, "stream stop: %#v", m)
					return
				}
				stats["stream_stop"].add(time.Since(t0), 0)
				c.conn.Close()
			}
		})
	}
	for range loadListers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", srv.base+"/api/v1/records?limit=50", nil)
				t0 := time.Now()
				resp, body := doRead(t, client, req)
				if resp.StatusCode != 200 {
					stats["list"].fail(t, "list: %d %s", resp.StatusCode, body)
					return
				}
				stats["list"].add(time.Since(t0), 0)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	var rssMax float64
	wg.Go(func() {
		for ctx.Err() == nil {
			rssMax = max(rssMax, procMiB(t, pid, "VmRSS"))
			time.Sleep(200 * time.Millisecond)
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	peak := procMiB(t, pid, "VmHWM")
	srv.stop(t)

	figs := map[string]loadFigure{}
	errors := 0
	for k, s := range stats {
		figs[k] = s.figure(elapsed)
		errors += figs[k].Errors
	}
	out := map[string]any{
		"duration_s":          round1(elapsed.Seconds()),
		"uploaders":           loadUploaders,
		"upload_bytes":        int64(loadUploadBytes),
		"players":             loadPlayers,
		"streamers":           loadStreamers,
		"stream_speed":        loadStreamSpeed,
		"peak_rss_MiB":        round1(peak),
		"idle_rss_MiB":        round1(idle),
		"max_sampled_rss_MiB": round1(rssMax),
		"rss_limit_MiB":       loadMaxRSSMiB,
		"errors":              errors,
		"operations":          figs,
		"cpus":                cpuCount(),
		"go_version":          strings.TrimPrefix(strings.Fields(goVersion(t))[2], "go"),
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	t.Logf("%s", b)
	if peak > loadMaxRSSMiB {
		t.Errorf("peak RSS %.1f MiB > %d MiB", peak, loadMaxRSSMiB)
	}
	if figs["upload"].Count < loadUploaders {
		t.Errorf("only %d uploads completed in %v: run longer", figs["upload"].Count, duration)
	}
	if path := os.Getenv("TYST_LOAD_FIGURES"); path != "" && !t.Failed() {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cpuCount() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func loadJSON(t *testing.T, method, url, body string) *http.Request {
	return bodyRequest(t, method, url, "application/json", strings.NewReader(body))
}

func loadCreate(t *testing.T, c *http.Client, base string) uint64 {
	resp, body := doRead(t, c, loadJSON(t, "POST", base+"/api/v1/record", `{"title":"load"}`))
	var out struct {
		ID uint64 `json:"transcript_id"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	return out.ID
}

// loadUpload streams a multipart upload of size bytes that write
// produces; nothing is held whole in memory.
func loadUpload(c *http.Client, base string, id uint64, size int64, write func(io.Writer) error) (int, []byte) {
	head := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
	tail := "\r\n--b--\r\n"
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, head)
		if err := write(pw); err != nil {
			pw.CloseWithError(err)
			return
		}
		io.WriteString(pw, tail)
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/record/%d/audio", base, id), pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.ContentLength = int64(len(head)) + size + int64(len(tail))
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
