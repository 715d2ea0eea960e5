package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/internal/testlog"
	"tyst/store"
)

func TestServe_RefusesBadSetup(t *testing.T) {
	clearKeyEnv(t)
	secret := "S3CRET-not-a-key-value"
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	goodKey := store.GenerateKey()
	openKeyFile := filepath.Join(dir, "open.key")
	os.WriteFile(openKeyFile, []byte(goodKey+"\n"), 0o600)
	os.Chmod(openKeyFile, 0o640) // readable by the group: refused, as ssh refuses such a private key
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
		"NonLoopback":  {nil, []string{"--listen", "0.0.0.0:0"}, "--tls-cert and --tls-key, or --allow-plain-http"},
		"AllInterface": {nil, []string{"--listen", ":0"}, "--allow-plain-http"},
		"TLSHalf":      {nil, []string{"--tls-cert", aFile}, "--tls-cert and --tls-key go together"},
		"KeyFileOpen":  {nil, []string{"--key-file", openKeyFile}, "chmod 600"},
		"KeyFileZero":  {nil, []string{"--key-file", "/dev/zero"}, "--key-file"},
		"KeyFileDir":   {nil, []string{"--key-file", dir}, "not a regular file"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			data := filepath.Join(t.TempDir(), "d")
			args := append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, c.args...)
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
			if strings.Contains(errOut, secret) || strings.Contains(errOut, goodKey) || strings.Contains(errOut, dir) {
				t.Fatalf("stderr shows the value or a path: %q", errOut)
			}
			// A bad setting is found before anything is written.
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data directory was made: %v", err)
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
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
	stderr := srv.stderr
	base := "http://" + srv.addr

	client := authClient(firstAdmin(t, base, stderr.String))
	resp, err := client.Post(base+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
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

	if err := srv.stop(t); err != nil {
		t.Fatalf("serve returned %v after shutdown", err)
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

// inProc is `tyst serve` running in-process on a free loopback port.
type inProc struct {
	addr   string
	stderr *testlog.Buffer
	cancel context.CancelFunc
	done   chan error
}

// serveInProcess runs `tyst serve` with args and waits until it listens.
func serveInProcess(t *testing.T, args ...string) *inProc {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &inProc{stderr: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() {
		p.done <- run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), io.Discard, p.stderr)
	}()
	p.addr = waitForAddr(t, p.stderr, p.done)
	return p
}

// stop shuts the server down and returns what serve returned.
func (p *inProc) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not shut down")
		return nil
	}
}

// waitForAddr reads the "tyst serving" log line for the listening address.
func waitForAddr(t *testing.T, stderr *testlog.Buffer, done chan error) string {
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

// TestServe_RefusesWrongKey: after the operator switches from the
// generated key to their own without keeping the old one, serve and the
// offline commands refuse to start and name the key id the data needs,
// never a key or a path; with the old key kept they start.
func TestServe_RefusesWrongKey(t *testing.T) {
	clearKeyEnv(t)
	data := filepath.Join(t.TempDir(), "d")
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
	client := authClient(firstAdmin(t, "http://"+srv.addr, srv.stderr.String))
	resp, err := client.Post("http://"+srv.addr+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.stop(t)
	generated := readTrimmed(t, filepath.Join(data, "files.key"))
	kr, _ := store.NewKeyring(generated)

	newKey := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", newKey)
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--data", data},
		{"token", "create", "--data", data, "--username", "admin"},
	} {
		out, stderr, code := runCmd(t, nil, args...)
		if code != 1 || out != "" {
			t.Fatalf("%s with the wrong key: code %d, stdout %q", args[0], code, out)
		}
		if !strings.Contains(stderr, "no configured key opens this data: wrong key?") || !strings.Contains(stderr, kr.PrimaryID()) {
			t.Fatalf("%s: message does not say wrong key and name the key id:\n%s", args[0], stderr)
		}
		for _, secret := range []string{newKey, generated, data} {
			if strings.Contains(stderr, secret) {
				t.Fatalf("%s: message shows a key or the path:\n%s", args[0], stderr)
			}
		}
	}
	t.Setenv("PROJECT_FILES_OLD_KEYS", generated)
	srv = serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
	srv.stop(t)
}

// TestServe_TLS: with a certificate, serve speaks HTTPS on any address and
// marks the session cookie Secure; --allow-plain-http opens a non-loopback
// address without TLS for a proxy in front.
func TestServe_TLS(t *testing.T) {
	clearKeyEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mustSelfSigned(t, certFile, keyFile)
	srv := serveInProcess(t, "--listen", "0.0.0.0:0", "--data", filepath.Join(dir, "d"), "--tls-cert", certFile, "--tls-key", keyFile)
	stderr := srv.stderr
	_, port, _ := net.SplitHostPort(srv.addr)
	base := "https://127.0.0.1:" + port
	insecure := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // our own self-signed test certificate
	m := setupTokenRE.FindStringSubmatch(waitFor(t, stderr, "tyst_setup_"))
	if m == nil || !strings.Contains(stderr.String(), "https://") {
		t.Fatalf("no https setup line:\n%s", stderr.String())
	}
	client := &http.Client{Transport: insecure}
	post := func(path, body string) *http.Response {
		resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("/api/v1/setup", `{"token":"`+m[1]+`","username":"admin","password":"first admin password"}`); resp.StatusCode != 201 {
		t.Fatalf("setup over TLS: %d", resp.StatusCode)
	}
	resp := post("/api/v1/session", `{"username":"admin","password":"first admin password"}`)
	secure := 0
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Fatalf("a cookie without Secure over TLS: %+v", c)
		}
		if c.Name == "tyst_session" || c.Name == "tyst_device" {
			secure++
		}
	}
	if secure != 2 {
		t.Fatalf("session and device cookies over TLS: %+v", resp.Cookies())
	}
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("plain HTTP on the TLS port: %d, want Go's 400 refusal", resp.StatusCode)
		}
	}
	// net/http logs that failed handshake with the client's address; the
	// log must say only what happened.
	waitFor(t, stderr, "tls handshake failed")
	if strings.Contains(stderr.String(), "127.0.0.1:") && strings.Contains(stderr.String(), "handshake error from") {
		t.Fatalf("the log names the client:\n%s", stderr.String())
	}
	srv.stop(t)

	plain := serveInProcess(t, "--listen", "0.0.0.0:0", "--data", filepath.Join(dir, "d2"), "--allow-plain-http")
	if err := plain.stop(t); err != nil {
		t.Fatalf("--allow-plain-http serve: %v", err)
	}
}

// waitFor waits until the buffer holds s and returns it.
func waitFor(t *testing.T, b *testlog.Buffer, s string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out := b.String(); strings.Contains(out, s) {
			return out
		}
	}
	t.Fatalf("output never held %q:\n%s", s, b.String())
	return ""
}

// mustSelfSigned writes a self-signed certificate for 127.0.0.1.
func mustSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tyst test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// TestServe_AdminSocket: while serve runs (and holds the database), `tyst
// user add` and `tyst token create` work through <data>/admin.sock, and the
// token works on the HTTP API.
func TestServe_AdminSocket(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
	data := filepath.Join(t.TempDir(), "d")
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
	addr, stderr := srv.addr, srv.stderr
	st, err := os.Stat(filepath.Join(data, "admin.sock"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("admin.sock: %v %v", st, err)
	}
	if _, errOut, code := runCmd(t, strings.NewReader("a long enough password\n"), "user", "add", "--data", data, "--username", "fieldbox", "--role", "editor", "--password-stdin"); code != 0 {
		t.Fatalf("user add: exit %d %s", code, errOut)
	}
	out, errOut, code := runCmd(t, nil, "token", "create", "--data", data, "--username", "fieldbox", "--scope", "stream")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "tyst_t_") {
		t.Fatalf("token create: exit %d %q %s", code, out, errOut)
	}
	client := authClient(tok)
	resp, err := client.Post("http://"+addr+"/api/v1/record", "application/json", strings.NewReader(`{"title":"from the field"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("stream token create: %d", resp.StatusCode)
	}
	resp, err = client.Get("http://" + addr + "/api/v1/records")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("stream token listing records: %d, want 403", resp.StatusCode)
	}
	if logs := stderr.String(); strings.Contains(logs, "fieldbox") || strings.Contains(logs, tok) || strings.Contains(logs, "a long enough password") {
		t.Fatal("the server log holds the username, password or token")
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "admin.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("admin.sock left after shutdown: %v", err)
	}
}

// TestServe_RefusesToGenerateBesideData: a data directory written under a
// key is never given a new generated key when the key is forgotten.
func TestServe_RefusesToGenerateBesideData(t *testing.T) {
	clearKeyEnv(t)
	data := filepath.Join(t.TempDir(), "d")
	t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
	if err := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data).stop(t); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROJECT_FILES_KEY", "") // the operator forgot the key
	_, errOut, code := runCmd(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", data)
	if code != 1 || !strings.Contains(errOut, "holds data") || !strings.Contains(errOut, "--key-file") || !strings.Contains(errOut, "PROJECT_FILES_KEY") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming --key-file and PROJECT_FILES_KEY", code, errOut)
	}
	if strings.Contains(errOut, data) {
		t.Fatalf("stderr names the path: %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "files.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key was generated beside existing data: %v", err)
	}
}

// TestServe_WarnsOfGeneratedKey: while <data>/files.key exists but another
// key is the primary, every start warns with the number of items it still
// covers, and says it can go once it covers none.
func TestServe_WarnsOfGeneratedKey(t *testing.T) {
	clearKeyEnv(t)
	start := func(t *testing.T, data string, env ...string) string {
		t.Helper()
		for i := 0; i < len(env); i += 2 {
			t.Setenv(env[i], env[i+1])
		}
		srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
		if err := srv.stop(t); err != nil {
			t.Fatal(err)
		}
		return srv.stderr.String()
	}
	generated := func(t *testing.T, data string) (key, id string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(data, "files.key"))
		if err != nil {
			t.Fatal(err)
		}
		key = strings.TrimSpace(string(b))
		id, err = store.KeyID(key)
		if err != nil {
			t.Fatal(err)
		}
		return key, id
	}
	const covers, coversNone = "still lies beside the data and covers stored items", "covers no stored items"

	t.Run("CoversItems", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "d")
		srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data) // the quick start: a generated key
		client := authClient(firstAdmin(t, "http://"+srv.addr, srv.stderr.String))
		resp, err := client.Post("http://"+srv.addr+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.stop(t)
		genKey, genID := generated(t, data)

		newKey := store.GenerateKey()
		for i := 0; i < 2; i++ { // every start
			logs := start(t, data, "PROJECT_FILES_KEY", newKey, "PROJECT_FILES_OLD_KEYS", genKey)
			line := logLine(t, logs, covers)
			if line["key_id"] != genID || line["items"].(float64) < 3 { // the admin, the project, the record
				t.Fatalf("warning %v: want key id %s and at least 3 items", line, genID)
			}
			if strings.Contains(logs, genKey) || strings.Contains(logs, data) {
				t.Fatal("the log shows the key or the path")
			}
		}
	})
	t.Run("CoversNothing", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "d")
		start(t, data)
		genKey, genID := generated(t, data)
		newKey := store.GenerateKey()
		logs := start(t, data, "PROJECT_FILES_KEY", newKey, "PROJECT_FILES_OLD_KEYS", genKey)
		if line := logLine(t, logs, coversNone); line["key_id"] != genID || !strings.Contains(line["msg"].(string), "remove the file") {
			t.Fatalf("warning %v: want key id %s and advice to remove the file", line, genID)
		}
		if strings.Contains(logs, covers) {
			t.Fatal("warned of covered items")
		}
		// The same key given as PROJECT_FILES_KEY is not a leftover.
		if logs := start(t, data, "PROJECT_FILES_KEY", genKey, "PROJECT_FILES_OLD_KEYS", newKey); strings.Contains(logs, "files.key in the data directory) still") {
			t.Fatalf("warned although files.key is the primary key:\n%s", logs)
		}
	})
}

// logLine returns the JSON log line whose message contains msg.
func logLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && strings.Contains(fmt.Sprint(line["msg"]), msg) {
			return line
		}
	}
	t.Fatalf("no log line with %q in:\n%s", msg, logs)
	return nil
}

// readTrimmed returns the file at path without surrounding white space.
func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
