package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

// TestTranscriptAndNotes: a transcript goes in as JSON, WebVTT or SubRip
// and comes back as JSON; notes are added, listed and deleted; the record
// shows the counts.
func TestTranscriptAndNotes(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "interview")
	path := fmt.Sprintf("/api/v1/record/%d/segments", id)
	var got struct {
		Segments []store.Segment `json:"segments"`
	}
	for _, c := range []struct {
		ct, file string
		n        int
	}{
		{"text/vtt", "../store/transcript/testdata/interview.vtt", 3},
		{"application/x-subrip", "../store/transcript/testdata/interview.srt", 2},
	} {
		body, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		resp, b := ts.do(t, "PUT", path, c.ct, bytes.NewReader(body))
		mustUnmarshal(t, b, &got)
		if resp.StatusCode != 200 || len(got.Segments) != c.n {
			t.Fatalf("%s: %d %s", c.ct, resp.StatusCode, b)
		}
	}
	resp, b := ts.do(t, "PUT", path, "application/json", strings.NewReader(`{"segments":[{"start_ms":0,"end_ms":1500,"speaker":"R","text":"Hej"}]}`))
	if resp.StatusCode != 200 {
		t.Fatalf("json: %d %s", resp.StatusCode, b)
	}
	_, b = ts.do(t, "GET", path, "", nil)
	mustUnmarshal(t, b, &got)
	if len(got.Segments) != 1 || got.Segments[0].Text != "Hej" || got.Segments[0].EndMS != 1500 {
		t.Fatalf("read back: %s", b)
	}
	resp, b = ts.postJSON(t, fmt.Sprintf("/api/v1/record/%d/notes", id), `{"text":"call back Monday"}`)
	var note struct {
		NoteID uint64 `json:"note_id"`
	}
	mustUnmarshal(t, b, &note)
	if resp.StatusCode != 201 || note.NoteID == 0 {
		t.Fatalf("note: %d %s", resp.StatusCode, b)
	}
	_, b = ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", id), "", nil)
	if !strings.Contains(string(b), `"counts":{"segments":1,"notes":1}`) {
		t.Fatalf("record counts: %s", b)
	}
	resp, _ = ts.do(t, "DELETE", fmt.Sprintf("/api/v1/record/%d/notes/%d", id, note.NoteID), "", nil)
	if resp.StatusCode != 204 {
		t.Fatalf("delete note: %d", resp.StatusCode)
	}
	_, b = ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d/notes", id), "", nil)
	if string(bytes.TrimSpace(b)) != `{"notes":[]}` {
		t.Fatalf("notes after delete: %s", b)
	}
}

// TestEditBadInput: every bad transcript, note, update, destroy and receipt
// request gets a clear 4xx and changes nothing.
func TestEditBadInput(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "interview")
	rec := fmt.Sprintf("/api/v1/record/%d", id)
	many := make([]string, 100_000)
	for i := range many {
		many[i] = fmt.Sprintf(`{"start_ms":%d,"end_ms":%d,"text":"x"}`, i*10, i*10+5)
	}
	hugeNote, _ := json.Marshal(map[string]string{"text": strings.Repeat("n", 10<<20)})
	other := ts.mustUser(t, "owner", store.RoleEditor, "")
	_, b := ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"s","sensitivity":"sensitive"}`), asToken(other)...)
	var sens struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(t, b, &sens)
	_, b = ts.do(t, "POST", fmt.Sprintf("/api/v1/record/%d/destroy", sens.TranscriptID), "application/json",
		strings.NewReader(`{"dry_run":false,"confirm":true,"reason":"done"}`), asToken(other)...)
	var destroyed struct {
		ReceiptID string `json:"receipt_id"`
	}
	mustUnmarshal(t, b, &destroyed)
	viewer := ts.mustUser(t, "viewer", store.RoleViewer, "")
	cases := []struct {
		name, method, path, ct, body string
		hdr                          []string
		status                       int
		code                         string
	}{
		{"VTTNotParsing", "PUT", rec + "/segments", "text/vtt", "00:00.000 --> 00:01.000\nno header", nil, 400, "validation_error"},
		{"SRTNotParsing", "PUT", rec + "/segments", "application/x-subrip", "one\nno timing", nil, 400, "validation_error"},
		{"Overlapping", "PUT", rec + "/segments", "application/json", `{"segments":[{"start_ms":0,"end_ms":1000},{"start_ms":500,"end_ms":1500}]}`, nil, 400, "validation_error"},
		{"Negative", "PUT", rec + "/segments", "application/json", `{"segments":[{"start_ms":-5,"end_ms":1000}]}`, nil, 400, "validation_error"},
		{"HundredThousandSegments", "PUT", rec + "/segments", "application/json", `{"segments":[` + strings.Join(many, ",") + `]}`, nil, 413, "payload_too_large"},
		{"SegmentsMissing", "PUT", rec + "/segments", "application/json", `{}`, nil, 400, "validation_error"},
		{"SegmentsAsText", "PUT", rec + "/segments", "text/plain", "hello", nil, 415, "unsupported_media_type"},
		{"TenMegabyteNote", "POST", rec + "/notes", "application/json", string(hugeNote), nil, 413, "payload_too_large"},
		{"EmptyNote", "POST", rec + "/notes", "application/json", `{"text":"  "}`, nil, 400, "validation_error"},
		{"UnknownNote", "DELETE", rec + "/notes/77", "", "", nil, 404, "not_found"},
		{"PatchNothing", "PATCH", rec, "application/json", `{}`, nil, 400, "validation_error"},
		{"PatchBadTime", "PATCH", rec, "application/json", `{"retain_until":"tomorrow"}`, nil, 400, "validation_error"},
		{"HoldByEditor", "PATCH", rec, "application/json", `{"hold":true}`, asToken(ts.mustUser(t, "ed", store.RoleEditor, "")), 403, "forbidden"},
		{"DestroyNoConfirm", "POST", rec + "/destroy", "application/json", `{"dry_run":false,"reason":"x"}`, nil, 400, "validation_error"},
		{"DestroyNoReason", "POST", rec + "/destroy", "application/json", `{"dry_run":false,"confirm":true}`, nil, 400, "validation_error"},
		{"RemoveNoAudio", "DELETE", rec + "/audio", "application/json", `{"confirm":true,"reason":"x"}`, nil, 404, "not_found"},
		{"RemoveNoConfirm", "DELETE", rec + "/audio", "application/json", `{"reason":"x"}`, nil, 400, "validation_error"},
		{"UnknownReceipt", "GET", "/api/v1/receipts/rcpt_" + strings.Repeat("a", 32), "", "", nil, 404, "not_found"},
		{"MalformedReceipt", "GET", "/api/v1/receipts/..%2F..%2Fetc", "", "", nil, 404, "not_found"},
		{"OthersSensitiveReceipt", "GET", "/api/v1/receipts/" + destroyed.ReceiptID, "", "", asToken(viewer), 404, "not_found"},
		{"DestroyOthersDestroyed", "POST", fmt.Sprintf("/api/v1/record/%d/destroy", sens.TranscriptID), "", "", asToken(viewer), 403, "forbidden"},
	}
	before := ts.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := ts.do(t, c.method, c.path, c.ct, strings.NewReader(c.body), c.hdr...)
			wantError(t, resp, b, c.status, c.code)
			if after := ts.snapshot(t); after != before {
				t.Fatalf("a refused request changed something:\n%s\n---\n%s", before, after)
			}
		})
	}
}

// TestDestroyAndReceipt: the API shapes of DESIGN §7, end to end.
func TestDestroyAndReceipt(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "to destroy")
	if resp, b := ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav")); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	path := fmt.Sprintf("/api/v1/record/%d/destroy", id)
	resp, b := ts.do(t, "POST", path, "", nil)
	if resp.StatusCode != 200 || string(bytes.TrimSpace(b)) != fmt.Sprintf(`{"status":"dry_run","would_delete":{"files":1,"segments":0,"notes":0,"exports":0},"transcript_id":%d}`, id) {
		t.Fatalf("dry run: %d %s", resp.StatusCode, b)
	}
	var res struct {
		Status, ReceiptID, DestroyedAt, DestroyStatus string
		Counts                                        map[string]int
	}
	resp, b = ts.postJSON(t, path, `{"dry_run":false,"confirm":true,"reason":"source asked"}`)
	json.Unmarshal(b, &struct {
		Status        *string         `json:"status"`
		ReceiptID     *string         `json:"receipt_id"`
		DestroyedAt   *string         `json:"destroyed_at"`
		DestroyStatus *string         `json:"destroy_status"`
		Counts        *map[string]int `json:"counts"`
	}{&res.Status, &res.ReceiptID, &res.DestroyedAt, &res.DestroyStatus, &res.Counts})
	if resp.StatusCode != 200 || res.Status != "destroyed" || res.DestroyStatus != "destroyed" || res.ReceiptID == "" || res.Counts["files"] != 1 || res.DestroyedAt == "" {
		t.Fatalf("destroy: %d %s", resp.StatusCode, b)
	}
	resp, b2 := ts.postJSON(t, path, `{"dry_run":false,"confirm":true,"reason":"again"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b2), `"destroy_status":"already_deleted"`) || !strings.Contains(string(b2), res.ReceiptID) {
		t.Fatalf("repeat: %d %s", resp.StatusCode, b2)
	}
	resp, b = ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", id), "", nil)
	wantError(t, resp, b, http.StatusNotFound, "not_found")
	resp, b = ts.do(t, "GET", "/api/v1/receipts/"+res.ReceiptID, "", nil)
	var rc struct {
		Kind, Document, Signature, Reason, AllowedSigners string
	}
	json.Unmarshal(b, &struct {
		Kind           *string `json:"kind"`
		Document       *string `json:"document"`
		Signature      *string `json:"signature"`
		Reason         *string `json:"reason"`
		AllowedSigners *string `json:"allowed_signers"`
	}{&rc.Kind, &rc.Document, &rc.Signature, &rc.Reason, &rc.AllowedSigners})
	if resp.StatusCode != 200 || rc.Kind != "destroy" || rc.Reason != "source asked" || !strings.Contains(rc.Signature, "BEGIN SSH SIGNATURE") || !strings.HasPrefix(rc.AllowedSigners, "tyst ") {
		t.Fatalf("receipt (admin): %d %s", resp.StatusCode, b)
	}
	resp, b = ts.do(t, "GET", "/api/v1/receipts/"+res.ReceiptID, "", nil, asToken(ts.mustUser(t, "viewer", store.RoleViewer, ""))...)
	if resp.StatusCode != 200 || strings.Contains(string(b), "source asked") {
		t.Fatalf("receipt (viewer) shows the reason or fails: %d %s", resp.StatusCode, b)
	}
	// The record's own events are redacted to their hashes; only
	// `destroyed` still names it.
	resp, b = ts.do(t, "GET", fmt.Sprintf("/api/v1/audit?record_id=%d", id), "", nil)
	if resp.StatusCode != 200 || strings.Count(string(b), `"seq"`) != 1 || !strings.Contains(string(b), `"action":"destroyed"`) {
		t.Fatalf("the record's audit: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.do(t, "GET", "/api/v1/audit", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"redacted":true`) || strings.Contains(string(b), `"action":"audio_uploaded"`) {
		t.Fatalf("audit: %d %s", resp.StatusCode, b)
	}
}

// TestStatus: the status answers with the signing key, storage and the
// items each key id covers, and names no key or path.
func TestStatus(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "s")
	ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav"))
	resp, b := ts.do(t, "GET", "/api/v1/status", "", nil)
	var st struct {
		Version    string `json:"version"`
		SigningKey struct {
			Fingerprint    string `json:"fingerprint"`
			AllowedSigners string `json:"allowed_signers"`
		} `json:"signing_key"`
		Storage struct {
			Blobs     int   `json:"blobs"`
			Bytes     int64 `json:"bytes"`
			FreeBytes int64 `json:"free_bytes"`
		} `json:"storage"`
		Keys struct {
			ItemsPerKey map[string]int `json:"items_per_key"`
		} `json:"keys"`
		Limits struct {
			MaxUploadBytes int64 `json:"max_upload_bytes"`
		} `json:"limits"`
	}
	mustUnmarshal(t, b, &st)
	if resp.StatusCode != 200 || st.Version != "test" || !strings.HasPrefix(st.SigningKey.Fingerprint, "SHA256:") ||
		st.Storage.Blobs != 1 || st.Storage.Bytes == 0 || st.Storage.FreeBytes == 0 || len(st.Keys.ItemsPerKey) != 1 || st.Limits.MaxUploadBytes != store.DefaultMaxUpload {
		t.Fatalf("status: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), ts.dir) {
		t.Fatal("the status names the data directory")
	}
}

// TestAudio_Durations: every accepted format uploaded over HTTP gets a
// duration_ms within 1 % of what ffprobe reported for the file (the golden
// testdata/audio/durations.json), whatever alias its type was declared
// under; a Matroska file that is not WebM is refused.
func TestAudio_Durations(t *testing.T) {
	ts := mustServe(t)
	var golden map[string]struct {
		Seconds float64 `json:"seconds"`
	}
	mustUnmarshal(t, mustRead(t, audioDir+"durations.json"), &golden)
	declared := map[string]string{".mov": "video/quicktime", ".3gp": "audio/3gpp", ".mp4": "video/mp4", ".webm": "video/webm", ".opus": "audio/ogg"}
	if len(golden) < 15 {
		t.Fatalf("only %d files in the golden list", len(golden))
	}
	for file, g := range golden {
		t.Run(file, func(t *testing.T) {
			id := ts.mustCreate(t, file)
			resp, body := ts.upload(t, id, declared[filepath.Ext(file)], mustRead(t, audioDir+file))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload: %d %s", resp.StatusCode, body)
			}
			_, body = ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%d", id), "", nil)
			var rec struct {
				Audio struct {
					DurationMS *int64 `json:"duration_ms"`
				} `json:"audio"`
			}
			mustUnmarshal(t, body, &rec)
			if rec.Audio.DurationMS == nil {
				t.Fatalf("no duration: %s", body)
			}
			want := g.Seconds * 1000
			if got := float64(*rec.Audio.DurationMS); got < want*0.99 || got > want*1.01 {
				t.Fatalf("duration_ms=%v, want %v ± 1 %%", got, want)
			}
		})
	}
	for _, typ := range []string{"", "video/x-matroska", "audio/webm"} {
		id := ts.mustCreate(t, "mka")
		resp, body := ts.upload(t, id, typ, mustRead(t, audioDir+"voice.mka"))
		wantError(t, resp, body, http.StatusUnsupportedMediaType, "unsupported_media_type")
		if !strings.Contains(string(body), "WAV, MP3") {
			t.Fatalf("the refusal does not say what is accepted: %s", body)
		}
	}
}

// TestExport_BadInput: every bad export or download request gets a clear
// 4xx and changes nothing; a package goes with its record's destroy.
func TestExport_BadInput(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "interview")
	ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav"))
	editor := ts.mustUser(t, "ed", store.RoleEditor, "")
	owner := ts.mustUser(t, "owner", store.RoleEditor, "")
	_, b := ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"s","sensitivity":"sensitive"}`), asToken(owner)...)
	var sens struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(t, b, &sens)
	_, b = ts.do(t, "POST", fmt.Sprintf("/api/v1/record/%d/export", sens.TranscriptID), "application/json", strings.NewReader(`{"confirm":true,"reason":"mine"}`), asToken(owner)...)
	var pkg struct {
		PackageID string `json:"package_id"`
	}
	mustUnmarshal(t, b, &pkg)
	path := fmt.Sprintf("/api/v1/record/%d/export", id)
	before := ts.snapshot(t)
	for _, c := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"NoConfirm", "POST", path, `{"reason":"x"}`, nil, 400, "validation_error"},
		{"NoReason", "POST", path, `{"confirm":true}`, nil, 400, "validation_error"},
		{"BadMode", "POST", path, `{"confirm":true,"reason":"x","export_audio_mode":"plain"}`, nil, 400, "validation_error"},
		{"DecryptedShortReason", "POST", path, `{"confirm":true,"reason":"too short","export_audio_mode":"decrypted"}`, nil, 400, "validation_error"},
		{"DecryptedByEditor", "POST", path, `{"confirm":true,"reason":"long enough reason","export_audio_mode":"decrypted"}`, asToken(editor), 403, "forbidden"},
		{"UnknownRecord", "POST", "/api/v1/record/999/export", `{"confirm":true,"reason":"x"}`, nil, 404, "not_found"},
		{"OthersSensitive", "POST", fmt.Sprintf("/api/v1/record/%d/export", sens.TranscriptID), `{"confirm":true,"reason":"x"}`, asToken(editor), 404, "not_found"},
		{"UnknownPackage", "GET", "/api/v1/exports/" + strings.Repeat("a", 32), "", nil, 404, "not_found"},
		{"MalformedPackage", "GET", "/api/v1/exports/..", "", nil, 404, "not_found"},
		{"OthersSensitivePackage", "GET", "/api/v1/exports/" + pkg.PackageID, "", asToken(editor), 404, "not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct := ""
			if c.body != "" {
				ct = "application/json"
			}
			resp, b := ts.do(t, c.method, c.path, ct, strings.NewReader(c.body), c.hdr...)
			wantError(t, resp, b, c.status, c.code)
			if after := ts.snapshot(t); after != before {
				t.Fatalf("a refused request changed something")
			}
		})
	}
	// The owner destroys the record; the package goes with it.
	if resp, _ := ts.do(t, "GET", "/api/v1/exports/"+pkg.PackageID, "", nil, asToken(owner)...); resp.StatusCode != 200 {
		t.Fatalf("package before its record's destroy: %d", resp.StatusCode)
	}
	ts.do(t, "POST", fmt.Sprintf("/api/v1/record/%d/destroy", sens.TranscriptID), "application/json", strings.NewReader(`{"dry_run":false,"confirm":true,"reason":"done"}`), asToken(owner)...)
	if resp, _ := ts.do(t, "GET", "/api/v1/exports/"+pkg.PackageID, "", nil, asToken(owner)...); resp.StatusCode != 404 {
		t.Fatalf("package after its record's destroy: %d, want 404", resp.StatusCode)
	}
}
