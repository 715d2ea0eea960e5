// Package testproc runs the real tyst binary for tests: it builds it,
// starts `tyst serve` on a free loopback port, waits for its "tyst serving"
// log line, keeps everything it logs, and stops it.
package testproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds the tyst module's main package into dir and returns the
// binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "tyst")
	cmd := exec.Command("go", "build", "-o", bin, "tyst")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Env is the test process's environment without tyst's own settings, so
// that a developer's shell cannot change what a test runs; extra is
// appended.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "TYST_"), strings.HasPrefix(kv, "PROJECT_FILES_"),
			strings.HasPrefix(kv, "RECORDER_"), strings.HasPrefix(kv, "ECHOPANEL_"):
		default:
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Server is a running tyst serve.
type Server struct {
	Cmd  *exec.Cmd
	Base string        // http://host:port
	Done chan struct{} // closed when the process has exited

	mu  sync.Mutex
	log bytes.Buffer // everything it wrote to stderr
}

// Start runs `bin serve --listen listen --data data` with Env(env...),
// and returns once it logs "tyst serving". The process is killed when the
// test ends, if it still runs.
func Start(tb testing.TB, bin, listen, data string, env ...string) *Server {
	tb.Helper()
	cmd := exec.Command(bin, "serve", "--listen", listen, "--data", data)
	cmd.Env = Env(env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Cmd: cmd, Done: make(chan struct{})}
	tb.Cleanup(func() { // after a Fatal too: never leave a server running
		select {
		case <-s.Done:
		default:
			cmd.Process.Kill()
			<-s.Done
		}
	})
	addrc := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				s.mu.Lock()
				s.log.Write(line)
				s.mu.Unlock()
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
		close(s.Done)
	}()
	select {
	case addr := <-addrc:
		s.Base = "http://" + addr
	case <-s.Done:
		tb.Fatalf("tyst serve exited before serving:\n%s", s.Tail(40))
	case <-time.After(30 * time.Second):
		tb.Fatalf("tyst serve did not log \"tyst serving\" within 30 s:\n%s", s.Tail(40))
	}
	return s
}

// String returns everything the server has logged.
func (s *Server) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Tail returns the last n lines the server logged, for failure messages.
func (s *Server) Tail(n int) string {
	lines := strings.SplitAfter(s.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// Stop sends SIGTERM and waits for the server to exit with status 0.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-s.Done:
	case <-time.After(40 * time.Second):
		tb.Fatalf("tyst serve did not exit within 40 s of SIGTERM:\n%s", s.Tail(40))
	}
	if code := s.Cmd.ProcessState.ExitCode(); code != 0 {
		tb.Fatalf("tyst serve exited with status %d:\n%s", code, s.Tail(40))
	}
}

// Signal sends sig to the server.
func (s *Server) Signal(sig os.Signal) error { return s.Cmd.Process.Signal(sig) }
