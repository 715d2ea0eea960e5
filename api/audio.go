package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
	"tyst/store/sniff"
)

// multipartOverhead is how much a multipart body may hold beyond the file:
// boundaries, part headers and small fields.
const multipartOverhead = 1 << 20

// maxParts bounds how many parts are skipped looking for "file".
const maxParts = 16

type uploadResponse struct {
	Status    string `json:"status"`
	FileID    uint64 `json:"file_id"`
	SHA256    string `json:"sha256"`
	SizeBytes int64  `json:"size_bytes"`
	MIMEType  string `json:"mime_type"`
}

// bodyLimitReader turns the body limit's error into payload_too_large.
type bodyLimitReader struct{ r io.Reader }

func (b bodyLimitReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		err = classifyBodyErr(err)
	}
	return n, err
}

func classifyBodyErr(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apiError(store.CodeTooLarge, "upload is larger than the limit")
	}
	return err
}

// handleAudioUpload streams the multipart field "file" into the store with
// multipart.Reader: nothing is spooled to a temp directory or held whole in
// memory (ParseMultipartForm would write plaintext to /tmp).
func (s *Server) handleAudioUpload(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return apiError(store.CodeUnsupported, "upload must be multipart/form-data with the audio in a field named file")
	}
	if params["boundary"] == "" {
		return apiError(store.CodeValidation, "multipart upload has no boundary")
	}
	// multipart.Reader reads through a 4 KiB buffer; a larger one saves
	// tens of thousands of read calls on a 200 MB upload.
	body := http.MaxBytesReader(w, r.Body, s.maxUpload+multipartOverhead)
	idle := &idleReader{r: body, rc: http.NewResponseController(w), idle: s.bodyIdle}
	mr := multipart.NewReader(bufio.NewReaderSize(idle, 256<<10), params["boundary"])
	for range maxParts {
		part, err := mr.NextPart()
		switch {
		case errors.Is(err, io.EOF):
			return apiError(store.CodeValidation, "upload has no field named file")
		case err != nil:
			if e := classifyBodyErr(err); e != err {
				return e
			}
			return apiError(store.CodeValidation, "upload is not a complete multipart body")
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		// The file name (part.FileName()) is never read: it can name a source.
		audio, err := s.records.AttachAudio(r.Context(), id, store.NewAudio{
			DeclaredType: part.Header.Get("Content-Type"),
			Body:         bodyLimitReader{part},
			MaxBytes:     s.maxUpload,
		})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, uploadResponse{
			Status: "ok", FileID: audio.FileID, SHA256: audio.SHA256, SizeBytes: audio.SizeBytes, MIMEType: audio.MIMEType,
		})
	}
	return apiError(store.CodeValidation, "upload has too many fields")
}

// idleReader gives up on an upload that sends nothing for idle: a stalled
// client must not hold a connection and a temp file for ever, while a slow
// field link that keeps sending may take as long as it needs.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(i.idle)) // unsupported writers: no limit
	return i.r.Read(p)
}

// errCapture remembers the first read error, which http.ServeContent drops
// once the header is out.
type errCapture struct {
	io.ReadSeeker
	err error
}

func (e *errCapture) Read(p []byte) (int, error) {
	n, err := e.ReadSeeker.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// handleAudioGet serves the decrypted audio with Range support, so a
// browser's player can seek. Every request is audited (audio_accessed).
func (s *Server) handleAudioGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	ar, err := s.records.OpenAudio(r.Context(), id)
	if err != nil {
		return err
	}
	defer ar.Close()
	h := w.Header()
	h.Set("Content-Type", ar.MIMEType)
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="audio-%d.%s"`, id, sniff.Ext(ar.MIMEType)))
	h.Set("ETag", `"`+strings.ToLower(ar.SHA256[:32])+`"`)
	body := &errCapture{ReadSeeker: ar}
	http.ServeContent(w, r, "", time.Time{}, body)
	if body.err != nil {
		// The status is already sent; the client sees a cut body.
		s.log.Error("audio read failed", keyRoute, "/api/v1/record/:id/audio", keyRequestID, requestID(r.Context()), keyErr, body.err.Error())
	}
	return nil
}
