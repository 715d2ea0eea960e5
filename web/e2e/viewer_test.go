package e2e

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestViewer: a viewer reads and listens, and is offered nothing that
// changes a record.
func TestViewer(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := startBrowser(t, srv, browserOptions{})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	id := createRecordAPI(t, s.api, "Read only")
	wav := filepath.Join(t.TempDir(), "a.wav")
	writeToneWAV(t, wav, 16000, 440, 2)
	uploadAPI(t, s.api, id, wav)
	s.api.call("POST", "/api/v1/record/"+id+"/notes", map[string]any{"text": "Visible note"})
	if status, body := s.api.call("POST", "/api/v1/users", map[string]any{"username": "viewer1", "password": "viewer password 12", "role": "viewer"}); status != 201 {
		t.Fatalf("create viewer: %d %s", status, body)
	}
	b.click("#logout")
	b.waitJS("the login page", `location.hash === '#/login' && document.querySelector('input[name=username]')`, 10*time.Second)
	b.fill("input[name=username]", "viewer1")
	b.fill("input[name=password]", "viewer password 12")
	b.click("#main form button[type=submit]")
	b.waitJS("the record list", `document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	if eval[bool](b, `!!document.querySelector('#main a.button[href="#/new"]')`) {
		t.Error("a viewer is offered a new record")
	}
	b.click("#records td.title a")
	b.waitJS("the record page", `document.querySelector('#player') && document.querySelector('#notes')`, 10*time.Second)
	for _, sel := range []string{"details.card", "#upload-file", "#rec-start", "#transcript-file", "#note-text", "#export-open", "#destroy-open", "#notes button", "#audio-h ~ .actions button"} {
		if eval[bool](b, `!!document.querySelector(`+"`"+sel+"`"+`)`) {
			t.Errorf("a viewer is offered %s", sel)
		}
	}
	if d := eval[float64](b, `(async () => { const a = document.querySelector('#player'); if (a.readyState < 1) await new Promise(ok => a.onloadedmetadata = ok); return a.duration; })()`); d < 1.9 || d > 2.1 {
		t.Errorf("a viewer's player reports %.2f s, want 2", d)
	}
	b.screen("32-viewer-record")
	b.checkClean()
}

// uploadAPI uploads a file as the record's audio.
func uploadAPI(t *testing.T, c *apiClient, id, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "audio.wav")
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", c.base+"/api/v1/record/"+id+"/audio", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Cookie", c.cookie)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
}
