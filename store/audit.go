package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	ActionSetupRefused      = "setup_refused"
	ActionProjectRenamed    = "project_renamed"
	ActionRecordUpdated     = "record_updated"
	ActionSegmentsReplaced  = "segments_replaced"
	ActionNoteAdded         = "note_added"
	ActionNoteDeleted       = "note_deleted"
	ActionAudioRemoved      = "audio_removed"
	ActionDestroyed         = "destroyed"
	ActionPurged            = "purged"
	ActionExportCreated     = "export_created"
	ActionExportDownloaded  = "export_downloaded"
)

// auditMeta is the allow-list of metadata keys per action (DESIGN §11).
// Values may only be numbers, booleans or short machine strings (safeValue),
// so no title, text, name or path can pass even under an allowed key.
var auditMeta = map[string]map[string]bool{
	ActionProjectCreated:    {},
	ActionTranscriptCreated: {"sensitivity": true},
	ActionAudioUploaded:     {"mib": true, "mime_type": true},
	ActionAudioAccessed:     {},
	ActionSetupCompleted:    {"user_id": true},
	ActionLogin:             {"method": true},
	ActionLoginFailed:       {"reason": true, "count": true, "usernames": true},
	ActionLogout:            {},
	ActionUserCreated:       {"user_id": true, "role": true},
	ActionUserUpdated:       {"user_id": true, "role": true, "disabled": true, "password_reset": true, "totp_reset": true, "tokens_revoked": true},
	ActionTokenCreated:      {"token_id": true, "user_id": true, "scope": true},
	ActionTokenRevoked:      {"token_id": true},
	ActionTOTPEnabled:       {},
	ActionRecoveryCodeUsed:  {"remaining": true},
	ActionSettingsUpdated:   {"require_admin_totp": true},
	ActionSetupRefused:      {"reason": true},
	ActionProjectRenamed:    {},
	ActionRecordUpdated:     {"title_changed": true, "project_changed": true, "hold": true, "retain_until_set": true},
	ActionSegmentsReplaced:  {"segments": true},
	ActionNoteAdded:         {"note_id": true},
	ActionNoteDeleted:       {"note_id": true},
	ActionAudioRemoved:      {"files": true, "exports": true},
	ActionDestroyed:         {"files": true, "segments": true, "notes": true, "exports": true},
	ActionPurged:            {"age_days": true, "reason": true},
	ActionExportCreated:     {"audio_mode": true, "mib": true},
	ActionExportDownloaded:  {},
}

// MiB returns n bytes in whole MiB, rounded up: how tyst states a size
// outside sealed data — in logs, in the audit log (under the newsroom key,
// it outlives a removed audio: only a destroy or purge redacts it) and in
// messages. An exact audio or package length confirms a known recording
// (and gives a WAV's duration) as surely as its content, and a JSON
// response's length tells a title's.
func MiB(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

var safeValue = regexp.MustCompile(`^[a-z0-9/._-]{0,40}$`)

// AuditEvent is one entry of the audit log: metadata only.
type AuditEvent struct {
	Seq       uint64
	Time      time.Time
	Action    string
	RecordID  uint64
	ProjectID uint64
	ActorID   uint64 // the user who acted; 0 for the system
	TokenID   uint64 // the API token used, if any
	Meta      map[string]any
	Hash      string // this event's link in the chain
	// Redacted is true once its record was destroyed or purged: only Seq
	// and Hash remain, so the chain still verifies.
	Redacted bool
	// BodyMissing is true when the body is gone but no destroy or purge
	// redacted it: the log was altered (tyst verify reports it).
	BodyMissing bool
}

// auditRow is an event as stored. Nothing about who did what to which
// record stands in the clear: the body is sealed under the newsroom key.
// The chain links Seq, Prev and the hash of the body's plaintext (which
// carries a random salt, so the hash confirms no guessed body):
// Hash = SHA-256(seq || prev || body_hash). Redaction deletes the body and
// keeps body_hash, so the chain verifies without it (and without the key).
type auditRow struct {
	Seq      uint64 `json:"seq"`
	Prev     string `json:"prev"`
	BodyHash string `json:"body_hash"`
	Hash     string `json:"hash"`
	Body     *box   `json:"body,omitempty"` // auditBody; nil once redacted
}

// auditBody is the plaintext of auditRow.Body.
type auditBody struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	Action    string         `json:"action"`
	RecordID  uint64         `json:"record_id,omitempty"`
	ProjectID uint64         `json:"project_id,omitempty"`
	ActorID   uint64         `json:"actor_id,omitempty"`
	TokenID   uint64         `json:"token_id,omitempty"`
	Meta      map[string]any `json:"meta,omitempty"`
	Salt      []byte         `json:"salt"`
}

var auditHeadKey = []byte("audit_head")

// checkAuditMeta refuses metadata outside the allow-list: a programming
// error that fails the transaction.
func checkAuditMeta(ev AuditEvent) error {
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
	return nil
}

// appendAudit adds ev to the hash chain within tx.
func (db *DB) appendAudit(ctx context.Context, tx *bolt.Tx, ev AuditEvent) error {
	if err := checkAuditMeta(ev); err != nil {
		return err
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	body := auditBody{Seq: seq, Time: db.now().UTC(), Action: ev.Action, RecordID: ev.RecordID, ProjectID: ev.ProjectID,
		ActorID: ev.ActorID, TokenID: ev.TokenID, Meta: ev.Meta, Salt: make([]byte, 16)}
	if p := PrincipalFrom(ctx); p != nil && body.ActorID == 0 {
		body.ActorID, body.TokenID = p.UserID, p.TokenID
	}
	if _, err := rand.Read(body.Salt); err != nil {
		return err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	sealed, keyID, err := db.keys.seal(padJSON(raw))
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	row := auditRow{Seq: seq, Prev: string(meta.Get(auditHeadKey)), BodyHash: sha256Hex(raw), Body: &box{KeyID: keyID, Sealed: sealed}}
	row.Hash = row.chainHash()
	if err := putJSON(b, itob(seq), row); err != nil {
		return err
	}
	if ev.RecordID != 0 {
		if err := tx.Bucket(bucketAuditByRecord).Put(db.auditIndexKey(ev.RecordID, seq), nil); err != nil {
			return err
		}
	}
	return meta.Put(auditHeadKey, []byte(row.Hash))
}

func (db *DB) auditIndexKey(recordID, seq uint64) []byte {
	return append(db.indexMAC(indexRecord, itob(recordID)), itob(seq)...)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chainHash is SHA-256(seq || prev || body_hash).
func (r auditRow) chainHash() string {
	h := sha256.New()
	h.Write(itob(r.Seq))
	h.Write([]byte(r.Prev))
	h.Write([]byte{0})
	h.Write([]byte(r.BodyHash))
	return hex.EncodeToString(h.Sum(nil))
}

// openEvent decrypts a stored event and checks its body against the chain.
func (db *DB) openEvent(row auditRow) (AuditEvent, error) {
	ev := AuditEvent{Seq: row.Seq, Hash: row.Hash}
	if row.Body == nil {
		ev.Redacted = true
		return ev, nil
	}
	if !db.keys.Known(row.Body.KeyID) {
		return ev, ErrKeyMissing
	}
	raw, err := db.keys.open(row.Body.Sealed)
	if err != nil {
		return ev, err
	}
	raw = bytes.TrimRight(raw, " ")
	if sha256Hex(raw) != row.BodyHash {
		return ev, ErrCorrupt
	}
	var body auditBody
	if err := json.Unmarshal(raw, &body); err != nil || body.Seq != row.Seq {
		return ev, ErrCorrupt
	}
	ev.Time, ev.Action, ev.RecordID, ev.ProjectID = body.Time, body.Action, body.RecordID, body.ProjectID
	ev.ActorID, ev.TokenID, ev.Meta = body.ActorID, body.TokenID, body.Meta
	return ev, nil
}

// AuditFilter selects audit events.
type AuditFilter struct {
	RecordID uint64 // only this record's events; 0 for all
	After    uint64 // only events with a higher seq (the cursor)
	Limit    int    // at most this many; 0 for all
}

// AuditEvents returns events oldest first. next is the cursor of the
// following page, 0 at the end. An event whose key is not configured comes
// back with its seq and hash only; so does one without a body, marked
// Redacted when its record's destroy or purge removed the body, else
// BodyMissing (the log was altered). Listing the whole log (no RecordID)
// first writes the failed logins counted since the last login_failed event,
// so the list is complete.
func (db *DB) AuditEvents(ctx context.Context, f AuditFilter) (events []AuditEvent, next uint64, err error) {
	defer func() { err = boundary("audit events", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, 0, err
	}
	if f.RecordID == 0 {
		if err := db.failures.flushAll(); err != nil {
			return nil, 0, err
		}
	}
	err = db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		add := func(seq []byte) (bool, error) {
			if f.Limit > 0 && len(events) == f.Limit {
				next = events[len(events)-1].Seq
				return false, nil
			}
			var row auditRow
			if ok, err := getJSON(b, seq, &row); err != nil || !ok {
				return false, err
			}
			ev, err := db.openEvent(row)
			if err != nil && !errors.Is(err, ErrKeyMissing) {
				return false, fmt.Errorf("audit event %d: %w", row.Seq, err)
			}
			events = append(events, ev)
			return true, nil
		}
		collect := func() error {
			if f.RecordID == 0 {
				c := b.Cursor()
				for k, _ := c.Seek(itob(f.After + 1)); k != nil; k, _ = c.Next() {
					if ok, err := add(k); err != nil || !ok {
						return err
					}
				}
				return nil
			}
			prefix := db.indexMAC(indexRecord, itob(f.RecordID))
			c := tx.Bucket(bucketAuditByRecord).Cursor()
			for k, _ := c.Seek(append(append([]byte(nil), prefix...), itob(f.After+1)...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if ok, err := add(k[len(prefix):]); err != nil || !ok {
					return err
				}
			}
			return nil
		}
		if err := collect(); err != nil {
			return err
		}
		markBodyMissing(db, tx, events, func(ev *AuditEvent) (uint64, *bool, *bool) { return ev.Seq, &ev.Redacted, &ev.BodyMissing })
		return nil
	})
	return events, next, err
}

// redactAudit deletes the bodies of record id's events and their index
// entries within tx, keeping each event's hashes so the chain verifies. It
// returns the sequence numbers it redacted, for the record's tombstone:
// the one place that vouches for a missing body (explainRedactions).
func (db *DB) redactAudit(tx *bolt.Tx, id uint64) ([]uint64, error) {
	prefix := db.indexMAC(indexRecord, itob(id))
	idx := tx.Bucket(bucketAuditByRecord)
	b := tx.Bucket(bucketAudit)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	var redacted []uint64
	for _, k := range keys {
		seq := k[len(prefix):]
		var row auditRow
		if ok, err := getJSON(b, seq, &row); err != nil {
			return nil, err
		} else if ok && row.Body != nil {
			row.Body = nil
			if err := putJSON(b, seq, row); err != nil {
				return nil, err
			}
			redacted = append(redacted, row.Seq)
		}
		if err := idx.Delete(k); err != nil {
			return nil, err
		}
	}
	return redacted, nil
}

// explainRedactions removes from seqs (events without a body) those that a
// tombstone lists as redacted by its record's destroy or purge, written
// in the same transaction as the redaction and sealed under the newsroom
// key, so a body removed by someone who can write the database but has
// not the key stays in seqs. A tombstone that no configured key opens
// explains nothing. It reads the tombstones only while seqs is not empty.
func (db *DB) explainRedactions(tx *bolt.Tx, seqs map[uint64]bool) {
	if len(seqs) == 0 {
		return
	}
	c := tx.Bucket(bucketTombstones).Cursor()
	for k, v := c.First(); k != nil && len(seqs) > 0; k, v = c.Next() {
		var ts tombstone
		var sec tombstoneSecrets
		if json.Unmarshal(v, &ts) != nil || db.keys.openBox(ts.Box, &sec) != nil || sec.RecordID != btoi(k) {
			continue
		}
		for _, s := range sec.Redacted {
			delete(seqs, s)
		}
	}
}

// redactionCache holds the sequence numbers of audit events that a
// tombstone explains. Tombstones are never removed while the database is
// open (it is locked to this process), so a number once explained stays
// explained; one not in the cache is looked up in the tombstones.
type redactionCache struct {
	mu   sync.Mutex
	seqs map[uint64]bool
}

// learn adds every redaction the tombstones in tx list.
func (c *redactionCache) learn(db *DB, tx *bolt.Tx) {
	all := map[uint64]bool{}
	tx.Bucket(bucketTombstones).ForEach(func(k, v []byte) error {
		var ts tombstone
		var sec tombstoneSecrets
		if json.Unmarshal(v, &ts) == nil && db.keys.openBox(ts.Box, &sec) == nil && sec.RecordID == btoi(k) {
			for _, s := range sec.Redacted {
				all[s] = true
			}
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seqs == nil {
		c.seqs = all
		return
	}
	maps.Copy(c.seqs, all)
}

// markBodyMissing turns the events marked redacted (their body is gone)
// that no destroy or purge explains into body-missing ones. fields gives an
// event's sequence number and its two marks.
func markBodyMissing[E any](db *DB, tx *bolt.Tx, events []E, fields func(*E) (seq uint64, redacted, missing *bool)) {
	var redacted []uint64
	for i := range events {
		if seq, r, _ := fields(&events[i]); *r {
			redacted = append(redacted, seq)
		}
	}
	gone := db.unexplained(tx, redacted)
	for i := range events {
		if seq, r, m := fields(&events[i]); gone[seq] {
			*r, *m = false, true
		}
	}
}

// unexplained returns the sequence numbers among redacted (events without
// a body) that no destroy or purge explains, logging that the log was
// altered when there are any.
// Sequence numbers once explained stay in db.redactions, so a page of the
// audit log reads the tombstones only when it shows a redaction not seen
// before.
func (db *DB) unexplained(tx *bolt.Tx, redacted []uint64) map[uint64]bool {
	seqs := map[uint64]bool{}
	db.redactions.mu.Lock()
	for _, s := range redacted {
		if !db.redactions.seqs[s] {
			seqs[s] = true
		}
	}
	db.redactions.mu.Unlock()
	if len(seqs) == 0 {
		return seqs
	}
	db.redactions.learn(db, tx)
	db.redactions.mu.Lock()
	for s := range seqs {
		if db.redactions.seqs[s] {
			delete(seqs, s)
		}
	}
	db.redactions.mu.Unlock()
	if len(seqs) > 0 {
		db.log.Warn("audit events lack a body that no destroy or purge removed: the log was altered; run tyst verify", "events", len(seqs))
	}
	return seqs
}

// AuditReport is what VerifyAuditChain found.
type AuditReport struct {
	Events     int `json:"events"`
	Redacted   int `json:"redacted"`   // bodies removed by a destroy or purge
	Unreadable int `json:"unreadable"` // bodies under a key that is not configured
	// BodyMissing counts bodies removed without a destroy or purge: the
	// log was altered.
	BodyMissing int `json:"body_missing"`
	// Head names the last event, "SEQ:HASH" (empty for an empty log). Kept
	// off the box and given back to a later verify (VerifyOptions.AuditHead),
	// it shows whether the log was cut or the database rolled back since.
	Head string `json:"head"`
}

// maxListedMissing is how many sequence numbers of events without a body
// an error of VerifyAuditChain names.
const maxListedMissing = 20

// missingMessage names the events (sorted sequence numbers) whose body is
// missing without a destroy or purge.
func missingMessage(seqs []uint64) string {
	const why = ": body missing (removed, but not by a destroy or purge)"
	if len(seqs) == 1 {
		return fmt.Sprintf("audit event %d%s", seqs[0], why)
	}
	listed := seqs[:min(len(seqs), maxListedMissing)]
	msg := "audit events " + strings.Trim(fmt.Sprint(listed), "[]")
	if len(seqs) > len(listed) {
		msg += fmt.Sprintf(" and %d more", len(seqs)-len(listed))
	}
	return msg + why
}

// VerifyAuditChain checks that every event links to the one before it and
// its hash matches, that every body that can be decrypted matches its
// hash, and that every missing body was redacted by a destroy or purge
// (its record's tombstone says so). Returns an internal error wrapping
// ErrCorrupt at the first break of the chain, or naming the events whose
// body is missing ("audit event N: body missing").
func (db *DB) VerifyAuditChain(ctx context.Context) (rep AuditReport, err error) {
	defer func() { err = boundary("verify audit", err) }()
	bodiless := map[uint64]bool{}
	err = db.view(func(tx *bolt.Tx) error {
		prev := ""
		err := tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var row auditRow
			if err := json.Unmarshal(v, &row); err != nil {
				return fmt.Errorf("audit event %d: %w", btoi(k), ErrCorrupt)
			}
			if row.Seq != btoi(k) || row.Prev != prev || row.Hash != row.chainHash() {
				return &Error{Code: CodeInternal, Message: "audit chain broken", Err: fmt.Errorf("audit event %d: %w", btoi(k), ErrCorrupt)}
			}
			rep.Events++
			_, err := db.openEvent(row)
			switch {
			case row.Body == nil:
				bodiless[row.Seq] = true
			case errors.Is(err, ErrKeyMissing):
				rep.Unreadable++
			case err != nil:
				return &Error{Code: CodeInternal, Message: "audit event altered", Err: fmt.Errorf("audit event %d: %w", row.Seq, ErrCorrupt)}
			}
			prev = row.Hash
			rep.Head = fmt.Sprintf("%d:%s", row.Seq, row.Hash)
			return nil
		})
		if err != nil {
			return err
		}
		n := len(bodiless)
		db.explainRedactions(tx, bodiless)
		rep.Redacted, rep.BodyMissing = n-len(bodiless), len(bodiless)
		if head := string(tx.Bucket(bucketMeta).Get(auditHeadKey)); rep.Events > 0 {
			var last auditRow
			k, v := tx.Bucket(bucketAudit).Cursor().Last()
			if k != nil && json.Unmarshal(v, &last) == nil && last.Hash != head {
				return &Error{Code: CodeInternal, Message: "audit chain head does not match", Err: ErrCorrupt}
			}
		}
		return nil
	})
	if err == nil && rep.BodyMissing > 0 {
		err = &Error{Code: CodeInternal, Message: missingMessage(slices.Sorted(maps.Keys(bodiless))), Err: ErrCorrupt}
	}
	return rep, err
}

// ParseAuditHead checks an audit head as a verify report gives it,
// "SEQ:HASH", and returns its parts. Returns validation_error.
func ParseAuditHead(head string) (seq uint64, hash string, err error) {
	bad := &Error{Code: CodeValidation, Message: "audit head must be SEQ:HASH, as a verify report's audit.head gives it"}
	s, h, ok := strings.Cut(head, ":")
	if !ok || len(h) != 2*sha256.Size || strings.Trim(h, "0123456789abcdef") != "" {
		return 0, "", bad
	}
	seq, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil || seq == 0 {
		return 0, "", bad
	}
	return seq, h, nil
}

// checkAuditHead reports whether the audit log still holds the event that
// was its head when a verify gave head ("SEQ:HASH"): gone means the log was
// cut, or the whole database rolled back, since; another hash means it was
// rewritten. Returns nil when it holds it.
func (db *DB) checkAuditHead(seq uint64, hash string) *Problem {
	var row auditRow
	found := false
	_ = db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAudit).Get(itob(seq)); v != nil && json.Unmarshal(v, &row) == nil {
			found = true
		}
		return nil
	})
	switch {
	case !found:
		return &Problem{Kind: ProblemAuditRollback, Detail: fmt.Sprintf("audit event %d, the head given, is gone: the log was cut or the database rolled back", seq)}
	case subtle.ConstantTimeCompare([]byte(row.Hash), []byte(hash)) != 1:
		return &Problem{Kind: ProblemAuditRollback, Detail: fmt.Sprintf("audit event %d is not the head given: the log was rewritten or the database replaced", seq)}
	}
	return nil
}
