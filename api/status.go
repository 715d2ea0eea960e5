package api

import (
	"context"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// StatusReport is GET /api/v1/status (DESIGN §5): what a newsroom's IT and
// the UI's banners need. It names key ids and counts, never a key or path.
type StatusReport struct {
	Version       string           `json:"version"`
	RetentionDays int              `json:"retention_days"`
	Purge         PurgeStatus      `json:"purge"`
	DebugDump     DumpStatus       `json:"debug_dump"`
	Keys          KeysStatus       `json:"keys"`
	SigningKey    SigningKeyStatus `json:"signing_key"`
	Storage       StorageStatus    `json:"storage"`
	Limits        LimitsStatus     `json:"limits"`
}

// PurgeStatus is the purge schedule and the last run.
type PurgeStatus struct {
	Schedule string  `json:"schedule"`
	NextAt   *string `json:"next_at"`
	DryRun   bool    `json:"dry_run"`
	Last     any     `json:"last"` // the last run's stats and when; null before the first
}

// DumpStatus says whether the debug dump is on and what it holds.
type DumpStatus struct {
	Enabled   bool  `json:"enabled"`
	Plaintext bool  `json:"plaintext"`
	Files     int   `json:"files"`
	Bytes     int64 `json:"bytes"`
}

// KeysStatus says where the newsroom key comes from and what each key id
// still covers.
type KeysStatus struct {
	Source      string         `json:"source"`
	BesideData  bool           `json:"beside_data"`
	PrimaryID   string         `json:"primary_id"`
	ItemsPerKey map[string]int `json:"items_per_key"`
	Warnings    []string       `json:"warnings"`
}

// SigningKeyStatus is the public part of the newsroom's signing key.
type SigningKeyStatus struct {
	Fingerprint    string `json:"fingerprint"`
	AllowedSigners string `json:"allowed_signers"`
}

// StorageStatus is what the blobs take and what is left.
type StorageStatus struct {
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Exports   int   `json:"exports"`
	FreeBytes int64 `json:"free_bytes"`
}

// LimitsStatus tells clients the limits they can check before sending.
type LimitsStatus struct {
	MaxUploadBytes int64 `json:"max_upload_bytes"`
}

// handleStatus fills what the store knows, then lets the StatusFunc add
// what the server around it knows (schedule, dump, key source).
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	rep := &StatusReport{Version: s.version, Limits: LimitsStatus{MaxUploadBytes: s.maxUpload}}
	if k := s.records.SigningKey(); k != nil {
		rep.SigningKey = SigningKeyStatus{Fingerprint: k.Fingerprint(), AllowedSigners: k.AllowedSigners()}
	}
	st, err := s.records.Storage(r.Context())
	if err != nil {
		return err
	}
	rep.Storage = StorageStatus{Blobs: st.Blobs, Bytes: st.Bytes, Exports: st.Exports, FreeBytes: st.FreeBytes}
	if rep.Keys.ItemsPerKey, err = s.records.KeyUsage(r.Context()); err != nil {
		return err
	}
	rep.Keys.Warnings = []string{}
	if s.status != nil {
		if err := s.status(r.Context(), rep); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// StatusFunc adds to the status report what the server around the API
// knows: retention, the purge schedule and last run, the debug dump, the
// key source. main wires it.
type StatusFunc func(ctx context.Context, rep *StatusReport) error
