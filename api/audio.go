package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
	"tyst/store/media"
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
//
// Before a byte of the body is read (so a client that sent Expect:
// 100-continue never sends it): a Content-Length over the limit is 413, and
// an upload over the account's or the server's share of uploads in
// progress is 429 or 503.
func (s *Server) handleAudioUpload(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	if r.ContentLength > s.maxUpload+multipartOverhead {
		return apiError(store.CodeTooLarge, fmt.Sprintf("upload is larger than the limit of %d MiB", s.maxUpload>>20))
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return apiError(store.CodeUnsupported, "upload must be multipart/form-data with the audio in a field named file")
	}
	if params["boundary"] == "" {
		return apiError(store.CodeValidation, "multipart upload has no boundary")
	}
	release, err := s.uploads.acquire(w, r)
	if err != nil {
		return err
	}
	defer release()
	// multipart.Reader reads through a 4 KiB buffer; a larger one saves
	// tens of thousands of read calls on a 200 MB upload.
	body := http.MaxBytesReader(w, r.Body, s.maxUpload+multipartOverhead)
	idle := &idleReader{r: body, rc: http.NewResponseController(w), idle: s.bodyIdle,
		minRate: s.uploadMinRate, grace: s.uploadGrace, start: time.Now()}
	defer idle.rc.SetReadDeadline(time.Time{}) // see decodeJSON
	mr := multipart.NewReader(bufio.NewReaderSize(idle, 256<<10), params["boundary"])
	for range maxParts {
		part, err := mr.NextPart()
		var known *store.Error
		switch {
		case errors.Is(err, io.EOF):
			return apiError(store.CodeValidation, "upload has no field named file")
		case errors.As(err, &known): // too slow
			return err
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
			Exclusive:    s.noStream(id),
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

// idleReader gives up on a body that sends nothing for idle: a stalled
// client must not hold a connection and a temp file for ever, while a slow
// field link that keeps sending may take as long as it needs, as long as,
// once grace has passed, it averages at least minRate bytes a second since
// start (when minRate is set). Both limits are read deadlines, so a read
// that blocks is ended too.
type idleReader struct {
	r     io.Reader
	rc    *http.ResponseController
	idle  time.Duration
	until time.Time // when set, the whole body must have arrived by then
	// The rate floor, when minRate > 0.
	minRate int64 // bytes a second
	grace   time.Duration
	start   time.Time
	n       int64 // bytes read so far
}

func (i *idleReader) Read(p []byte) (int, error) {
	now := time.Now()
	d := now.Add(i.idle)
	if !i.until.IsZero() && i.until.Before(d) {
		d = i.until
	}
	var rateDue time.Time
	if i.minRate > 0 {
		// The average stays at or above minRate until n/minRate seconds
		// after start; never before the grace period ends.
		rateDue = i.start.Add(max(i.grace, time.Duration(float64(i.n)/float64(i.minRate)*float64(time.Second))))
		if rateDue.Before(d) {
			d = rateDue
		}
	}
	i.rc.SetReadDeadline(d) // unsupported writers: no limit
	n, err := i.r.Read(p)
	i.n += int64(n)
	if err != nil && !rateDue.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(rateDue) && d.Equal(rateDue) {
		err = apiError(store.CodeValidation, fmt.Sprintf("upload is too slow: after the first %s it must average at least %d bytes a second", i.grace, i.minRate))
	}
	return n, err
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

// readFailure describes a failed audio read for the log without the
// error's text, which may hold a path.
func readFailure(err error) string {
	if errors.Is(err, store.ErrCorrupt) {
		return "stored audio is corrupt"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "read failed: " + pe.Op + ": " + pe.Err.Error()
	}
	return "read failed"
}

// handleAudioGet serves the decrypted audio (GET) or only its headers
// (HEAD), with Range support so a browser's player can seek. Everything
// that can refuse or answer without the audio is decided from the record
// first — 404, a conditional request's 304 or 412, a 416 for a range past
// the end, and for GET the account's or the server's share of downloads
// (429, 503) — so that only a GET that serves audio opens it, and only
// that is audited (audio_accessed). HEAD never opens or audits.
func (s *Server) handleAudioGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	rec, err := s.records.Record(r.Context(), id)
	if err != nil {
		return err
	}
	if rec.Audio == nil {
		return apiError(store.CodeNotFound, "record has no audio")
	}
	h := w.Header()
	etag := `"` + strings.ToLower(rec.Audio.SHA256[:32]) + `"`
	h.Set("ETag", etag)
	if status := checkPreconditions(r, etag); status != 0 {
		w.WriteHeader(status) // 304 or 412, without a body
		return nil
	}
	size := rec.Audio.SizeBytes
	if err := oneRange(w, r, size); err != nil {
		return err
	}
	h.Set("Content-Type", rec.Audio.MIMEType)
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="audio-%d.%s"`, id, media.Ext(rec.Audio.MIMEType)))
	if r.Method == http.MethodHead {
		http.ServeContent(w, r, "", time.Time{}, sizeOnly(size))
		return nil
	}
	release, err := s.downloads.acquire(w, r)
	if err != nil {
		return err
	}
	defer release()
	ar, err := s.records.OpenAudio(r.Context(), id)
	if err != nil {
		return err
	}
	defer ar.Close()
	body := &errCapture{ReadSeeker: ar}
	http.ServeContent(w, r, "", time.Time{}, body)
	if body.err != nil {
		// The status is already sent; the client sees a cut body.
		s.log.Error("audio read failed", keyRoute, "/api/v1/record/:id/audio", keyRequestID, requestID(r.Context()), keyErr, readFailure(body.err))
	}
	return nil
}

// sizeOnly stands in for the audio of a HEAD request: http.ServeContent
// seeks in it to learn its size and a range's start, and reads nothing.
type sizeOnly int64

func (z sizeOnly) Read([]byte) (int, error) { return 0, errors.New("api: HEAD reads no audio") }

func (z sizeOnly) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		return offset, nil
	case io.SeekEnd:
		return int64(z) + offset, nil
	}
	return 0, errors.New("api: sizeOnly seeks only from the start or the end")
}

// oneRange leaves in r at most the one byte range parseRange accepts, of a
// file of size bytes, for http.ServeContent; a range past the end is
// range_not_satisfiable (416).
func oneRange(w http.ResponseWriter, r *http.Request, size int64) error {
	switch start, end, kind := parseRange(r.Header.Values("Range"), size); kind {
	case rangeIgnored:
		r.Header.Del("Range")
	case rangeSingle:
		r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
	case rangeUnsatisfiable:
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return apiError(store.CodeRangeNotSatisfiable, "range not satisfiable")
	}
	return nil
}

// rangeKind is what parseRange makes of a Range header.
type rangeKind int

const (
	rangeIgnored       rangeKind = iota // absent, a list of ranges, or malformed
	rangeSingle                         // one range that overlaps the file
	rangeUnsatisfiable                  // one range that starts at or past the end
)

// parseRange reads a Range header of exactly one byte range (RFC 9110
// §14.1.2: "bytes=a-b", "bytes=a-", "bytes=-n") against a file of size
// bytes and returns it clamped to the file, both ends inclusive.
//
// Anything else is ignored, as RFC 9110 §14.2 allows, and the whole file is
// served: http.ServeContent would serve every range of a list, and each may
// cost the decryption of a whole chunk of the stream format, so a header of
// many small ranges would amplify one request into minutes of CPU.
func parseRange(values []string, size int64) (start, end int64, kind rangeKind) {
	if len(values) != 1 {
		return 0, 0, rangeIgnored
	}
	unit, set, ok := strings.Cut(values[0], "=")
	if !ok || !strings.EqualFold(textproto.TrimString(unit), "bytes") {
		return 0, 0, rangeIgnored
	}
	first, last, ok := strings.Cut(set, "-")
	if !ok {
		return 0, 0, rangeIgnored
	}
	first, last = textproto.TrimString(first), textproto.TrimString(last)
	if first == "" { // suffix: the last n bytes
		n, ok := parseDigits(last)
		switch {
		case !ok:
			return 0, 0, rangeIgnored
		case n == 0:
			return 0, 0, rangeUnsatisfiable
		}
		return max(size-n, 0), size - 1, rangeSingle
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, rangeIgnored
	}
	b := int64(math.MaxInt64)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, 0, rangeIgnored
		}
	}
	if a >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return a, min(b, size-1), rangeSingle
}

// parseDigits parses 1*DIGIT; a number too large for int64 saturates, as
// it still lies past the end of any file.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if d := int64(c - '0'); n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
		} else {
			n = n*10 + d
		}
	}
	return n, true
}

// noStream returns the check AttachAudio makes once it holds record id for
// an upload: a live stream into the record refuses the upload (the stream
// makes the same check the other way round, so one of the two always
// sees the other and no recorded minute is lost to a race).
func (s *Server) noStream(id uint64) func() error {
	return func() error {
		if s.streams != nil && s.streams.Busy(id) {
			return apiError(store.CodeConflict, "a live stream is recording into this record")
		}
		return nil
	}
}
