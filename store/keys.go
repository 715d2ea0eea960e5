package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"
)

// Keyring holds the newsroom keys: the primary one, which wraps, and old
// ones, which only unwrap (DESIGN §4). It never prints a key.
type Keyring struct {
	keys []*fernet.Key // keys[0] is the primary
	ids  []string
}

const (
	keyIDContext     = "tyst newsroom key id v1"
	recordKeyContext = "tyst blob name v1"
)

// parseKey accepts exactly the Fernet key form: 32 bytes in padded base64url.
func parseKey(s string) (*fernet.Key, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil || len(b) != len(fernet.Key{}) {
		return nil, errors.New("not a Fernet key")
	}
	var k fernet.Key
	copy(k[:], b)
	return &k, nil
}

// NewKeyring returns a keyring of the given keys (base64url Fernet keys), the
// first being the primary.
func NewKeyring(keys ...string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("store: no newsroom key")
	}
	kr := &Keyring{}
	for i, s := range keys {
		k, err := parseKey(s)
		if err != nil {
			return nil, fmt.Errorf("store: newsroom key %d is not a Fernet key", i+1)
		}
		kr.keys = append(kr.keys, k)
		kr.ids = append(kr.ids, keyID(k))
	}
	return kr, nil
}

// GenerateKey returns a new random Fernet key in base64url.
func GenerateKey() string {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		panic("store: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return k.Encode()
}

// keyID is a short fingerprint of a key: it names the key in records and
// reports without revealing it.
func keyID(k *fernet.Key) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(keyIDContext))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// PrimaryID returns the id of the primary key.
func (kr *Keyring) PrimaryID() string { return kr.ids[0] }

// IDs returns the ids of all keys, the primary first.
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.ids...) }

// Primary returns the primary key, for encrypting export packages and dumps
// under the newsroom key.
func (kr *Keyring) Primary() *fernet.Key { return kr.keys[0] }

// All returns every key, for decrypting.
func (kr *Keyring) All() []*fernet.Key { return kr.keys }

// seal encrypts plain under the primary key; the token carries the epoch as
// its time (DESIGN §4).
func (kr *Keyring) seal(plain []byte) ([]byte, string, error) {
	tok, err := sealWith(kr.keys[0], plain)
	return tok, kr.ids[0], err
}

// open decrypts a token sealed under any key of the ring.
func (kr *Keyring) open(tok []byte) ([]byte, error) {
	return openWith(tok, kr.keys...)
}

// KeyUsage returns how many stored items each newsroom key id covers:
// records (their keys and access), projects, accounts, sessions, tokens,
// audit event bodies and the database's own sealed items (index key,
// settings, setup token, signing key). An id that is not in the keyring
// means items that cannot be read until its key is configured
// (PROJECT_FILES_OLD_KEYS); `tyst rekey` moves everything to the primary.
func (db *DB) KeyUsage(ctx context.Context) (usage map[string]int, err error) {
	defer func() { err = boundary("key usage", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	usage = map[string]int{}
	for _, id := range db.keys.ids {
		usage[id] = 0
	}
	err = db.view(func(tx *bolt.Tx) error {
		db.exportKeyUsage(tx, usage)
		// Every sealed row holds one box, whose key id is the only
		// "key_id" in it (sealed tokens are base64url: no quotes), so a
		// byte search counts a row without decoding it: this runs at
		// every start and for every GET /status.
		for name := range boxField {
			err := tx.Bucket([]byte(name)).ForEach(func(_, v []byte) error {
				if id, ok := rowKeyID(v); ok {
					usage[id]++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range metaBoxes {
			if id, ok := rowKeyID(meta.Get(k)); ok {
				usage[id]++
			}
		}
		return nil
	})
	return usage, err
}

var keyIDField = []byte(`"key_id":"`)

// rowKeyID returns the key id of the box in a stored row; false for a row
// without one (a redacted audit event).
func rowKeyID(v []byte) (string, bool) {
	i := bytes.Index(v, keyIDField)
	if i < 0 {
		return "", false
	}
	rest := v[i+len(keyIDField):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 64 {
		return "", false
	}
	return string(rest[:j]), true
}

// boxField names where a bucket's rows keep their box.
var boxField = map[string]string{
	string(bucketRecords):    "access",
	string(bucketProjects):   "box",
	string(bucketUsers):      "box",
	string(bucketSessions):   "box",
	string(bucketTokens):     "box",
	string(bucketAudit):      "body",
	string(bucketReceipts):   "box",
	string(bucketTombstones): "box",
	string(bucketExports):    "box",
}

// eachBox calls fn with every item sealed under the newsroom key: the
// bucket, the row's key and its box.
func (db *DB) eachBox(tx *bolt.Tx, fn func(bucket, key []byte, b box) error) error {
	for name, field := range boxField {
		err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			var row map[string]json.RawMessage
			if err := json.Unmarshal(v, &row); err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			raw, ok := row[field]
			if !ok || string(raw) == "null" {
				return nil // a redacted audit event
			}
			var b box
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return fn([]byte(name), k, b)
		})
		if err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	for _, k := range metaBoxes {
		b, ok, err := getBox(meta, k)
		if err != nil {
			return err
		}
		if ok {
			if err := fn(bucketMeta, k, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// metaBoxes are the keys of the meta bucket that hold a box.
var metaBoxes = [][]byte{keyIndexKey, settingsKey, setupTokenKey, signingKeyKey}

// Known reports whether id names a key of the ring.
func (kr *Keyring) Known(id string) bool {
	for _, k := range kr.ids {
		if k == id {
			return true
		}
	}
	return false
}
