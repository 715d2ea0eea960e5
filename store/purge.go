package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ExpiresAt is when purge may delete a record created at created:
// created + retention, or a later retainUntil; never while it is on hold
// (the zero time). The one place that rule is written.
func ExpiresAt(created time.Time, hold bool, retainUntil time.Time, retention time.Duration) time.Time {
	if hold {
		return time.Time{}
	}
	exp := created.Add(retention)
	if retainUntil.After(exp) {
		exp = retainUntil
	}
	return exp
}

// RetentionInfo is what a purge plan needs of a record.
type RetentionInfo struct {
	ID          uint64
	CreatedAt   time.Time
	Hold        bool
	RetainUntil time.Time
}

// RetentionInfo lists every record the configured keys open, with what
// decides its expiry. A record that does not open is left out: purge
// cannot know its age, so it keeps it (verify reports it).
func (db *DB) RetentionInfo(ctx context.Context) (out []RetentionInfo, err error) {
	defer func() { err = boundary("retention info", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var row recordRow
			if err := json.Unmarshal(v, &row); err != nil {
				return nil
			}
			l, err := db.openRecord(row)
			if err != nil {
				return nil
			}
			out = append(out, RetentionInfo{ID: row.ID, CreatedAt: l.acc.CreatedAt, Hold: l.acc.Hold, RetainUntil: l.acc.RetainUntil})
			return nil
		})
	})
	return out, err
}

// Purged is what PurgeRecords did with one record.
type Purged struct {
	ID   uint64
	Blob string // its blob's name, for the caller to remove; "" when none
	// Exports counts the record's export packages whose files PurgeRecords
	// removed (their rows went with the record).
	Exports int
	// Err is not_found (gone meanwhile), conflict (not expired, or put on
	// hold meanwhile), or the record's own failure; nil when purged.
	Err error
}

// PurgeRecords deletes the expired records ids as destroy does — each with
// its export packages and its export and audio-removal receipts, a
// tombstone, a receipt (kind purge, no content hash) and the audit event
// purged (age in days, reason retention) — in one transaction, so a large
// purge costs one fsync per batch. Each record's expiry is checked again
// inside the transaction under retention. A record that fails on its own
// is skipped with its error in its Purged; an error of the transaction
// itself fails the whole batch (the caller retries the records one by
// one). After the commit it removes the package files (best effort: the
// orphan sweep retries); the blobs are the caller's to remove.
func (db *DB) PurgeRecords(ctx context.Context, ids []uint64, now time.Time, retention time.Duration) (out []Purged, err error) {
	defer func() { err = boundary("purge records", err) }()
	packages := map[uint64][]string{}
	err = db.update(func(tx *bolt.Tx) error {
		out = out[:0]
		clear(packages)
		want := make(map[uint64]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
		rem, err := db.findRemnants(tx, want)
		if err != nil {
			return err
		}
		for _, id := range ids {
			p := Purged{ID: id}
			p.Blob, p.Err = db.purgeOne(ctx, tx, id, rem[id], now, retention)
			if p.Err != nil {
				p.Blob = ""
				if !isRecordLevel(p.Err) {
					return p.Err
				}
				p.Err = boundary("purge record", p.Err)
			} else {
				packages[id] = rem[id].packageIDs()
			}
			out = append(out, p)
		}
		return nil
	})
	if err == nil {
		for _, p := range out {
			if p.Err == nil {
				db.recordsGone(p.ID)
			}
		}
		// The records are gone; a failure from here leaves their blobs and
		// package files to the orphan sweep.
		err = db.faultAt(FaultPurgeCommitted)
	}
	if err != nil {
		return out, err
	}
	for i := range out {
		out[i].Exports = db.removeExports(packages[out[i].ID], out[i].ID)
	}
	return out, nil
}

// isRecordLevel reports whether err concerns one record (the batch goes
// on) rather than the transaction (the batch fails).
func isRecordLevel(err error) bool {
	var e *Error
	return errors.As(err, &e) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrKeyMissing) || errors.Is(err, errInjected)
}

// errInjected marks a fault of the Fault hook at FaultPurgeRecord, which
// fails one record, not the batch.
var errInjected = errors.New("store: injected fault")

func (db *DB) purgeOne(ctx context.Context, tx *bolt.Tx, id uint64, rem *remnants, now time.Time, retention time.Duration) (blob string, err error) {
	if err := db.faultAt(FaultPurgeRecord); err != nil {
		return "", fmt.Errorf("%w: %w", errInjected, err)
	}
	l, err := db.loadRecord(ctx, tx, id)
	if err != nil {
		return "", err
	}
	exp := ExpiresAt(l.acc.CreatedAt, l.acc.Hold, l.acc.RetainUntil, retention)
	if exp.IsZero() || now.Before(exp) {
		return "", errorf(CodeConflict, "record is not expired")
	}
	// No content hash of the audio: the receipt outlives the record.
	doc := receiptDocument{Kind: ReceiptPurge, RecordID: id, Time: now.UTC(),
		Counts: map[string]int{"files": 0, "segments": l.acc.Segments, "notes": l.acc.Notes, "exports": len(rem.packageIDs())}}
	if l.acc.AssetID != 0 {
		doc.Counts["files"] = 1
		a, err := db.loadAsset(tx, l)
		if err != nil {
			return "", err
		}
		blob = a.row.Blob
	}
	_, err = db.deleteRecord(ctx, tx, l, rem, doc, "retention", ActionPurged)
	return blob, err
}

// RemoveBlob overwrites and removes blob name (best effort overwrite; a
// missing blob is no error).
func (db *DB) RemoveBlob(name string) error {
	return boundary("remove blob", db.removeBlob(name))
}

// PurgeSessions deletes sessions that expired before now and returns how
// many (with dryRun, how many would go).
func (db *DB) PurgeSessions(ctx context.Context, now time.Time, dryRun bool) (n int, err error) {
	defer func() { err = boundary("purge sessions", err) }()
	var dead [][]byte
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var row sessionRow
			if json.Unmarshal(v, &row) != nil || !now.Before(row.ExpiresAt) {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || dryRun || len(dead) == 0 {
		return len(dead), err
	}
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return len(dead), err
}

// SweepOrphans removes blobs that no asset references, export package
// files that no row records, and temp files, all older than olderThan, so
// a write in progress (its temp file, or its file between rename and
// commit) is never touched. It returns how many it removed (with dryRun,
// would remove) and the first error; it goes on past errors.
func (db *DB) SweepOrphans(ctx context.Context, olderThan time.Time, dryRun bool) (n int, err error) {
	defer func() { err = boundary("sweep orphans", err) }()
	referenced, err := db.referencedBlobs()
	if err != nil {
		return 0, err
	}
	infos, err := listObjects(db.blobs)
	if err != nil {
		return 0, err
	}
	var first error
	for _, i := range infos {
		if referenced[i.Name] || !i.ModTime.Before(olderThan) {
			continue
		}
		n++
		if dryRun {
			continue
		}
		if err := db.removeBlob(i.Name); err != nil {
			db.log.Warn("orphan blob not removed", "err", stripPaths(err).Error())
			n--
			if first == nil {
				first = err
			}
		}
	}
	packages, err := db.sweepExports(olderThan, dryRun)
	n += packages
	if first == nil {
		first = err
	}
	if !dryRun { // a dry run does not count temp files: the stores cannot
		tmp, err := db.blobs.CleanTemp(olderThan)
		n += tmp
		if first == nil {
			first = err
		}
		tmp, err = db.exports.CleanTemp(olderThan)
		n += tmp
		if first == nil {
			first = err
		}
	}
	return n, first
}

// sweepExports removes export package files written before olderThan
// that no row records: a crash between the file's commit and its
// transaction leaves one, which nobody can download. It returns how many
// it removed (with dryRun, would remove) and the first error.
func (db *DB) sweepExports(olderThan time.Time, dryRun bool) (n int, err error) {
	ids, err := db.exportRowIDs()
	if err != nil {
		return 0, err
	}
	rows := map[string]bool{}
	for _, id := range ids {
		rows[exportObjectName(id)] = true
	}
	infos, err := listObjects(db.exports)
	if err != nil {
		return 0, err
	}
	var first error
	for _, i := range infos {
		if rows[i.Name] || !i.ModTime.Before(olderThan) {
			continue
		}
		if !dryRun {
			if err := db.removeExport(i.Name); err != nil {
				db.log.Warn("orphan export package not removed", "err", stripPaths(err).Error())
				if first == nil {
					first = err
				}
				continue
			}
		}
		n++
	}
	return n, first
}

// referencedBlobs returns the names of every blob an asset references.
func (db *DB) referencedBlobs() (map[string]bool, error) {
	referenced := map[string]bool{}
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAssets).ForEach(func(_, v []byte) error {
			var a assetRow
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("asset row: %w", ErrCorrupt)
			}
			referenced[a.Blob] = true
			return nil
		})
	})
	return referenced, err
}
