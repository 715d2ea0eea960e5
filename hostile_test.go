package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tyst/store"
)

// Bounds that TestServe_HostileClient holds a running tyst serve to.
const (
	hostileConns     = 200 // never-reading downloads, and as many trickling uploads
	hostileMaxRSSMiB = 96  // the server's peak RSS (VmHWM) over the whole test
	hostileAudioMiB  = 32  // larger than every socket buffer between client and server
)

// TestServe_HostileClient runs the built binary and lets one viewer open
// hundreds of downloads that it never reads, and one field-box stream token
// hundreds of uploads that trickle a byte a second, at once. It shows that
//
//   - all but each account's share (4 downloads, 2 uploads by default) are
//     refused at once with 429, Retry-After and a closed connection;
//   - the server's peak RSS stays under hostileMaxRSSMiB;
//   - another viewer downloads the whole audio and another editor uploads
//     meanwhile;
//   - the downloads in progress are cut off by the write idle timeout and
//     the uploads by the upload rate floor (short values via the
//     environment here), so every hostile connection is closed and the
//     server holds no socket beyond its listener afterwards.
func TestServe_HostileClient(t *testing.T) {
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, key := t.TempDir(), store.GenerateKey()
	owner := offlineUser(t, bin, data, key, "owner", store.RoleEditor, "")
	hostile := offlineUser(t, bin, data, key, "hostile", store.RoleViewer, "")
	fieldBox := offlineUser(t, bin, data, key, "fieldbox", store.RoleEditor, store.ScopeStream)
	other := offlineUser(t, bin, data, key, "other", store.RoleViewer, "")
	srv := startServer(t, bin, data, key,
		"TYST_WRITE_IDLE_TIMEOUT=5s", "TYST_UPLOAD_GRACE=5s", "TYST_UPLOAD_MIN_RATE=4096")
	pid := srv.cmd.Process.Pid
	host := strings.TrimPrefix(srv.base, "http://")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := func(token string) *http.Client {
		return &http.Client{Transport: bearer{token, tr}, Timeout: 2 * time.Minute}
	}

	// The audio, uploaded by its owner; and a record per trickling upload,
	// made by the field box (a stream token uploads only into its own).
	audio := hostileWAV(hostileAudioMiB << 20)
	sum := sha256.Sum256(audio)
	id := hostileCreate(t, client(owner), srv.base)
	if status := hostilePost(t, client(owner), srv.base, id, audio); status != 201 {
		t.Fatalf("owner's upload: %d", status)
	}
	path := fmt.Sprintf("/api/v1/record/%d/audio", id)
	boxRecords := make([]uint64, hostileConns)
	for i := range boxRecords {
		boxRecords[i] = hostileCreate(t, client(fieldBox), srv.base)
	}
	spare := hostileCreate(t, client(owner), srv.base)
	tr.CloseIdleConnections()
	baseSockets := serverSockets(t, pid)
	t.Logf("before the attack: RSS %.1f MiB, peak %.1f MiB, %d sockets", procMiB(t, pid, "VmRSS"), procMiB(t, pid, "VmHWM"), baseSockets)

	// The attack: every connection at once.
	type result struct {
		status int
		conn   net.Conn
	}
	results := make(chan result, 2*hostileConns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range hostileConns {
		wg.Add(2)
		go func() { // a download it never reads
			defer wg.Done()
			conn := dialTiny(t, host)
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path, host, hostile)
			results <- result{hostileStatus(conn), conn}
		}()
		go func() { // an upload that trickles a byte a second after its first 4 KiB
			defer wg.Done()
			conn := dialTiny(t, host)
			head := "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: audio/wav\r\n\r\n"
			fmt.Fprintf(conn, "POST /api/v1/record/%d/audio HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n%s",
				boxRecords[i], host, fieldBox, len(head)+len(audio), head)
			conn.Write(audio[:4096])
			go func() {
				for j := 4096; j < len(audio); j++ {
					time.Sleep(time.Second)
					if _, err := conn.Write(audio[j : j+1]); err != nil {
						return
					}
				}
			}()
			results <- result{hostileStatus(conn), conn}
		}()
	}

	// Meanwhile: RSS, and other users are served.
	var peakRSS float64
	sample := func() {
		if v := procMiB(t, pid, "VmRSS"); v > peakRSS {
			peakRSS = v
		}
	}
	sample()
	got, err := func() ([]byte, error) {
		req, _ := http.NewRequest("GET", srv.base+path, nil)
		resp, err := client(other).Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return io.ReadAll(resp.Body)
	}()
	if err != nil || sha256.Sum256(got) != sum {
		t.Fatalf("another viewer's download during the attack: %d bytes, %v", len(got), err)
	}
	sample()
	if status := hostilePost(t, client(owner), srv.base, spare, audio[:4<<20]); status != 201 {
		t.Fatalf("another editor's upload during the attack: %d", status)
	}
	sample()
	served := time.Since(start)

	wg.Wait()
	statuses := map[int]int{}
	var conns []net.Conn
	for range 2 * hostileConns {
		r := <-results
		statuses[r.status]++
		conns = append(conns, r.conn)
	}
	t.Logf("answers to the %d hostile requests: %v; other users served within %v", 2*hostileConns, statuses, served.Round(time.Millisecond))
	// 4 downloads get their 200 header and stall; 2 uploads get no answer
	// until the rate floor ends them with 400; the rest are refused at once.
	if statuses[200] != 4 || statuses[400] != 2 || statuses[429] != 2*hostileConns-6 {
		t.Errorf("answers %v, want 4×200, 2×400 and %d×429", statuses, 2*hostileConns-6)
	}

	// The server closes every hostile connection by itself: the stalled
	// downloads when a write has blocked for 5 s, the trickling uploads when
	// they fall under 4 KiB/s after their 5 s of grace. Nothing is read from
	// them meanwhile (reading would let the downloads go on).
	tr.CloseIdleConnections()
	sockets := serverSockets(t, pid)
	for deadline := time.Now().Add(30 * time.Second); sockets > baseSockets && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		sample()
		sockets = serverSockets(t, pid)
	}
	last := time.Since(start)
	if sockets > baseSockets {
		t.Fatalf("the server still holds %d sockets %v after the attack began, %d before", sockets, last, baseSockets)
	}
	// On the client side each connection ends: what the server had sent
	// drains, then EOF or a reset; nothing more than a file's worth.
	var drained sync.WaitGroup
	var mu sync.Mutex
	var maxDrained int64
	for _, c := range conns {
		drained.Add(1)
		go func() {
			defer drained.Done()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if err != nil && !strings.Contains(err.Error(), "reset") {
				t.Errorf("a hostile connection did not end after %d bytes: %v", n, err)
			}
			mu.Lock()
			maxDrained = max(maxDrained, n)
			mu.Unlock()
		}()
	}
	drained.Wait()
	if maxDrained >= int64(len(audio)) {
		t.Errorf("a never-reading download was sent the whole file (%d bytes)", maxDrained)
	}
	sample()
	peak := procMiB(t, pid, "VmHWM")
	t.Logf("after the attack: all hostile connections closed within %v; RSS %.1f MiB, sampled RSS peak %.1f MiB, VmHWM %.1f MiB, %d sockets",
		last.Round(time.Millisecond), procMiB(t, pid, "VmRSS"), peakRSS, peak, sockets)
	if peak > hostileMaxRSSMiB {
		t.Errorf("peak RSS %.1f MiB > %d MiB", peak, hostileMaxRSSMiB)
	}
	srv.stop(t)
}

// hostileStatus reads the status of the first answer on conn, or 0 when
// none comes within 20 s. It reads only the header: the body of a download
// stays unread. An upload in progress answers only when it ends.
func hostileStatus(conn net.Conn) int {
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		return 0
	}
	if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") == "" || !resp.Close) {
		return -429 // counted apart: a refusal without Retry-After or Connection: close
	}
	return resp.StatusCode
}

// dialTiny connects with a 4 KiB receive buffer, so a client that does not
// read stalls the server's writes after little.
func dialTiny(t *testing.T, addr string) net.Conn {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nil
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// serverSockets counts the sockets the process pid holds open.
func serverSockets(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("counting the server's sockets needs /proc: %v", err)
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// procMiB reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status in MiB.
func procMiB(t *testing.T, pid int, field string) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's RSS needs /proc: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, v, err)
			}
			return float64(kib) / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// offlineUser creates an account with the real binary before the server
// runs and returns an API token for it (scope "" or store.ScopeStream).
func offlineUser(t *testing.T, bin, data, key, name, role, scope string) string {
	t.Helper()
	env := append(os.Environ(), "PROJECT_FILES_KEY="+key)
	add := exec.Command(bin, "user", "add", "--data", data, "--username", name, "--role", role, "--password-stdin")
	add.Env, add.Stdin = env, strings.NewReader("a long hostile-test password\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	args := []string{"token", "create", "--data", data, "--username", name}
	if scope != "" {
		args = append(args, "--scope", scope)
	}
	tok := exec.Command(bin, args...)
	tok.Env = env
	out, err := tok.Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// hostileCreate creates a record and returns its id.
func hostileCreate(t *testing.T, c *http.Client, base string) uint64 {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/record", strings.NewReader(`{"title":"hostile"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body := doRead(t, c, req)
	var rec struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &rec) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	return rec.TranscriptID
}

// hostilePost uploads audio to record id and returns the status.
func hostilePost(t *testing.T, c *http.Client, base string, id uint64, audio []byte) int {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="a.wav"`)
	h.Set("Content-Type", "audio/wav")
	pw, _ := mw.CreatePart(h)
	pw.Write(audio)
	mw.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/record/%d/audio", base, id), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, body := doRead(t, c, req)
	if resp.StatusCode != 201 {
		t.Logf("upload: %d %s", resp.StatusCode, body)
	}
	return resp.StatusCode
}

// hostileWAV is a 16 kHz mono WAV of n bytes in all.
func hostileWAV(n int) []byte {
	var b bytes.Buffer
	benchWriteInput(&b, int64(n))
	return b.Bytes()
}
