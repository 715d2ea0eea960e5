package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	userIndexContext = "tyst username index v1\x00"
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

// newRecordKey returns a new random record key and its wrapped form.
func (kr *Keyring) newRecordKey() (*fernet.Key, []byte, string, error) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return nil, nil, "", err
	}
	wrapped, id, err := kr.seal(k[:])
	return &k, wrapped, id, err
}

// unwrap returns the record key in wrapped.
func (kr *Keyring) unwrap(wrapped []byte) (*fernet.Key, error) {
	b, err := kr.open(wrapped)
	if err != nil {
		return nil, ErrKeyMissing
	}
	if len(b) != len(fernet.Key{}) {
		return nil, ErrCorrupt
	}
	var k fernet.Key
	copy(k[:], b)
	return &k, nil
}

// KeyUsage returns how many stored items each newsroom key id covers: the
// wrapped record keys, the sealed accounts and the sealed project names. An id that is not in
// the keyring means items that cannot be read until its key is configured
// (PROJECT_FILES_OLD_KEYS).
func (db *DB) KeyUsage(ctx context.Context) (usage map[string]int, err error) {
	defer func() { err = boundary("key usage", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	usage = map[string]int{}
	for _, id := range db.keys.ids {
		usage[id] = 0
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		count := func(bucket []byte) error {
			return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
				var item struct {
					KeyID string `json:"key_id"`
				}
				if err := json.Unmarshal(v, &item); err != nil {
					return err
				}
				usage[item.KeyID]++
				return nil
			})
		}
		if err := count(bucketRecords); err != nil {
			return err
		}
		if err := count(bucketUsers); err != nil {
			return err
		}
		return count(bucketProjects)
	})
	return usage, err
}

// nameIndexes returns the keys of the username index for name under each
// newsroom key, the primary first: an HMAC, so the index shows no names.
func (kr *Keyring) nameIndexes(name string) [][]byte {
	name = strings.ToLower(strings.TrimSpace(name))
	out := make([][]byte, len(kr.keys))
	for i, k := range kr.keys {
		m := hmac.New(sha256.New, k[:])
		m.Write([]byte(userIndexContext))
		m.Write([]byte(name))
		out[i] = m.Sum(nil)
	}
	return out
}

// Known reports whether id names a key of the ring.
func (kr *Keyring) Known(id string) bool {
	for _, k := range kr.ids {
		if k == id {
			return true
		}
	}
	return false
}
