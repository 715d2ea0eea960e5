package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"

	"tyst/internal/ctxio"
	"tyst/store/blob"
	"tyst/store/export"
	"tyst/store/fstream"
	"tyst/store/media"
)

var bucketExports = []byte("exports")

// Export audio modes (DESIGN §7).
const (
	ExportEncrypted = export.ModeEncrypted
	ExportDecrypted = export.ModeDecrypted
)

// DecryptedWarning is the warning every decrypted export answers with.
const DecryptedWarning = "Audio exported as decrypted. Handle with extreme care."

var packageIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ExportRequest asks for an export package.
type ExportRequest struct {
	Confirm bool
	Reason  string
	Mode    string // ExportEncrypted (default) or ExportDecrypted (admins)
}

// ExportResult is a written package.
type ExportResult struct {
	PackageID string
	Receipt   *Receipt
	AudioMode string
	Warnings  []string
}

// exportRow is an export package as stored: its id and a box.
type exportRow struct {
	ID  string `json:"id"`
	Box box    `json:"box"` // exportSecrets
}

type exportSecrets struct {
	PackageID string    `json:"package_id"`
	RecordID  uint64    `json:"record_id"`
	CreatedAt time.Time `json:"created_at"`
	AudioMode string    `json:"audio_mode"`
	Size      int64     `json:"size"` // the ZIP's size
	// FileKeyID is the newsroom key the package file is encrypted under.
	FileKeyID string `json:"file_key_id"`
	// Who may download it: as the record (DESIGN §6).
	Sensitivity    string `json:"sensitivity"`
	CreatedBy      uint64 `json:"created_by,omitempty"`
	CreatedByToken uint64 `json:"created_by_token,omitempty"`
	// ExportedBy is the account that made the package (0: the system),
	// whose quota it counts against (ExportLimits.PerUser).
	ExportedBy uint64 `json:"exported_by,omitempty"`
}

func exportObjectName(id string) string { return "export-" + id }

// transcriptDoc is transcript.json: the record's metadata, segments and
// notes.
type transcriptDoc struct {
	TranscriptID uint64    `json:"transcript_id"`
	ProjectID    uint64    `json:"project_id"`
	Title        string    `json:"title"`
	Language     string    `json:"language"`
	Sensitivity  string    `json:"sensitivity"`
	CreatedAt    time.Time `json:"created_at"`
	Audio        *struct {
		SHA256     string `json:"sha256"`
		SizeBytes  int64  `json:"size_bytes"`
		MIMEType   string `json:"mime_type"`
		DurationMS int64  `json:"duration_ms,omitempty"`
	} `json:"audio"`
	Segments []Segment `json:"segments"`
	Notes    []*Note   `json:"notes"`
}

// auditDoc is one event of audit.json: metadata only.
type auditDoc struct {
	Seq      uint64         `json:"seq"`
	Time     time.Time      `json:"time"`
	Action   string         `json:"action"`
	ActorID  uint64         `json:"actor_id,omitempty"`
	Meta     map[string]any `json:"meta,omitempty"`
	Hash     string         `json:"hash"`
	Redacted bool           `json:"redacted,omitempty"`
	// BodyMissing: the body is gone, though the record lives (the log was
	// altered).
	BodyMissing bool `json:"body_missing,omitempty"`
}

// Export builds record id's export package (DESIGN §7) as a stream, signed
// with the newsroom's signing key, straight into an encrypted file under the
// newsroom key: memory does not grow with the audio. Then, in one
// transaction, it records the package, a signed receipt (the reason is
// sealed in it, never in the audit log) and the audit event export_created.
// Decrypted mode is for admins, with a reason of at least 10 characters.
// Before a byte is written the package's size is estimated and checked
// against the account's quota and the disk's reserve (ExportLimits).
// An export whose ctx is done before its transaction (the client gave up)
// is abandoned: no file, no row, no receipt, no audit event, and its
// reservation is given back. Returns not_found, validation_error,
// forbidden, quota_exceeded, insufficient_storage, conflict (the record's
// audio was removed meanwhile), unavailable (ctx done).
func (db *DB) Export(ctx context.Context, id uint64, req ExportRequest) (res *ExportResult, err error) {
	defer func() { err = boundary("export", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if req.Mode == "" {
		req.Mode = ExportEncrypted
	}
	minReason := 1
	switch req.Mode {
	case ExportEncrypted:
	case ExportDecrypted:
		if p := PrincipalFrom(ctx); p != nil && p.Role != RoleAdmin {
			return nil, errorf(CodeForbidden, "only admins export decrypted audio")
		}
		minReason = MinDecryptedReasonRunes
	default:
		return nil, errorf(CodeValidation, "export_audio_mode must be encrypted or decrypted")
	}
	if !req.Confirm {
		return nil, errorf(CodeValidation, "export requires confirm=true")
	}
	reason, err := checkReason(req.Reason, minReason)
	if err != nil {
		return nil, err
	}
	var pid [16]byte
	if _, err := rand.Read(pid[:]); err != nil {
		return nil, err
	}
	packageID := hex.EncodeToString(pid[:])
	now := db.now().UTC()

	// Everything the package holds, read in one transaction.
	var (
		in  = export.Input{PackageID: packageID, CreatedAt: now, AudioMode: req.Mode, TranscriptID: id, AudioKey: db.keys.Primary()}
		acc recordAccess
		a   asset
	)
	err = db.view(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		acc = l.acc
		rec, err := db.decodeRecord(tx, l)
		if err != nil {
			return err
		}
		doc := transcriptDoc{TranscriptID: id, ProjectID: rec.ProjectID, Title: rec.Title, Language: rec.Language,
			Sensitivity: rec.Sensitivity, CreatedAt: rec.CreatedAt}
		if doc.Segments, err = db.segments(tx, l); err != nil {
			return err
		}
		if doc.Notes, err = db.notes(tx, l); err != nil {
			return err
		}
		if l.acc.AssetID != 0 {
			if a, err = db.loadAsset(tx, l); err != nil {
				return err
			}
			au := a.audio()
			doc.Audio = &struct {
				SHA256     string `json:"sha256"`
				SizeBytes  int64  `json:"size_bytes"`
				MIMEType   string `json:"mime_type"`
				DurationMS int64  `json:"duration_ms,omitempty"`
			}{au.SHA256, au.SizeBytes, au.MIMEType, au.DurationMS}
		}
		if in.Transcript, err = json.MarshalIndent(doc, "", "  "); err != nil {
			return err
		}
		events, err := db.recordEvents(tx, id)
		if err != nil {
			return err
		}
		if in.Audit, err = json.MarshalIndent(events, "", "  "); err != nil {
			return err
		}
		in.Counts = map[string]int{"segments": len(doc.Segments), "notes": len(doc.Notes), "audit_events": len(events), "files": 0}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Room for it, before anything is written: a refused export leaves
	// nothing behind.
	var user, audioSize uint64
	if p := PrincipalFrom(ctx); p != nil {
		user = p.UserID
	}
	if a.row.ID != 0 {
		audioSize = uint64(a.sec.SizeBytes)
	}
	release, err := db.exportBudget.reserve(user, estimatePackage(int64(audioSize), req.Mode, len(in.Transcript)+len(in.Audit)),
		func() (held int64, err error) {
			err = db.view(func(tx *bolt.Tx) error {
				held = db.heldBy(tx, user)
				return nil
			})
			return held, err
		})
	if err != nil {
		return nil, err
	}
	defer release() // after the package's row is committed, or abandoned
	var audioObj blob.Object
	if a.row.ID != 0 {
		if audioObj, err = db.openBlob(a.row.Blob); err != nil {
			return nil, fmt.Errorf("blob of record %d: %w", id, err)
		}
		defer audioObj.Close()
		// Decrypting the blob runs beside the hashing and encrypting of
		// the package, on its own goroutine.
		ra := newReadAhead(fstream.NewReader(io.NewSectionReader(audioObj, 0, audioObj.Size()), []*fernet.Key{a.key}), 256<<10, 4)
		defer ra.Close()
		in.Audio = ctxio.Reader(ctx, ra) // and ctxio.Writer below: a client that gives up stops the export

		in.AudioSHA256 = hex.EncodeToString(a.sec.SHA256)
		in.AudioExt = media.Ext(a.sec.MIMEType)
		in.Counts["files"] = 1
	}

	// The package, written as a stream into an encrypted object.
	w, err := db.exports.Create()
	if err != nil {
		return nil, err
	}
	defer w.Abort() // a no-op once committed
	// Three stages on their own goroutines: the package (hashes, the
	// inner encryption of audio.bin, the ZIP), the package's encryption at
	// rest, and the disk.
	counted := &countingWriter{}
	disk := newAsyncWriter(w)
	fw, err := fstream.NewWriter(disk, db.keys.Primary())
	if err != nil {
		disk.Close()
		return nil, err
	}
	sealer := newAsyncWriter(fw)
	manifest, err := export.Write(io.MultiWriter(ctxio.Writer(ctx, sealer), counted), in, db.signer)
	if cerr := sealer.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fw.Close()
	}
	if cerr := disk.Close(); err == nil {
		err = cerr
	}
	if err != nil && ctx.Err() != nil {
		err = ctxErr(ctx) // the client gave up: not a failure of the store
	} else if err != nil && a.row.ID != 0 {
		// The audio removed (or replaced) meanwhile: its blob was
		// overwritten under the reader. Not a corrupt blob.
		if verr := db.view(func(tx *bolt.Tx) error { _, err := db.sameAudio(ctx, tx, id, a.row.ID); return err }); verr != nil {
			err = verr
		}
	}
	if errors.Is(err, export.ErrAudioMismatch) {
		err = fmt.Errorf("audio of record %d: %w", id, ErrCorrupt)
	}
	if err != nil {
		return nil, err
	}
	name := exportObjectName(packageID)
	if err := db.faultAt(FaultExportWritten); err != nil {
		return nil, err
	}
	// Nobody is waiting for the package: abandon it (the deferred Abort
	// removes the file; release gives the reservation back).
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := w.Commit(name); err != nil {
		return nil, err
	}
	res = &ExportResult{PackageID: packageID, AudioMode: req.Mode, Warnings: []string{}}
	if req.Mode == ExportDecrypted {
		res.Warnings = append(res.Warnings, DecryptedWarning)
	}
	err = db.faultAt(FaultExportRenamed)
	if err == nil {
		err = db.update(func(tx *bolt.Tx) error {
			// The last point of return: a client that gives up after it
			// has its package on the server, never told of it.
			if err := ctxErr(ctx); err != nil {
				return err
			}
			l, err := db.sameAudio(ctx, tx, id, a.row.ID) // still there, still visible, same audio
			if err != nil {
				return err
			}
			sec := exportSecrets{PackageID: packageID, RecordID: id, CreatedAt: now, AudioMode: req.Mode, Size: counted.n,
				FileKeyID: db.keys.PrimaryID(), Sensitivity: acc.Sensitivity, CreatedBy: acc.CreatedBy, CreatedByToken: acc.CreatedByToken,
				ExportedBy: user}
			bx, err := db.keys.sealBox(sec)
			if err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bucketExports), []byte(packageID), exportRow{ID: packageID, Box: bx}); err != nil {
				return err
			}
			doc := receiptDocument{Kind: ReceiptExport, RecordID: id, Time: now, Counts: manifest.Counts, PackageID: packageID,
				AudioMode: req.Mode, AudioSHA256: manifest.IntegrityHashes.AudioSHA256}
			if res.Receipt, err = db.newReceipt(tx, doc, reason, l.acc); err != nil {
				return err
			}
			return db.appendAudit(ctx, tx, AuditEvent{Action: ActionExportCreated, RecordID: id, ProjectID: l.acc.ProjectID,
				Meta: map[string]any{"audio_mode": req.Mode, "mib": MiB(counted.n)}})
		})
	}
	if err != nil {
		if derr := db.removeExport(name); derr != nil {
			db.log.Warn("unreferenced export package not removed; purge retries", "err", stripPaths(derr).Error())
		}
		return nil, err
	}
	if err := db.faultAt(FaultExportCommitted); err != nil {
		return nil, err
	}
	return res, nil
}

// sameAudio loads record id within tx and checks that it still holds
// asset assetID (0: no audio). A package made of an audio removed while it
// was written must not outlive the removal, which deleted the packages it
// found (RemoveAudio): conflict, and the caller discards the package.
func (db *DB) sameAudio(ctx context.Context, tx *bolt.Tx, id, assetID uint64) (loaded, error) {
	l, err := db.loadRecord(ctx, tx, id)
	if err != nil {
		return l, err
	}
	if l.acc.AssetID != assetID {
		return l, errorf(CodeConflict, "the record's audio changed during the export; export again")
	}
	return l, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// recordEvents returns record id's audit events, metadata only.
func (db *DB) recordEvents(tx *bolt.Tx, id uint64) ([]auditDoc, error) {
	prefix := db.indexMAC(indexRecord, itob(id))
	b := tx.Bucket(bucketAudit)
	out := []auditDoc{}
	c := tx.Bucket(bucketAuditByRecord).Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		var row auditRow
		if ok, err := getJSON(b, k[len(prefix):], &row); err != nil || !ok {
			return nil, err
		}
		ev, err := db.openEvent(row)
		if err != nil && !errors.Is(err, ErrKeyMissing) {
			return nil, err
		}
		out = append(out, auditDoc{Seq: ev.Seq, Time: ev.Time, Action: ev.Action, ActorID: ev.ActorID, Meta: ev.Meta, Hash: ev.Hash, Redacted: ev.Redacted})
	}
	// A live record's events have their bodies: none was redacted, so a
	// missing one was removed by someone else, and the package says so.
	markBodyMissing(db, tx, out, func(d *auditDoc) (uint64, *bool, *bool) { return d.Seq, &d.Redacted, &d.BodyMissing })
	return out, nil
}

// ExportReader is an export package's ZIP, decrypted, with random access
// for HTTP Range. Close it.
type ExportReader struct {
	io.ReadSeeker
	PackageID string
	Size      int64
	obj       blob.Object
}

// Close releases the package file.
func (e *ExportReader) Close() error { return e.obj.Close() }

// OpenExport opens package id for download and audits it
// (export_downloaded, at most one event per principal and package within
// a window). Returns not_found, also for a package of a record the caller
// may not see.
func (db *DB) OpenExport(ctx context.Context, id string) (er *ExportReader, err error) {
	defer func() { err = boundary("open export", err) }()
	notFound := errorf(CodeNotFound, "export package not found")
	if !packageIDPattern.MatchString(id) {
		return nil, notFound
	}
	var sec exportSecrets
	err = db.view(func(tx *bolt.Tx) error {
		var row exportRow
		if ok, err := getJSON(tx.Bucket(bucketExports), []byte(id), &row); err != nil {
			return err
		} else if !ok {
			return notFound
		}
		if err := db.keys.openBox(row.Box, &sec); err != nil || sec.PackageID != id {
			db.log.Warn("export package row unreadable")
			return notFound
		}
		if !canSee(ctx, recordAccess{Sensitivity: sec.Sensitivity, CreatedBy: sec.CreatedBy, CreatedByToken: sec.CreatedByToken}) {
			return notFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	obj, err := db.exports.Open(exportObjectName(id))
	if errors.Is(err, blob.ErrNotExist) {
		return nil, notFound // purged by age
	}
	if err != nil {
		return nil, err
	}
	rs, err := fstream.NewReadSeeker(obj, obj.Size(), db.keys.All())
	if err == nil && rs.Size() != sec.Size {
		err = ErrCorrupt
	}
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("export package: %w", err)
	}
	var who string
	if p := PrincipalFrom(ctx); p != nil {
		who = fmt.Sprintf("%d/%d", p.UserID, p.TokenID)
	}
	key := "export:" + who + ":" + id
	if db.accesses.due(key, db.now()) {
		err := db.update(func(tx *bolt.Tx) error {
			return db.appendAudit(ctx, tx, AuditEvent{Action: ActionExportDownloaded, RecordID: sec.RecordID})
		})
		if err != nil {
			db.accesses.forget(key)
			obj.Close()
			return nil, err
		}
	}
	return &ExportReader{ReadSeeker: rs, PackageID: id, Size: rs.Size(), obj: obj}, nil
}

// PurgeExports removes export packages written before cutoff — a file a
// crash left without its row is a package too — and the rows whose file is
// gone. The rows go first, in one transaction, then the files (overwritten
// and removed): a failure in between leaves files that no row records,
// which nobody can download and the orphan sweep removes. It returns how
// many packages it removed (with dryRun, would remove).
func (db *DB) PurgeExports(ctx context.Context, cutoff time.Time, dryRun bool) (n int, err error) {
	defer func() { err = boundary("purge exports", err) }()
	// The rows before the files: a package's file is committed before its
	// row, so every row read here has its file in the listing unless the
	// file is really gone. (Rows read after the listing would include
	// packages made meanwhile, whose files the listing missed.)
	rows, err := db.exportRowIDs()
	if err != nil {
		return 0, err
	}
	infos, err := listObjects(db.exports)
	if err != nil {
		return 0, err
	}
	files := map[string]bool{} // object name → old
	var old []string
	for _, i := range infos {
		files[i.Name] = i.ModTime.Before(cutoff)
		if files[i.Name] {
			old = append(old, i.Name)
		}
	}
	if dryRun {
		return len(old), nil
	}
	// Rows of the old packages, and rows whose file is gone (purged
	// before, or lost).
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketExports)
		for _, k := range rows {
			if isOld, ok := files[exportObjectName(k)]; !ok || isOld {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := db.faultAt(FaultPurgeExports); err != nil {
		return 0, err
	}
	var first error
	for _, name := range old {
		if err := db.removeExport(name); err != nil {
			db.log.Warn("old export package not removed; the orphan sweep will retry", "err", stripPaths(err).Error())
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

// exportRowIDs returns the package id of every export row.
func (db *DB) exportRowIDs() (ids []string, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExports).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// rekeyFiles encrypts export packages again under the primary key (their
// rows say which key each file is under) and returns how many. Each file is
// written whole and committed over the old one atomically, then its row
// updated: an interruption leaves a file under either key, both readable,
// and the next run finishes.
func (db *DB) rekeyFiles(ctx context.Context) (int, error) {
	type job struct {
		id  string
		sec exportSecrets
	}
	var jobs []job
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExports).ForEach(func(k, v []byte) error {
			var row exportRow
			var sec exportSecrets
			if json.Unmarshal(v, &row) != nil || db.keys.openBox(row.Box, &sec) != nil {
				return nil
			}
			if sec.FileKeyID != db.keys.PrimaryID() {
				jobs = append(jobs, job{string(k), sec})
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		name := exportObjectName(j.id)
		if err := db.reencrypt(db.exports, name); errors.Is(err, blob.ErrNotExist) {
			continue // purged meanwhile
		} else if err != nil {
			return n, fmt.Errorf("export package: %w", err)
		}
		if err := db.faultAt(FaultRekeyFile); err != nil {
			return n, err
		}
		j.sec.FileKeyID = db.keys.PrimaryID()
		gone := false
		err := db.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketExports)
			if gone = b.Get([]byte(j.id)) == nil; gone {
				return nil // purged, or destroyed with its record, meanwhile
			}
			bx, err := db.keys.sealBox(j.sec)
			if err != nil {
				return err
			}
			return putJSON(b, []byte(j.id), exportRow{ID: j.id, Box: bx})
		})
		if err != nil {
			return n, err
		}
		if gone {
			// The file written again may have landed after the removal:
			// remove it too (the orphan sweep would, later).
			if err := db.removeExport(name); err != nil {
				db.log.Warn("export package deleted during a rekey not removed; the orphan sweep will retry", "err", stripPaths(err).Error())
			}
			continue
		}
		n++
	}
	return n, nil
}

// reencrypt decrypts object name of s with any configured key and writes
// it again under the primary key, committed over the old one.
func (db *DB) reencrypt(s blob.Store, name string) error {
	in, err := s.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	w, err := s.Create()
	if err != nil {
		return err
	}
	defer w.Abort()
	fw, err := fstream.NewWriter(w, db.keys.Primary())
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, fstream.NewReader(io.NewSectionReader(in, 0, in.Size()), db.keys.All())); err != nil {
		return err
	}
	if err := fw.Close(); err != nil {
		return err
	}
	return w.Commit(name)
}

// exportKeyUsage adds the export files each key covers to usage.
func (db *DB) exportKeyUsage(tx *bolt.Tx, usage map[string]int) {
	tx.Bucket(bucketExports).ForEach(func(_, v []byte) error {
		var row exportRow
		var sec exportSecrets
		if json.Unmarshal(v, &row) == nil && db.keys.openBox(row.Box, &sec) == nil {
			usage[sec.FileKeyID]++
		}
		return nil
	})
}
