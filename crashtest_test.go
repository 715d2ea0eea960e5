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
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tyst/store"
)

// The crash-injection harness (docs/RELIABILITY.md). TestCrash runs
// crashCycles() cycles (30 unless TYST_CRASH_CYCLES says otherwise; `make
// crashtest` runs 1,000) of: start the real binary, check every promise
// against what the server acknowledged before, drive a mixed workload,
// and kill the server with SIGKILL at a random moment.
const (
	crashWorkers    = 4               // clients, each with records of its own
	crashMaxRecords = 5               // per worker; more are destroyed
	crashMaxAudio   = 2 << 20         // bytes of one upload, at most
	crashMaxRun     = 2500            // ms of workload before the kill, at most
	crashRekeyEvery = 10              // cycles between key rotations
	crashReason     = "crash harness" // export, removal and destroy reason
)

func crashCycles(t *testing.T) int {
	if v := os.Getenv("TYST_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatal("TYST_CRASH_CYCLES must be a positive number")
		}
		return n
	}
	return 30
}

// crashRecord is what the clients were told about one record. An
// operation in flight when the server died leaves two possible states;
// the check after the restart learns which one it is.
type crashRecord struct {
	id        uint64
	audio     string // acknowledged SHA-256 of its audio, "" for none
	destroyed bool   // the destroy was acknowledged
	// In flight at the kill: the SHA-256 being uploaded, a removal, a
	// destroy.
	uploading  string
	removing   bool
	destroying bool
	// streaming: a live stream goes into it; the streamer owns it until
	// the stream is stored.
	streaming bool
}

// crashModel is the clients' shared knowledge.
type crashModel struct {
	mu       sync.Mutex
	records  map[uint64]*crashRecord
	exports  map[string]int    // acknowledged package → the cycle of its ack
	exportOf map[string]uint64 // acknowledged package → its record
	aged     []string          // packages made old enough for the next purge
	gone     []string          // packages removed with their record's audio
	creating int               // record creations in flight
}

// dropExportsOf moves record id's acknowledged packages to gone: its
// audio was removed, and they with it. Call it with mu held.
func (m *crashModel) dropExportsOf(id uint64) {
	for pkg, rec := range m.exportOf {
		if rec == id {
			m.gone = append(m.gone, pkg)
			delete(m.exports, pkg)
			delete(m.exportOf, pkg)
		}
	}
}

// crashFigures are the harness's results, written to TYST_CRASH_FIGURES
// for docs/RELIABILITY.md.
type crashFigures struct {
	Cycles     int            `json:"cycles"`
	Seed       uint64         `json:"seed"`
	Seconds    float64        `json:"seconds"`
	Acked      map[string]int `json:"acknowledged"`      // operations the server acknowledged, by kind
	InFlight   map[string]int `json:"in_flight_at_kill"` // operations cut by a kill, by kind
	Checked    map[string]int `json:"checked"`           // what the checks after each restart covered
	VerifyRuns int            `json:"verify_runs"`
	PurgeRuns  int            `json:"purge_runs"`
	Rotations  int            `json:"key_rotations"`
	Violations int            `json:"violations"`
	// Stream bytes the client sent, and those the server acknowledged as
	// durable (all of them were found again after every restart).
	StreamBytesSent  int64  `json:"stream_bytes_sent"`
	StreamBytesAcked int64  `json:"stream_bytes_acked"`
	GoVersion        string `json:"go_version"`
	Description      string `json:"description"`
}

type crashHarness struct {
	t      *testing.T
	bin    string
	data   string
	token  string
	keys   []string // newest first: the primary, then the old keys
	rng    *rand.Rand
	model  crashModel
	stream *crashStream // the live stream, kept across kills
	// orphanStreams counts starts cut by a kill: the server may hold each
	// (with its spool) until its resume window ends.
	orphanStreams int
	fig           crashFigures
	figMu         sync.Mutex
	client        *http.Client
}

func (h *crashHarness) count(m map[string]int, kind string) {
	h.figMu.Lock()
	m[kind]++
	h.figMu.Unlock()
}

// TestCrash is the crash-injection harness.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary through many crashes")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	if v := os.Getenv("TYST_CRASH_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal("TYST_CRASH_SEED must be a number")
		}
	}
	t.Logf("seed %d (TYST_CRASH_SEED=%d repeats the random choices)", seed, seed)
	h := &crashHarness{
		t: t, bin: bin, data: t.TempDir(), keys: []string{store.GenerateKey()},
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		model:  crashModel{records: map[uint64]*crashRecord{}, exports: map[string]int{}, exportOf: map[string]uint64{}},
		client: &http.Client{Timeout: 30 * time.Second},
		fig: crashFigures{Seed: seed, Acked: map[string]int{}, InFlight: map[string]int{}, Checked: map[string]int{},
			Description: "SIGKILL at a random moment of a mixed workload, restart, check"},
	}
	h.token = offlineUser(t, bin, h.data, h.keys[0], "crash", store.RoleEditor, "")
	start := time.Now()
	cycles := crashCycles(t)
	for cycle := 1; cycle <= cycles; cycle++ {
		rotate := cycle%crashRekeyEvery == 0
		if rotate {
			h.keys = append([]string{store.GenerateKey()}, h.keys...)
			h.fig.Rotations++
		}
		srv := h.start()
		h.check(srv, cycle)
		h.run(srv, cycle, rotate)
		if t.Failed() {
			break
		}
		h.fig.Cycles++
	}
	// A last clean start: everything checks, and a graceful stop.
	srv := h.start()
	h.check(srv, cycles+1)
	srv.stop(t)
	h.verify(false)
	h.fig.Seconds = time.Since(start).Seconds()
	h.fig.GoVersion = strings.TrimPrefix(strings.Fields(goVersion(t))[2], "go")
	if t.Failed() {
		h.fig.Violations++
	}
	t.Logf("%d cycles in %.0f s: acknowledged %v, in flight at a kill %v, checked %v",
		h.fig.Cycles, h.fig.Seconds, h.fig.Acked, h.fig.InFlight, h.fig.Checked)
	if path := os.Getenv("TYST_CRASH_FIGURES"); path != "" && !t.Failed() {
		b, _ := json.MarshalIndent(h.fig, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func goVersion(t *testing.T) string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// env is the key environment of the current rotation.
func (h *crashHarness) env() []string {
	return []string{"PROJECT_FILES_KEY=" + h.keys[0], "PROJECT_FILES_OLD_KEYS=" + strings.Join(h.keys[1:], ",")}
}

func (h *crashHarness) start() *procServer {
	// Every worker may upload, play back and export at once (the
	// per-account defaults are 2, 4 and 1).
	return startServer(h.t, h.bin, h.data, h.keys[0], h.env()[1],
		"TYST_MAX_UPLOADS_PER_USER=8", "TYST_MAX_DOWNLOADS_PER_USER=16", fmt.Sprintf("TYST_MAX_EXPORTS_PER_USER=%d", crashWorkers),
		fmt.Sprintf("TYST_MAX_EXPORTS=%d", crashWorkers))
}

// cli runs a maintenance command of the binary against the data
// directory (through the running server's admin socket, if any).
func (h *crashHarness) cli(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.bin, append(args, "--data", h.data)...)
	cmd.Env = append(os.Environ(), h.env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%v: %v\n%s", args, err, stderr.String())
	}
	return out, nil
}

// verify runs tyst verify and fails the test on any problem. With
// rotationDone it also requires that no item is left under an old key.
func (h *crashHarness) verify(rotationDone bool) {
	h.t.Helper()
	out, err := h.cli(context.Background(), "verify")
	h.fig.VerifyRuns++
	if err != nil {
		h.t.Fatalf("tyst verify: %v\n%s", err, out)
	}
	var rep store.VerifyReport
	if err := json.Unmarshal(out, &rep); err != nil || !rep.OK {
		h.t.Fatalf("tyst verify: %v\n%s", err, out)
	}
	if rotationDone {
		primary, _ := store.KeyID(h.keys[0])
		for id, n := range rep.KeyUsage {
			if id != primary && n > 0 {
				h.t.Fatalf("an acknowledged rekey left %d items under an old key: %s", n, out)
			}
		}
		h.keys = h.keys[:1] // the old keys are no longer needed
	}
}

// check compares the restarted server with the model: every acknowledged
// record with its audio intact, every acknowledged export downloadable,
// no destroyed record back; tyst verify clean; then a purge, after which
// no temp, orphan blob or unrecorded export package is left.
func (h *crashHarness) check(srv *procServer, cycle int) {
	t := h.t
	t.Helper()
	m := &h.model
	m.mu.Lock()
	defer m.mu.Unlock()
	listed := h.listRecords(srv)
	blobs := 0 // records with audio
	for _, r := range m.records {
		rec, found := listed[r.id]
		delete(listed, r.id)
		switch {
		case r.destroyed && found:
			t.Fatalf("cycle %d: record %d was destroyed and is back", cycle, r.id)
		case r.destroyed:
			h.count(h.fig.Checked, "destroyed_records_gone")
			continue
		case !found && r.destroying:
			r.destroyed, r.destroying = true, false
			continue
		case !found:
			t.Fatalf("cycle %d: acknowledged record %d is gone", cycle, r.id)
		}
		r.destroying = false
		got := ""
		if rec.Audio != nil {
			got = h.audioSum(srv, r.id, rec.Audio.SHA256)
			blobs++
		}
		switch {
		case r.streaming:
			// The streamer checks it when it resumes: audio appears only
			// for a stop in flight at the kill.
			if got != "" && (h.stream == nil || h.stream.record != r.id || !h.stream.stopping) {
				t.Fatalf("cycle %d: record %d has audio while its stream was not stopped", cycle, r.id)
			}
			continue
		case got == r.audio:
		case r.uploading != "" && got == r.uploading && r.audio == "":
		case r.removing && got == "":
		default:
			t.Fatalf("cycle %d: record %d has audio %q; acknowledged %q (upload in flight %q, removal in flight %v)",
				cycle, r.id, got, r.audio, r.uploading, r.removing)
		}
		if r.removing && got == "" {
			m.dropExportsOf(r.id) // the removal committed: its packages went with the audio
		}
		r.audio, r.uploading, r.removing = got, "", false
		h.count(h.fig.Checked, "records")
		if got != "" {
			h.count(h.fig.Checked, "audio_sha256")
		}
	}
	// Records the clients never heard of: creations cut by the kill.
	if len(listed) > m.creating {
		t.Fatalf("cycle %d: %d unknown records, but only %d creations were in flight", cycle, len(listed), m.creating)
	}
	for id, rec := range listed {
		if rec.Audio != nil {
			t.Fatalf("cycle %d: unacknowledged record %d has audio", cycle, id)
		}
		m.records[id] = &crashRecord{id: id}
	}
	m.creating = 0
	// A removed audio's packages went with it.
	for _, pkg := range m.gone {
		h.checkExport(srv, pkg, 404)
		h.count(h.fig.Checked, "export_packages_removed_with_their_audio")
	}
	m.gone = nil
	// A destroyed record's packages went with it.
	for pkg := range m.exports {
		if r := m.records[m.exportOf[pkg]]; r != nil && r.destroyed {
			h.checkExport(srv, pkg, 404)
			delete(m.exports, pkg)
			delete(m.exportOf, pkg)
			h.count(h.fig.Checked, "export_packages_destroyed_with_their_record")
		}
	}
	for pkg, acked := range m.exports {
		h.checkExport(srv, pkg, 200)
		// Packages checked a few times are dated back past the retention
		// time (the one fake clock here: their file times), so the purge
		// below must remove them; this also keeps the disk bounded.
		if acked <= cycle-3 {
			old := time.Now().Add(-30 * 24 * time.Hour)
			if err := os.Chtimes(filepath.Join(h.data, "exports", "export-"+pkg+".zip.enc"), old, old); err != nil {
				t.Fatal(err)
			}
			delete(m.exports, pkg)
			delete(m.exportOf, pkg)
			m.aged = append(m.aged, pkg)
		}
	}
	h.verify(false)
	// A purge now, then nothing may be left that it should have removed.
	if _, err := h.cli(context.Background(), "purge"); err != nil {
		t.Fatalf("cycle %d: tyst purge: %v", cycle, err)
	}
	h.fig.PurgeRuns++
	h.verify(false)
	for _, pkg := range m.aged {
		h.checkExport(srv, pkg, 404)
		if _, err := os.Stat(filepath.Join(h.data, "exports", "export-"+pkg+".zip.enc")); err == nil {
			t.Fatalf("cycle %d: purge left an export package older than the retention time", cycle)
		}
		h.count(h.fig.Checked, "old_export_packages_purged")
	}
	m.aged = nil
	if got := countFiles(filepath.Join(h.data, "blobs"), ".bin"); got != blobs {
		t.Fatalf("cycle %d: %d blob files, %d records with audio", cycle, got, blobs)
	}
	spools := countFiles(filepath.Join(h.data, "spool"), ".spool")
	if started := countStarted(h.stream) + h.orphanStreams; spools > started {
		t.Fatalf("cycle %d: %d spool files, but %d streams started and not stored", cycle, spools, started)
	}
	for _, tmp := range []string{"blobs/tmp", "exports/tmp"} {
		if n := countFiles(filepath.Join(h.data, tmp), ""); n != 0 {
			t.Fatalf("cycle %d: %d temp files left in %s after a restart and a purge", cycle, n, tmp)
		}
	}
	exports := countFiles(filepath.Join(h.data, "exports"), ".zip.enc")
	if exports < len(m.exports) {
		t.Fatalf("cycle %d: %d export files, %d acknowledged", cycle, exports, len(m.exports))
	}
}

// countStarted counts the harness's stream if the server may hold its
// spool: started, or its start in flight at the kill (the server may have
// made the spool before the kill cut its answer; the next runStream counts
// it as an orphan then).
func countStarted(st *crashStream) int {
	if st == nil || (st.id == "" && !st.starting) {
		return 0
	}
	return 1
}

// countFiles counts the regular files under dir whose names end in ext.
func countFiles(dir, ext string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ext) {
			n++
		}
		return nil
	})
	return n
}

// listRecords returns every record the server lists.
func (h *crashHarness) listRecords(srv *procServer) map[uint64]crashListed {
	out := map[uint64]crashListed{}
	cursor := ""
	for {
		var page struct {
			Records    []crashListed `json:"records"`
			NextCursor string        `json:"next_cursor"`
		}
		url := srv.base + "/api/v1/records?limit=100"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		h.getJSON(url, &page)
		for _, r := range page.Records {
			out[r.TranscriptID] = r
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

type crashListed struct {
	TranscriptID uint64 `json:"transcript_id"`
	Audio        *struct {
		SHA256 string `json:"sha256"`
	} `json:"audio"`
}

func (h *crashHarness) getJSON(url string, v any) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("GET: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		h.t.Fatal(err)
	}
}

// audioSum downloads record id's audio and returns its SHA-256, which
// must be the one the record states.
func (h *crashHarness) audioSum(srv *procServer, id uint64, stated string) string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, id), nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, resp.Body)
	if resp.StatusCode != 200 || err != nil {
		h.t.Fatalf("record %d: audio download %d after %d bytes: %v", id, resp.StatusCode, n, err)
	}
	got := hex.EncodeToString(sum.Sum(nil))
	if got != stated {
		h.t.Fatalf("record %d: audio reads as %s, the record states %s", id, got, stated)
	}
	h.figMu.Lock()
	h.fig.Checked["audio_bytes_read"] += int(n)
	h.figMu.Unlock()
	return got
}

// checkExport downloads an acknowledged export package whole (want 200),
// or checks that it is gone (want 404).
func (h *crashHarness) checkExport(srv *procServer, pkg string, want int) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", srv.base+"/api/v1/exports/"+pkg, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if want != 200 {
		if resp.StatusCode != want {
			h.t.Fatalf("removed (purged, or destroyed with its record) export package: %d, want %d", resp.StatusCode, want)
		}
		return
	}
	if resp.StatusCode != 200 || err != nil || !bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		h.t.Fatalf("acknowledged export package: %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
	h.count(h.fig.Checked, "export_packages")
}

// run drives the workload against srv and kills it at a random moment.
// With rotate, the server runs under a new key and a rekey starts.
func (h *crashHarness) run(srv *procServer, cycle int, rotate bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var killed atomic.Bool
	var wg sync.WaitGroup
	for w := range crashWorkers {
		rng := rand.New(rand.NewPCG(h.rng.Uint64(), uint64(w)))
		wg.Go(func() { h.worker(ctx, srv, cycle, w, rng, &killed) })
	}
	srng := rand.New(rand.NewPCG(h.rng.Uint64(), 77))
	wg.Go(func() { h.streamer(ctx, srv, srng, &killed) })
	rekeyDone := make(chan bool, 1)
	maint := rand.New(rand.NewPCG(h.rng.Uint64(), 99))
	wg.Go(func() { // maintenance: a rekey after a rotation, purges
		if rotate {
			_, err := h.cli(ctx, "rekey")
			rekeyDone <- err == nil
			if err == nil {
				h.count(h.fig.Acked, "rekey")
			} else {
				h.count(h.fig.InFlight, "rekey")
			}
		}
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(200+maint.IntN(800)) * time.Millisecond):
			}
			if _, err := h.cli(ctx, "purge"); err == nil {
				h.count(h.fig.Acked, "purge")
			} else if killed.Load() {
				h.count(h.fig.InFlight, "purge")
			}
		}
	})
	time.Sleep(time.Duration(100+h.rng.IntN(crashMaxRun)) * time.Millisecond)
	killed.Store(true)
	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	cancel()
	wg.Wait()
	if rotate {
		if <-rekeyDone {
			// Acknowledged: the next start must show every item under
			// the new key. Start, check, stop gracefully, verify.
			srv := h.start()
			srv.stop(h.t)
			h.verify(true)
		}
	}
}

// worker is one client: it keeps a few records of its own and uploads,
// plays back, exports, removes audio and destroys at random, recording
// what the server acknowledged.
func (h *crashHarness) worker(ctx context.Context, srv *procServer, cycle, w int, rng *rand.Rand, killed *atomic.Bool) {
	m := &h.model
	mine := func() []*crashRecord {
		m.mu.Lock()
		defer m.mu.Unlock()
		var out []*crashRecord
		for _, r := range m.records {
			if !r.destroyed && !r.streaming && int(r.id)%crashWorkers == w {
				out = append(out, r)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
		return out
	}
	// fail reports an answer that is wrong while the server lives.
	fail := func(format string, args ...any) {
		if !killed.Load() {
			h.t.Errorf(format, args...)
		}
	}
	for ctx.Err() == nil && !killed.Load() {
		recs := mine()
		switch op := rng.IntN(10); {
		case len(recs) < 2 || op == 0:
			m.mu.Lock()
			m.creating++
			m.mu.Unlock()
			var out struct {
				TranscriptID uint64 `json:"transcript_id"`
			}
			status, body := h.send(ctx, srv, killed, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"crash"}`))
			if status != 201 || json.Unmarshal(body, &out) != nil {
				if status != 0 {
					fail("create: %d %s", status, body)
					return
				}
				h.count(h.fig.InFlight, "create")
				return // in flight at the kill: m.creating stays counted
			}
			m.mu.Lock()
			m.creating--
			m.records[out.TranscriptID] = &crashRecord{id: out.TranscriptID} // its worker is id % crashWorkers
			m.mu.Unlock()
			h.count(h.fig.Acked, "create")
		case len(recs) > crashMaxRecords || op == 1:
			r := recs[rng.IntN(len(recs))]
			m.mu.Lock()
			r.destroying = true
			m.mu.Unlock()
			status, body := h.send(ctx, srv, killed, "POST", fmt.Sprintf("/api/v1/record/%d/destroy", r.id), "application/json",
				strings.NewReader(`{"dry_run":false,"confirm":true,"reason":"`+crashReason+`"}`))
			if status == 0 {
				h.count(h.fig.InFlight, "destroy")
				return
			}
			if status != 200 {
				fail("destroy %d: %d %s", r.id, status, body)
				return
			}
			m.mu.Lock()
			r.destroyed, r.destroying = true, false
			m.mu.Unlock()
			h.count(h.fig.Acked, "destroy")
		default:
			r := recs[rng.IntN(len(recs))]
			m.mu.Lock()
			hasAudio := r.audio != ""
			m.mu.Unlock()
			switch {
			case !hasAudio:
				h.upload(ctx, srv, killed, r, rng, fail)
			case op < 5:
				h.playback(ctx, srv, r, rng, fail)
			case op < 8:
				var out struct {
					PackageID string `json:"package_id"`
				}
				status, body := h.send(ctx, srv, killed, "POST", fmt.Sprintf("/api/v1/record/%d/export", r.id), "application/json",
					strings.NewReader(`{"confirm":true,"reason":"`+crashReason+`"}`))
				if status == 0 {
					h.count(h.fig.InFlight, "export")
					return
				}
				if status != 201 || json.Unmarshal(body, &out) != nil {
					fail("export %d: %d %s", r.id, status, body)
					return
				}
				m.mu.Lock()
				m.exports[out.PackageID] = cycle
				m.exportOf[out.PackageID] = r.id
				m.mu.Unlock()
				h.count(h.fig.Acked, "export")
			default:
				m.mu.Lock()
				r.removing = true
				m.mu.Unlock()
				status, body := h.send(ctx, srv, killed, "DELETE", fmt.Sprintf("/api/v1/record/%d/audio", r.id), "application/json",
					strings.NewReader(`{"confirm":true,"reason":"`+crashReason+`"}`))
				if status == 0 {
					h.count(h.fig.InFlight, "audio_removal")
					return
				}
				if status != 200 {
					fail("remove audio %d: %d %s", r.id, status, body)
					return
				}
				m.mu.Lock()
				r.audio, r.removing = "", false
				m.dropExportsOf(r.id)
				m.mu.Unlock()
				h.count(h.fig.Acked, "audio_removal")
			}
		}
	}
}

// upload sends a new WAV of random size to record r.
func (h *crashHarness) upload(ctx context.Context, srv *procServer, killed *atomic.Bool, r *crashRecord, rng *rand.Rand, fail func(string, ...any)) {
	wav := hostileWAV(64<<10 + rng.IntN(crashMaxAudio))
	// Make every upload distinct, so a blob of one cannot pass for another.
	copy(wav[len(wav)-8:], fmt.Appendf(nil, "%08x", rng.Uint32()))
	sum := sha256.Sum256(wav)
	want := hex.EncodeToString(sum[:])
	m := &h.model
	m.mu.Lock()
	r.uploading = want
	m.mu.Unlock()
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
		for p := wav; len(p) > 0; p = p[min(len(p), 256<<10):] { // in pieces, so kills land mid-body
			if _, err := pw.Write(p[:min(len(p), 256<<10)]); err != nil {
				return
			}
		}
		fmt.Fprint(pw, "\r\n--b--\r\n")
		pw.Close()
	}()
	status, body := h.send(ctx, srv, killed, "POST", fmt.Sprintf("/api/v1/record/%d/audio", r.id), "multipart/form-data; boundary=b", pr)
	pr.Close()
	if status == 0 {
		h.count(h.fig.InFlight, "upload")
		return
	}
	var out struct {
		SHA256 string `json:"sha256"`
	}
	if status != 201 || json.Unmarshal(body, &out) != nil || out.SHA256 != want {
		fail("upload %d: %d %s, want sha256 %s", r.id, status, body, want)
		return
	}
	m.mu.Lock()
	r.audio, r.uploading = want, ""
	m.mu.Unlock()
	h.count(h.fig.Acked, "upload")
}

// playback reads a random range of record r's audio and checks it against
// what was uploaded.
func (h *crashHarness) playback(ctx context.Context, srv *procServer, r *crashRecord, rng *rand.Rand, fail func(string, ...any)) {
	m := &h.model
	m.mu.Lock()
	want := r.audio
	m.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, r.id), nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sum := sha256.New()
	_, err = io.Copy(sum, resp.Body)
	if err != nil {
		return // killed mid-download
	}
	if got := hex.EncodeToString(sum.Sum(nil)); resp.StatusCode != 200 || got != want {
		fail("playback %d: %d, sha256 %s, want %s", r.id, resp.StatusCode, got, want)
		return
	}
	h.count(h.fig.Acked, "playback")
}

// send makes one request; status 0 means no answer (the server died).
func (h *crashHarness) send(ctx context.Context, srv *procServer, killed *atomic.Bool, method, path, ct string, body io.Reader) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, srv.base+path, body)
	if err != nil {
		h.t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		if b, err = io.ReadAll(resp.Body); err == nil {
			return resp.StatusCode, b
		}
	}
	if !killed.Load() && ctx.Err() == nil {
		h.t.Errorf("%s: no answer from a live server: %v", method, err)
	}
	return 0, nil
}
