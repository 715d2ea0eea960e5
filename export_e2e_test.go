package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

// TestExport_EndToEnd: a reporter's record goes out as a signed package
// over HTTP; the editor's side checks it with `tyst verify-package`
// (against the newsroom's published allowed_signers, with the key), with
// the real ssh-keygen, and decrypts audio.bin with `tyst decrypt` to the
// original audio. One changed byte fails; the package holds no file name or
// data-directory path; a decrypted export is for admins with a reason.
func TestExport_EndToEnd(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	data := filepath.Join(t.TempDir(), "data")
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", data)
	base := "http://" + srv.addr
	client := authClient(firstAdmin(t, base, srv.stderr.String))
	call := func(method, path, ct string, body io.Reader) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, base+path, body)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		return doRead(t, client, req)
	}
	_, b := call("POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"Källan vid hamnen"}`))
	var rec struct {
		ID uint64 `json:"transcript_id"`
	}
	json.Unmarshal(b, &rec)
	wav, _ := os.ReadFile("testdata/audio/tone.wav")
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "CANARY-source-name.wav")
	fw.Write(wav)
	mw.Close()
	if resp, b := call("POST", fmt.Sprintf("/api/v1/record/%d/audio", rec.ID), mw.FormDataContentType(), &mp); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	call("PUT", fmt.Sprintf("/api/v1/record/%d/segments", rec.ID), "application/json",
		strings.NewReader(`{"segments":[{"start_ms":0,"end_ms":900,"speaker":"R","text":"Hej"}]}`))

	resp, b := call("POST", fmt.Sprintf("/api/v1/record/%d/export", rec.ID), "application/json", strings.NewReader(`{"confirm":true,"reason":"for the editor"}`))
	var ex struct {
		PackageID   string   `json:"package_id"`
		ReceiptID   string   `json:"receipt_id"`
		DownloadURL string   `json:"download_url"`
		AudioMode   string   `json:"audio_mode"`
		Warnings    []string `json:"warnings"`
	}
	json.Unmarshal(b, &ex)
	if resp.StatusCode != 201 || ex.AudioMode != "encrypted" || len(ex.Warnings) != 0 || ex.DownloadURL != "/api/v1/exports/"+ex.PackageID {
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	resp, zipBytes := call("GET", ex.DownloadURL, "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "package.zip")
	os.WriteFile(pkg, zipBytes, 0o600)
	for _, s := range []string{"CANARY", data, "tone.wav"} {
		if bytes.Contains(zipBytes, []byte(s)) {
			t.Fatalf("the package holds %q", s)
		}
	}

	// The newsroom publishes its allowed_signers line.
	out, _, code := runCmd(t, nil, "signing-key", "--data", data)
	if code != 0 {
		t.Fatalf("signing-key: %d", code)
	}
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte(strings.SplitN(out, "\n", 2)[0]+"\n"), 0o600)
	keyFile := filepath.Join(dir, "newsroom.key")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	out, errOut, code := runCmd(t, nil, "verify-package", pkg, "--allowed-signers", allowed, "--key-file", keyFile)
	if code != 0 || !strings.Contains(out, `"trusted": true`) {
		t.Fatalf("verify-package: %d\n%s\n%s", code, out, errOut)
	}

	// Unzip; ssh-keygen checks the manifest; tyst decrypt opens audio.bin.
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var manifest struct {
		IntegrityHashes struct {
			AudioSHA256 string `json:"audio_sha256"`
		} `json:"integrity_hashes"`
	}
	json.Unmarshal(files["manifest.json"], &manifest)
	sum := sha256.Sum256(wav)
	if manifest.IntegrityHashes.AudioSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("manifest audio_sha256=%s", manifest.IntegrityHashes.AudioSHA256)
	}
	plain, errOut, code := runCmd(t, bytes.NewReader(files["audio.bin"]), "decrypt", "--key-file", keyFile)
	got := sha256.Sum256([]byte(plain))
	if code != 0 || got != sum {
		t.Fatalf("tyst decrypt of audio.bin: code %d, sha256 differs: %s", code, errOut)
	}
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		os.WriteFile(filepath.Join(dir, "manifest.json.sig"), files["manifest.json.sig"], 0o600)
		verify := func(m []byte) error {
			cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "tyst", "-n", "tyst-export-v1", "-s", filepath.Join(dir, "manifest.json.sig"))
			cmd.Stdin = bytes.NewReader(m)
			return cmd.Run()
		}
		if err := verify(files["manifest.json"]); err != nil {
			t.Fatalf("ssh-keygen refuses the manifest: %v", err)
		}
		m := append([]byte(nil), files["manifest.json"]...)
		m[len(m)/2] ^= 1
		if verify(m) == nil {
			t.Fatal("ssh-keygen accepts a changed manifest")
		}
	} else if os.Getenv("TYST_E2E_REQUIRED") == "1" {
		t.Fatal("ssh-keygen is not installed (Debian: openssh-client)")
	}

	// One byte changed anywhere: verify-package exits 1.
	bad := append([]byte(nil), zipBytes...)
	bad[len(bad)/3] ^= 0x20
	badPkg := filepath.Join(dir, "bad.zip")
	os.WriteFile(badPkg, bad, 0o600)
	if _, _, code := runCmd(t, nil, "verify-package", badPkg, "--allowed-signers", allowed, "--key-file", keyFile); code != 1 {
		t.Fatalf("verify-package of a changed package: exit %d, want 1", code)
	}

	// Decrypted: the warning; and the editor may not.
	resp, b = call("POST", fmt.Sprintf("/api/v1/record/%d/export", rec.ID), "application/json", strings.NewReader(`{"confirm":true,"reason":"short","export_audio_mode":"decrypted"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("decrypted export with a short reason: %d %s", resp.StatusCode, b)
	}
	resp, b = call("POST", fmt.Sprintf("/api/v1/record/%d/export", rec.ID), "application/json", strings.NewReader(`{"confirm":true,"reason":"legal review of the interview","export_audio_mode":"decrypted"}`))
	if resp.StatusCode != 201 || !strings.Contains(string(b), "Audio exported as decrypted. Handle with extreme care.") {
		t.Fatalf("decrypted export: %d %s", resp.StatusCode, b)
	}
	json.Unmarshal(b, &ex)
	_, zipBytes = call("GET", ex.DownloadURL, "", nil)
	os.WriteFile(pkg, zipBytes, 0o600)
	if out, errOut, code := runCmd(t, nil, "verify-package", pkg, "--allowed-signers", allowed); code != 0 {
		t.Fatalf("verify-package of the decrypted package: %d\n%s\n%s", code, out, errOut)
	}
	zr, _ = zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	found := false
	for _, f := range zr.File {
		if f.Name == "audio.wav" {
			rc, _ := f.Open()
			a, _ := io.ReadAll(rc)
			found = bytes.Equal(a, wav)
		}
	}
	if !found {
		t.Fatal("the decrypted package has no audio.wav equal to the upload")
	}
	srv.stop(t)
}
