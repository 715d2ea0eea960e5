package api_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"tyst/internal/testlog"

	"tyst/api"
	"tyst/store"
	"tyst/store/media"
)

type testServer struct {
	*httptest.Server
	db    *store.DB
	dir   string
	log   *testlog.Buffer
	token string // an admin's API token, sent by do unless a test sets Authorization
}

type serverOption func(*store.Options, *api.Config)

func withMaxUpload(n int64) serverOption {
	return func(_ *store.Options, c *api.Config) { c.MaxUploadBytes = n }
}

func withDiskFull() serverOption {
	return func(o *store.Options, _ *api.Config) {
		o.WrapBlobWriter = func(io.Writer) io.Writer { return fullDisk{} }
	}
}

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/data/blobs/tmp/up-1.tmp", Err: syscall.ENOSPC}
}

// mustServe runs the API over a real store in a temp dir on loopback.
func mustServe(tb testing.TB, opts ...serverOption) *testServer {
	tb.Helper()
	keys, err := store.NewKeyring(store.GenerateKey())
	if err != nil {
		tb.Fatal(err)
	}
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	dir := tb.TempDir()
	sopts := store.Options{Keys: keys, Logger: logger}
	cfg := api.Config{Logger: logger, Version: "test"}
	for _, o := range opts {
		o(&sopts, &cfg)
	}
	db, err := store.Open(dir, sopts)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Records, cfg.Accounts = db, db
	srv := httptest.NewServer(api.New(cfg))
	tb.Cleanup(func() {
		srv.Close()
		db.Close()
	})
	ts := &testServer{Server: srv, db: db, dir: dir, log: logs}
	ts.token = ts.mustUser(tb, "admin", store.RoleAdmin, "")
	return ts
}

// testPassword is the password of every test account.
const testPassword = "correct horse battery"

// mustUser creates an account and returns an API token for it (scope "" or
// store.ScopeStream).
func (ts *testServer) mustUser(tb testing.TB, name, role, scope string) string {
	tb.Helper()
	if _, err := ts.db.CreateUser(tb.Context(), store.NewUser{Username: name, Password: testPassword, Role: role}); err != nil && store.ErrorCode(err) != store.CodeConflict {
		tb.Fatal(err)
	}
	tok, _, err := ts.db.CreateToken(tb.Context(), name, scope, "")
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// do sends a request and returns the response with its body read.
func (ts *testServer) do(tb testing.TB, method, path, contentType string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+ts.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

func (ts *testServer) postJSON(tb testing.TB, path, body string) (*http.Response, []byte) {
	tb.Helper()
	return ts.do(tb, "POST", path, "application/json", strings.NewReader(body))
}

func (ts *testServer) mustCreate(tb testing.TB, title string) uint64 {
	tb.Helper()
	resp, body := ts.postJSON(tb, "/api/v1/record", fmt.Sprintf(`{"title":%q,"language":"sv"}`, title))
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var out struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(tb, body, &out)
	return out.TranscriptID
}

// multipartBody builds an upload with one file part.
func multipartBody(tb testing.TB, field, filename, partType string, data []byte) (string, *bytes.Buffer) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
	if partType != "" {
		h.Set("Content-Type", partType)
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		tb.Fatal(err)
	}
	pw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func (ts *testServer) upload(tb testing.TB, id uint64, partType string, data []byte, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	ct, body := multipartBody(tb, "file", "interview.wav", partType, data)
	return ts.do(tb, "POST", fmt.Sprintf("/api/v1/record/%d/audio", id), ct, body, hdr...)
}

func mustUnmarshal(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("bad JSON %q: %v", b, err)
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// wantError checks status, code and that the request id is in body and header.
func wantError(tb testing.TB, resp *http.Response, body []byte, status int, code string) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Fatalf("status=%d, want %d (%s)", resp.StatusCode, status, body)
	}
	var e apiErr
	mustUnmarshal(tb, body, &e)
	if e.Error.Code != code {
		tb.Fatalf("code=%q, want %q (%s)", e.Error.Code, code, body)
	}
	if e.Error.Message == "" || e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-ID") {
		tb.Fatalf("error body %s, header request id %q", body, resp.Header.Get("X-Request-ID"))
	}
}

// snapshot is what bad input must not change: records, audit events and
// every file under the data directory with its size.
func (ts *testServer) snapshot(tb testing.TB) string {
	tb.Helper()
	recs, _, err := ts.db.Records(tb.Context(), store.RecordFilter{Before: 0, Limit: store.MaxPageSize})
	if err != nil {
		tb.Fatal(err)
	}
	events, _, err := ts.db.AuditEvents(tb.Context(), store.AuditFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	var sb strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&sb, "record %d status %s\n", r.ID, r.Status)
	}
	fmt.Fprintf(&sb, "events %d\n", len(events))
	filepath.WalkDir(ts.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "tyst.db" {
			fmt.Fprintf(&sb, "file %s\n", p)
		}
		return nil
	})
	return sb.String()
}

const audioDir = "../testdata/audio/"

// flipBlobByte flips one bit of the only blob, at the offset at(size)
// gives: damage as a failing disk or an attacker leaves it.
func (ts *testServer) flipBlobByte(tb testing.TB, at func(size int) int) {
	tb.Helper()
	var blob string
	filepath.WalkDir(filepath.Join(ts.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(p, ".bin") {
			blob = p
		}
		return nil
	})
	b := mustRead(tb, blob)
	b[at(len(b))] ^= 0x01
	if err := os.WriteFile(blob, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func TestRecordCreateAndRead(t *testing.T) {
	ts := mustServe(t)
	resp, body := ts.postJSON(t, "/api/v1/record", `{"title":"Intervju med källan","sensitivity":"sensitive","language":"sv"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status=%d %s", resp.StatusCode, body)
	}
	var created struct {
		ProjectID    uint64 `json:"project_id"`
		TranscriptID uint64 `json:"transcript_id"`
		Title        string `json:"title"`
		CreatedAt    string `json:"created_at"`
	}
	mustUnmarshal(t, body, &created)
	if created.ProjectID == 0 || created.TranscriptID == 0 || created.Title != "Intervju med källan" {
		t.Fatalf("created=%+v", created)
	}
	if _, err := time.Parse(time.RFC3339, created.CreatedAt); err != nil {
		t.Fatalf("created_at=%q: %v", created.CreatedAt, err)
	}
	if got, want := resp.Header.Get("Location"), fmt.Sprintf("/api/v1/record/%d", created.TranscriptID); got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}

	// A second record into the same project.
	resp, body = ts.postJSON(t, "/api/v1/record", fmt.Sprintf(`{"project_id":%d,"title":"Andra"}`, created.ProjectID))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status=%d %s", resp.StatusCode, body)
	}

	resp, body = ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", created.TranscriptID), "", nil)
	var rec map[string]any
	mustUnmarshal(t, body, &rec)
	if resp.StatusCode != 200 || rec["title"] != "Intervju med källan" || rec["sensitivity"] != "sensitive" ||
		rec["language"] != "sv" || rec["status"] != "new" || rec["audio"] != nil || rec["expires_at"] == nil {
		t.Fatalf("record=%s", body)
	}

	_, body = ts.do(t, "GET", "/api/v1/projects", "", nil)
	var projects struct {
		Projects []struct {
			ProjectID uint64 `json:"project_id"`
			Name      string `json:"name"`
			Records   int    `json:"records"`
		} `json:"projects"`
	}
	mustUnmarshal(t, body, &projects)
	if len(projects.Projects) != 1 || projects.Projects[0].Records != 2 || !strings.HasPrefix(projects.Projects[0].Name, "Untitled – ") {
		t.Fatalf("projects=%s", body)
	}
}

func TestRecordList_Pagination(t *testing.T) {
	ts := mustServe(t)
	for i := range 5 {
		ts.mustCreate(t, fmt.Sprintf("r%d", i))
	}
	var titles []string
	path := "/api/v1/records?limit=2"
	for range 10 {
		resp, body := ts.do(t, "GET", path, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status=%d %s", resp.StatusCode, body)
		}
		var page struct {
			Records []struct {
				Title string `json:"title"`
			} `json:"records"`
			NextCursor string `json:"next_cursor"`
		}
		mustUnmarshal(t, body, &page)
		for _, r := range page.Records {
			titles = append(titles, r.Title)
		}
		if page.NextCursor == "" {
			break
		}
		path = "/api/v1/records?limit=2&cursor=" + page.NextCursor
	}
	if got, want := strings.Join(titles, ","), "r4,r3,r2,r1,r0"; got != want {
		t.Fatalf("titles=%s, want %s", got, want)
	}
}

// TestAudio_EveryFormat uploads each accepted format and reads it back whole.
func TestAudio_EveryFormat(t *testing.T) {
	ts := mustServe(t)
	for _, c := range []struct{ file, declared, want string }{
		{"tone.wav", "audio/x-wav", "audio/wav"},
		{"tone.mp3", "audio/mp3", "audio/mpeg"},
		{"tone-noid3.mp3", "", "audio/mpeg"},
		{"tone.m4a", "audio/x-m4a", "audio/mp4"},
		{"tone.aac", "application/octet-stream", "audio/aac"},
		{"tone.ogg", "audio/ogg", "audio/ogg"},
		{"tone.webm", "video/webm", "audio/webm"},
	} {
		t.Run(c.file, func(t *testing.T) {
			data := mustRead(t, audioDir+c.file)
			id := ts.mustCreate(t, c.file)
			resp, body := ts.upload(t, id, c.declared, data)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status=%d %s", resp.StatusCode, body)
			}
			var up struct {
				Status    string `json:"status"`
				FileID    uint64 `json:"file_id"`
				SHA256    string `json:"sha256"`
				SizeBytes int64  `json:"size_bytes"`
				MIMEType  string `json:"mime_type"`
			}
			mustUnmarshal(t, body, &up)
			sum := sha256.Sum256(data)
			if up.Status != "ok" || up.FileID == 0 || up.SHA256 != hex.EncodeToString(sum[:]) || up.SizeBytes != int64(len(data)) || up.MIMEType != c.want {
				t.Fatalf("upload=%s", body)
			}
			resp, got := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d/audio", id), "", nil)
			if resp.StatusCode != 200 || !bytes.Equal(got, data) || resp.Header.Get("Content-Type") != c.want {
				t.Fatalf("GET audio: status=%d type=%q equal=%v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(got, data))
			}
		})
	}
}

// bigWAV returns a WAV of n data bytes: large enough for several chunks of
// the stream format.
func bigWAV(n int) []byte {
	b := make([]byte, 44+n)
	copy(b, media.WAVHeader(int64(n), 16000, 1))
	for i := 44; i < len(b); i++ {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

// TestAudio_Range shows that a player can seek: byte ranges anywhere,
// across the chunks of the stream format, come back exactly.
func TestAudio_Range(t *testing.T) {
	ts := mustServe(t)
	data := bigWAV(3<<20 + 1234)
	id := ts.mustCreate(t, "range")
	if resp, body := ts.upload(t, id, "audio/wav", data); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var rec struct {
		Audio struct {
			DurationMS int64 `json:"duration_ms"`
		} `json:"audio"`
	}
	_, body := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", id), "", nil)
	mustUnmarshal(t, body, &rec)
	if got, want := rec.Audio.DurationMS, int64((3<<20+1234)/32); got != want {
		t.Fatalf("duration_ms=%d, want %d", got, want)
	}
	path := fmt.Sprintf("/api/v1/record/%d/audio", id)
	n := len(data)
	for _, c := range []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-99", 0, 99},
		{"bytes=1048570-1048590", 1048570, 1048590}, // across a chunk border
		{"bytes=2097152-", 2097152, n - 1},
		{"bytes=-10", n - 10, n - 1},
		{fmt.Sprintf("bytes=%d-%d", n-1, n+100), n - 1, n - 1},
	} {
		resp, got := ts.do(t, "GET", path, "", nil, "Range", c.rng)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("%s: status=%d", c.rng, resp.StatusCode)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, n); resp.Header.Get("Content-Range") != want {
			t.Fatalf("%s: Content-Range=%q, want %q", c.rng, resp.Header.Get("Content-Range"), want)
		}
		if !bytes.Equal(got, data[c.start:c.end+1]) {
			t.Fatalf("%s: bytes differ", c.rng)
		}
	}
	resp, _ := ts.do(t, "GET", path, "", nil, "Range", fmt.Sprintf("bytes=%d-", n+5))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: status=%d, want 416", resp.StatusCode)
	}
	resp, got := ts.do(t, "GET", path, "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Accept-Ranges") != "bytes" || !bytes.Equal(got, data) {
		t.Fatalf("full GET: status=%d accept-ranges=%q equal=%v", resp.StatusCode, resp.Header.Get("Accept-Ranges"), bytes.Equal(got, data))
	}
	events, _, _ := ts.db.AuditEvents(t.Context(), store.AuditFilter{RecordID: id})
	accessed := 0
	for _, ev := range events {
		if ev.Action == store.ActionAudioAccessed {
			accessed++
		}
	}
	if accessed != 1 {
		t.Fatalf("%d audio_accessed events, want 1: the listens of one principal within the window are one event", accessed)
	}
}

// badCase is one bad request and the error it must get.
type badCase struct {
	name, method, path, ct string
	body                   []byte
	status                 int
	code                   string
}

// TestBadInput sends every kind of bad input: each gets a clear 4xx JSON
// error and changes nothing.
func TestBadInput(t *testing.T) {
	ts := mustServe(t, withMaxUpload(16<<10))
	wav := mustRead(t, audioDir+"tone.wav") // 32 KB: over this server's 16 KiB limit
	small := wav[:8000]
	id := ts.mustCreate(t, "target")
	full := ts.mustCreate(t, "has audio")
	if resp, body := ts.upload(t, full, "audio/wav", mustRead(t, audioDir+"tone.ogg")[:0:0]); resp.StatusCode != 400 {
		t.Fatalf("0-byte: %d %s", resp.StatusCode, body)
	}
	if resp, body := ts.upload(t, full, "", mustRead(t, audioDir+"tone.ogg")); resp.StatusCode != 201 {
		t.Fatalf("setup upload: %d %s", resp.StatusCode, body)
	}
	recPath := fmt.Sprintf("/api/v1/record/%d", id)
	audioPath := recPath + "/audio"
	ctOK, bodyOK := multipartBody(t, "file", "a.wav", "audio/wav", small)
	okBytes := bodyOK.Bytes()
	ctOther, otherField := multipartBody(t, "document", "a.wav", "audio/wav", small)
	longTitle := strings.Repeat("ä", 10_000)

	cases := []badCase{
		{"CreateEmptyBody", "POST", "/api/v1/record", "application/json", nil, 400, "validation_error"},
		{"CreateNotJSON", "POST", "/api/v1/record", "application/json", []byte("{title:"), 400, "validation_error"},
		{"CreateTrailing", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a"} {}`), 400, "validation_error"},
		{"CreateUnknownField", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","source_name":"x"}`), 400, "validation_error"},
		{"CreateWrongType", "POST", "/api/v1/record", "application/json", []byte(`{"title":5}`), 400, "validation_error"},
		{"CreateNoTitle", "POST", "/api/v1/record", "application/json", []byte(`{"language":"sv"}`), 400, "validation_error"},
		{"CreateLongTitle", "POST", "/api/v1/record", "application/json", []byte(`{"title":"` + longTitle + `"}`), 400, "validation_error"},
		{"CreateBadSensitivity", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","sensitivity":"top"}`), 400, "validation_error"},
		{"CreateBadLanguage", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","language":"<script>"}`), 400, "validation_error"},
		{"CreateProjectZero", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","project_id":0}`), 400, "validation_error"},
		{"CreateProjectNegative", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","project_id":-1}`), 400, "validation_error"},
		{"CreateProjectUnknown", "POST", "/api/v1/record", "application/json", []byte(`{"title":"a","project_id":999}`), 404, "not_found"},
		{"CreateFormEncoded", "POST", "/api/v1/record", "application/x-www-form-urlencoded", []byte(`title=a`), 415, "unsupported_media_type"},
		{"CreateJSONX", "POST", "/api/v1/record", "application/jsonx", []byte(`{"title":"a"}`), 415, "unsupported_media_type"},
		{"CreateJSONSuffix", "POST", "/api/v1/record", "application/json-patch+json", []byte(`{"title":"a"}`), 415, "unsupported_media_type"},
		{"CreateTextJSON", "POST", "/api/v1/record", "text/json", []byte(`{"title":"a"}`), 415, "unsupported_media_type"},
		{"CreateNoContentType", "POST", "/api/v1/record", "", []byte(`{"title":"a"}`), 415, "unsupported_media_type"},
		{"CreateBadContentType", "POST", "/api/v1/record", "application/json; charset", []byte(`{"title":"a"}`), 415, "unsupported_media_type"},
		{"CreateInvalidUTF8", "POST", "/api/v1/record", "application/json", []byte("{\"title\":\"a\xff\xfeb\"}"), 400, "validation_error"},
		{"CreateInvalidUTF8Key", "POST", "/api/v1/record", "application/json", []byte("{\"title\":\"a\",\"\xc3\":1}"), 400, "validation_error"},
		{"CreateSurrogateHalf", "POST", "/api/v1/record", "application/json", []byte("{\"title\":\"a\xed\xa0\x80\"}"), 400, "validation_error"},
		{"CreateHugeBody", "POST", "/api/v1/record", "application/json", []byte(`{"title":"` + strings.Repeat("a", 2<<20) + `"}`), 413, "payload_too_large"},
		{"IDLetters", "GET", "/api/v1/record/abc", "", nil, 400, "validation_error"},
		{"IDLeadingZero", "GET", "/api/v1/record/01", "", nil, 400, "validation_error"},
		{"IDZero", "GET", "/api/v1/record/0", "", nil, 400, "validation_error"},
		{"IDNegative", "GET", "/api/v1/record/-1", "", nil, 400, "validation_error"},
		{"IDPlus", "GET", "/api/v1/record/+1", "", nil, 400, "validation_error"},
		{"IDExponent", "GET", "/api/v1/record/1e3", "", nil, 400, "validation_error"},
		{"IDOverflow", "GET", "/api/v1/record/18446744073709551616", "", nil, 400, "validation_error"},
		{"IDUnknown", "GET", "/api/v1/record/18446744073709551615", "", nil, 404, "not_found"},
		{"ListBadLimit", "GET", "/api/v1/records?limit=1000", "", nil, 400, "validation_error"},
		{"ListBadCursor", "GET", "/api/v1/records?cursor=x", "", nil, 400, "validation_error"},
		{"UploadEmptyBody", "POST", audioPath, "multipart/form-data; boundary=xyz", nil, 400, "validation_error"},
		{"UploadNoBoundary", "POST", audioPath, "multipart/form-data", okBytes, 400, "validation_error"},
		{"UploadNotMultipart", "POST", audioPath, "audio/wav", small, 415, "unsupported_media_type"},
		{"UploadNoFileField", "POST", audioPath, ctOther, otherField.Bytes(), 400, "validation_error"},
		{"UploadTruncated", "POST", audioPath, ctOK, okBytes[:len(okBytes)/2], 400, "validation_error"},
		{"UploadUnknownRecord", "POST", "/api/v1/record/999/audio", ctOK, okBytes, 404, "not_found"},
		{"UploadBadID", "POST", "/api/v1/record/x/audio", ctOK, okBytes, 400, "validation_error"},
		{"UploadSecond", "POST", fmt.Sprintf("/api/v1/record/%d/audio", full), ctOK, okBytes, 409, "conflict"},
		{"AudioNone", "GET", audioPath, "", nil, 404, "not_found"},
		{"UnknownRoute", "GET", "/api/v1/nothing", "", nil, 404, "not_found"},
		{"WrongMethod", "DELETE", recPath, "", nil, 404, "not_found"},
	}
	for _, name := range []string{"empty.wav", "text.txt", "riff-not-wave.wav", "truncated-header.wav", "png-as-audio.mp3"} {
		data := mustRead(t, audioDir+"bad/"+name)
		for _, declared := range []string{"", "audio/wav", "audio/mpeg"} {
			ct, b := multipartBody(t, "file", name, declared, data)
			status, code := 415, "unsupported_media_type"
			if len(data) == 0 {
				status, code = 400, "validation_error"
			}
			cases = append(cases, badCase{"Upload_" + name + "_" + declared, "POST", audioPath, ct, b.Bytes(), status, code})
		}
	}
	var many bytes.Buffer
	mwMany := multipart.NewWriter(&many)
	for i := range 20 {
		mwMany.WriteField(fmt.Sprintf("f%d", i), "x")
	}
	mwMany.Close()
	cases = append(cases, badCase{"UploadTooManyParts", "POST", audioPath, mwMany.FormDataContentType(), many.Bytes(), 400, "validation_error"})
	ctMismatch, mismatch := multipartBody(t, "file", "a.mp3", "audio/mpeg", small)
	ctImage, image := multipartBody(t, "file", "a.png", "image/png", small)
	ctBig, big := multipartBody(t, "file", "a.wav", "audio/wav", wav)
	cases = append(cases,
		badCase{"UploadMismatch", "POST", audioPath, ctMismatch, mismatch.Bytes(), 415, "unsupported_media_type"},
		badCase{"UploadImageType", "POST", audioPath, ctImage, image.Bytes(), 415, "unsupported_media_type"},
		badCase{"UploadTooLarge", "POST", audioPath, ctBig, big.Bytes(), 413, "payload_too_large"},
	)

	before := ts.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.do(t, c.method, c.path, c.ct, bytes.NewReader(c.body))
			wantError(t, resp, body, c.status, c.code)
			if after := ts.snapshot(t); after != before {
				t.Fatalf("bad input changed the store:\nbefore:\n%safter:\n%s", before, after)
			}
		})
	}
	// The record that received all this is still usable.
	if resp, body := ts.upload(t, id, "audio/wav", small); resp.StatusCode != 201 {
		t.Fatalf("good upload after bad ones: %d %s", resp.StatusCode, body)
	}
}

func TestServerErrors(t *testing.T) {
	t.Run("DiskFull", func(t *testing.T) {
		ts := mustServe(t, withDiskFull())
		id := ts.mustCreate(t, "x")
		resp, body := ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav"))
		wantError(t, resp, body, 507, "insufficient_storage")
		if strings.Contains(string(body), "/data") || strings.Contains(ts.log.String(), "/data/blobs") {
			t.Fatalf("a path leaked: %s\n%s", body, ts.log.String())
		}
	})
	t.Run("CorruptBlob", func(t *testing.T) {
		ts := mustServe(t)
		id := ts.mustCreate(t, "x")
		ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav"))
		ts.flipBlobByte(t, func(n int) int { return 200 })
		resp, body := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d/audio", id), "", nil)
		wantError(t, resp, body, 500, "internal_error")
		var e apiErr
		mustUnmarshal(t, body, &e)
		if e.Error.Message != "internal error" {
			t.Fatalf("500 message shows internals: %q", e.Error.Message)
		}
		logs := ts.log.String()
		if !strings.Contains(logs, "corrupt") || strings.Contains(logs, ts.dir) {
			t.Fatalf("log should name the cause without a path:\n%s", logs)
		}
	})
	t.Run("DatabaseClosed", func(t *testing.T) {
		ts := mustServe(t)
		ts.db.Close()
		resp, body := ts.do(t, "GET", "/api/v1/records", "", nil)
		wantError(t, resp, body, 503, "unavailable")
		resp, body = ts.do(t, "GET", "/readyz", "", nil)
		wantError(t, resp, body, 503, "unavailable")
		if resp, _ := ts.do(t, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
			t.Fatalf("healthz=%d, want 200 (the process lives)", resp.StatusCode)
		}
	})
}

// TestNoRedirects: httprouter's automatic redirects are off, so no request
// is answered with a Location pointing elsewhere.
func TestNoRedirects(t *testing.T) {
	ts := mustServe(t)
	for _, p := range []string{"//evil.example/", "//evil.example/api/v1/records", "/api/v1/records/", "/API/v1/records", "/api/v1/../v1/records", "/api//v1/records", "/api/v1/record/1/"} {
		// Write the request line by hand: a client would clean the path or
		// send a scheme-relative one in absolute form.
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", p)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: status=%d Location=%q, want 404 without Location", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts := mustServe(t)
	for _, p := range []string{"/healthz", "/api/v1/records", "/api/v1/nothing", "/api/v1/record/x"} {
		resp, _ := ts.do(t, "GET", p, "", nil)
		for h, want := range map[string]string{
			"X-Content-Type-Options":       "nosniff",
			"Referrer-Policy":              "no-referrer",
			"X-Frame-Options":              "DENY",
			"Cross-Origin-Resource-Policy": "same-origin",
			"Cross-Origin-Opener-Policy":   "same-origin",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Fatalf("%s: %s=%q, want %q", p, h, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: CSP=%q", p, csp)
		}
		if len(resp.Header.Get("X-Request-ID")) < 16 {
			t.Fatalf("%s: no request id", p)
		}
	}
}

// TestPrivacyCanaries puts canary strings in every input — title, file
// name, part headers, User-Agent, forwarding headers, query, path and the
// audio bytes — then searches all log output and every byte under the data
// directory. The title may exist only as ciphertext.
func TestPrivacyCanaries(t *testing.T) {
	ts := mustServe(t)
	canaries := map[string]string{
		"title":    "CANARY-TITLE-b6f1",
		"filename": "CANARY-FILENAME-93ac",
		"ua":       "CANARY-UA-11d0",
		"ip":       "203.0.113.77",
		"query":    "CANARY-QUERY-58e2",
		"path":     "CANARY-PATH-4c1d",
		"audio":    "CANARY-AUDIO-a0e7",
		"segment":  "CANARY-SEGMENT-7d2e",
		"speaker":  "CANARY-SPEAKER-4f90",
		"note":     "CANARY-NOTE-c3a8",
		"reason":   "CANARY-REASON-19bb",
		"project":  "CANARY-PROJECT-e5d4",
		"label":    "CANARY-LABEL-88f1",
	}
	hdr := []string{"User-Agent", "Mozilla/5.0 " + canaries["ua"], "X-Forwarded-For", canaries["ip"], "X-Real-IP", canaries["ip"]}

	resp, body := ts.do(t, "POST", "/api/v1/record?q="+canaries["query"], "application/json",
		strings.NewReader(fmt.Sprintf(`{"title":"Intervju %s","language":"sv"}`, canaries["title"])), hdr...)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(t, body, &created)

	audio := append(bigWAV(2<<20), []byte(canaries["audio"])...)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s.wav"`, canaries["filename"]))
	ph.Set("Content-Type", "audio/wav")
	pw, _ := mw.CreatePart(ph)
	pw.Write(audio)
	mw.WriteField("note", canaries["filename"])
	mw.Close()
	// Exact sizes of what the test sends and receives on the audio and
	// export routes: none may reach the log (sizes.check, below).
	sizes := exactSizes{"the upload's body": buf.Len(), "the audio": len(audio)}
	resp, body = ts.do(t, "POST", fmt.Sprintf("/api/v1/record/%d/audio?name=%s", created.TranscriptID, canaries["query"]), mw.FormDataContentType(), &buf, hdr...)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	audioPath := fmt.Sprintf("/api/v1/record/%d/audio", created.TranscriptID)
	sizes.fetch(t, ts, "the audio", audioPath, "", hdr)
	sizes.fetch(t, ts, "the audio from byte 1000", audioPath, "bytes=1000-", hdr)
	sizes.fetch(t, ts, "the audio's last 1500000 bytes", audioPath, "bytes=-1500000", hdr)
	sizes.fetch(t, ts, "the audio from byte 3 to 1234566", audioPath, "bytes=3-1234566", hdr)
	ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", created.TranscriptID), "", nil, hdr...)
	ts.do(t, "GET", "/api/v1/record/"+canaries["path"], "", nil, hdr...)
	ts.do(t, "GET", "/api/v1/"+canaries["path"], "", nil, hdr...)
	ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"`+canaries["title"]+`","x":1}`), hdr...)

	rec := fmt.Sprintf("/api/v1/record/%d", created.TranscriptID)
	for _, c := range []struct{ method, path, ct, body string }{
		{"PUT", rec + "/segments", "application/json", fmt.Sprintf(`{"segments":[{"start_ms":0,"end_ms":10,"speaker":"%s","text":"%s"}]}`, canaries["speaker"], canaries["segment"])},
		{"PUT", rec + "/segments", "text/vtt", fmt.Sprintf("WEBVTT\n\n00:00.000 --> 00:01.000\n<v %s>%s\n", canaries["speaker"], canaries["segment"])},
		{"POST", rec + "/notes", "application/json", fmt.Sprintf(`{"text":"%s"}`, canaries["note"])},
		{"POST", "/api/v1/projects", "application/json", fmt.Sprintf(`{"name":"%s"}`, canaries["project"])},
		{"POST", "/api/v1/tokens", "application/json", fmt.Sprintf(`{"username":"admin","label":"%s"}`, canaries["label"])},
	} {
		if resp, b := ts.do(t, c.method, c.path, c.ct, strings.NewReader(c.body), hdr...); resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	for _, mode := range []string{"encrypted", "decrypted"} {
		resp, b := ts.do(t, "POST", rec+"/export", "application/json",
			strings.NewReader(fmt.Sprintf(`{"confirm":true,"reason":"%s long enough","export_audio_mode":%q}`, canaries["reason"], mode)), hdr...)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("export %s: %d %s", mode, resp.StatusCode, b)
		}
		var pkg struct {
			DownloadURL string `json:"download_url"`
		}
		mustUnmarshal(t, b, &pkg)
		sizes.fetch(t, ts, "the "+mode+" package", pkg.DownloadURL, "", hdr)
		sizes.fetch(t, ts, "the "+mode+" package from byte 1000", pkg.DownloadURL, "bytes=1000-", hdr)
	}
	for _, c := range []struct{ method, path, ct, body string }{
		{"DELETE", rec + "/audio", "application/json", fmt.Sprintf(`{"confirm":true,"reason":"%s"}`, canaries["reason"])},
		{"POST", rec + "/destroy", "application/json", fmt.Sprintf(`{"dry_run":false,"confirm":true,"reason":"%s"}`, canaries["reason"])},
	} {
		if resp, b := ts.do(t, c.method, c.path, c.ct, strings.NewReader(c.body), hdr...); resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	audit := mustAudit(t, ts)
	ts.db.Close() // flush everything to disk before reading it
	logs := ts.log.String()
	if !strings.Contains(logs, `"route":"/api/v1/record/:id/audio"`) {
		t.Fatalf("the log has no access lines to search:\n%s", logs)
	}
	for what, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("log holds the %s canary", what)
		}
	}
	sizes.check(t, logs)
	files := 0
	filepath.WalkDir(ts.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if want := fs.FileMode(0o600); d.IsDir() {
			want = 0o700
			if got := info.Mode().Perm(); got != want {
				t.Errorf("directory %s has mode %v, want %v", filepath.Base(p), got, want)
			}
			return nil
		} else if got := info.Mode().Perm(); got != want {
			t.Errorf("file %s has mode %v, want %v", filepath.Base(p), got, want)
		}
		files++
		b := mustRead(t, p)
		for what, c := range canaries {
			if bytes.Contains(b, []byte(c)) || strings.Contains(p, c) {
				t.Errorf("%s holds the %s canary", filepath.Base(p), what)
			}
		}
		return nil
	})
	if files < 2 {
		t.Fatalf("searched only %d files", files)
	}
	events, _ := json.Marshal(audit)
	for what, c := range canaries {
		if bytes.Contains(events, []byte(c)) {
			t.Errorf("audit holds the %s canary", what)
		}
	}
}

func mustAudit(t *testing.T, ts *testServer) []store.AuditEvent {
	t.Helper()
	events, _, err := ts.db.AuditEvents(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no audit events")
	}
	return events
}

// TestUpload_IdleTimeout: an upload that stops sending is ended with a 400
// and leaves nothing behind; the record still takes its audio afterwards.
func TestUpload_IdleTimeout(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.BodyIdleTimeout = 300 * time.Millisecond })
	id := ts.mustCreate(t, "stall")
	before := ts.snapshot(t)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wav := mustRead(t, audioDir+"tone.wav")
	part := "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: audio/wav\r\n\r\n"
	fmt.Fprintf(conn, "POST /api/v1/record/%d/audio HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n%s",
		id, ts.token, len(part)+len(wav)+8, part)
	conn.Write(wav[:20000]) // then nothing more
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp, body, 400, "validation_error")
	if after := ts.snapshot(t); after != before {
		t.Fatalf("stalled upload changed the store:\n%s\n%s", before, after)
	}
	if resp, body := ts.upload(t, id, "audio/wav", wav); resp.StatusCode != 201 {
		t.Fatalf("upload after a stall: %d %s", resp.StatusCode, body)
	}
}

// TestJSONBody_Trickle: a JSON body sent a byte at a time, each within the
// idle limit, is still cut off when its whole time is up.
func TestJSONBody_Trickle(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.BodyIdleTimeout = 400 * time.Millisecond })
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"title":"` + strings.Repeat("a", 100) + `"}`
	fmt.Fprintf(conn, "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	go func() {
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(150 * time.Millisecond) // under the idle limit every time
		}
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the trickle held the request for %v", d)
	}
}
