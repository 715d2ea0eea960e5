package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tyst/store"
)

// TestKilledMidUpload kills the real server with SIGKILL while an upload
// streams in, restarts it, and checks that the record has no audio, no temp
// file or blob is left, and the record still takes its audio.
func TestKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	key := store.GenerateKey()
	srv := startServer(t, bin, data, key)
	base := srv.base
	client := authClient(firstAdmin(t, base, srv.tail.String))

	resp, err := client.Post(base+"/api/v1/record", "application/json", strings.NewReader(`{"title":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	wav, err := os.ReadFile("testdata/audio/tone.wav")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
		pw.Write(wav)
		chunk := make([]byte, 64<<10)
		for i := 0; i < 80; i++ { // 5 MiB, then the server dies mid-stream
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		srv.cmd.Process.Signal(syscall.SIGKILL)
		pw.Write(chunk) // blocks until the connection breaks
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/api/v1/record/1/audio", pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("upload finished with %d although the server was killed", resp.StatusCode)
	}
	<-srv.done
	tmp, _ := os.ReadDir(filepath.Join(data, "blobs", "tmp"))
	if len(tmp) == 0 {
		t.Fatal("the kill left no temp file: the test did not kill mid-upload")
	}

	base = startServer(t, bin, data, key).base
	tmp, _ = os.ReadDir(filepath.Join(data, "blobs", "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temp files left after restart", len(tmp))
	}
	resp, err = client.Get(base + "/api/v1/record/1")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Status string          `json:"status"`
		Audio  json.RawMessage `json:"audio"`
	}
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if rec.Status != "new" || string(rec.Audio) != "null" {
		t.Fatalf("record after the crash: %+v", rec)
	}
	pr2, pw2 := io.Pipe()
	go func() {
		fmt.Fprint(pw2, "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: audio/wav\r\n\r\n")
		pw2.Write(wav)
		fmt.Fprint(pw2, "\r\n--b--\r\n")
		pw2.Close()
	}()
	req, _ = http.NewRequest("POST", base+"/api/v1/record/1/audio", pr2)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("upload after restart: %d", resp.StatusCode)
	}
}
