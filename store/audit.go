package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Audit actions.
const (
	ActionProjectCreated    = "project_created"
	ActionTranscriptCreated = "transcript_created"
	ActionAudioUploaded     = "audio_uploaded"
	ActionAudioAccessed     = "audio_accessed"
	ActionSetupCompleted    = "setup_completed"
	ActionLogin             = "login"
	ActionLoginFailed       = "login_failed"
	ActionLogout            = "logout"
	ActionUserCreated       = "user_created"
	ActionUserUpdated       = "user_updated"
	ActionTokenCreated      = "token_created"
	ActionTokenRevoked      = "token_revoked"
	ActionTOTPEnabled       = "totp_enabled"
	ActionRecoveryCodeUsed  = "recovery_code_used"
	ActionSettingsUpdated   = "settings_updated"
)

// auditMeta is the allow-list of metadata keys per action (DESIGN §11).
// Values may only be numbers, booleans or short machine strings (safeValue),
// so no title, text, name or path can pass even under an allowed key.
var auditMeta = map[string]map[string]bool{
	ActionProjectCreated:    {},
	ActionTranscriptCreated: {"sensitivity": true},
	ActionAudioUploaded:     {"size_bytes": true, "mime_type": true},
	ActionAudioAccessed:     {},
	ActionSetupCompleted:    {"user_id": true},
	ActionLogin:             {"method": true},
	ActionLoginFailed:       {"reason": true},
	ActionLogout:            {},
	ActionUserCreated:       {"user_id": true, "role": true},
	ActionUserUpdated:       {"user_id": true, "role": true, "disabled": true, "password_reset": true, "totp_reset": true},
	ActionTokenCreated:      {"token_id": true, "user_id": true, "scope": true},
	ActionTokenRevoked:      {"token_id": true},
	ActionTOTPEnabled:       {},
	ActionRecoveryCodeUsed:  {"remaining": true},
	ActionSettingsUpdated:   {"require_admin_totp": true},
}

var safeValue = regexp.MustCompile(`^[a-z0-9/._-]{0,40}$`)

// AuditEvent is one entry of the audit log: metadata only.
type AuditEvent struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	Action    string         `json:"action"`
	RecordID  uint64         `json:"record_id,omitempty"`
	ProjectID uint64         `json:"project_id,omitempty"`
	ActorID   uint64         `json:"actor_id,omitempty"`
	Meta      map[string]any `json:"meta,omitempty"`
	Prev      string         `json:"prev"`
	Hash      string         `json:"hash,omitempty"`
}

var auditHeadKey = []byte("audit_head")

// appendAudit adds ev to the hash chain within tx. Meta outside the
// allow-list is a programming error and fails the transaction.
func (db *DB) appendAudit(ctx context.Context, tx *bolt.Tx, ev AuditEvent) error {
	allowed, ok := auditMeta[ev.Action]
	if !ok {
		return fmt.Errorf("store: audit action %q not allowed", ev.Action)
	}
	for k, v := range ev.Meta {
		if !allowed[k] {
			return fmt.Errorf("store: audit meta key %q not allowed for %s", k, ev.Action)
		}
		switch v := v.(type) {
		case int, int64, uint64, bool:
		case string:
			if !safeValue.MatchString(v) {
				return fmt.Errorf("store: audit meta value of %q is not a machine value", k)
			}
		default:
			return fmt.Errorf("store: audit meta value of %q has type %T", k, v)
		}
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	ev.Seq = seq
	ev.Time = db.now().UTC()
	if p := PrincipalFrom(ctx); p != nil && ev.ActorID == 0 {
		ev.ActorID = p.UserID
	}
	ev.Prev = string(meta.Get(auditHeadKey))
	ev.Hash = ""
	ev.Hash, err = eventHash(ev)
	if err != nil {
		return err
	}
	if err := putJSON(b, itob(seq), ev); err != nil {
		return err
	}
	if ev.RecordID != 0 {
		key := append(itob(ev.RecordID), itob(seq)...)
		if err := tx.Bucket(bucketAuditByRecord).Put(key, nil); err != nil {
			return err
		}
	}
	return meta.Put(auditHeadKey, []byte(ev.Hash))
}

// eventHash is the SHA-256 of the event's JSON without its hash; the JSON
// holds the previous hash, which chains the events.
func eventHash(ev AuditEvent) (string, error) {
	ev.Hash = ""
	raw, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// AuditEvents returns the events of record id, oldest first (all events when
// id is 0).
func (db *DB) AuditEvents(ctx context.Context, id uint64) (events []AuditEvent, err error) {
	defer func() { err = boundary("audit events", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		add := func(seq []byte) error {
			var ev AuditEvent
			if _, err := getJSON(b, seq, &ev); err != nil {
				return err
			}
			events = append(events, ev)
			return nil
		}
		if id == 0 {
			return b.ForEach(func(k, _ []byte) error { return add(k) })
		}
		c := tx.Bucket(bucketAuditByRecord).Cursor()
		prefix := itob(id)
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Next() {
			if err := add(k[8:]); err != nil {
				return err
			}
		}
		return nil
	})
	return events, err
}

// VerifyAuditChain checks that every event's hash matches its content and
// links to the one before it.
func (db *DB) VerifyAuditChain(ctx context.Context) error {
	events, err := db.AuditEvents(ctx, 0)
	if err != nil {
		return err
	}
	prev := ""
	for _, ev := range events {
		h, err := eventHash(ev)
		if err != nil {
			return boundary("verify audit", err)
		}
		if ev.Prev != prev || ev.Hash != h {
			return &Error{Code: CodeInternal, Message: "audit chain broken", Err: fmt.Errorf("store: audit event %d: %w", ev.Seq, ErrCorrupt)}
		}
		prev = ev.Hash
	}
	return nil
}
