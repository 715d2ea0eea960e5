package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers for tests and benchmarks that run the real binary.

// buildBinary builds tyst from the module root (the test's working
// directory) into dir.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "tyst")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// procServer is a running tyst serve.
type procServer struct {
	cmd  *exec.Cmd
	base string        // http://127.0.0.1:port
	done chan struct{} // closed when the process has exited
	tail *logTail
}

// startServer starts "tyst serve" on a free loopback port with data dir
// data, newsroom key key and extra environment env, and waits for its "tyst serving" log line.
func startServer(b testing.TB, bin, data, key string, env ...string) *procServer {
	b.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", data)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TYST_") && !strings.HasPrefix(kv, "PROJECT_FILES_") && !strings.HasPrefix(kv, "RECORDER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PROJECT_FILES_KEY="+key)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &procServer{cmd: cmd, done: make(chan struct{}), tail: &logTail{}}
	b.Cleanup(func() { // after a Fatal: never leave the server running
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	addrc := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				s.tail.add(line)
				var l struct{ Msg, Addr string }
				if json.Unmarshal(line, &l) == nil && l.Msg == "tyst serving" && l.Addr != "" {
					select {
					case addrc <- l.Addr:
					default:
					}
				}
			}
			if err != nil {
				break
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case addr := <-addrc:
		s.base = "http://" + addr
	case <-s.done:
		b.Fatalf("tyst serve exited before serving:\n%s", s.tail)
	case <-time.After(30 * time.Second):
		b.Fatalf("tyst serve did not log \"tyst serving\" within 30s:\n%s", s.tail)
	}
	return s
}

// stop sends SIGTERM and waits for the server to exit.
func (s *procServer) stop(b testing.TB) {
	b.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		b.Fatalf("tyst serve did not exit within 40s of SIGTERM:\n%s", s.tail)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		b.Fatalf("tyst serve exited with status %d:\n%s", code, s.tail)
	}
}

// logTail keeps the last lines the server logged, for error messages.
type logTail struct {
	mu    sync.Mutex
	lines [][]byte
}

func (t *logTail) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 20 {
		t.lines = t.lines[1:]
	}
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.Join(t.lines, nil))
}

// doRead sends req and returns the response with its body read whole.
func doRead(tb testing.TB, client *http.Client, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

var setupTokenRE = regexp.MustCompile(`"token":"(tyst_setup_[A-Za-z0-9_-]+)"`)

// firstAdmin completes the first-run setup of the server at base with the
// setup token found in its output (logs returns it so far), logs in, and
// returns an API token of that admin.
func firstAdmin(tb testing.TB, base string, logs func() string) string {
	tb.Helper()
	var setup string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := setupTokenRE.FindStringSubmatch(logs()); m != nil {
			setup = m[1]
			break
		}
	}
	if setup == "" {
		tb.Fatalf("no setup token in the server's output:\n%s", logs())
	}
	post := func(path, body string, cookie *http.Cookie) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		return doRead(tb, http.DefaultClient, req)
	}
	const password = "first admin password"
	if resp, body := post("/api/v1/setup", `{"token":"`+setup+`","username":"admin","password":"`+password+`"}`, nil); resp.StatusCode != 201 {
		tb.Fatalf("setup: %d %s", resp.StatusCode, body)
	}
	resp, body := post("/api/v1/session", `{"username":"admin","password":"`+password+`"}`, nil)
	if resp.StatusCode != 200 || len(resp.Cookies()) == 0 {
		tb.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	resp, body = post("/api/v1/tokens", `{"username":"admin"}`, resp.Cookies()[0])
	var tok struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &tok) != nil || tok.Token == "" {
		tb.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	return tok.Token
}

// bearer adds an API token to every request.
type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

// authClient is an HTTP client that sends token.
func authClient(token string) *http.Client {
	return &http.Client{Transport: bearer{token, http.DefaultTransport}}
}

// offlineToken creates an editor and its API token in data with the real
// binary before any server runs, so the server itself never hashes a
// password (its peak memory is then the upload's alone).
func offlineToken(tb testing.TB, bin, data, key string) string {
	tb.Helper()
	env := append(os.Environ(), "PROJECT_FILES_KEY="+key)
	add := exec.Command(bin, "user", "add", "--data", data, "--username", "bench", "--role", "editor", "--password-stdin")
	add.Env, add.Stdin = env, strings.NewReader("bench password 1234\n")
	if out, err := add.CombinedOutput(); err != nil {
		tb.Fatalf("user add: %v\n%s", err, out)
	}
	tok := exec.Command(bin, "token", "create", "--data", data, "--username", "bench")
	tok.Env = env
	out, err := tok.Output()
	if err != nil {
		tb.Fatalf("token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// startServing starts cmd, a tyst serve, and returns its "tyst serving" log
// line once it listens. Cleanup kills it if the test has not stopped it.
func startServing(t *testing.T, cmd *exec.Cmd) map[string]any {
	t.Helper()
	// An io.Pipe rather than StderrPipe: the test may Wait while the log
	// is still being read.
	stderr, w := io.Pipe()
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		w.Close()
	})
	serving := make(chan map[string]any, 1)
	tail := &logTail{}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			tail.add(append(sc.Bytes(), '\n'))
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "tyst serving" {
				serving <- l
			}
		}
		close(serving)
	}()
	select {
	case l, ok := <-serving:
		if !ok {
			t.Fatalf("serve exited before serving:\n%s", tail)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start within 30s:\n%s", tail)
	}
	return nil
}
