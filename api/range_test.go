package api_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"

	"tyst/store"
)

// rangeServer is a server with one record whose audio spans several chunks
// of the stream format.
func rangeServer(t *testing.T) (ts *testServer, id uint64, path string, data []byte) {
	t.Helper()
	ts = mustServe(t)
	data = bigWAV(3<<20 + 1234)
	id = ts.mustCreate(t, "range")
	if resp, body := ts.upload(t, id, "audio/wav", data); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return ts, id, fmt.Sprintf("/api/v1/record/%d/audio", id), data
}

// accessed counts record id's audio_accessed events.
func (ts *testServer) accessed(t *testing.T, id uint64) int {
	t.Helper()
	events, _, err := ts.db.AuditEvents(t.Context(), store.AuditFilter{RecordID: id})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range events {
		if ev.Action == store.ActionAudioAccessed {
			n++
		}
	}
	return n
}

// wantWhole checks a 200 with the whole file, not a multipart answer.
func wantWhole(t *testing.T, rng string, resp *http.Response, got, data []byte) {
	t.Helper()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("%.60s: status=%d, want %d", rng, got, want)
	}
	if got, want := resp.Header.Get("Content-Length"), fmt.Sprint(len(data)); got != want {
		t.Fatalf("%.60s: Content-Length=%s, want %s", rng, got, want)
	}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "multipart/byteranges") {
		t.Fatalf("%.60s: Content-Type=%q", rng, ct)
	}
	if resp.Header.Get("Content-Range") != "" {
		t.Fatalf("%.60s: Content-Range=%q on a 200", rng, resp.Header.Get("Content-Range"))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%.60s: body differs from the upload (%d bytes, want %d)", rng, len(got), len(data))
	}
}

// TestAudio_RangeList: a header of several ranges is ignored and the whole
// file served once, so many small ranges that each decrypt a chunk cannot
// amplify one request into minutes of CPU.
func TestAudio_RangeList(t *testing.T) {
	ts, id, path, data := rangeServer(t)
	var many strings.Builder
	many.WriteString("bytes=")
	for i := range 1000 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, "%d-%d", (i%2)*(2<<20)+i, (i%2)*(2<<20)+i)
	}
	for _, rng := range []string{"bytes=0-0,2097152-2097152", "bytes=0-0, 2097152-2097152", many.String()} {
		resp, got := ts.do(t, "GET", path, "", nil, "Range", rng)
		wantWhole(t, rng, resp, got, data)
	}
	if got, want := ts.accessed(t, id), 1; got != want { // coalesced per principal and record
		t.Fatalf("%d audio_accessed events, want %d", got, want)
	}
}

// TestExport_RangeList: an export download takes one range, as audio: a
// list of many overlapping ranges gets the whole package once, not a
// multipart answer many times its size; one range still gets a 206, and
// one past the end a 416.
func TestExport_RangeList(t *testing.T) {
	ts, id, _, _ := rangeServer(t)
	resp, body := ts.postJSON(t, fmt.Sprintf("/api/v1/record/%d/export", id), `{"confirm":true,"reason":"for the editor"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("export: %d %s", resp.StatusCode, body)
	}
	var pkg struct {
		DownloadURL string `json:"download_url"`
	}
	mustUnmarshal(t, body, &pkg)
	resp, whole := ts.do(t, "GET", pkg.DownloadURL, "", nil)
	if resp.StatusCode != http.StatusOK || len(whole) < 3<<20 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(whole))
	}
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 20000), ",")
	resp, got := ts.do(t, "GET", pkg.DownloadURL, "", nil, "Range", many)
	wantWhole(t, many, resp, got, whole)
	resp, got = ts.do(t, "GET", pkg.DownloadURL, "", nil, "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, whole[10:20]) {
		t.Fatalf("one range: %d, %q", resp.StatusCode, got)
	}
	resp, got = ts.do(t, "GET", pkg.DownloadURL, "", nil, "Range", fmt.Sprintf("bytes=%d-", len(whole)))
	wantError(t, resp, got, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
}

// TestAudio_RangeMalformed: a Range header that does not parse is ignored
// (RFC 9110 §14.2), including "bytes=5-2", whose last-pos is below its
// first-pos (invalid, §14.1.1).
func TestAudio_RangeMalformed(t *testing.T) {
	ts, _, path, data := rangeServer(t)
	for _, rng := range []string{
		"bytes=abc", "items=0-1", "bytes=5-2", "bytes=", "bytes=-", "bytes=0", "bytes=--5",
		"bytes=0-1,", "bytes 0-1", "bytes=1-2-3", "bytes=+1-2", "bytes=0x10-",
	} {
		resp, got := ts.do(t, "GET", path, "", nil, "Range", rng)
		wantWhole(t, rng, resp, got, data)
	}
}

// TestAudio_RangeForms: the forms of one range that are served, with
// whitespace and a unit in any case.
func TestAudio_RangeForms(t *testing.T) {
	ts, _, path, data := rangeServer(t)
	n := len(data)
	for _, c := range []struct {
		rng        string
		start, end int // inclusive
	}{
		{"Bytes=10-19", 10, 19},
		{"bytes = 10 - 19", 10, 19},
		{"bytes=2097150-2097160", 2097150, 2097160},
		{"bytes=-999999999", 0, n - 1}, // a suffix longer than the file is the whole file
		{"bytes=-99999999999999999999999", 0, n - 1},
		{"bytes=5-99999999999999999999999", 5, n - 1},
		{fmt.Sprintf("bytes=%d-", n-1), n - 1, n - 1},
	} {
		resp, got := ts.do(t, "GET", path, "", nil, "Range", c.rng)
		if got, want := resp.StatusCode, http.StatusPartialContent; got != want {
			t.Fatalf("%s: status=%d, want %d", c.rng, got, want)
		}
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, n); got != want {
			t.Fatalf("%s: Content-Range=%q, want %q", c.rng, got, want)
		}
		if !bytes.Equal(got, data[c.start:c.end+1]) {
			t.Fatalf("%s: bytes differ", c.rng)
		}
	}
}

// TestAudio_RangeUnsatisfiable: a range past the end gets the JSON error
// with status 416 and its own code, and is not audited: no audio was served.
func TestAudio_RangeUnsatisfiable(t *testing.T) {
	ts, id, path, data := rangeServer(t)
	n := len(data)
	before := ts.accessed(t, id)
	for _, rng := range []string{
		fmt.Sprintf("bytes=%d-", n),
		fmt.Sprintf("bytes=%d-%d", n+100, n+200),
		"bytes=99999999999999999999999-",
		"bytes=-0",
	} {
		resp, body := ts.do(t, "GET", path, "", nil, "Range", rng)
		wantError(t, resp, body, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", n); got != want {
			t.Fatalf("%s: Content-Range=%q, want %q", rng, got, want)
		}
		mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mt, "application/json"; got != want {
			t.Fatalf("%s: Content-Type=%q, want %q", rng, got, want)
		}
		var e apiErr
		mustUnmarshal(t, body, &e)
		if got, want := e.Error.Message, "range not satisfiable"; got != want {
			t.Fatalf("%s: message=%q, want %q", rng, got, want)
		}
	}
	if got, want := ts.accessed(t, id), before; got != want {
		t.Fatalf("%d audio_accessed events after 416s, want %d", got, want)
	}
}

// TestAudio_RangeIfRange: If-Range with another validator makes the server
// ignore the range, so even a range past the end gets the whole file; with
// the current ETag the range applies.
func TestAudio_RangeIfRange(t *testing.T) {
	ts, _, path, data := rangeServer(t)
	resp, _ := ts.do(t, "GET", path, "", nil, "Range", "bytes=0-0")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	past := fmt.Sprintf("bytes=%d-", len(data))
	resp, got := ts.do(t, "GET", path, "", nil, "Range", past, "If-Range", `"other"`)
	wantWhole(t, past, resp, got, data)
	resp, got = ts.do(t, "GET", path, "", nil, "Range", "bytes=0-0", "If-Range", `"other"`)
	wantWhole(t, "bytes=0-0", resp, got, data)
	resp, got = ts.do(t, "GET", path, "", nil, "Range", "bytes=1-2", "If-Range", etag)
	if got, want := resp.StatusCode, http.StatusPartialContent; got != want {
		t.Fatalf("matching If-Range: status=%d, want %d", got, want)
	}
	if !bytes.Equal(got, data[1:3]) {
		t.Fatal("matching If-Range: bytes differ")
	}
}

// TestAudio_RangeNoAudio: a record without audio is a JSON 404 whatever the
// range.
func TestAudio_RangeNoAudio(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "silent")
	resp, body := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d/audio", id), "", nil, "Range", "bytes=999999999-")
	wantError(t, resp, body, http.StatusNotFound, "not_found")
	resp, body = ts.do(t, "GET", "/api/v1/record/999999/audio", "", nil, "Range", "bytes=0-1")
	wantError(t, resp, body, http.StatusNotFound, "not_found")
}

// TestAudio_ReadFailsMidBody: when a chunk past the first is altered, the
// status is already sent; the body is cut and the log names the cause
// without a path.
func TestAudio_ReadFailsMidBody(t *testing.T) {
	ts, _, path, data := rangeServer(t)
	ts.flipBlobByte(t, func(n int) int { return n / 2 }) // in a middle chunk: opening reads the first and last
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	if err == nil || len(got) >= len(data) {
		t.Fatalf("body of %d bytes (err %v), want a cut body", len(got), err)
	}
	logs := ts.log.String()
	if !strings.Contains(logs, "stored audio is corrupt") || strings.Contains(logs, ts.dir) {
		t.Fatalf("log should name the cause without a path:\n%s", logs)
	}
}
