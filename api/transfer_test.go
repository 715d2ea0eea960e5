package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/api"
	"tyst/store"
)

// dialSmall connects to the test server with a 4 KiB receive buffer, so a
// client that does not read stalls the server's writes quickly.
func dialSmall(tb testing.TB, ts *testServer) net.Conn {
	tb.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// rawRequest writes a request by hand: method, path, token and extra
// header lines ("Name: value"), with a body of body (none when empty).
func rawRequest(tb testing.TB, conn net.Conn, method, path, token string, body string, hdr ...string) {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		tb.Fatal(err)
	}
}

// readHead reads one response's status and header (not its body) within 10 s.
func readHead(tb testing.TB, br *bufio.Reader, conn net.Conn) *http.Response {
	tb.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("reading a response: %v", err)
	}
	conn.SetReadDeadline(time.Time{})
	return resp
}

// accessLines counts the access log lines of the audio route with status.
func (ts *testServer) accessLines(method string, status int) int {
	n := 0
	for line := range strings.Lines(ts.log.String()) {
		var l struct {
			Msg, Method, Route string
			Status             int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Method == method &&
			l.Route == "/api/v1/record/:id/audio" && l.Status == status {
			n++
		}
	}
	return n
}

// eventually polls cond every 20 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// audioServer is a server with one record whose audio is big enough that a
// client that does not read stalls the download.
func audioServer(t *testing.T, opts ...serverOption) (ts *testServer, id uint64, path string, data []byte) {
	t.Helper()
	ts = mustServe(t, opts...)
	data = bigWAV(8 << 20)
	id = ts.mustCreate(t, "big")
	if resp, body := ts.upload(t, id, "audio/wav", data); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return ts, id, fmt.Sprintf("/api/v1/record/%d/audio", id), data
}

// TestAudio_StalledDownloadIsCut: a client that requests the audio and
// stops reading is cut off once one write has blocked for the write idle
// timeout: the handler ends (its access line is logged with the bytes it
// got out), the connection is closed, and the audio is served to the next
// client as before.
func TestAudio_StalledDownloadIsCut(t *testing.T) {
	ts, _, path, data := audioServer(t, func(_ *store.Options, c *api.Config) { c.WriteIdleTimeout = 300 * time.Millisecond })
	conn := dialSmall(t, ts)
	rawRequest(t, conn, "GET", path, ts.token, "")
	start := time.Now()
	if !eventually(10*time.Second, func() bool { return ts.accessLines("GET", 200) == 1 }) {
		t.Fatal("the stalled download still runs 10 s later")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("cut off after %v, before the write idle timeout", d)
	}
	// The connection is closed: what was buffered drains, then EOF.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("after %d bytes: %v, want EOF or a reset", n, err)
	}
	if n >= int64(len(data)) {
		t.Fatalf("the client got %d bytes, the whole file: nothing was cut", n)
	}
	if resp, got := ts.do(t, "GET", path, "", nil); resp.StatusCode != 200 || len(got) != len(data) {
		t.Fatalf("next download: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// TestWriteDeadline_KeepAlive: a keep-alive connection that idles longer
// than the write idle timeout still gets its next answers: one written
// without a body (304), and a 100 Continue before a JSON body.
func TestWriteDeadline_KeepAlive(t *testing.T) {
	ts, _, path, _ := audioServer(t, func(_ *store.Options, c *api.Config) { c.WriteIdleTimeout = 500 * time.Millisecond })
	resp, _ := ts.do(t, "HEAD", path, "", nil)
	etag := resp.Header.Get("ETag")
	conn := dialSmall(t, ts)
	br := bufio.NewReader(conn)
	for i := range 2 {
		rawRequest(t, conn, "GET", path, ts.token, "", "If-None-Match: "+etag)
		if resp := readHead(t, br, conn); resp.StatusCode != 304 {
			t.Fatalf("request %d: %d, want 304", i, resp.StatusCode)
		}
		time.Sleep(time.Second) // twice the write idle timeout
		// An interim 100 Continue is written outside the handler's writes.
		body := `{"title":"kept alive"}`
		rawRequest(t, conn, "POST", "/api/v1/record", ts.token, "", "Content-Type: application/json",
			fmt.Sprintf("Content-Length: %d", len(body)), "Expect: 100-continue")
		if resp := readHead(t, br, conn); resp.StatusCode != http.StatusContinue {
			t.Fatalf("request %d: %d, want 100 Continue", i, resp.StatusCode)
		}
		io.WriteString(conn, body)
		resp := readHead(t, br, conn)
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 201 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, err)
		}
		time.Sleep(time.Second)
	}
}

// TestAudio_Conditional: conditional requests are decided from the record
// before the audio is opened: a 304 or 412 neither opens nor audits it
// (even a corrupt blob, which fails to open, answers them), If-Range that
// does not match serves the whole file, and the order of RFC 9110 §13.2.2
// holds.
func TestAudio_Conditional(t *testing.T) {
	ts, id, path, data := rangeServer(t)
	resp, _ := ts.do(t, "HEAD", path, "", nil)
	etag := resp.Header.Get("ETag")
	if len(etag) != 34 {
		t.Fatalf("ETag=%q", etag)
	}
	weak := "W/" + etag
	before := ts.accessed(t, id)
	if before != 0 {
		t.Fatalf("%d accesses before the test: listens are coalesced, so the test needs none in the window", before)
	}
	for _, c := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"NoneMatch", []string{"If-None-Match", etag}, 304},
		{"NoneMatchWeak", []string{"If-None-Match", weak}, 304},
		{"NoneMatchStar", []string{"If-None-Match", "*"}, 304},
		{"NoneMatchList", []string{"If-None-Match", `"abc", ` + etag + `,"def"`}, 304},
		{"NoneMatchWithRange", []string{"If-None-Match", etag, "Range", "bytes=0-9"}, 304},
		{"MatchOther", []string{"If-Match", `"0123"`}, 412},
		{"MatchWeak", []string{"If-Match", weak}, 412},
		{"MatchMalformed", []string{"If-Match", "nonsense"}, 412},
		{"MatchFailsFirst", []string{"If-Match", `"other"`, "If-None-Match", etag}, 412},
		{"MatchOtherWithPastRange", []string{"If-Match", `"other"`, "Range", "bytes=999999999-"}, 412},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := ts.do(t, method, path, "", nil, c.hdr...)
			if resp.StatusCode != c.status || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Fatalf("%s %s: %d, %d bytes, ETag %q; want %d without a body", method, c.name, resp.StatusCode, len(body), resp.Header.Get("ETag"), c.status)
			}
		}
	}
	if got := ts.accessed(t, id); got != before {
		t.Fatalf("%d audio_accessed events after 304s and 412s, want %d", got, before)
	}
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"NoneMatchOther", []string{"If-None-Match", `"other", W/"x"`}},
		{"MatchStar", []string{"If-Match", "*"}},
		{"MatchList", []string{"If-Match", `"a", ` + etag}},
		{"ModifiedSinceIgnored", []string{"If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}},
		{"UnmodifiedSinceIgnored", []string{"If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}},
		{"IfRangeDate", []string{"If-Range", time.Now().UTC().Format(http.TimeFormat), "Range", "bytes=0-9"}},
		{"IfRangeWeak", []string{"If-Range", weak, "Range", "bytes=0-9"}},
	} {
		resp, got := ts.do(t, "GET", path, "", nil, c.hdr...)
		wantWhole(t, c.name, resp, got, data)
	}
	resp, got := ts.do(t, "GET", path, "", nil, "If-Match", etag, "If-Range", etag, "Range", "bytes=5-9")
	if resp.StatusCode != 206 || string(got) != string(data[5:10]) {
		t.Fatalf("matching If-Match and If-Range: %d %q", resp.StatusCode, got)
	}
	if got, want := ts.accessed(t, id), before+1; got != want {
		t.Fatalf("%d audio_accessed events, want %d (the GETs that served audio, coalesced per principal)", got, want)
	}

	// A blob that no longer opens still answers what needs no audio.
	ts, path, etag = corruptServer(t)
	if resp, _ := ts.do(t, "GET", path, "", nil, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match on a corrupt blob: %d, want 304 without opening it", resp.StatusCode)
	}
	if resp, _ := ts.do(t, "GET", path, "", nil, "If-Match", `"x"`); resp.StatusCode != 412 {
		t.Fatalf("If-Match on a corrupt blob: %d, want 412 without opening it", resp.StatusCode)
	}
}

// corruptServer is a server with one record whose blob fails to open (one
// bit flipped in its only chunk); it returns the audio's path and ETag.
func corruptServer(t *testing.T) (ts *testServer, path, etag string) {
	t.Helper()
	ts = mustServe(t)
	id := ts.mustCreate(t, "x")
	if resp, body := ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav")); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	path = fmt.Sprintf("/api/v1/record/%d/audio", id)
	resp, _ := ts.do(t, "HEAD", path, "", nil)
	etag = resp.Header.Get("ETag")
	ts.flipBlobByte(t, func(int) int { return 200 })
	if resp, body := ts.do(t, "GET", path, "", nil); resp.StatusCode != 500 {
		t.Fatalf("GET of a corrupt blob: %d %s, want 500 (the test needs a blob that fails to open)", resp.StatusCode, body)
	}
	return ts, path, etag
}

// TestAudio_Head: HEAD answers like GET — status, type, length, range,
// ETag, disposition — without the body, never opens the audio and is not
// audited.
func TestAudio_Head(t *testing.T) {
	ts, id, path, data := rangeServer(t)
	// HEADs by one principal, GETs by another: listens are coalesced per
	// principal, so a HEAD audited would show as the header's own event.
	header := ts.mustUser(t, "header", store.RoleViewer, "")
	before := ts.accessed(t, id)
	for _, rng := range []string{"", "bytes=10-19", "bytes=-5", "bytes=0-0,5-9", fmt.Sprintf("bytes=%d-", len(data))} {
		get, getBody := ts.do(t, "GET", path, "", nil, "Range", rng)
		head, headBody := ts.do(t, "HEAD", path, "", nil, append(asToken(header), "Range", rng)...)
		if len(headBody) != 0 {
			t.Fatalf("%q: HEAD sent %d bytes of body", rng, len(headBody))
		}
		if head.StatusCode != get.StatusCode {
			t.Fatalf("%q: HEAD %d, GET %d", rng, head.StatusCode, get.StatusCode)
		}
		for _, h := range []string{"Content-Type", "Content-Range", "ETag", "Accept-Ranges", "Content-Disposition"} {
			if head.Header.Get(h) != get.Header.Get(h) {
				t.Fatalf("%q: HEAD %s=%q, GET %q", rng, h, head.Header.Get(h), get.Header.Get(h))
			}
		}
		if get.StatusCode < 300 && head.Header.Get("Content-Length") != fmt.Sprint(len(getBody)) {
			t.Fatalf("%q: HEAD Content-Length=%q, GET sent %d bytes", rng, head.Header.Get("Content-Length"), len(getBody))
		}
	}
	if got, want := ts.accessed(t, id), before+1; got != want { // the GETs that served audio, coalesced; no HEAD
		t.Fatalf("%d audio_accessed events, want %d: a HEAD was audited", got, want)
	}
	cs, cpath, _ := corruptServer(t)
	if resp, _ := cs.do(t, "HEAD", cpath, "", nil); resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(len(mustRead(t, audioDir+"tone.wav"))) {
		t.Fatalf("HEAD of a corrupt blob: %d, want 200 without opening it", resp.StatusCode)
	}
	silent := ts.mustCreate(t, "silent")
	resp, _ := ts.do(t, "HEAD", fmt.Sprintf("/api/v1/record/%d/audio", silent), "", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("HEAD of a record without audio: %d, want 404", resp.StatusCode)
	}
}

// holdDownload starts a download of path as token that the client then
// stops reading, once its 200 header has arrived: it holds a download slot
// until the connection is closed.
func holdDownload(t *testing.T, ts *testServer, path, token string) net.Conn {
	t.Helper()
	conn := dialSmall(t, ts)
	rawRequest(t, conn, "GET", path, token, "")
	if resp := readHead(t, bufio.NewReader(conn), conn); resp.StatusCode != 200 {
		t.Fatalf("held download: %d", resp.StatusCode)
	}
	return conn
}

// wantBusy checks a refused transfer: status and code, a JSON body,
// Retry-After and a closed connection.
func wantBusy(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	wantError(t, resp, body, status, code)
	if got := resp.Header.Get("Retry-After"); got == "" || got == "0" {
		t.Fatalf("Retry-After=%q", got)
	}
	if !resp.Close {
		t.Fatal("a refused transfer keeps the connection open")
	}
}

// TestDownloads_Capped: one account can hold only its share of downloads
// (429 past it), all accounts together the server's (503 past it); both
// refusals carry Retry-After and are not audited, HEAD takes no slot, and
// a slot is free again once its download ends.
func TestDownloads_Capped(t *testing.T) {
	ts, id, path, data := audioServer(t, func(_ *store.Options, c *api.Config) {
		c.MaxDownloadsPerUser, c.MaxDownloads = 2, 3
	})
	a := ts.mustUser(t, "viewer-a", store.RoleViewer, "")
	b := ts.mustUser(t, "viewer-b", store.RoleViewer, "")
	c := ts.mustUser(t, "viewer-c", store.RoleViewer, "")
	a1 := holdDownload(t, ts, path, a)
	holdDownload(t, ts, path, a)
	resp, body := ts.do(t, "GET", path, "", nil, asToken(a)...)
	wantBusy(t, resp, body, 429, "rate_limited")
	if resp, _ := ts.do(t, "HEAD", path, "", nil, asToken(a)...); resp.StatusCode != 200 {
		t.Fatalf("HEAD at the account's cap: %d, want 200", resp.StatusCode)
	}
	holdDownload(t, ts, path, b)
	before := ts.accessed(t, id) // one per held download
	resp, body = ts.do(t, "GET", path, "", nil, asToken(c)...)
	wantBusy(t, resp, body, 503, "unavailable")
	resp, body = ts.do(t, "GET", path, "", nil, asToken(a)...)
	wantBusy(t, resp, body, 429, "rate_limited")
	if got, want := before, 2; got != want { // a's two downloads are one listen, b's another
		t.Fatalf("%d audio_accessed events for the held downloads, want %d", got, want)
	}
	if got := ts.accessed(t, id); got != before {
		t.Fatalf("%d audio_accessed events after refusals, want %d", got, before)
	}
	a1.Close() // the server's next write fails: the slot is free
	if !eventually(10*time.Second, func() bool {
		resp, body := ts.do(t, "GET", path, "", nil, asToken(c)...)
		return resp.StatusCode == 200 && len(body) == len(data)
	}) {
		t.Fatal("no slot became free after a held download was closed")
	}
}

// stalledUpload starts an upload as token to record id and sends only the
// first bytes of its body: it holds an upload slot. It asks with Expect:
// 100-continue and waits for the 100 Continue, which the server sends only
// once the handler reads the body, that is, once the slot is taken.
func stalledUpload(t *testing.T, ts *testServer, id uint64, token string) net.Conn {
	t.Helper()
	conn := dialSmall(t, ts)
	rawRequest(t, conn, "POST", fmt.Sprintf("/api/v1/record/%d/audio", id), token, "",
		"Content-Type: multipart/form-data; boundary=b", "Content-Length: 100000", "Expect: 100-continue")
	if resp := readHead(t, bufio.NewReader(conn), conn); resp.StatusCode != http.StatusContinue {
		t.Fatalf("stalled upload: %d, want 100 Continue", resp.StatusCode)
	}
	io.WriteString(conn, "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: audio/wav\r\n\r\nRIFF")
	return conn
}

// TestUploads_Capped: the same shares for uploads, decided before a byte of
// the body is read: a client that asks with Expect: 100-continue gets its
// 429 or 503 without sending the body. Refusals change nothing.
func TestUploads_Capped(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.MaxUploadsPerUser, c.MaxUploads = 1, 2 })
	a := ts.mustUser(t, "editor-a", store.RoleEditor, "")
	b := ts.mustUser(t, "editor-b", store.RoleEditor, "")
	c := ts.mustUser(t, "editor-c", store.RoleEditor, "")
	ids := make([]uint64, 5)
	for i := range ids {
		ids[i] = ts.mustCreate(t, fmt.Sprint("r", i))
	}
	stalledUpload(t, ts, ids[0], a)
	wav := mustRead(t, audioDir+"tone.wav")
	before := ts.snapshot(t)
	resp, body := ts.upload(t, ids[1], "audio/wav", wav, asToken(a)...)
	wantBusy(t, resp, body, 429, "rate_limited")
	expect := func(token string, status int, code string) {
		t.Helper()
		conn := dialSmall(t, ts)
		br := bufio.NewReader(conn)
		rawRequest(t, conn, "POST", fmt.Sprintf("/api/v1/record/%d/audio", ids[2]), token, "",
			"Content-Type: multipart/form-data; boundary=b", "Content-Length: 100000", "Expect: 100-continue")
		resp := readHead(t, br, conn)
		body, _ := io.ReadAll(resp.Body)
		wantBusy(t, resp, body, status, code)
	}
	expect(a, 429, "rate_limited")
	stalledUpload(t, ts, ids[3], b)
	resp, body = ts.upload(t, ids[4], "audio/wav", wav, asToken(c)...)
	wantBusy(t, resp, body, 503, "unavailable")
	expect(c, 503, "unavailable")
	if after := ts.snapshot(t); after != before {
		t.Fatalf("refused uploads changed the store:\n%s\n%s", before, after)
	}
}

// TestUpload_MinRate: an upload that keeps sending, but slower than the
// minimum average rate once the grace period has passed, is ended with a
// clear 400 (the idle timeout alone would never end it) and leaves nothing
// behind; one that is slow only within the grace period is stored.
func TestUpload_MinRate(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) {
		c.UploadMinRate, c.UploadGrace, c.BodyIdleTimeout = 20_000, 500*time.Millisecond, 30*time.Second
	})
	wav := mustRead(t, audioDir+"tone.wav")
	id := ts.mustCreate(t, "trickle")
	before := ts.snapshot(t)
	conn := dialSmall(t, ts)
	part := "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: audio/wav\r\n\r\n"
	rawRequest(t, conn, "POST", fmt.Sprintf("/api/v1/record/%d/audio", id), ts.token, part,
		"Content-Type: multipart/form-data; boundary=b", fmt.Sprintf("Content-Length: %d", len(part)+len(wav)+8))
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() { // a byte every 50 ms: 20 bytes a second, far under the floor, never idle
		for i := 0; i < len(wav); i++ {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write(wav[i : i+1]); err != nil {
				return
			}
		}
	}()
	resp := readHead(t, bufio.NewReader(conn), conn)
	body, _ := io.ReadAll(resp.Body)
	wantError(t, resp, body, 400, "validation_error")
	if !strings.Contains(string(body), "too slow") {
		t.Fatalf("message does not say why: %s", body)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("ended after %v, want soon after the 500 ms grace", d)
	}
	if after := ts.snapshot(t); after != before {
		t.Fatalf("the slow upload changed the store:\n%s\n%s", before, after)
	}

	// Silent for most of the grace period, then quick: stored.
	quick := dialSmall(t, ts)
	tail := "\r\n--b--\r\n"
	rawRequest(t, quick, "POST", fmt.Sprintf("/api/v1/record/%d/audio", id), ts.token, part,
		"Content-Type: multipart/form-data; boundary=b", fmt.Sprintf("Content-Length: %d", len(part)+len(wav)+len(tail)))
	time.Sleep(400 * time.Millisecond)
	io.WriteString(quick, string(wav)+tail)
	resp = readHead(t, bufio.NewReader(quick), quick)
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 201 {
		t.Fatalf("an upload slow only in its grace period: %d %s", resp.StatusCode, body)
	}
}

// TestUpload_EarlyTooLarge: a Content-Length over the limit is answered 413
// at once, before the body: a client that asks with Expect: 100-continue
// gets no 100 Continue and sends nothing. The same holds for JSON bodies.
func TestUpload_EarlyTooLarge(t *testing.T) {
	ts := mustServe(t, withMaxUpload(16<<20))
	id := ts.mustCreate(t, "big")
	before := ts.snapshot(t)
	for _, c := range []struct {
		path, ct string
		length   int64
	}{
		{fmt.Sprintf("/api/v1/record/%d/audio", id), "multipart/form-data; boundary=b", 1 << 40},
		{fmt.Sprintf("/api/v1/record/%d/audio", id), "multipart/form-data; boundary=b", 17<<20 + 1},
		{"/api/v1/record", "application/json", 1<<20 + 1},
		{"/api/v1/session", "application/json", 1 << 40},
	} {
		conn := dialSmall(t, ts)
		br := bufio.NewReader(conn)
		start := time.Now()
		rawRequest(t, conn, "POST", c.path, ts.token, "", "Content-Type: "+c.ct,
			fmt.Sprintf("Content-Length: %d", c.length), "Expect: 100-continue")
		resp := readHead(t, br, conn)
		elapsed := time.Since(start)
		body, _ := io.ReadAll(resp.Body)
		wantError(t, resp, body, 413, "payload_too_large") // a 100 Continue would fail here
		if elapsed > time.Second {
			t.Fatalf("%s, Content-Length %d: 413 after %v", c.path, c.length, elapsed)
		}
		t.Logf("%s, Content-Length %d: 413 after %v without a byte of body", c.path, c.length, elapsed.Round(time.Microsecond))
	}
	if after := ts.snapshot(t); after != before {
		t.Fatalf("refused uploads changed the store:\n%s\n%s", before, after)
	}
}
