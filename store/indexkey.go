package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var keyIndexKey = []byte("index_key")

// indexKeyRow is the index key as stored: sealed under the newsroom key. It
// doubles as the data directory's key check: a keyring that cannot open it
// is the wrong key for this data.
type indexKeyRow struct {
	Key []byte `json:"key"`
}

// WrongKeyError is returned by Open when no configured newsroom key opens
// the data directory. Its message names the key id the data needs, never a
// key or a path.
type WrongKeyError struct {
	KeyID string // the id of the key that sealed the data
}

func (e *WrongKeyError) Error() string {
	return fmt.Sprintf("no configured key opens this data: wrong key? This data directory needs the newsroom key with id %s "+
		"(give it with --key-file or PROJECT_FILES_KEY, or add it to PROJECT_FILES_OLD_KEYS)", e.KeyID)
}

// newIndexKey makes the index key of a new database.
func (db *DB) newIndexKey(meta *bolt.Bucket) error {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	b, err := db.keys.sealBox(indexKeyRow{Key: k})
	if err != nil {
		return err
	}
	db.indexKey = k
	return putJSON(meta, keyIndexKey, b)
}

// loadIndexKey opens the index key, refusing a keyring that cannot.
func (db *DB) loadIndexKey(meta *bolt.Bucket) error {
	var b box
	if ok, err := getJSON(meta, keyIndexKey, &b); err != nil {
		return err
	} else if !ok {
		return &Error{Code: CodeInternal, Message: "the database has no index key: it is damaged"}
	}
	var row indexKeyRow
	err := db.keys.openBox(b, &row)
	switch {
	case errors.Is(err, ErrKeyMissing), errors.Is(err, ErrCorrupt) && !db.keys.Known(b.KeyID):
		return &WrongKeyError{KeyID: b.KeyID}
	case err != nil:
		return &Error{Code: CodeInternal, Message: "the database's index key does not decrypt: the data or the key is damaged", Err: err}
	case len(row.Key) != 32:
		return &Error{Code: CodeInternal, Message: "the database's index key is damaged", Err: ErrCorrupt}
	}
	db.indexKey = row.Key
	return db.resealMeta(meta)
}

// resealMeta moves the database's own sealed items (index key, settings,
// setup token) to the primary key when an old key still covers them: they
// are few, and the data directory's key check should follow the newsroom
// key as soon as it is rotated.
func (db *DB) resealMeta(meta *bolt.Bucket) error {
	for _, k := range metaBoxes {
		b, ok, err := getBox(meta, k)
		if err != nil || !ok || b.KeyID == db.keys.PrimaryID() || !db.keys.Known(b.KeyID) {
			continue
		}
		raw, err := db.keys.open(b.Sealed)
		if err != nil {
			continue // damaged: left for verify to report
		}
		sealed, id, err := db.keys.seal(raw)
		if err != nil {
			return err
		}
		if err := putJSON(meta, k, box{KeyID: id, Sealed: sealed}); err != nil {
			return err
		}
	}
	return nil
}

// indexMAC returns the first 16 bytes of HMAC-SHA256(index key, kind || v):
// an index key that says nothing to whoever holds the disk.
func (db *DB) indexMAC(kind string, v []byte) []byte {
	m := hmac.New(sha256.New, db.indexKey)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(v)
	return m.Sum(nil)[:16]
}

// Kinds of keyed index entries.
const (
	indexUsername = "username"
	indexRecord   = "record"   // audit_by_record
	indexProject  = "project"  // project_records
	indexUntitled = "untitled" // day_projects
)

// getBox reads the box stored at key in b; false when absent.
func getBox(b *bolt.Bucket, key []byte) (box, bool, error) {
	var bx box
	raw := b.Get(key)
	if raw == nil {
		return bx, false, nil
	}
	if err := json.Unmarshal(raw, &bx); err != nil {
		return bx, true, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return bx, true, nil
}
