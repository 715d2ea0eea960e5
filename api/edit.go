package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
	"tyst/store/transcript"
)

type recordUpdateRequest struct {
	Title       *string          `json:"title"`
	ProjectID   *uint64          `json:"project_id"`
	Hold        *bool            `json:"hold"`
	RetainUntil *json.RawMessage `json:"retain_until"` // RFC 3339, or null to clear
}

func (s *Server) handleRecordUpdate(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req recordUpdateRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	up := store.RecordUpdate{Title: req.Title, ProjectID: req.ProjectID, Hold: req.Hold}
	if up.ProjectID != nil && *up.ProjectID == 0 {
		return apiError(store.CodeValidation, "project_id must be a positive number")
	}
	if req.RetainUntil != nil {
		var t time.Time
		if string(*req.RetainUntil) != "null" {
			var v string
			if err := json.Unmarshal(*req.RetainUntil, &v); err != nil {
				return apiError(store.CodeValidation, "retain_until must be an RFC 3339 time or null")
			}
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return apiError(store.CodeValidation, "retain_until must be an RFC 3339 time or null")
			}
		}
		up.RetainUntil = &t
	}
	rec, err := s.records.UpdateRecord(r.Context(), id, up)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newRecordResponse(rec))
}

type segmentsBody struct {
	Segments []store.Segment `json:"segments"`
}

// maxTranscriptBody is the largest transcript upload (JSON, WebVTT, SubRip).
const maxTranscriptBody = 1 << 20

// handleSegmentsPut replaces a record's transcript with JSON segments, a
// WebVTT file (text/vtt) or a SubRip file (application/x-subrip).
func (s *Server) handleSegmentsPut(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var segs []store.Segment
	switch mt {
	case "application/json":
		var req segmentsBody
		if err := s.decodeJSON(w, r, &req); err != nil {
			return err
		}
		if req.Segments == nil {
			return apiError(store.CodeValidation, "segments is required (an empty list clears the transcript)")
		}
		segs = req.Segments
	case "text/vtt", "application/x-subrip", "text/srt", "application/x-srt":
		body, err := s.readBody(w, r, maxTranscriptBody)
		if err != nil {
			return err
		}
		parse := transcript.ParseSubRip
		if mt == "text/vtt" {
			parse = transcript.ParseWebVTT
		}
		if segs, err = parse(body); err != nil {
			return apiError(store.CodeValidation, err.Error())
		}
	default:
		return apiError(store.CodeUnsupported, "send the transcript as application/json, text/vtt (WebVTT) or application/x-subrip (SubRip)")
	}
	if err := s.records.PutSegments(r.Context(), id, segs); err != nil {
		return err
	}
	return s.writeSegments(w, r, id)
}

func (s *Server) handleSegmentsGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	return s.writeSegments(w, r, id)
}

func (s *Server) writeSegments(w http.ResponseWriter, r *http.Request, id uint64) error {
	segs, err := s.records.Segments(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, segmentsBody{Segments: segs})
}

// readBody reads a whole non-JSON request body of at most max bytes, with
// the same idle and total limits as a JSON body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, apiError(store.CodeTooLarge, fmt.Sprintf("body is larger than %d bytes", max))
	}
	body := &idleReader{r: http.MaxBytesReader(w, r.Body, max), rc: http.NewResponseController(w),
		idle: s.bodyIdle, until: time.Now().Add(min(s.bodyIdle, maxJSONBodyTime))}
	b, err := io.ReadAll(body)
	body.rc.SetReadDeadline(time.Time{}) // see decodeJSON
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, apiError(store.CodeTooLarge, fmt.Sprintf("body is larger than %d bytes", max))
	case err != nil:
		return nil, apiError(store.CodeValidation, "request body is incomplete")
	case len(b) == 0:
		return nil, apiError(store.CodeValidation, "request body is empty")
	}
	return b, nil
}

type noteRequest struct {
	Text string `json:"text"`
}

type noteResponse struct {
	NoteID    uint64 `json:"note_id"`
	Text      string `json:"text"`
	CreatedAt string `json:"created_at"`
}

type noteListResponse struct {
	Notes []noteResponse `json:"notes"`
}

func newNoteResponse(n *store.Note) noteResponse {
	return noteResponse{NoteID: n.ID, Text: n.Text, CreatedAt: timeString(n.CreatedAt)}
}

func (s *Server) handleNoteAdd(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req noteRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	n, err := s.records.AddNote(r.Context(), id, req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, newNoteResponse(n))
}

func (s *Server) handleNoteList(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	notes, err := s.records.Notes(r.Context(), id)
	if err != nil {
		return err
	}
	resp := noteListResponse{Notes: make([]noteResponse, 0, len(notes))}
	for _, n := range notes {
		resp.Notes = append(resp.Notes, newNoteResponse(n))
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleNoteDelete(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	nid, err := parseID(ps.ByName("note_id"))
	if err != nil {
		return err
	}
	if err := s.records.DeleteNote(r.Context(), id, nid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditEventResponse struct {
	Seq       uint64         `json:"seq"`
	Time      string         `json:"time,omitempty"`
	Action    string         `json:"action,omitempty"`
	RecordID  uint64         `json:"transcript_id,omitempty"`
	ProjectID uint64         `json:"project_id,omitempty"`
	ActorID   uint64         `json:"actor_id,omitempty"`
	TokenID   uint64         `json:"token_id,omitempty"`
	Meta      map[string]any `json:"meta,omitempty"`
	Hash      string         `json:"hash"`
	Redacted  bool           `json:"redacted,omitempty"`
	// BodyMissing: the body is gone, but no destroy or purge removed it.
	BodyMissing bool `json:"body_missing,omitempty"`
}

type auditListResponse struct {
	Events     []auditEventResponse `json:"events"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func newAuditEventResponse(ev store.AuditEvent) auditEventResponse {
	resp := auditEventResponse{Seq: ev.Seq, Action: ev.Action, RecordID: ev.RecordID, ProjectID: ev.ProjectID,
		ActorID: ev.ActorID, TokenID: ev.TokenID, Meta: ev.Meta, Hash: ev.Hash, Redacted: ev.Redacted, BodyMissing: ev.BodyMissing}
	if !ev.Time.IsZero() {
		resp.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	return resp
}

// defaultAuditPage is the page size of GET /audit without ?limit.
const defaultAuditPage = 100

// maxAuditPage is the largest page of GET /audit.
const maxAuditPage = 1000

func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	f := store.AuditFilter{Limit: defaultAuditPage}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			return apiError(store.CodeValidation, fmt.Sprintf("limit must be a number from 1 to %d", maxAuditPage))
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		seq, err := parseID(v)
		if err != nil {
			return apiError(store.CodeValidation, "cursor is not valid")
		}
		f.After = seq
	}
	if v := q.Get("record_id"); v != "" {
		id, err := parseID(v)
		if err != nil {
			return apiError(store.CodeValidation, "record_id must be a positive decimal number")
		}
		f.RecordID = id
	}
	events, next, err := s.records.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	resp := auditListResponse{Events: make([]auditEventResponse, 0, len(events))}
	for _, ev := range events {
		resp.Events = append(resp.Events, newAuditEventResponse(ev))
	}
	if next != 0 {
		resp.NextCursor = strconv.FormatUint(next, 10)
	}
	return writeJSON(w, http.StatusOK, resp)
}
