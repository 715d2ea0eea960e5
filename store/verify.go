package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"

	"tyst/store/fstream"
)

// Problem kinds of a verify report.
const (
	ProblemDatabase      = "database"       // bbolt's consistency check failed
	ProblemRecordKey     = "record_key"     // a record's key does not unwrap (key missing, or altered)
	ProblemRecord        = "record"         // a record's sealed data does not decrypt
	ProblemAsset         = "asset"          // an asset row is missing or does not open
	ProblemMissingBlob   = "missing_blob"   // an asset's blob is not there
	ProblemCorruptBlob   = "corrupt_blob"   // a blob does not decrypt, or is cut
	ProblemSHA256        = "sha256"         // a blob decrypts to other bytes than its SHA-256 says
	ProblemOrphanBlob    = "orphan_blob"    // a blob no asset references
	ProblemAuditChain    = "audit_chain"    // the audit hash chain is broken
	ProblemAuditRollback = "audit_rollback" // the audit head given is gone or differs
	ProblemUnreadableRow = "unreadable_row" // an item sealed under a key that is not configured
	ProblemExport        = "export"         // an export package does not decrypt
)

// Problem is one finding of Verify: its kind and the id it concerns (no
// title, no path).
type Problem struct {
	Kind     string `json:"kind"`
	RecordID uint64 `json:"record_id,omitempty"`
	AssetID  uint64 `json:"asset_id,omitempty"`
	Blob     string `json:"blob,omitempty"` // a blob's keyed name, which says nothing
	KeyID    string `json:"key_id,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// VerifyReport is what Verify found, the JSON `tyst verify` prints.
type VerifyReport struct {
	OK           bool           `json:"ok"`
	Records      int            `json:"records"`
	Assets       int            `json:"assets"`
	Blobs        int            `json:"blobs"`
	BytesChecked int64          `json:"bytes_checked"`
	Audit        AuditReport    `json:"audit"`
	KeyUsage     map[string]int `json:"key_usage"`
	Problems     []Problem      `json:"problems"`
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Progress, when set, is called after each record with how many of
	// how many are done.
	Progress func(done, total int)
	// AuditHead, when set, is the audit.head of an earlier report
	// ("SEQ:HASH"): the log must still hold that event, unchanged.
	AuditHead string
}

// Verify checks the whole data directory (DESIGN §10): bbolt's
// consistency check; every record key unwraps and its data decrypts; every
// asset's blob exists, decrypts to its end and matches its SHA-256; every
// blob is referenced; the audit chain holds; and it counts the items each
// newsroom key covers. It reads every byte of every blob, a chunk at a
// time. The error is for a verify that could not run; problems are in the
// report.
func (db *DB) Verify(ctx context.Context, o VerifyOptions) (rep VerifyReport, err error) {
	defer func() { err = boundary("verify", err) }()
	var headSeq uint64
	var headHash string
	if o.AuditHead != "" {
		if headSeq, headHash, err = ParseAuditHead(o.AuditHead); err != nil {
			return rep, err
		}
	}
	rep.Problems = []Problem{}
	add := func(p Problem) { rep.Problems = append(rep.Problems, p) }
	if err := db.Check(); err != nil {
		add(Problem{Kind: ProblemDatabase, Detail: "bbolt consistency check failed"})
	}
	type work struct {
		record uint64
		asset  asset
	}
	var todo []work
	referenced := map[string]bool{}
	err = db.view(func(tx *bolt.Tx) error {
		total := tx.Bucket(bucketRecords).Stats().KeyN
		done := 0
		err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			rep.Records++
			done++
			if o.Progress != nil {
				o.Progress(done, total)
			}
			var row recordRow
			if err := json.Unmarshal(v, &row); err != nil {
				add(Problem{Kind: ProblemRecord, RecordID: btoi(k), Detail: "row is not JSON"})
				return nil
			}
			l, err := db.openRecord(row)
			if err != nil {
				p := Problem{Kind: ProblemRecordKey, RecordID: row.ID, KeyID: row.Access.KeyID, Detail: "record key does not unwrap"}
				if errors.Is(err, ErrKeyMissing) {
					p.Detail = "sealed under a newsroom key that is not configured"
				}
				add(p)
				return nil
			}
			var s recordSecrets
			if err := openJSON(l.key, l.row.Sealed, &s); err != nil {
				add(Problem{Kind: ProblemRecord, RecordID: row.ID, Detail: "sealed data does not decrypt"})
			}
			if l.acc.AssetID == 0 {
				return nil
			}
			a, err := db.loadAsset(tx, l)
			if err != nil {
				add(Problem{Kind: ProblemAsset, RecordID: row.ID, AssetID: l.acc.AssetID, Detail: "asset missing or does not open"})
				return nil
			}
			rep.Assets++
			referenced[a.row.Blob] = true
			todo = append(todo, work{record: row.ID, asset: a})
			return nil
		})
		if err != nil {
			return err
		}
		// Assets that no record references are referenced blobs too, for
		// the orphan check: their rows are the database's business.
		return tx.Bucket(bucketAssets).ForEach(func(_, v []byte) error {
			var a assetRow
			if json.Unmarshal(v, &a) == nil {
				referenced[a.Blob] = true
			}
			return nil
		})
	})
	if err != nil {
		return rep, err
	}
	for _, w := range todo {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		n, perr := db.checkBlob(w.asset)
		rep.BytesChecked += n
		if perr != nil {
			perr.RecordID = w.record
			add(*perr)
		}
	}
	infos, err := listObjects(db.blobs)
	if err != nil {
		return rep, err
	}
	rep.Blobs = len(infos)
	for _, i := range infos {
		if !referenced[i.Name] {
			add(Problem{Kind: ProblemOrphanBlob, Blob: i.Name})
		}
	}
	rep.Problems = append(rep.Problems, db.checkExports()...)
	if rep.Audit, err = db.VerifyAuditChain(ctx); err != nil {
		if ErrorCode(err) == CodeUnavailable {
			return rep, err
		}
		add(Problem{Kind: ProblemAuditChain, Detail: ErrorMessage(err)})
	}
	if headSeq > 0 {
		if p := db.checkAuditHead(headSeq, headHash); p != nil {
			add(*p)
		}
	}
	if rep.Audit.Unreadable > 0 {
		add(Problem{Kind: ProblemUnreadableRow, Detail: fmt.Sprintf("%d audit events are sealed under a key that is not configured", rep.Audit.Unreadable)})
	}
	if rep.KeyUsage, err = db.KeyUsage(ctx); err != nil {
		return rep, err
	}
	ids := make([]string, 0, len(rep.KeyUsage))
	for id := range rep.KeyUsage {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n := rep.KeyUsage[id]; n > 0 && !db.keys.Known(id) {
			add(Problem{Kind: ProblemUnreadableRow, KeyID: id, Detail: fmt.Sprintf("%d items are sealed under a newsroom key that is not configured", n)})
		}
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// checkBlob reads asset a's blob to its end, checking every chunk and the
// SHA-256; it returns the bytes read and a problem, if any.
func (db *DB) checkBlob(a asset) (int64, *Problem) {
	f, err := db.openBlob(a.row.Blob)
	if err != nil {
		return 0, &Problem{Kind: ProblemMissingBlob, AssetID: a.row.ID, Blob: a.row.Blob}
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, fstream.NewReader(io.NewSectionReader(f, 0, f.Size()), []*fernet.Key{a.key}))
	switch {
	case err != nil:
		return n, &Problem{Kind: ProblemCorruptBlob, AssetID: a.row.ID, Blob: a.row.Blob, Detail: "does not decrypt to its end"}
	case n != a.sec.SizeBytes || subtle.ConstantTimeCompare(h.Sum(nil), a.sec.SHA256) != 1:
		return n, &Problem{Kind: ProblemSHA256, AssetID: a.row.ID, Blob: a.row.Blob, Detail: "decrypts to other bytes than its SHA-256"}
	}
	return n, nil
}

// checkExports checks that every export package's file is there and that
// its last chunk (and so its size and file id) decrypts.
func (db *DB) checkExports() []Problem {
	var out []Problem
	db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExports).ForEach(func(k, v []byte) error {
			var row exportRow
			var sec exportSecrets
			if json.Unmarshal(v, &row) != nil || db.keys.openBox(row.Box, &sec) != nil {
				out = append(out, Problem{Kind: ProblemExport, Detail: "row does not open"})
				return nil
			}
			o, err := db.exports.Open(exportObjectName(sec.PackageID))
			if err != nil {
				out = append(out, Problem{Kind: ProblemExport, RecordID: sec.RecordID, Detail: "package file missing"})
				return nil
			}
			defer o.Close()
			if rs, err := fstream.NewReadSeeker(o, o.Size(), db.keys.All()); err != nil || rs.Size() != sec.Size {
				out = append(out, Problem{Kind: ProblemExport, RecordID: sec.RecordID, Detail: "package file does not decrypt"})
			}
			return nil
		})
	})
	return out
}
