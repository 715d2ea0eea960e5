package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
)

type exportRequest struct {
	Confirm   bool   `json:"confirm"`
	Reason    string `json:"reason"`
	AudioMode string `json:"export_audio_mode"`
}

type exportResponse struct {
	Status      string   `json:"status"`
	PackageID   string   `json:"package_id"`
	ReceiptID   string   `json:"receipt_id"`
	DownloadURL string   `json:"download_url"`
	AudioMode   string   `json:"audio_mode"`
	Warnings    []string `json:"warnings"`
}

// handleExport builds a record's signed export package (DESIGN §7). It
// takes an export slot once the request is read (429 or 503 with
// Retry-After when the account or the server has its exports running);
// the store checks the account's quota and the disk's reserve.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req exportRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	release, err := s.exports.acquire(w, r)
	if err != nil {
		return err
	}
	defer release()
	res, err := s.records.Export(r.Context(), id, store.ExportRequest{Confirm: req.Confirm, Reason: req.Reason, Mode: req.AudioMode})
	if err != nil {
		return err
	}
	url := "/api/v1/exports/" + res.PackageID
	w.Header().Set("Location", url)
	return writeJSON(w, http.StatusCreated, exportResponse{
		Status: "ok", PackageID: res.PackageID, ReceiptID: res.Receipt.ID, DownloadURL: url, AudioMode: res.AudioMode, Warnings: res.Warnings,
	})
}

// handleExportDownload serves a package's ZIP, decrypted on the fly, with
// Range support (one range, as audio: a list of ranges gets the whole
// package, so many small or overlapping ranges cannot amplify a request);
// it takes a download slot like audio.
func (s *Server) handleExportDownload(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	release, err := s.downloads.acquire(w, r)
	if err != nil {
		return err
	}
	defer release()
	er, err := s.records.OpenExport(r.Context(), ps.ByName("package_id"))
	if err != nil {
		return err
	}
	defer er.Close()
	if err := oneRange(w, r, er.Size); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tyst-export-%s.zip"`, er.PackageID))
	body := &errCapture{ReadSeeker: er}
	http.ServeContent(w, r, "", time.Time{}, body)
	if body.err != nil {
		s.log.Error("export read failed", keyRoute, "/api/v1/exports/:package_id", keyRequestID, requestID(r.Context()), keyErr, readFailure(body.err))
	}
	return nil
}
