package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

// TestDestroy_RemovesExports: the adversarial review's H1 over HTTP. An
// admin makes an encrypted and a decrypted package of a record; the dry
// run counts them; after the destroy both packages are 404 for everyone
// (viewer, editor, admin), their files are gone from the data directory,
// the export and audio-removal receipts are 404, the destroy receipt holds
// no audio_sha256, and no byte under the data directory holds the audio's
// SHA-256.
func TestDestroy_RemovesExports(t *testing.T) {
	ts := mustServe(t)
	viewer := ts.mustUser(t, "viewer", store.RoleViewer, "")
	editor := ts.mustUser(t, "editor", store.RoleEditor, "")
	wav := mustRead(t, audioDir+"tone.wav")
	sum := sha256.Sum256(wav)
	id := ts.mustCreate(t, "Source X, whistleblower")
	if resp, b := ts.upload(t, id, "audio/wav", wav); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var receipts []string
	var rm struct {
		ReceiptID string `json:"receipt_id"`
	}
	resp, b := ts.do(t, "DELETE", fmt.Sprintf("/api/v1/record/%d/audio", id), "application/json", strings.NewReader(`{"confirm":true,"reason":"wrong take"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("audio removal: %d %s", resp.StatusCode, b)
	}
	mustUnmarshal(t, b, &rm)
	receipts = append(receipts, rm.ReceiptID)
	ts.upload(t, id, "audio/wav", wav)
	var packages []string
	for _, mode := range []string{"encrypted", "decrypted"} {
		resp, b := ts.postJSON(t, fmt.Sprintf("/api/v1/record/%d/export", id), `{"confirm":true,"reason":"for legal review","export_audio_mode":"`+mode+`"}`)
		if resp.StatusCode != 201 {
			t.Fatalf("export %s: %d %s", mode, resp.StatusCode, b)
		}
		var out struct {
			PackageID string `json:"package_id"`
			ReceiptID string `json:"receipt_id"`
		}
		mustUnmarshal(t, b, &out)
		packages = append(packages, out.PackageID)
		receipts = append(receipts, out.ReceiptID)
	}
	for _, r := range receipts[1:] { // the removal's receipt names no hash
		if resp, b := ts.do(t, "GET", "/api/v1/receipts/"+r, "", nil); resp.StatusCode != 200 || !strings.Contains(string(b), hex.EncodeToString(sum[:])) {
			t.Fatalf("receipt before the destroy: %d %s (the test proves nothing)", resp.StatusCode, b)
		}
	}

	path := fmt.Sprintf("/api/v1/record/%d/destroy", id)
	resp, b = ts.do(t, "POST", path, "", nil, asToken(editor)...)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"exports":2`) {
		t.Fatalf("dry run: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.do(t, "POST", path, "application/json", strings.NewReader(`{"dry_run":false,"confirm":true,"reason":"source asked"}`), asToken(editor)...)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"exports":2`) {
		t.Fatalf("destroy: %d %s", resp.StatusCode, b)
	}
	var res struct {
		ReceiptID string `json:"receipt_id"`
	}
	mustUnmarshal(t, b, &res)

	for _, p := range packages {
		for _, tok := range []string{viewer, editor, ts.token} {
			resp, b := ts.do(t, "GET", "/api/v1/exports/"+p, "", nil, asToken(tok)...)
			wantError(t, resp, b, 404, "not_found")
		}
	}
	for _, r := range receipts {
		resp, b := ts.do(t, "GET", "/api/v1/receipts/"+r, "", nil)
		wantError(t, resp, b, 404, "not_found")
	}
	resp, b = ts.do(t, "GET", "/api/v1/receipts/"+res.ReceiptID, "", nil)
	if resp.StatusCode != 200 || strings.Contains(string(b), "audio_sha256") || !strings.Contains(string(b), `\"exports\": 2`) {
		t.Fatalf("destroy receipt: %d %s", resp.StatusCode, b)
	}
	ts.mustForget(t, sum, "destroy")
}

// TestRemoveAudio_RemovesExports: the adversarial review's F2 over HTTP.
// An admin exports a record's audio decrypted; an editor removes the
// audio; the package is then 404 for everyone, its file is gone from the
// data directory, its export receipt is 404, the removal's receipt counts
// the package and holds no audio_sha256, and no byte under the data
// directory holds the removed audio's SHA-256.
func TestRemoveAudio_RemovesExports(t *testing.T) {
	ts := mustServe(t)
	viewer := ts.mustUser(t, "viewer", store.RoleViewer, "")
	editor := ts.mustUser(t, "editor", store.RoleEditor, "")
	wav := mustRead(t, audioDir+"tone.wav")
	sum := sha256.Sum256(wav)
	id := ts.mustCreate(t, "Wrong upload")
	if resp, b := ts.upload(t, id, "audio/wav", wav); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	resp, b := ts.postJSON(t, fmt.Sprintf("/api/v1/record/%d/export", id), `{"confirm":true,"reason":"decrypted for the desk","export_audio_mode":"decrypted"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	var exp struct {
		PackageID string `json:"package_id"`
		ReceiptID string `json:"receipt_id"`
	}
	mustUnmarshal(t, b, &exp)
	if resp, b := ts.do(t, "GET", "/api/v1/exports/"+exp.PackageID, "", nil, asToken(editor)...); resp.StatusCode != 200 {
		t.Fatalf("the package before the removal: %d %s (the test proves nothing)", resp.StatusCode, b)
	}

	resp, b = ts.do(t, "DELETE", fmt.Sprintf("/api/v1/record/%d/audio", id), "application/json",
		strings.NewReader(`{"confirm":true,"reason":"wrong file"}`), asToken(editor)...)
	if resp.StatusCode != 200 {
		t.Fatalf("audio removal: %d %s", resp.StatusCode, b)
	}
	var rm struct {
		ReceiptID string `json:"receipt_id"`
	}
	mustUnmarshal(t, b, &rm)
	for _, tok := range []string{viewer, editor, ts.token} {
		resp, b := ts.do(t, "GET", "/api/v1/exports/"+exp.PackageID, "", nil, asToken(tok)...)
		wantError(t, resp, b, 404, "not_found")
	}
	resp, b = ts.do(t, "GET", "/api/v1/receipts/"+exp.ReceiptID, "", nil)
	wantError(t, resp, b, 404, "not_found")
	resp, b = ts.do(t, "GET", "/api/v1/receipts/"+rm.ReceiptID, "", nil)
	if resp.StatusCode != 200 || strings.Contains(string(b), "audio_sha256") || !strings.Contains(string(b), `\"exports\": 1`) {
		t.Fatalf("removal receipt: %d %s", resp.StatusCode, b)
	}
	ts.mustForget(t, sum, "removal")
}

// mustForget checks what an erasure (what: destroy or removal) leaves of
// audio whose SHA-256 is sum: no package file in the exports directory,
// and the hash, hex or raw, in no byte under the data directory.
func (ts *testServer) mustForget(t *testing.T, sum [32]byte, what string) {
	t.Helper()
	if es, _ := os.ReadDir(filepath.Join(ts.dir, "exports")); len(es) != 1 || es[0].Name() != "tmp" {
		t.Fatalf("the exports directory after the %s holds %v", what, es)
	}
	needles := [][]byte{[]byte(hex.EncodeToString(sum[:])), sum[:]}
	filepath.WalkDir(ts.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		raw, _ := os.ReadFile(p)
		for _, n := range needles {
			if bytes.Contains(raw, n) {
				t.Errorf("%s holds the SHA-256 of the audio gone with the %s", filepath.Base(p), what)
			}
		}
		return nil
	})
}
