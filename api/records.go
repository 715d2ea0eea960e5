package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
)

type recordCreateRequest struct {
	ProjectID   *uint64 `json:"project_id"`
	Title       string  `json:"title"`
	Sensitivity string  `json:"sensitivity"`
	Language    string  `json:"language"`
}

type recordCreateResponse struct {
	ProjectID    uint64 `json:"project_id"`
	TranscriptID uint64 `json:"transcript_id"`
	Title        string `json:"title"`
	CreatedAt    string `json:"created_at"`
}

type audioResponse struct {
	FileID     uint64 `json:"file_id"`
	SHA256     string `json:"sha256"`
	SizeBytes  int64  `json:"size_bytes"`
	MIMEType   string `json:"mime_type"`
	DurationMS *int64 `json:"duration_ms"`
}

type recordResponse struct {
	TranscriptID uint64         `json:"transcript_id"`
	ProjectID    uint64         `json:"project_id"`
	Title        string         `json:"title"`
	Sensitivity  string         `json:"sensitivity"`
	Language     string         `json:"language"`
	Status       string         `json:"status"`
	CreatedAt    string         `json:"created_at"`
	ExpiresAt    *string        `json:"expires_at"` // null while on hold
	Hold         bool           `json:"hold"`
	RetainUntil  *string        `json:"retain_until"`
	Audio        *audioResponse `json:"audio"`
	Counts       recordCounts   `json:"counts"`
}

type recordCounts struct {
	Segments int `json:"segments"`
	Notes    int `json:"notes"`
}

type recordListResponse struct {
	Records    []recordResponse `json:"records"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

type projectResponse struct {
	ProjectID   uint64 `json:"project_id"`
	Name        string `json:"name"`
	Sensitivity string `json:"sensitivity,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
	Records     int    `json:"records"`
	Unreadable  bool   `json:"unreadable,omitempty"`
}

type projectRequest struct {
	Name        string `json:"name"`
	Sensitivity string `json:"sensitivity"`
}

type projectRenameRequest struct {
	Name string `json:"name"`
}

type projectListResponse struct {
	Projects []projectResponse `json:"projects"`
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// optTime is t as RFC 3339, or null for the zero time.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timeString(t)
	return &s
}

func newAudioResponse(a *store.Audio) *audioResponse {
	if a == nil {
		return nil
	}
	r := &audioResponse{FileID: a.FileID, SHA256: a.SHA256, SizeBytes: a.SizeBytes, MIMEType: a.MIMEType}
	if a.DurationMS > 0 {
		d := a.DurationMS
		r.DurationMS = &d
	}
	return r
}

func newRecordResponse(r *store.Record) recordResponse {
	resp := recordResponse{
		TranscriptID: r.ID, ProjectID: r.ProjectID, Title: r.Title, Sensitivity: r.Sensitivity,
		Language: r.Language, Status: r.Status, ExpiresAt: optTime(r.ExpiresAt), Hold: r.Hold,
		RetainUntil: optTime(r.RetainUntil), Audio: newAudioResponse(r.Audio),
		Counts: recordCounts{Segments: r.Segments, Notes: r.Notes},
	}
	if !r.CreatedAt.IsZero() {
		resp.CreatedAt = timeString(r.CreatedAt)
	}
	return resp
}

func newProjectResponse(p *store.Project) projectResponse {
	resp := projectResponse{ProjectID: p.ID, Name: p.Name, Sensitivity: p.Sensitivity, Records: p.Records, Unreadable: p.Unreadable}
	if !p.CreatedAt.IsZero() {
		resp.CreatedAt = timeString(p.CreatedAt)
	}
	return resp
}

func (s *Server) handleRecordCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req recordCreateRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	n := store.NewRecord{Title: req.Title, Sensitivity: req.Sensitivity, Language: req.Language}
	if req.ProjectID != nil {
		if *req.ProjectID == 0 {
			return apiError(store.CodeValidation, "project_id must be a positive number")
		}
		n.ProjectID = *req.ProjectID
	}
	rec, err := s.records.CreateRecord(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/record/%d", rec.ID))
	return writeJSON(w, http.StatusCreated, recordCreateResponse{
		ProjectID: rec.ProjectID, TranscriptID: rec.ID, Title: rec.Title, CreatedAt: timeString(rec.CreatedAt),
	})
}

func (s *Server) handleRecordGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	rec, err := s.records.Record(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newRecordResponse(rec))
}

// defaultPageSize is the page size of GET /records without ?limit.
const defaultPageSize = 50

func (s *Server) handleRecordList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return apiError(store.CodeValidation, fmt.Sprintf("limit must be a number from 1 to %d", store.MaxPageSize))
		}
		limit = n
	}
	f := store.RecordFilter{Limit: limit, Query: q.Get("q")}
	if v := q.Get("cursor"); v != "" {
		id, err := parseID(v)
		if err != nil {
			return apiError(store.CodeValidation, "cursor is not valid")
		}
		f.Before = id
	}
	if v := q.Get("project_id"); v != "" {
		id, err := parseID(v)
		if err != nil {
			return apiError(store.CodeValidation, "project_id must be a positive decimal number")
		}
		f.ProjectID = id
	}
	recs, next, err := s.records.Records(r.Context(), f)
	if err != nil {
		return err
	}
	resp := recordListResponse{Records: make([]recordResponse, 0, len(recs))}
	for _, rec := range recs {
		resp.Records = append(resp.Records, newRecordResponse(rec))
	}
	if next != 0 {
		resp.NextCursor = strconv.FormatUint(next, 10)
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleProjectList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ps, err := s.records.Projects(r.Context())
	if err != nil {
		return err
	}
	resp := projectListResponse{Projects: make([]projectResponse, 0, len(ps))}
	for _, p := range ps {
		resp.Projects = append(resp.Projects, newProjectResponse(p))
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleProjectCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req projectRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	p, err := s.records.CreateProject(r.Context(), store.NewProject{Name: req.Name, Sensitivity: req.Sensitivity})
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/projects/%d", p.ID))
	return writeJSON(w, http.StatusCreated, newProjectResponse(p))
}

func (s *Server) handleProjectRename(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req projectRenameRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	p, err := s.records.RenameProject(r.Context(), id, req.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newProjectResponse(p))
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.records.Ready(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "version": s.version})
}
