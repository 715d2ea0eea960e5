package api_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/api"
	"tyst/store"
)

// updateHostile rewrites docs/reliability/hostile.json, the figures
// docs/RELIABILITY.md quotes.
var updateHostile = flag.Bool("update", false, "rewrite docs/reliability/hostile.json")

// hostileCase is one malformed request, sent as raw bytes so that
// headers, framing and paths reach the server exactly as written.
type hostileCase struct {
	name, group string
	raw         string // the request; {host}, {token}, {rec}, {audio}, {pkg} are filled in
	body        []byte // appended after raw
	slow        bool   // the body trickles: one byte every 50 ms
	status      int
	code        string // the JSON error code; "" when net/http itself answers (no JSON)
}

// TestHostileTable sends well over a hundred malformed requests — headers,
// framing, multipart, JSON, ids, ranges, export package and receipt ids,
// path traversal, slow bodies — each as raw bytes on its own connection.
// Each gets its expected status (and, from tyst, its JSON error code), and
// none changes a record, an audit event or a file under the data
// directory (ts.snapshot). Afterwards the same records still work.
func TestHostileTable(t *testing.T) {
	ts := mustServe(t, withMaxUpload(64<<10), func(_ *store.Options, c *api.Config) {
		c.UploadGrace, c.UploadMinRate = 300*time.Millisecond, 1<<20
		c.BodyIdleTimeout = 300 * time.Millisecond
	})
	wav := mustRead(t, audioDir+"tone.wav")
	id := ts.mustCreate(t, "target")
	withAudio := ts.mustCreate(t, "has audio")
	if resp, body := ts.upload(t, withAudio, "audio/wav", wav[:30000]); resp.StatusCode != 201 {
		t.Fatalf("setup upload: %d %s", resp.StatusCode, body)
	}
	resp, body := ts.postJSON(t, fmt.Sprintf("/api/v1/record/%d/export", withAudio), `{"confirm":true,"reason":"editor"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("setup export: %d %s", resp.StatusCode, body)
	}
	var pkg struct {
		PackageID string `json:"package_id"`
		ReceiptID string `json:"receipt_id"`
	}
	mustUnmarshal(t, body, &pkg)
	// One access first, so the coalesced audio_accessed event of the
	// range requests below (served whole or in part) is already written.
	if resp, _ := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d/audio", withAudio), "", nil); resp.StatusCode != 200 {
		t.Fatalf("setup download: %d", resp.StatusCode)
	}

	cases := hostileCases(wav[:8000])
	if len(cases) < 100 {
		t.Fatalf("%d cases; the table promises at least 100", len(cases))
	}
	host := ts.Listener.Addr().String()
	fill := strings.NewReplacer("{host}", host, "{token}", ts.token, "{rec}", fmt.Sprint(id), "{audio}", fmt.Sprint(withAudio),
		"{pkg}", pkg.PackageID, "{rcpt}", pkg.ReceiptID)
	before := ts.snapshot(t)
	groups := map[string]int{}
	for _, c := range cases {
		t.Run(c.group+"/"+c.name, func(t *testing.T) {
			resp, body := sendRaw(t, host, fill.Replace(c.raw), c.body, c.slow)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.code != "" {
				var e apiErr
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code || e.Error.RequestID == "" {
					t.Fatalf("body %q, want error code %s", body, c.code)
				}
			}
			if after := ts.snapshot(t); after != before {
				t.Fatalf("a hostile request changed the store:\nbefore:\n%safter:\n%s", before, after)
			}
		})
		groups[c.group]++
	}
	// The records that took all this still work.
	if resp, body := ts.upload(t, id, "audio/wav", wav[:8000]); resp.StatusCode != 201 {
		t.Fatalf("a good upload after the hostile ones: %d %s", resp.StatusCode, body)
	}
	if *updateHostile && !t.Failed() {
		b, _ := json.MarshalIndent(map[string]any{"cases": len(cases), "groups": groups}, "", "  ")
		if err := os.WriteFile(filepath.Join("..", "docs", "reliability", "hostile.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sendRaw writes raw and body on a new connection and reads one response.
func sendRaw(t *testing.T, host, raw string, body []byte, slow bool) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	go func() {
		if !slow {
			conn.Write(body)
			return
		}
		for i := range body {
			if _, err := conn.Write(body[i : i+1]); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// req builds a raw request with the admin's token; extra header lines
// end in \r\n.
func req(method, path, extra string) string {
	return method + " " + path + " HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n" + extra + "\r\n"
}

// jsonReq is a POST/PATCH/PUT of body as application/json.
func jsonReq(method, path, body string) (string, []byte) {
	return req(method, path, fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))), []byte(body)
}

func hostileCases(wav []byte) []hostileCase {
	var cs []hostileCase
	add := func(group, name, raw string, body []byte, status int, code string) {
		cs = append(cs, hostileCase{name: name, group: group, raw: raw, body: body, status: status, code: code})
	}
	addJSON := func(group, name, method, path, body string, status int, code string) {
		raw, b := jsonReq(method, path, body)
		add(group, name, raw, b, status, code)
	}
	rec := "/api/v1/record/{rec}"
	audio := "/api/v1/record/{audio}/audio"

	// Headers and framing: net/http refuses these itself (no JSON), or
	// tyst's checks do.
	const h = "headers"
	add(h, "NoHost", "GET /api/v1/records HTTP/1.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n", nil, 400, "")
	add(h, "TwoHosts", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n", nil, 400, "")
	add(h, "ForeignHost", "GET /api/v1/records HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n", nil, 403, "forbidden")
	add(h, "RebindingHost", "GET /api/v1/records HTTP/1.1\r\nHost: 127.0.0.1.nip.io\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n", nil, 403, "forbidden")
	add(h, "SpaceInHeaderName", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nBad Header: x\r\nConnection: close\r\n\r\n", nil, 400, "")
	add(h, "ObsFoldNoToken", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n", nil, 401, "unauthorized")
	add(h, "NulInHeader", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n", nil, 400, "")
	add(h, "HugeHeader", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\nConnection: close\r\n\r\n", nil, 431, "")
	add(h, "TwoContentLengths", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 13\r\nContent-Length: 14\r\nConnection: close\r\n\r\n", []byte(`{"title":"x"}`), 400, "")
	add(h, "NegativeContentLength", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n", nil, 400, "")
	add(h, "ChunkedAndLength", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", []byte("5\r\n{\"ti\r\n0\r\n\r\n"), 400, "")
	add(h, "UnknownTransferEncoding", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n", nil, 501, "")
	add(h, "BadChunkSize", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", []byte("zz\r\n{}\r\n0\r\n\r\n"), 400, "validation_error")
	add(h, "HTTP09", "GET /api/v1/records\r\n\r\n", nil, 400, "")
	add(h, "BadVersion", "GET /api/v1/records HTTP/9.9\r\nHost: {host}\r\n\r\n", nil, 505, "")
	add(h, "NoToken", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", nil, 401, "unauthorized")
	add(h, "WrongToken", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer tyst_"+strings.Repeat("A", 43)+"\r\nConnection: close\r\n\r\n", nil, 401, "unauthorized")
	add(h, "BasicAuth", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\nConnection: close\r\n\r\n", nil, 401, "unauthorized")
	add(h, "HugeToken", "GET /api/v1/records HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "+strings.Repeat("x", 60000)+"\r\nConnection: close\r\n\r\n", nil, 401, "unauthorized")
	add(h, "ForgedCookie", "POST /api/v1/record HTTP/1.1\r\nHost: {host}\r\nCookie: tyst_session=forged\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n", []byte(`{"title":"x"}`), 401, "unauthorized")

	// JSON bodies.
	const j = "json"
	addJSON(j, "Empty", "POST", "/api/v1/record", "", 400, "validation_error")
	addJSON(j, "Null", "POST", "/api/v1/record", "null", 400, "validation_error")
	addJSON(j, "Array", "POST", "/api/v1/record", `[{"title":"a"}]`, 400, "validation_error")
	addJSON(j, "String", "POST", "/api/v1/record", `"title"`, 400, "validation_error")
	addJSON(j, "Truncated", "POST", "/api/v1/record", `{"title":"a"`, 400, "validation_error")
	addJSON(j, "Trailing", "POST", "/api/v1/record", `{"title":"a"}x`, 400, "validation_error")
	addJSON(j, "TwoObjects", "POST", "/api/v1/record", `{"title":"a"}{"title":"b"}`, 400, "validation_error")
	addJSON(j, "UnknownField", "POST", "/api/v1/record", `{"title":"a","owner":"x"}`, 400, "validation_error")
	addJSON(j, "DuplicateKeyWrongType", "POST", "/api/v1/record", `{"title":"a","title":7}`, 400, "validation_error")
	// Names are matched as written: the last of two names that differ only
	// in case must not win over what a proxy or a reviewer reads.
	addJSON(j, "DuplicateKey", "POST", "/api/v1/record", `{"title":"a","sensitivity":"standard","sensitivity":"sensitive"}`, 400, "validation_error")
	addJSON(j, "DuplicateKeyOtherCase", "POST", "/api/v1/record", `{"title":"a","sensitivity":"standard","Sensitivity":"sensitive"}`, 400, "validation_error")
	addJSON(j, "KeyUpperCase", "POST", "/api/v1/record", `{"TITLE":"a"}`, 400, "validation_error")
	addJSON(j, "KeyLongS", "POST", "/api/v1/record", `{"title":"a","ſensitivity":"sensitive"}`, 400, "validation_error")
	addJSON(j, "KeyDuplicateNested", "PUT", rec+"/segments", `{"segments":[{"start_ms":0,"end_ms":100,"text":"x","text":"y"}]}`, 400, "validation_error")
	addJSON(j, "NestingPast32", "POST", "/api/v1/record", `{"title":"a","x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`, 400, "validation_error")
	addJSON(j, "TitleNumber", "POST", "/api/v1/record", `{"title":1e999}`, 400, "validation_error")
	addJSON(j, "TitleObject", "POST", "/api/v1/record", `{"title":{"$ne":""}}`, 400, "validation_error")
	addJSON(j, "TitleControlChars", "POST", "/api/v1/record", `{"title":"a\u0000b"}`, 400, "validation_error")
	addJSON(j, "TitleOnlySpaces", "POST", "/api/v1/record", `{"title":"   "}`, 400, "validation_error")
	addJSON(j, "TitleTooLong", "POST", "/api/v1/record", `{"title":"`+strings.Repeat("x", 5000)+`"}`, 400, "validation_error")
	addJSON(j, "DeepNesting", "POST", "/api/v1/record", strings.Repeat(`{"a":`, 10000)+"1"+strings.Repeat("}", 10000), 400, "validation_error")
	addJSON(j, "BadUTF8", "POST", "/api/v1/record", "{\"title\":\"\xc0\xaf\"}", 400, "validation_error")
	addJSON(j, "BOM", "POST", "/api/v1/record", "\xef\xbb\xbf{\"title\":\"a\"}", 400, "validation_error")
	addJSON(j, "SensitivityWrong", "POST", "/api/v1/record", `{"title":"a","sensitivity":"public"}`, 400, "validation_error")
	addJSON(j, "ProjectHuge", "POST", "/api/v1/record", `{"title":"a","project_id":18446744073709551616}`, 400, "validation_error")
	addJSON(j, "ProjectFloat", "POST", "/api/v1/record", `{"title":"a","project_id":1.5}`, 400, "validation_error")
	addJSON(j, "PatchHoldNotAdmin", "PATCH", rec, `{"hold":"yes"}`, 400, "validation_error")
	addJSON(j, "PatchUnknown", "PATCH", rec, `{"status":"destroyed"}`, 400, "validation_error")
	addJSON(j, "PatchEmptyTitle", "PATCH", rec, `{"title":""}`, 400, "validation_error")
	addJSON(j, "PatchRetainGarbage", "PATCH", rec, `{"retain_until":"tomorrow"}`, 400, "validation_error")
	addJSON(j, "SegmentsNotList", "PUT", rec+"/segments", `{"segments":{}}`, 400, "validation_error")
	addJSON(j, "SegmentsBackwards", "PUT", rec+"/segments", `{"segments":[{"start_ms":900,"end_ms":100,"text":"x"}]}`, 400, "validation_error")
	addJSON(j, "SegmentsNegative", "PUT", rec+"/segments", `{"segments":[{"start_ms":-1,"end_ms":100,"text":"x"}]}`, 400, "validation_error")
	addJSON(j, "NoteEmpty", "POST", rec+"/notes", `{"text":""}`, 400, "validation_error")
	addJSON(j, "NoteWrongType", "POST", rec+"/notes", `{"text":["a"]}`, 400, "validation_error")
	addJSON(j, "ProjectNameMissing", "POST", "/api/v1/projects", `{}`, 400, "validation_error")
	addJSON(j, "SessionUnknownField", "POST", "/api/v1/session", `{"username":"admin","password":"x","admin":true}`, 400, "validation_error")
	add(j, "TooLarge", req("POST", "/api/v1/record", "Content-Type: application/json\r\nContent-Length: 2000000\r\n"), nil, 413, "payload_too_large")
	add(j, "WrongType", req("POST", "/api/v1/record", "Content-Type: text/plain\r\nContent-Length: 13\r\n"), []byte(`{"title":"a"}`), 415, "unsupported_media_type")
	add(j, "TwoTypes", req("POST", "/api/v1/record", "Content-Type: application/json, text/plain\r\nContent-Length: 13\r\n"), []byte(`{"title":"a"}`), 415, "unsupported_media_type")

	// Export, audio removal and destroy bodies.
	const d = "actions"
	addJSON(d, "ExportNoConfirm", "POST", rec+"/export", `{"reason":"editor"}`, 400, "validation_error")
	addJSON(d, "ExportConfirmString", "POST", rec+"/export", `{"confirm":"true","reason":"editor"}`, 400, "validation_error")
	addJSON(d, "ExportNoReason", "POST", rec+"/export", `{"confirm":true}`, 400, "validation_error")
	addJSON(d, "ExportReasonSpaces", "POST", rec+"/export", `{"confirm":true,"reason":"   "}`, 400, "validation_error")
	addJSON(d, "ExportReasonTooLong", "POST", rec+"/export", `{"confirm":true,"reason":"`+strings.Repeat("r", 1001)+`"}`, 400, "validation_error")
	addJSON(d, "ExportBadMode", "POST", rec+"/export", `{"confirm":true,"reason":"editor","export_audio_mode":"plain"}`, 400, "validation_error")
	addJSON(d, "ExportDecryptedShortReason", "POST", rec+"/export", `{"confirm":true,"reason":"short","export_audio_mode":"decrypted"}`, 400, "validation_error")
	addJSON(d, "ExportUnknownRecord", "POST", "/api/v1/record/999999/export", `{"confirm":true,"reason":"editor"}`, 404, "not_found")
	addJSON(d, "RemoveNoConfirm", "DELETE", audio, `{"reason":"wrong file"}`, 400, "validation_error")
	addJSON(d, "RemoveNoReason", "DELETE", audio, `{"confirm":true}`, 400, "validation_error")
	addJSON(d, "RemoveNoAudio", "DELETE", rec+"/audio", `{"confirm":true,"reason":"wrong file"}`, 404, "not_found")
	addJSON(d, "DestroyNoConfirm", "POST", rec+"/destroy", `{"dry_run":false,"reason":"asked"}`, 400, "validation_error")
	addJSON(d, "DestroyNoReason", "POST", rec+"/destroy", `{"dry_run":false,"confirm":true}`, 400, "validation_error")
	addJSON(d, "DestroyDryRunString", "POST", rec+"/destroy", `{"dry_run":"false","confirm":true,"reason":"asked"}`, 400, "validation_error")
	addJSON(d, "DestroyUnknown", "POST", "/api/v1/record/999999/destroy", `{"dry_run":false,"confirm":true,"reason":"asked"}`, 404, "not_found")
	addJSON(d, "NoteDeleteBadID", "DELETE", rec+"/notes/x", `{}`, 400, "validation_error")
	addJSON(d, "NoteDeleteUnknown", "DELETE", rec+"/notes/999", `{}`, 404, "not_found")

	// Record ids in every position.
	const i = "ids"
	for _, bad := range []string{"abc", "0", "00", "-1", "+1", "1.0", "1e3", "0x10", "1%00", "18446744073709551616", "99999999999999999999999", " 1"} {
		add(i, "Record_"+bad, req("GET", "/api/v1/record/"+strings.ReplaceAll(bad, " ", "%20"), ""), nil, 400, "validation_error")
	}
	add(i, "AudioUnknown", req("GET", "/api/v1/record/999999/audio", ""), nil, 404, "not_found")
	add(i, "SegmentsBadID", req("GET", "/api/v1/record/x/segments", ""), nil, 400, "validation_error")
	add(i, "NotesUnknown", req("GET", "/api/v1/record/999999/notes", ""), nil, 404, "not_found")
	add(i, "ProjectBadID", req("PATCH", "/api/v1/projects/-3", "Content-Type: application/json\r\nContent-Length: 12\r\n"), []byte(`{"name":"x"}`), 400, "validation_error")
	add(i, "ListCursorGarbage", req("GET", "/api/v1/records?cursor=%00%ff", ""), nil, 400, "validation_error")
	add(i, "ListLimitNegative", req("GET", "/api/v1/records?limit=-1", ""), nil, 400, "validation_error")
	add(i, "ListProjectLetters", req("GET", "/api/v1/records?project_id=abc", ""), nil, 400, "validation_error")

	// Export package and receipt ids.
	const z = "packages"
	for _, bad := range []string{"x", "{pkg}0", strings.Repeat("0", 32), strings.Repeat("g", 32), strings.ToUpper("{pkg}"), "..%2f..%2ftyst.db", "export-{pkg}", "{pkg}.zip.enc", "%00"} {
		status, code := 404, "not_found"
		add(z, "Export_"+bad, req("GET", "/api/v1/exports/"+bad, ""), nil, status, code)
	}
	for _, bad := range []string{"rcpt_", "rcpt_" + strings.Repeat("0", 32), "{rcpt}0", "RCPT_" + strings.Repeat("a", 32), "rcpt_..%2f..", "{pkg}"} {
		add(z, "Receipt_"+bad, req("GET", "/api/v1/receipts/"+bad, ""), nil, 404, "not_found")
	}

	// Path traversal and odd paths: never a file outside the routes.
	const p = "paths"
	for _, path := range []string{
		"/api/v1/../../tyst.db", "/api/v1/record/..%2f..%2ftyst.db", "/api/v1/exports/..%2f..%2ffiles.key",
		"/api/v1/record/1/..%2faudio", "/api/v1/exports/%2e%2e%2ffiles.key", "/api/v1/record/%5c..%5c..%5ctyst.db",
		"/api/v1/exports/....//....//files.key", "/api/v1/nothing", "/api/v2/records",
	} {
		add(p, "Path_"+path, req("GET", path, ""), nil, 404, "not_found")
	}
	add(p, "AbsoluteForm", "GET http://evil.example/api/v1/records HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n", nil, 403, "forbidden")

	// Multipart uploads into the record without audio.
	const m = "multipart"
	up := rec + "/audio"
	part := func(headers, data string) []byte {
		return []byte("--b\r\n" + headers + "\r\n\r\n" + data + "\r\n--b--\r\n")
	}
	multi := func(name string, body []byte, status int, code string) {
		add(m, name, req("POST", up, fmt.Sprintf("Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n", len(body))), body, status, code)
	}
	okPart := `Content-Disposition: form-data; name="file"; filename="a.wav"` + "\r\nContent-Type: audio/wav"
	multi("NoParts", []byte("--b--\r\n"), 400, "validation_error")
	multi("NoClosingBoundary", []byte("--b\r\n"+okPart+"\r\n\r\n"+string(wav)), 400, "validation_error")
	multi("WrongBoundary", []byte("--c\r\n"+okPart+"\r\n\r\n"+string(wav)+"\r\n--c--\r\n"), 400, "validation_error")
	multi("NoDisposition", part("Content-Type: audio/wav", string(wav)), 400, "validation_error")
	multi("FieldNotFile", part(`Content-Disposition: form-data; name="other"`, string(wav)), 400, "validation_error")
	multi("EmptyFile", part(okPart, ""), 400, "validation_error")
	multi("TextFile", part(`Content-Disposition: form-data; name="file"; filename="a.txt"`, "hello, this is not audio at all"), 415, "unsupported_media_type")
	multi("TypeContradicts", part(`Content-Disposition: form-data; name="file"`+"\r\nContent-Type: audio/ogg", string(wav)), 415, "unsupported_media_type")
	multi("ImageType", part(`Content-Disposition: form-data; name="file"`+"\r\nContent-Type: image/png", string(wav)), 415, "unsupported_media_type")
	multi("TraversalFilename", part(`Content-Disposition: form-data; name="file"; filename="../../tyst.db"`+"\r\nContent-Type: text/plain", "x"), 415, "unsupported_media_type")
	multi("PartHeaderNoColon", part("not a header line", string(wav)), 400, "validation_error")
	multi("TooLarge", part(okPart, strings.Repeat(string(wav), 10)), 413, "payload_too_large")
	add(m, "NotMultipart", req("POST", up, "Content-Type: audio/wav\r\nContent-Length: 8000\r\n"), wav, 415, "unsupported_media_type")
	add(m, "NoBoundaryParam", req("POST", up, "Content-Type: multipart/form-data\r\nContent-Length: 10\r\n"), []byte("--b--\r\n\r\n\r\n"), 400, "validation_error")
	add(m, "MixedNotFormData", req("POST", up, "Content-Type: multipart/mixed; boundary=b\r\nContent-Length: 7\r\n"), []byte("--b--\r\n"), 415, "unsupported_media_type")
	add(m, "ContentLengthOverLimit", req("POST", up, "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n"), nil, 413, "payload_too_large")
	add(m, "IntoRecordWithAudio", req("POST", audio, fmt.Sprintf("Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n", len(part(okPart, string(wav))))), part(okPart, string(wav)), 409, "conflict")

	// Ranges on the record with audio (30,000 bytes): a malformed one is
	// ignored and the whole file served, one past the end is 416.
	const r = "ranges"
	rng := func(name, value string, status int, code string) {
		add(r, name, req("GET", audio, "Range: "+value+"\r\n"), nil, status, code)
	}
	rng("PastEnd", "bytes=30000-", 416, "range_not_satisfiable")
	rng("FarPastEnd", "bytes=99999999999999999999-", 416, "range_not_satisfiable")
	rng("SuffixZero", "bytes=-0", 416, "range_not_satisfiable")
	rng("Backwards", "bytes=500-100", 200, "")
	rng("Letters", "bytes=a-b", 200, "")
	rng("NoDash", "bytes=100", 200, "")
	rng("OtherUnit", "items=0-10", 200, "")
	rng("Negative", "bytes=-5-10", 200, "")
	rng("ManyRanges", "bytes="+strings.TrimSuffix(strings.Repeat("0-0,", 2000), ","), 200, "")
	rng("Valid", "bytes=0-99", 206, "")
	add(r, "TwoRangeHeaders", req("GET", audio, "Range: bytes=0-1\r\nRange: bytes=5-6\r\n"), nil, 200, "")
	add(r, "IfRangeGarbage", req("GET", audio, "Range: bytes=0-9\r\nIf-Range: \"nope\"\r\n"), nil, 200, "")
	add(r, "IfMatchMismatch", req("GET", audio, "If-Match: \"nope\"\r\n"), nil, 412, "")

	// Slow bodies: a JSON body that stops sending is cut off by the body
	// idle timeout; an upload under the rate floor after its grace time.
	const s = "slow"
	cs = append(cs,
		hostileCase{name: "JSONStalls", group: s, raw: req("POST", "/api/v1/record", "Content-Type: application/json\r\nContent-Length: 100\r\n"),
			body: []byte(`{"title":"slow`), status: 400, code: "validation_error"},
		hostileCase{name: "UploadTrickles", group: s, raw: req("POST", up, "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 60000\r\n"),
			body: part(okPart, string(wav)), slow: true, status: 400, code: "validation_error"},
	)
	return cs
}
