package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/signing"
)

var (
	bucketReceipts   = []byte("receipts")
	bucketTombstones = []byte("tombstones")
)

// Receipt kinds.
const (
	ReceiptExport       = "export"
	ReceiptAudioRemoval = "audio_removal"
	ReceiptDestroy      = "destroy"
	ReceiptPurge        = "purge"
)

// MaxReasonRunes is the longest reason accepted; MinDecryptedReasonRunes
// the shortest for a decrypted export.
const (
	MaxReasonRunes           = 1000
	MinDecryptedReasonRunes  = 10
	receiptIDPrefix          = "rcpt_"
	receiptIDRandomBytes     = 16
	receiptSigningNamespace  = signing.NamespaceReceipt
	receiptDocumentMediaType = "application/vnd.tyst.receipt+json"
)

var receiptIDPattern = regexp.MustCompile(`^rcpt_[0-9a-f]{32}$`)

// Receipt records that a record was exported, lost its audio or was
// destroyed. Document is the JSON the newsroom's signing key signed
// (SSHSIG, namespace tyst-receipt-v1): it holds no reason and no name, so
// it can be shown to a source.
type Receipt struct {
	ID          string
	Kind        string
	RecordID    uint64
	CreatedAt   time.Time
	Counts      map[string]int
	PackageID   string
	AudioMode   string
	AudioSHA256 string
	// Reason is filled in for admins only.
	Reason    string
	Document  []byte
	Signature []byte
}

// receiptDocument is what a receipt's signature covers.
type receiptDocument struct {
	Type        string         `json:"type"` // receiptDocumentMediaType
	ReceiptID   string         `json:"receipt_id"`
	Kind        string         `json:"kind"`
	RecordID    uint64         `json:"transcript_id"`
	Time        time.Time      `json:"time"`
	Counts      map[string]int `json:"counts,omitempty"`
	PackageID   string         `json:"package_id,omitempty"`
	AudioMode   string         `json:"audio_mode,omitempty"`
	AudioSHA256 string         `json:"audio_sha256,omitempty"`
	SigningKey  string         `json:"signing_key"` // the fingerprint
}

// receiptRow is a receipt as stored: its id and a box.
type receiptRow struct {
	ID  string `json:"id"`
	Box box    `json:"box"` // receiptSecrets
}

type receiptSecrets struct {
	ID        string `json:"id"`
	Document  []byte `json:"document"`
	Signature []byte `json:"signature"`
	Reason    string `json:"reason,omitempty"`
	// Who may see it: as the record (DESIGN §6).
	Sensitivity    string `json:"sensitivity"`
	CreatedBy      uint64 `json:"created_by,omitempty"`
	CreatedByToken uint64 `json:"created_by_token,omitempty"`
}

// newReceipt signs doc and stores it with reason, visible as acc's record.
func (db *DB) newReceipt(tx *bolt.Tx, doc receiptDocument, reason string, acc recordAccess) (*Receipt, error) {
	var rnd [receiptIDRandomBytes]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	doc.Type = receiptDocumentMediaType
	doc.ReceiptID = receiptIDPrefix + hex.EncodeToString(rnd[:])
	doc.SigningKey = db.signer.Fingerprint()
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	raw = append(raw, '\n')
	sig, err := db.signer.Sign(receiptSigningNamespace, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	sec := receiptSecrets{ID: doc.ReceiptID, Document: raw, Signature: sig, Reason: reason,
		Sensitivity: acc.Sensitivity, CreatedBy: acc.CreatedBy, CreatedByToken: acc.CreatedByToken}
	bx, err := db.keys.sealBox(sec)
	if err != nil {
		return nil, err
	}
	if err := putJSON(tx.Bucket(bucketReceipts), []byte(doc.ReceiptID), receiptRow{ID: doc.ReceiptID, Box: bx}); err != nil {
		return nil, err
	}
	return receiptFrom(sec, doc, true), nil
}

func receiptFrom(sec receiptSecrets, doc receiptDocument, withReason bool) *Receipt {
	r := &Receipt{ID: sec.ID, Kind: doc.Kind, RecordID: doc.RecordID, CreatedAt: doc.Time, Counts: doc.Counts,
		PackageID: doc.PackageID, AudioMode: doc.AudioMode, AudioSHA256: doc.AudioSHA256, Document: sec.Document, Signature: sec.Signature}
	if withReason {
		r.Reason = sec.Reason
	}
	return r
}

// loadReceipt reads receipt id; not_found when absent or not visible to
// ctx's principal.
func (db *DB) loadReceipt(ctx context.Context, tx *bolt.Tx, id string) (*Receipt, error) {
	notFound := errorf(CodeNotFound, "receipt not found")
	if !receiptIDPattern.MatchString(id) {
		return nil, notFound
	}
	var row receiptRow
	if ok, err := getJSON(tx.Bucket(bucketReceipts), []byte(id), &row); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound
	}
	sec, doc, err := db.openReceipt(id, row)
	if errors.Is(err, errReceiptDocument) {
		return nil, fmt.Errorf("receipt: %w", ErrCorrupt)
	}
	if err != nil {
		db.log.Warn("receipt unreadable", "err", err.Error())
		return nil, notFound
	}
	if !canSee(ctx, recordAccess{Sensitivity: sec.Sensitivity, CreatedBy: sec.CreatedBy, CreatedByToken: sec.CreatedByToken}) {
		return nil, notFound
	}
	p := PrincipalFrom(ctx)
	return receiptFrom(sec, doc, p == nil || p.Role == RoleAdmin), nil
}

// errReceiptDocument is the cause when a receipt's box opens but the
// document in it does not decode.
var errReceiptDocument = fmt.Errorf("receipt document: %w", ErrCorrupt)

// openReceipt opens receipt row, stored under key id: ErrKeyMissing or
// ErrCorrupt when its box does not open or belongs to another row,
// errReceiptDocument when its document does not decode.
func (db *DB) openReceipt(id string, row receiptRow) (sec receiptSecrets, doc receiptDocument, err error) {
	if err := db.keys.openBox(row.Box, &sec); err != nil {
		return receiptSecrets{}, doc, err
	}
	if sec.ID != id {
		return receiptSecrets{}, doc, ErrCorrupt
	}
	if err := json.Unmarshal(sec.Document, &doc); err != nil {
		return receiptSecrets{}, doc, errReceiptDocument
	}
	return sec, doc, nil
}

// Receipt returns receipt id, its reason only to admins. Returns
// not_found, also for a receipt of a record the caller may not see.
func (db *DB) Receipt(ctx context.Context, id string) (r *Receipt, err error) {
	defer func() { err = boundary("receipt", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		r, err = db.loadReceipt(ctx, tx, id)
		return err
	})
	return r, err
}

// checkReason validates a reason for an export, removal or destroy.
func checkReason(reason string, minRunes int) (string, error) {
	r, err := cleanText("reason", reason, MaxReasonRunes, true)
	if err != nil {
		return "", err
	}
	if len([]rune(r)) < minRunes {
		return "", errorf(CodeValidation, fmt.Sprintf("reason must be at least %d characters", minRunes))
	}
	return r, nil
}

// tombstone remembers a destroyed or purged record, so a repeated destroy
// answers with the first receipt and an unknown id stays unknown.
type tombstone struct {
	Box box `json:"box"` // tombstoneSecrets
}

type tombstoneSecrets struct {
	RecordID       uint64    `json:"record_id"`
	ReceiptID      string    `json:"receipt_id"`
	DestroyedAt    time.Time `json:"destroyed_at"`
	Sensitivity    string    `json:"sensitivity"`
	CreatedBy      uint64    `json:"created_by,omitempty"`
	CreatedByToken uint64    `json:"created_by_token,omitempty"`
	// Redacted lists the audit events whose bodies the destroy or purge
	// removed, written in the same transaction: verify and the audit API
	// accept a missing body only where a tombstone lists it.
	Redacted []uint64 `json:"redacted,omitempty"`
}

// DestroyRequest asks for a destroy; a dry run unless DryRun is false.
type DestroyRequest struct {
	DryRun  bool
	Confirm bool
	Reason  string
}

// Destroy statuses.
const (
	DestroyDryRun         = "dry_run"
	DestroyDestroyed      = "destroyed"
	DestroyAlreadyDeleted = "already_deleted"
)

// DestroyResult is what Destroy did or would do.
type DestroyResult struct {
	Status      string
	RecordID    uint64
	Counts      DestroyCounts // what was (or, in a dry run, would be) deleted
	Receipt     *Receipt      // nil for a dry run
	DestroyedAt time.Time
}

// DestroyCounts counts what a destroy deletes.
type DestroyCounts struct {
	Files    int `json:"files"`
	Segments int `json:"segments"`
	Notes    int `json:"notes"`
	// Exports counts the record's export packages on the server (copies
	// already downloaded are out of reach).
	Exports int `json:"exports"`
}

func (c DestroyCounts) asMap() map[string]int {
	return map[string]int{"files": c.Files, "segments": c.Segments, "notes": c.Notes, "exports": c.Exports}
}

// Destroy deletes record id for good (DESIGN §4, §7). In one transaction:
// the record row — and with it the only copy of its key, so every remnant
// becomes unreadable — its segments, notes, asset, index entries and
// project count; its export packages' rows; its export and audio-removal
// receipts (they hold the audio's SHA-256); its audit events are redacted
// to their hashes; a tombstone and a signed receipt (counts, no content
// hash) are written and `destroyed` is audited. Then the OnRecordGone
// callbacks run, the database is compacted, and the blob and the package files are overwritten and
// removed (best effort: the orphan sweep retries). A dry run changes
// nothing and says what would go. A repeat answers already_deleted with
// the first receipt; an id that never existed (or that the caller may not
// see) is not_found. Returns validation_error without confirm and reason.
func (db *DB) Destroy(ctx context.Context, id uint64, req DestroyRequest) (res DestroyResult, err error) {
	defer func() { err = boundary("destroy", err) }()
	if err := ctxErr(ctx); err != nil {
		return res, err
	}
	res.RecordID = id
	var reason string
	if !req.DryRun {
		if !req.Confirm {
			return res, errorf(CodeValidation, "destroy requires confirm=true")
		}
		if reason, err = checkReason(req.Reason, 1); err != nil {
			return res, err
		}
	}
	var blob string
	var packages []string
	update := db.update
	if req.DryRun {
		update = db.view
	}
	err = update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if ErrorCode(err) == CodeNotFound {
			return db.alreadyDeleted(ctx, tx, id, &res)
		}
		if err != nil {
			return err
		}
		counts := DestroyCounts{Segments: l.acc.Segments, Notes: l.acc.Notes}
		var a asset
		if l.acc.AssetID != 0 {
			counts.Files = 1
			if a, err = db.loadAsset(tx, l); err != nil {
				return err
			}
		}
		rem, err := db.findRemnants(tx, map[uint64]bool{id: true})
		if err != nil {
			return err
		}
		counts.Exports = len(rem[id].packageIDs())
		res.Counts = counts
		if req.DryRun {
			res.Status = DestroyDryRun
			return nil
		}
		now := db.now().UTC()
		// No content hash of the audio: the receipt outlives the record.
		doc := receiptDocument{Kind: ReceiptDestroy, RecordID: id, Time: now, Counts: counts.asMap()}
		if a.row.ID != 0 {
			blob = a.row.Blob
		}
		receipt, err := db.deleteRecord(ctx, tx, l, rem[id], doc, reason, ActionDestroyed)
		if err != nil {
			return err
		}
		packages = rem[id].packageIDs()
		res.Status, res.Receipt, res.DestroyedAt = DestroyDestroyed, receipt, now
		return nil
	})
	if err != nil || res.Status != DestroyDestroyed {
		return res, err
	}
	db.recordsGone(id)
	if err := db.faultAt(FaultDestroyCommit); err != nil {
		return res, err
	}
	// Freed pages still hold the record's sealed key: compact them away,
	// so even the newsroom key opens nothing of the record from here on.
	if _, err := db.Compact(ctx); err != nil {
		db.log.Warn("compaction after destroy failed; the next purge compacts", "record_id", id, "err", err.Error())
	}
	if err := db.faultAt(FaultDestroyCompact); err != nil {
		return res, err
	}
	// The record key is gone: what is left of the blob is unreadable even
	// with the newsroom key. Overwrite and remove it anyway. The packages
	// are under the newsroom key itself: removing them is what makes them
	// unreadable (best effort on an SSD; their rows are gone, so the
	// orphan sweep retries a failure).
	if blob != "" {
		if rerr := db.removeBlob(blob); rerr != nil {
			db.log.Warn("blob of a destroyed record not removed; the orphan sweep will retry", "record_id", id, "err", stripPaths(rerr).Error())
		}
	}
	db.removeExports(packages, id)
	return res, nil
}

// deleteRecord removes record l and everything of it within tx — rem, its
// remnants, included — writes its tombstone and a receipt for doc, and
// audits action.
func (db *DB) deleteRecord(ctx context.Context, tx *bolt.Tx, l loaded, rem *remnants, doc receiptDocument, reason string, action string) (*Receipt, error) {
	id := l.row.ID
	receipt, err := db.newReceipt(tx, doc, reason, l.acc)
	if err != nil {
		return nil, err
	}
	if err := rem.delete(tx); err != nil {
		return nil, err
	}
	if l.acc.AssetID != 0 {
		if err := tx.Bucket(bucketAssets).Delete(itob(l.acc.AssetID)); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketSegments).Delete(itob(id)); err != nil {
		return nil, err
	}
	if err := deletePrefix(tx.Bucket(bucketNotes), itob(id)); err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketProjectIndex).Delete(db.projectIndexKey(l.acc.ProjectID, id)); err != nil {
		return nil, err
	}
	if err := db.countInProject(tx, l.acc, -1); err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketRecords).Delete(itob(id)); err != nil {
		return nil, err
	}
	redacted, err := db.redactAudit(tx, id)
	if err != nil {
		return nil, err
	}
	ts, err := db.keys.sealBox(tombstoneSecrets{RecordID: id, ReceiptID: receipt.ID, DestroyedAt: doc.Time,
		Sensitivity: l.acc.Sensitivity, CreatedBy: l.acc.CreatedBy, CreatedByToken: l.acc.CreatedByToken, Redacted: redacted})
	if err != nil {
		return nil, err
	}
	if err := putJSON(tx.Bucket(bucketTombstones), itob(id), tombstone{Box: ts}); err != nil {
		return nil, err
	}
	meta := map[string]any{}
	for k, v := range doc.Counts {
		meta[k] = v
	}
	if doc.Kind == ReceiptPurge {
		meta = map[string]any{"age_days": int(doc.Time.Sub(l.acc.CreatedAt) / (24 * time.Hour)), "reason": "retention"}
	}
	if err := db.appendAudit(ctx, tx, AuditEvent{Action: action, RecordID: id, ProjectID: l.acc.ProjectID, Meta: meta}); err != nil {
		return nil, err
	}
	return receipt, nil
}

// alreadyDeleted fills res from record id's tombstone, or returns
// not_found when there is none the caller may see.
func (db *DB) alreadyDeleted(ctx context.Context, tx *bolt.Tx, id uint64, res *DestroyResult) error {
	notFound := errorf(CodeNotFound, "record not found")
	var ts tombstone
	if ok, err := getJSON(tx.Bucket(bucketTombstones), itob(id), &ts); err != nil {
		return err
	} else if !ok {
		return notFound
	}
	var sec tombstoneSecrets
	if err := db.keys.openBox(ts.Box, &sec); err != nil || sec.RecordID != id {
		return notFound
	}
	if !canSee(ctx, recordAccess{Sensitivity: sec.Sensitivity, CreatedBy: sec.CreatedBy, CreatedByToken: sec.CreatedByToken}) {
		return notFound
	}
	r, err := db.loadReceipt(ctx, tx, sec.ReceiptID)
	if err != nil {
		return err
	}
	res.Status, res.Receipt, res.DestroyedAt = DestroyAlreadyDeleted, r, sec.DestroyedAt
	for k, v := range r.Counts {
		switch k {
		case "files":
			res.Counts.Files = v
		case "segments":
			res.Counts.Segments = v
		case "notes":
			res.Counts.Notes = v
		case "exports":
			res.Counts.Exports = v
		}
	}
	return nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RemoveAudio removes record id's audio by erasure (DESIGN §4). In one
// transaction: its asset row — the only copy of the asset key — goes, and
// with it what holds the audio or its SHA-256 outside the record, as a
// destroy removes them: the rows of the export packages made of it and
// their export receipts (remnants.ofAudio); a signed receipt (counts, no
// content hash: it outlives the audio) is written and audio_removed
// audited. Then the database is compacted, and the blob and the package
// files are overwritten and removed (best effort: their rows are gone, so
// nobody downloads them, and the orphan sweep at the next start or purge
// retries), and the OnAudioRemoved callbacks run. A new upload may follow. Returns not_found (no such record or
// no audio), validation_error (no confirm or reason), conflict (an upload
// in progress).
func (db *DB) RemoveAudio(ctx context.Context, id uint64, confirm bool, reason string) (r *Receipt, err error) {
	defer func() { err = boundary("remove audio", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if !confirm {
		return nil, errorf(CodeValidation, "removing audio requires confirm=true")
	}
	if reason, err = checkReason(reason, 1); err != nil {
		return nil, err
	}
	if !db.claimUpload(id) {
		return nil, errorf(CodeConflict, "an upload for this record is in progress")
	}
	defer db.releaseUpload(id)
	var blob string
	var packages []string
	err = db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if l.acc.AssetID == 0 {
			return errorf(CodeNotFound, "record has no audio")
		}
		a, err := db.loadAsset(tx, l)
		if err != nil {
			return err
		}
		all, err := db.findRemnants(tx, map[uint64]bool{id: true})
		if err != nil {
			return err
		}
		rem := all[id].ofAudio()
		counts := map[string]int{"files": 1, "exports": len(rem.packageIDs())}
		doc := receiptDocument{Kind: ReceiptAudioRemoval, RecordID: id, Time: db.now().UTC(), Counts: counts}
		if r, err = db.newReceipt(tx, doc, reason, l.acc); err != nil {
			return err
		}
		if err := rem.delete(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAssets).Delete(itob(a.row.ID)); err != nil {
			return err
		}
		l.acc.AssetID = 0
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		blob, packages = a.row.Blob, rem.packageIDs()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionAudioRemoved, RecordID: id, ProjectID: l.acc.ProjectID,
			Meta: map[string]any{"files": counts["files"], "exports": counts["exports"]}})
	})
	if err != nil {
		return nil, err
	}
	if err := db.faultAt(FaultRemoveCommitted); err != nil {
		return r, err
	}
	// Freed pages still hold the asset's sealed key and the deleted rows:
	// compact them away.
	if _, err := db.Compact(ctx); err != nil {
		db.log.Warn("compaction after an audio removal failed; the next purge compacts", "record_id", id, "err", err.Error())
	}
	if err := db.faultAt(FaultRemoveCompacted); err != nil {
		return r, err
	}
	if rerr := db.removeBlob(blob); rerr != nil {
		db.log.Warn("removed audio's blob not deleted; the orphan sweep will retry", "record_id", id, "err", stripPaths(rerr).Error())
	}
	db.removeExports(packages, id)
	db.audioGone.call(id)
	return r, nil
}
