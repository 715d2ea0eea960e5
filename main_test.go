package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/store"
	"tyst/store/fstream"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runCmd runs the CLI in-process and returns stdout, stderr and the exit code.
func runCmd(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr lockedBuffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err := run(t.Context(), args, stdin, &stdout, &stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(&stderr, "tyst:", err)
	}
	return stdout.String(), stderr.String(), exitCode(err)
}

// clearKeyEnv makes the test independent of the caller's environment.
func clearKeyEnv(t *testing.T) {
	for _, k := range []string{"PROJECT_FILES_KEY", "PROJECT_FILES_OLD_KEYS", "TYST_KEY_FILE", "TYST_LISTEN", "TYST_DATA_DIR", "TYST_MAX_UPLOAD_MB", "RECORDER_RETENTION_DAYS"} {
		t.Setenv(k, "")
	}
}

func TestVersionAndHelp(t *testing.T) {
	clearKeyEnv(t)
	out, _, code := runCmd(t, nil, "version")
	if code != 0 || out != "tyst dev\n" {
		t.Fatalf("version: %q code %d", out, code)
	}
	_, errOut, code := runCmd(t, nil, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help exit %d", code)
	}
	for _, flagName := range []string{"-listen", "-data", "-key-file", "-max-upload-mb", "TYST_LISTEN", "TYST_DATA_DIR"} {
		if !strings.Contains(errOut, flagName) {
			t.Fatalf("serve --help does not mention %s:\n%s", flagName, errOut)
		}
	}
	for _, cmd := range []string{"keygen", "decrypt"} {
		if _, _, code := runCmd(t, nil, cmd, "--help"); code != 0 {
			t.Fatalf("%s --help exit %d", cmd, code)
		}
	}
	if _, errOut, code := runCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	if _, _, code := runCmd(t, nil); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, nil, "serve", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}

func TestKeygen(t *testing.T) {
	out, _, code := runCmd(t, nil, "keygen")
	key := strings.TrimSpace(out)
	if code != 0 || len(key) != 44 {
		t.Fatalf("keygen: %q exit %d", out, code)
	}
	if _, err := store.NewKeyring(key); err != nil {
		t.Fatalf("keygen printed an unusable key: %v", err)
	}
	out2, _, _ := runCmd(t, nil, "keygen")
	if out2 == out {
		t.Fatal("keygen printed the same key twice")
	}
}

func TestDecrypt(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	plain := bytes.Repeat([]byte("audio bytes "), 200_000) // 2.4 MB: three chunks
	var enc bytes.Buffer
	w, err := fstream.NewWriter(&enc, kr.Primary())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()

	t.Run("Env", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", key)
		out, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt")
		if code != 0 || out != string(plain) {
			t.Fatalf("exit %d, equal=%v, stderr %q", code, out == string(plain), errOut)
		}
	})
	t.Run("KeyFile", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey()) // the flag wins
		kf := filepath.Join(t.TempDir(), "key")
		os.WriteFile(kf, []byte(key+"\n"), 0o600)
		out, _, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt", "--key-file", kf)
		if code != 0 || out != string(plain) {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("OldKey", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
		t.Setenv("PROJECT_FILES_OLD_KEYS", store.GenerateKey()+","+key)
		if out, _, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt"); code != 0 || out != string(plain) {
			t.Fatalf("exit %d", code)
		}
	})
	for name, c := range map[string]struct {
		key string
		in  []byte
	}{
		"WrongKey":  {store.GenerateKey(), enc.Bytes()},
		"Truncated": {key, enc.Bytes()[:enc.Len()-100]},
		"NotStream": {key, []byte("RIFF....WAVEfmt plain audio\n")},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			t.Setenv("PROJECT_FILES_KEY", c.key)
			_, errOut, code := runCmd(t, bytes.NewReader(c.in), "decrypt")
			if code != 1 || !strings.Contains(errOut, "damaged, incomplete, or not encrypted under the given key") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
	t.Run("ErrNoKey", func(t *testing.T) {
		if _, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt"); code != 2 || !strings.Contains(errOut, "PROJECT_FILES_KEY") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})
}

func TestServe_RefusesBadSetup(t *testing.T) {
	clearKeyEnv(t)
	secret := "S3CRET-not-a-key-value"
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	for name, c := range map[string]struct {
		env     map[string]string
		args    []string
		mention string
	}{
		"KeyNotBase64": {map[string]string{"PROJECT_FILES_KEY": secret}, nil, "PROJECT_FILES_KEY"},
		"KeyWrongSize": {map[string]string{"PROJECT_FILES_KEY": "c2hvcnQta2V5LXZhbHVl"}, nil, "PROJECT_FILES_KEY"},
		"OldKeyBad":    {map[string]string{"PROJECT_FILES_KEY": store.GenerateKey(), "PROJECT_FILES_OLD_KEYS": secret}, nil, "PROJECT_FILES_OLD_KEYS"},
		"KeyFileBad":   {nil, []string{"--key-file", aFile}, "--key-file"},
		"DataIsAFile":  {nil, []string{"--data", filepath.Join(aFile, "sub")}, "data directory"},
		"BadListen":    {nil, []string{"--listen", "not an address"}, "--listen"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "d"), "--listen", "127.0.0.1:0"}, c.args...)
			done := make(chan struct{})
			var errOut string
			var code int
			go func() {
				defer close(done)
				_, errOut, code = runCmd(t, nil, args...)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop on a bad setting")
			}
			if code == 0 || !strings.Contains(errOut, c.mention) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %s", code, errOut, c.mention)
			}
			if strings.Contains(errOut, secret) || strings.Contains(errOut, dir) {
				t.Fatalf("stderr shows the value or a path: %q", errOut)
			}
		})
	}
}

// TestServe runs `tyst serve` in-process as `make run` does: no key given,
// so a key is generated beside the data with a loud warning; then it serves
// real HTTP until the context is cancelled, and shuts down cleanly.
func TestServe(t *testing.T) {
	clearKeyEnv(t)
	data := filepath.Join(t.TempDir(), "tyst-data")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", data}, strings.NewReader(""), io.Discard, &stderr)
	}()
	addr := waitForAddr(t, &stderr, done)
	base := "http://" + addr

	resp, err := http.Post(base+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not shut down")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "NO NEWSROOM KEY GIVEN") {
		t.Fatalf("no key warning in:\n%s", logs)
	}
	if strings.Contains(logs, data) {
		t.Fatal("the log names the data path")
	}
	st, err := os.Stat(filepath.Join(data, "files.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("files.key: %v, %v", st, err)
	}
	key, _ := os.ReadFile(filepath.Join(data, "files.key"))
	if strings.Contains(logs, strings.TrimSpace(string(key))) {
		t.Fatal("the log shows the key")
	}
	if st, _ := os.Stat(data); st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, want 0700", st.Mode().Perm())
	}
}

// waitForAddr reads the "tyst serving" log line for the listening address.
func waitForAddr(t *testing.T, stderr *lockedBuffer, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, stderr.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "tyst serving" {
				return line.Addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve did not start:\n%s", stderr.String())
	return ""
}

// TestServe_WarnsOfUnconfiguredKey: after the operator switches from the
// generated key to their own, serve says which key id the old items need.
func TestServe_WarnsOfUnconfiguredKey(t *testing.T) {
	clearKeyEnv(t)
	data := filepath.Join(t.TempDir(), "d")
	for i, key := range []string{"", store.GenerateKey()} {
		t.Setenv("PROJECT_FILES_KEY", key)
		ctx, cancel := context.WithCancel(t.Context())
		var stderr lockedBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", data}, strings.NewReader(""), io.Discard, &stderr)
		}()
		addr := waitForAddr(t, &stderr, done)
		if i == 0 {
			resp, err := http.Post("http://"+addr+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		} else if !strings.Contains(stderr.String(), "not configured: add it to PROJECT_FILES_OLD_KEYS") {
			t.Fatalf("no warning about the generated key's items:\n%s", stderr.String())
		}
		cancel()
		<-done
	}
}
