package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/internal/testproc"
)

// Helpers for tests and benchmarks that run the real binary.

// buildBinary builds tyst into dir.
func buildBinary(dir string) (string, error) { return testproc.Build(dir) }

// procServer is a running tyst serve.
type procServer struct {
	cmd  *exec.Cmd
	base string           // http://127.0.0.1:port
	done chan struct{}    // closed when the process has exited
	tail *testproc.Server // what it logged (String)
}

// startServer starts "tyst serve" on a free loopback port with data dir
// data, newsroom key key and extra environment env, and waits for its "tyst serving" log line.
func startServer(b testing.TB, bin, data, key string, env ...string) *procServer {
	b.Helper()
	p := testproc.Start(b, bin, "127.0.0.1:0", data, append([]string{"PROJECT_FILES_KEY=" + key}, env...)...)
	return &procServer{cmd: p.Cmd, base: p.Base, done: p.Done, tail: p}
}

// stop sends SIGTERM and waits for the server to exit with status 0.
func (s *procServer) stop(b testing.TB) {
	b.Helper()
	s.tail.Stop(b)
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
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "tyst_session" {
			session = c
		}
	}
	if resp.StatusCode != 200 || session == nil {
		tb.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	resp, body = post("/api/v1/tokens", `{"username":"admin"}`, session)
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
	return offlineUserToken(tb, bin, data, key, "bench", "editor")
}

// offlineUserToken makes a user with `tyst user add` and a token with
// `tyst token create`, offline, before the server starts.
func offlineUserToken(tb testing.TB, bin, data, key, username, role string) string {
	tb.Helper()
	env := append(os.Environ(), "PROJECT_FILES_KEY="+key)
	add := exec.Command(bin, "user", "add", "--data", data, "--username", username, "--role", role, "--password-stdin")
	add.Env, add.Stdin = env, strings.NewReader(username+" password 1234\n")
	if out, err := add.CombinedOutput(); err != nil {
		tb.Fatalf("user add: %v\n%s", err, out)
	}
	tok := exec.Command(bin, "token", "create", "--data", data, "--username", username)
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
