package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RekeyStats says what Rekey did.
type RekeyStats struct {
	Resealed int            `json:"resealed"`  // items sealed again under the primary key
	Files    int            `json:"files"`     // files encrypted again (export packages, debug dumps)
	Skipped  int            `json:"skipped"`   // items no configured key opens (still under their key)
	KeyUsage map[string]int `json:"key_usage"` // items per key id afterwards
}

// rekeyBatch is how many items one transaction re-seals: a crash loses at
// most one batch's work, which the next run redoes.
const rekeyBatch = 500

// RekeyOptions configure Rekey.
type RekeyOptions struct {
	// Progress, when set, is called after each batch with how many of how
	// many items are done.
	Progress func(done, total int)
}

// Rekey seals every item that an old newsroom key covers again under the
// primary key (DESIGN §10): record keys and access, projects, accounts,
// sessions, tokens, receipts (with their reasons), tombstones, audit event
// bodies, the index key, the settings and the signing key; and encrypts
// export packages and debug dumps again. Blobs are not touched: they are
// under their own keys, which only the re-sealed record keys wrap. Each
// batch is one transaction, and items already under the primary key are
// skipped, so an interrupted rekey run again finishes the job with
// nothing lost. Items no configured key opens are counted in Skipped.
func (db *DB) Rekey(ctx context.Context, o RekeyOptions) (st RekeyStats, err error) {
	defer func() { err = boundary("rekey", err) }()
	type item struct{ bucket, key []byte }
	var todo []item
	primary := db.keys.PrimaryID()
	err = db.view(func(tx *bolt.Tx) error {
		return db.eachBox(tx, func(bucket, key []byte, b box) error {
			if b.KeyID != primary {
				todo = append(todo, item{append([]byte(nil), bucket...), append([]byte(nil), key...)})
			}
			return nil
		})
	})
	if err != nil {
		return st, err
	}
	for start := 0; start < len(todo); start += rekeyBatch {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		batch := todo[start:min(start+rekeyBatch, len(todo))]
		resealed, skipped := 0, 0
		err := db.update(func(tx *bolt.Tx) error {
			resealed, skipped = 0, 0
			for _, it := range batch {
				ok, err := db.resealItem(tx, it.bucket, it.key)
				if err != nil {
					return err
				}
				if ok {
					resealed++
				} else {
					skipped++
				}
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		st.Resealed += resealed
		st.Skipped += skipped
		if err := db.faultAt(FaultRekeyBatch); err != nil {
			return st, err
		}
		if o.Progress != nil {
			o.Progress(start+len(batch), len(todo))
		}
	}
	files, err := db.rekeyFiles(ctx)
	st.Files = files
	if err != nil {
		return st, err
	}
	st.KeyUsage, err = db.KeyUsage(ctx)
	db.log.Info("rekey finished", "resealed", st.Resealed, "files", st.Files, "skipped", st.Skipped)
	return st, err
}

// resealItem seals the box of the row at key in bucket again under the
// primary key; false when no configured key opens it (or it is gone).
func (db *DB) resealItem(tx *bolt.Tx, bucket, key []byte) (bool, error) {
	b := tx.Bucket(bucket)
	v := b.Get(key)
	if v == nil {
		return false, nil
	}
	if string(bucket) == string(bucketMeta) {
		var bx box
		if err := json.Unmarshal(v, &bx); err != nil {
			return false, nil
		}
		nb, ok, err := db.resealBox(bx)
		if err != nil || !ok {
			return false, err
		}
		return true, putJSON(b, key, nb)
	}
	field := boxField[string(bucket)]
	var row map[string]json.RawMessage
	if err := json.Unmarshal(v, &row); err != nil {
		return false, nil
	}
	var bx box
	if raw, ok := row[field]; !ok || string(raw) == "null" || json.Unmarshal(raw, &bx) != nil {
		return false, nil
	}
	nb, ok, err := db.resealBox(bx)
	if err != nil || !ok {
		return false, err
	}
	raw, err := json.Marshal(nb)
	if err != nil {
		return false, err
	}
	row[field] = raw
	return true, putJSON(b, key, row)
}

// resealBox opens bx with any configured key and seals its plaintext, as
// it is, under the primary key.
func (db *DB) resealBox(bx box) (box, bool, error) {
	if bx.KeyID == db.keys.PrimaryID() {
		return bx, true, nil
	}
	plain, err := db.keys.open(bx.Sealed)
	if errors.Is(err, ErrCorrupt) {
		return bx, false, nil // no configured key opens it
	}
	if err != nil {
		return bx, false, err
	}
	sealed, id, err := db.keys.seal(plain)
	if err != nil {
		return bx, false, fmt.Errorf("seal: %w", err)
	}
	return box{KeyID: id, Sealed: sealed}, true, nil
}
