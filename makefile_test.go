package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMakefile: `make build` stamps the version, and `make run` runs that
// same binary, so Ctrl-C (SIGINT to the terminal's process group) reaches
// serve directly: it exits 0 and make reports no error. It runs in a copy
// of the module, so the worktree gets no ./tyst.
func TestMakefile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	clearKeyEnv(t)
	dir := t.TempDir()
	mustCopyModule(t, dir)
	const version = "v0.0.0-maketest"

	build := exec.Command(mk, "-s", "build", "VERSION="+version)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "tyst"), "version").Output()
	if err != nil || string(out) != "tyst "+version+"\n" {
		t.Fatalf("tyst version after make build: %q, %v", out, err)
	}

	run := exec.Command(mk, "run", "VERSION="+version)
	run.Dir = dir
	run.Env = append(os.Environ(), "TYST_LISTEN=127.0.0.1:0", "TYST_DATA_DIR="+filepath.Join(dir, "data"))
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's job: make and its children in one group
	var mu sync.Mutex
	var output bytes.Buffer
	r, w := io.Pipe()
	run.Stdout, run.Stderr = w, w
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if run.ProcessState == nil {
			syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			run.Wait()
		}
		w.Close()
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			mu.Lock()
			output.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return output.String() }
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(text(), `"msg":"tyst serving"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("make run did not start serve:\n%s", text())
		}
	}
	if !strings.Contains(text(), `"version":"`+version+`"`) {
		t.Fatalf("make run serves another version than make build:\n%s", text())
	}
	if strings.Contains(text(), "go run") {
		t.Fatalf("make run goes through go run:\n%s", text())
	}
	syscall.Kill(-run.Process.Pid, syscall.SIGINT) // Ctrl-C
	errc := make(chan error, 1)
	go func() { errc <- run.Wait() }()
	select {
	case err := <-errc:
		// make passes Ctrl-C on by dying of SIGINT itself, silently when
		// serve exited 0; "make: *** … Error 1" or "Interrupt" means not.
		var ee *exec.ExitError
		interrupted := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT
		if (err != nil && !interrupted) || strings.Contains(text(), "make: ***") {
			t.Fatalf("make run after Ctrl-C: %v\n%s", err, text())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("make run did not end after Ctrl-C:\n%s", text())
	}
	if !strings.Contains(text(), "shutting down") {
		t.Fatalf("serve did not shut down gracefully:\n%s", text())
	}
}

// mustCopyModule copies the module's source files (not .git, builds or
// data) into dir.
func mustCopyModule(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch name := d.Name(); {
		case path == ".":
			return nil
		case d.IsDir() && (name == ".git" || name == "dist" || name == "tyst-data"):
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dir, path), 0o755)
		case !d.Type().IsRegular() || path == "tyst" || name == ".git":
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
