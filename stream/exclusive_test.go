package stream_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"tyst/stream/proto"
)

// TestStream_ExcludesUpload: a live stream and an upload never both write
// one record's audio. An upload into a record a stream holds is refused
// (409) — also while the stream is dropped and resumable — and a stream
// into a record an upload is writing is refused; the stream's audio is then
// stored whole.
func TestStream_ExcludesUpload(t *testing.T) {
	e := mustEnv(t)
	id := e.mustRecord(t, "live")
	pcm := soxPCM(t, 16000, 1, 1)
	upload := func(body io.Reader, ct string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/record/%d/audio", e.URL, id), body)
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	wav := wavOf(pcm, 16000, 1)
	multipartOf := func() (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "x.wav")
		fw.Write(wav)
		mw.Close()
		return &b, mw.FormDataContentType()
	}

	c := e.dial(t, id)
	c.start(16000, 1)
	if err := c.sendPCM(pcm[:len(pcm)/2], 640); err != nil {
		t.Fatal(err)
	}
	body, ct := multipartOf()
	if resp, b := upload(body, ct); resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "live stream") {
		t.Fatalf("upload during a stream: %d %s", resp.StatusCode, b)
	}
	c.send(`{"type":"stop"}`)
	// (The first half only: stop stores what was sent.)
	st := expect[proto.Stored](c)
	e.mustStored(t, id, st, pcm[:len(pcm)/2], 16000, 1)

	// An upload in progress holds its record against a stream.
	id2 := e.mustRecord(t, "upload")
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/record/%d/audio", e.URL, id2), pr)
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	fw, _ := mw.CreateFormFile("file", "x.wav")
	fw.Write(wav[:len(wav)/2])
	for deadline := time.Now().Add(5 * time.Second); !e.db.Uploading(id2); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upload never started")
		}
	}
	c2 := e.dial(t, id2)
	c2.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`)
	c2.expectClose(proto.ClosePolicy, "conflict")
	fw.Write(wav[len(wav)/2:])
	mw.Close()
	pw.Close()
	if code := <-done; code != http.StatusCreated {
		t.Fatalf("the upload the stream stood back for: %d", code)
	}
}
