package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/internal/testlog"
	"tyst/internal/testproxy"
	"tyst/store"
	"tyst/store/media"
)

// soxPCM makes seconds of real 16 kHz mono PCM with sox.
func soxPCM(tb testing.TB, seconds int) []byte {
	tb.Helper()
	out, err := exec.Command("sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer",
		"-t", "raw", "-", "synth", fmt.Sprint(seconds), "sine", "200-3000", "whitenoise", "gain", "-6").Output()
	if err != nil {
		tb.Fatalf("sox (apt-get install sox): %v", err)
	}
	return out
}

// pacedPipe writes pcm into a pipe at about real time, 100 ms at a time,
// calling at(offset) before each block; it closes the pipe at the end.
func pacedPipe(pcm []byte, speed float64, at func(int)) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(pcm); off += 3200 {
			if at != nil {
				at(off)
			}
			if _, err := pw.Write(pcm[off:min(off+3200, len(pcm))]); err != nil {
				return
			}
			time.Sleep(time.Duration(float64(100*time.Millisecond) / speed))
		}
		pw.Close()
	}()
	return pr
}

// wavBytes is the WAV tyst stores for 16 kHz mono pcm.
func wavBytes(pcm []byte) []byte {
	return append(media.WAVHeader(int64(len(pcm)), 16000, 1), pcm...)
}

type streamOutput struct {
	RecordID   uint64   `json:"record_id"`
	FileID     uint64   `json:"file_id"`
	SHA256     string   `json:"sha256"`
	SizeBytes  int64    `json:"size_bytes"`
	MIMEType   string   `json:"mime_type"`
	DurationMS int64    `json:"duration_ms"`
	Reconnects int      `json:"reconnects"`
	Records    []uint64 `json:"records"`
}

// audioOf downloads record id's audio.
func audioOf(tb testing.TB, base, token string, id uint64) []byte {
	tb.Helper()
	resp, body := doRead(tb, authClient(token), mustRequest(tb, "GET", fmt.Sprintf("%s/api/v1/record/%d/audio", base, id)))
	if resp.StatusCode != 200 {
		tb.Fatalf("GET audio: %d %s", resp.StatusCode, body)
	}
	return body
}

func mustRequest(tb testing.TB, method, url string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func TestStreamCommand_Usage(t *testing.T) {
	for _, args := range [][]string{
		{"stream"},
		{"stream", "--server", "http://127.0.0.1:1"},
		{"stream", "--server", "http://127.0.0.1:1", "--token", "t"},
		{"stream", "--server", "http://127.0.0.1:1", "--token", "t", "--record", "1", "--title", "x"},
		{"stream", "--server", "http://127.0.0.1:1", "--token", "t", "--title", "x", "--buffer-mb", "0"},
	} {
		t.Setenv("TYST_TOKEN", "")
		t.Setenv("TYST_SERVER", "")
		if _, stderr, code := runCmd(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
	if out, _, code := runCmd(t, nil, "stream", "--help"); code != 0 || out != "" {
		t.Errorf("--help: exit %d", code)
	}
}

// TestStreamCommand streams real PCM with `tyst stream` into a real `tyst
// serve` (built binary) and checks the stored audio and the JSON result.
func TestStreamCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, key := t.TempDir(), store.GenerateKey()
	token := offlineToken(t, bin, data, key)
	srv := startServer(t, bin, data, key)
	pcm := soxPCM(t, 2)
	t.Setenv("TYST_TOKEN", token)
	stdout, stderr, code := runCmd(t, bytes.NewReader(pcm), "stream", "--server", srv.base, "--title", "CLI-TITLE-CANARY",
		"--spool-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var out streamOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	want := wavBytes(pcm)
	if got := audioOf(t, srv.base, token, out.RecordID); !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(want))
	}
	if out.SizeBytes != int64(len(want)) || out.DurationMS != 2000 || out.MIMEType != "audio/wav" {
		t.Fatalf("result %+v", out)
	}
	if strings.Contains(stderr, "\r") {
		t.Fatal("progress lines on a stderr that is not a terminal")
	}
	if strings.Contains(srv.tail.String(), "CLI-TITLE-CANARY") {
		t.Fatal("the title is in the server log")
	}
}

// TestKilledMidStream kills the real server with SIGKILL while `tyst
// stream` streams through a proxy, restarts it on the same data, and
// checks that the client resumes from the durable offset: the record holds
// exactly the input, nothing lost or doubled.
func TestKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, key := t.TempDir(), store.GenerateKey()
	token := offlineToken(t, bin, data, key)
	srv := startServer(t, bin, data, key)
	proxy, err := testproxy.Start(strings.TrimPrefix(srv.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	pcm := soxPCM(t, 8)
	var srv2 *procServer
	input := pacedPipe(pcm, 2, func(off int) {
		if off == len(pcm)/2/3200*3200 { // halfway: kill, restart, reroute
			proxy.SetDown(true)
			srv.cmd.Process.Signal(syscall.SIGKILL)
			<-srv.done
			proxy.Cut()
			srv2 = startServer(t, bin, data, key)
			proxy.SetTarget(strings.TrimPrefix(srv2.base, "http://"))
			proxy.SetDown(false)
		}
	})
	t.Setenv("TYST_TOKEN", token)
	var stdout, stderr testlog.Buffer
	err = run(t.Context(), []string{"stream", "--server", "http://" + proxy.Addr(), "--title", "killed",
		"--spool-dir", t.TempDir()}, input, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var out streamOutput
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	if out.Reconnects == 0 || len(out.Records) != 1 {
		t.Fatalf("result %+v: the kill did not interrupt the stream, or the rest went elsewhere", out)
	}
	if !strings.Contains(srv2.tail.String(), "stream found after restart") {
		t.Fatalf("the restarted server did not find the spool:\n%s", srv2.tail)
	}
	if got := audioOf(t, srv2.base, token, out.RecordID); !bytes.Equal(got, wavBytes(pcm)) {
		t.Fatalf("stored %d bytes, want %d: audio lost or doubled across the kill", len(got), 44+len(pcm))
	}
	spools, _ := filepath.Glob(filepath.Join(data, "spool", "*"))
	if len(spools) != 0 {
		t.Fatalf("%d spool files left after stored", len(spools))
	}
	_ = os.Getpid
}
