package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// remnants is what a record leaves outside its own rows: its export
// packages (a row here, a file in the export store) and the receipts that
// hold its audio's SHA-256 (export and audio-removal receipts). Destroy and
// purge delete them with the record (DESIGN §4: every remnant unreadable,
// even to a later holder of the newsroom key; a receipt's hash would let
// such a holder confirm a known recording). An audio removal deletes the
// part that holds audio (ofAudio).
type remnants struct {
	packages []string // export package ids
	receipts []string // receipt ids
	// silent holds the ids of receipts that name no audio hash and of the
	// packages of exports made while the record had no audio (their
	// receipt says so).
	silent map[string]bool
}

// findRemnants returns the remnants of each record in ids, found by the
// record id sealed in every export row and receipt: nothing in the clear
// links them to their record. A row that no configured key opens is left
// alone (verify reports it). It reads every export and receipt row once,
// whatever the number of ids.
func (db *DB) findRemnants(tx *bolt.Tx, ids map[uint64]bool) (map[uint64]*remnants, error) {
	out := map[uint64]*remnants{}
	of := func(id uint64) *remnants {
		r := out[id]
		if r == nil {
			r = &remnants{}
			out[id] = r
		}
		return r
	}
	err := tx.Bucket(bucketExports).ForEach(func(k, v []byte) error {
		var row exportRow
		var sec exportSecrets
		if json.Unmarshal(v, &row) != nil || db.keys.openBox(row.Box, &sec) != nil || sec.PackageID != string(k) {
			return nil
		}
		if ids[sec.RecordID] {
			of(sec.RecordID).packages = append(of(sec.RecordID).packages, sec.PackageID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export rows: %w", err)
	}
	err = tx.Bucket(bucketReceipts).ForEach(func(k, v []byte) error {
		var row receiptRow
		if json.Unmarshal(v, &row) != nil {
			return nil
		}
		_, doc, err := db.openReceipt(string(k), row)
		if err != nil {
			return nil
		}
		if ids[doc.RecordID] && (doc.Kind == ReceiptExport || doc.Kind == ReceiptAudioRemoval) {
			r := of(doc.RecordID)
			r.receipts = append(r.receipts, string(k))
			// No hash: an audio-removal receipt (since they name none) or
			// an export made while the record had no audio.
			if doc.AudioSHA256 == "" && (doc.Kind == ReceiptAudioRemoval || doc.Counts["files"] == 0) {
				if r.silent == nil {
					r.silent = map[string]bool{}
				}
				r.silent[string(k)] = true
				if doc.Kind == ReceiptExport && doc.PackageID != "" {
					r.silent[doc.PackageID] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return out, nil
}

// packageIDs returns r's export package ids; none for a nil r.
func (r *remnants) packageIDs() []string {
	if r == nil {
		return nil
	}
	return r.packages
}

// ofAudio returns the part of r that holds the record's audio or its
// SHA-256, for an audio removal: every package but those whose receipt
// says they were made without audio (a package whose receipt is gone
// counts as holding audio), and every export and audio-removal receipt
// that names a hash. A record holds one audio at a time and each removal
// takes this part with it, so whatever audio these hold was removed, now
// or before. Receipts of exports made without audio, and audio-removal
// receipts without a hash, stay. Nil for a nil r.
func (r *remnants) ofAudio() *remnants {
	if r == nil {
		return nil
	}
	out := &remnants{}
	for _, id := range r.packages {
		if !r.silent[id] {
			out.packages = append(out.packages, id)
		}
	}
	for _, id := range r.receipts {
		if !r.silent[id] {
			out.receipts = append(out.receipts, id)
		}
	}
	return out
}

// delete removes r's export rows and receipts within tx. The package files
// are the caller's to remove once tx has committed.
func (r *remnants) delete(tx *bolt.Tx) error {
	if r == nil {
		return nil
	}
	for _, id := range r.packages {
		if err := tx.Bucket(bucketExports).Delete([]byte(id)); err != nil {
			return err
		}
	}
	for _, id := range r.receipts {
		if err := tx.Bucket(bucketReceipts).Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// removeExports overwrites and removes the files of export packages whose
// rows are gone (best effort: a failure is logged, and the orphan sweep at
// the next start or purge retries). It returns how many it removed.
func (db *DB) removeExports(ids []string, recordID uint64) int {
	n := 0
	for _, id := range ids {
		if err := db.removeExport(exportObjectName(id)); err != nil {
			db.log.Warn("export package whose row was deleted not removed; the orphan sweep will retry", "record_id", recordID, "err", stripPaths(err).Error())
			continue
		}
		n++
	}
	return n
}

// removeExport deletes export package file name (overwritten first, best
// effort), unless a backup is copying, in which case it waits for it. An
// absent file is no error.
func (db *DB) removeExport(name string) error {
	db.removals.RLock()
	defer db.removals.RUnlock()
	return db.exports.Delete(name)
}
