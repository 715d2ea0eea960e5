package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
)

type destroyRequest struct {
	DryRun  *bool  `json:"dry_run"`
	Confirm bool   `json:"confirm"`
	Reason  string `json:"reason"`
}

type destroyDryRunResponse struct {
	Status       string              `json:"status"`
	WouldDelete  store.DestroyCounts `json:"would_delete"`
	TranscriptID uint64              `json:"transcript_id"`
}

type destroyResponse struct {
	Status        string              `json:"status"`
	TranscriptID  uint64              `json:"transcript_id"`
	ReceiptID     string              `json:"receipt_id"`
	DestroyedAt   string              `json:"destroyed_at"`
	Counts        store.DestroyCounts `json:"counts"`
	DestroyStatus string              `json:"destroy_status"`
}

// handleDestroy is a dry run unless the body says dry_run:false with
// confirm:true and a reason (DESIGN §7). An empty body is a dry run.
func (s *Server) handleDestroy(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req destroyRequest
	if r.ContentLength != 0 {
		if err := s.decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	dryRun := req.DryRun == nil || *req.DryRun
	res, err := s.records.Destroy(r.Context(), id, store.DestroyRequest{DryRun: dryRun, Confirm: req.Confirm, Reason: req.Reason})
	if err != nil {
		return err
	}
	if res.Status == store.DestroyDryRun {
		return writeJSON(w, http.StatusOK, destroyDryRunResponse{Status: res.Status, WouldDelete: res.Counts, TranscriptID: id})
	}
	return writeJSON(w, http.StatusOK, destroyResponse{
		Status: store.DestroyDestroyed, TranscriptID: id, ReceiptID: res.Receipt.ID, DestroyedAt: timeString(res.DestroyedAt),
		Counts: res.Counts, DestroyStatus: res.Status,
	})
}

type audioRemoveRequest struct {
	Confirm bool   `json:"confirm"`
	Reason  string `json:"reason"`
}

type audioRemoveResponse struct {
	Status       string `json:"status"`
	TranscriptID uint64 `json:"transcript_id"`
	ReceiptID    string `json:"receipt_id"`
}

func (s *Server) handleAudioRemove(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	var req audioRemoveRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	rc, err := s.records.RemoveAudio(r.Context(), id, req.Confirm, req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, audioRemoveResponse{Status: "removed", TranscriptID: id, ReceiptID: rc.ID})
}

type receiptResponse struct {
	ReceiptID      string         `json:"receipt_id"`
	Kind           string         `json:"kind"`
	TranscriptID   uint64         `json:"transcript_id"`
	CreatedAt      string         `json:"created_at"`
	Counts         map[string]int `json:"counts,omitempty"`
	PackageID      string         `json:"package_id,omitempty"`
	AudioMode      string         `json:"audio_mode,omitempty"`
	AudioSHA256    string         `json:"audio_sha256,omitempty"`
	Reason         string         `json:"reason,omitempty"` // admins only
	Document       string         `json:"document"`         // the signed bytes, exactly
	Signature      string         `json:"signature"`        // SSHSIG, namespace tyst-receipt-v1
	SigningKey     string         `json:"signing_key"`      // fingerprint
	AllowedSigners string         `json:"allowed_signers"`
}

func (s *Server) handleReceiptGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	rc, err := s.records.Receipt(r.Context(), ps.ByName("receipt_id"))
	if err != nil {
		return err
	}
	key := s.records.SigningKey()
	return writeJSON(w, http.StatusOK, receiptResponse{
		ReceiptID: rc.ID, Kind: rc.Kind, TranscriptID: rc.RecordID, CreatedAt: timeString(rc.CreatedAt), Counts: rc.Counts,
		PackageID: rc.PackageID, AudioMode: rc.AudioMode, AudioSHA256: rc.AudioSHA256, Reason: rc.Reason,
		Document: string(rc.Document), Signature: string(rc.Signature), SigningKey: key.Fingerprint(), AllowedSigners: key.AllowedSigners(),
	})
}
