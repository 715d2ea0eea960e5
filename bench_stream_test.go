package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream/proto"
)

// BenchmarkStreamLoad runs N concurrent live streams against a real `tyst
// serve` on loopback: each client sends 16 kHz mono PCM in 20 ms frames at
// real-time pace, then stops and waits for stored. It reports the ack lag
// (from sending the frame that ends at an ack's offset to receiving that
// ack; p50, p99, max), dropped streams (any that did not end stored with
// every byte), and the server's RSS per stream (VmRSS while streaming minus
// before, over N). Targets: ack p99 ≤ 100 ms with no dropped stream at
// N = 1000 on a 2-core machine.
//
// TYST_BENCH_STREAMS (a comma list of N, default 100) and
// TYST_BENCH_STREAM_SECONDS (default 10) set the load;
// TYST_BENCH_LAG_TIMELINE=1 logs the worst lag of every second. The full
// run is
//
//	TYST_BENCH_STREAMS=500,1000,1500 TYST_BENCH_STREAM_SECONDS=30 \
//	  go test -run '^$' -bench BenchmarkStreamLoad -benchtime 1x .
func BenchmarkStreamLoad(b *testing.B) {
	ns := []int{100}
	if v := os.Getenv("TYST_BENCH_STREAMS"); v != "" {
		ns = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("TYST_BENCH_STREAMS must be a comma list of positive numbers")
			}
			ns = append(ns, n)
		}
	}
	seconds := 10
	if v := os.Getenv("TYST_BENCH_STREAM_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			b.Fatalf("TYST_BENCH_STREAM_SECONDS must be a number of at least 2")
		}
		seconds = n
	}
	bin, err := buildBinary(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range ns {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for b.Loop() {
				benchStreams(b, bin, n, time.Duration(seconds)*time.Second)
			}
		})
	}
}

const (
	benchFrame      = 640 // 20 ms of 16 kHz mono
	benchFrameEvery = 20 * time.Millisecond
)

// benchStream is one client's record of its run.
type benchStream struct {
	stopping atomic.Bool // stop was sent: later acks are the stop's, not counted
	sent     []int64     // unix nanos at which frame i was sent
	lags     []time.Duration
	lagAt    []int64 // when each lag was measured, unix nanos
	err      error
	stored   bool
}

func benchStreams(b *testing.B, bin string, n int, dur time.Duration) {
	data, key := b.TempDir(), store.GenerateKey()
	token := offlineToken(b, bin, data, key)
	// All n streams share one token: its caps (4, and 8 per account) are
	// raised to n.
	srv := startServer(b, bin, data, key, fmt.Sprintf("TYST_MAX_STREAMS_PER_TOKEN=%d", n), fmt.Sprintf("TYST_MAX_STREAMS_PER_USER=%d", n))
	client := &http.Client{Transport: bearer{token, &http.Transport{MaxIdleConnsPerHost: 16}}}
	ids := make([]uint64, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ids[i] = benchCreateRecord(b, client, srv.base)
			}
		})
	}
	wg.Wait()
	rssBefore := benchRSSKiB(b, srv.cmd.Process.Pid)

	// Every client streams until the same moment, then all stop: the lags
	// measure live streams, not the storing of earlier ones.
	frames := int(dur/benchFrameEvery) + 100
	results := make([]*benchStream, n)
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	var live atomic.Int64
	var rssDuring int64
	start := time.Now()
	stopAt := start.Add(time.Second + dur)
	for i := range n {
		results[i] = &benchStream{sent: make([]int64, frames)}
		// Starts spread over the first second, as real clients would be.
		delay := time.Duration(i) * time.Second / time.Duration(n)
		wg.Go(func() {
			time.Sleep(delay)
			results[i].err = benchOneStream(ctx, srv.base, token, ids[i], results[i], &live, stopAt)
		})
	}
	// RSS while every stream is live, at about two thirds of the run.
	time.Sleep(time.Second + 2*dur/3)
	rssDuring = benchRSSKiB(b, srv.cmd.Process.Pid)
	livePeak := live.Load()
	wg.Wait()
	elapsed := time.Since(start)

	var lags []time.Duration
	dropped := 0
	for _, r := range results {
		if r.err != nil || !r.stored {
			dropped++
			if dropped <= 3 {
				b.Logf("dropped stream: %v", r.err)
			}
		}
		lags = append(lags, r.lags...)
	}
	srv.stop(b)
	if len(lags) == 0 {
		b.Fatal("no acks at all")
	}
	if os.Getenv("TYST_BENCH_LAG_TIMELINE") != "" {
		worst := map[int64]time.Duration{}
		for _, r := range results {
			for j, l := range r.lags {
				sec := (r.lagAt[j] - start.UnixNano()) / int64(time.Second)
				worst[sec] = max(worst[sec], l)
			}
		}
		for sec := int64(0); sec < 40; sec++ {
			if w, ok := worst[sec]; ok {
				b.Logf("second %d: worst ack lag %v", sec, w)
			}
		}
	}
	slices.Sort(lags)
	pct := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))]) / float64(time.Millisecond)
	}
	p99 := pct(0.99)
	b.ReportMetric(pct(0.50), "ack_p50_ms")
	b.ReportMetric(p99, "ack_p99_ms")
	b.ReportMetric(float64(lags[len(lags)-1])/float64(time.Millisecond), "ack_max_ms")
	b.ReportMetric(float64(dropped), "dropped")
	b.ReportMetric(float64(rssDuring-rssBefore)/float64(n), "rss_KiB/stream")
	b.ReportMetric(float64(rssDuring)/1024, "rss_MiB")
	b.ReportMetric(float64(livePeak), "live")
	b.ReportMetric(elapsed.Seconds(), "run_s")
	if p99 > 100 || dropped > 0 {
		b.Logf("TARGET MISSED at %d streams: ack p99 %.1f ms (≤ 100), dropped %d (0)", n, p99, dropped)
	}
}

// benchOneStream streams frames of silence-free PCM at real-time pace,
// measures ack lags, stops and waits for stored.
func benchOneStream(ctx context.Context, base, token string, id uint64, r *benchStream, live *atomic.Int64, stopAt time.Time) error {
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + token}}), Timeout: 30 * time.Second}
	url := "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("/api/v1/record/%d/stream", id)
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return err
	}
	defer nc.Close()
	var rd io.Reader = nc
	if br != nil {
		rd = io.MultiReader(br, nc)
	}
	var wmu sync.Mutex
	fw := proto.FrameWriter{W: nc, Mask: true}
	write := func(op ws.OpCode, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		return fw.WriteFrame(op, p)
	}
	if err := write(ws.OpText, []byte(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"bench"}`)); err != nil {
		return err
	}
	msgs := make(chan proto.ServerMessage, 64)
	readErr := make(chan error, 1)
	frames := len(r.sent)
	var total int64
	go func() {
		buf := make([]byte, proto.MaxTextBytes)
		for {
			nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
			h, err := ws.ReadHeader(rd)
			if err != nil {
				readErr <- err
				return
			}
			if h.Length > int64(len(buf)) {
				readErr <- errors.New("frame too long")
				return
			}
			p := buf[:h.Length]
			if _, err := io.ReadFull(rd, p); err != nil {
				readErr <- err
				return
			}
			switch h.OpCode {
			case ws.OpPing:
				write(ws.OpPong, p)
			case ws.OpClose:
				readErr <- io.EOF
				return
			case ws.OpText:
				m, err := proto.ParseServer(p)
				if err != nil {
					readErr <- err
					return
				}
				if a, ok := m.(proto.Ack); ok {
					now := time.Now().UnixNano()
					i := int((a.Offset+benchFrame-1)/benchFrame) - 1
					if i >= 0 && i < frames && r.sent[i] != 0 && !r.stopping.Load() {
						r.lags = append(r.lags, time.Duration(now-r.sent[i]))
						r.lagAt = append(r.lagAt, now)
					}
					continue
				}
				msgs <- m
			}
		}
	}()
	select {
	case m := <-msgs:
		if _, ok := m.(proto.Ready); !ok {
			return fmt.Errorf("no ready: %#v", m)
		}
	case err := <-readErr:
		return err
	}
	live.Add(1)
	defer live.Add(-1)
	frame := make([]byte, benchFrame)
	for j := range frame {
		frame[j] = byte(int(id) + j)
	}
	next := time.Now()
	for i := range frames {
		if dl := time.Until(next); dl > 0 {
			time.Sleep(dl)
		}
		if time.Now().After(stopAt) {
			break
		}
		next = next.Add(benchFrameEvery)
		frame[0] = byte(i)
		r.sent[i] = time.Now().UnixNano()
		if err := write(ws.OpBinary, frame); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		total += benchFrame
	}
	r.stopping.Store(true)
	if err := write(ws.OpText, []byte(`{"type":"stop"}`)); err != nil {
		return err
	}
	for {
		select {
		case m := <-msgs:
			switch m := m.(type) {
			case proto.Stored:
				if m.SizeBytes != total+44 {
					return fmt.Errorf("stored %d bytes, sent %d", m.SizeBytes, total+44)
				}
				r.stored = true
				return nil
			case proto.Error:
				return fmt.Errorf("server: %s: %s", m.Code, m.Message)
			}
		case err := <-readErr:
			return fmt.Errorf("before stored: %w", err)
		}
	}
}

// benchRSSKiB reads the server's resident set size.
func benchRSSKiB(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("reading the server's RSS needs /proc: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return kib
		}
	}
	b.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
