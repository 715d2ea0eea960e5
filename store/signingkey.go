package store

import (
	bolt "go.etcd.io/bbolt"

	"tyst/store/signing"
)

var signingKeyKey = []byte("signing_key")

// signingKeyRow is the newsroom's signing key, sealed under the newsroom
// key (a rotation carries it along).
type signingKeyRow struct {
	Kind string `json:"kind"` // "signing"
	Key  []byte `json:"key"`
}

// loadSigningKey opens the signing key, generating it on first start.
func (db *DB) loadSigningKey(meta *bolt.Bucket) error {
	b, ok, err := getBox(meta, signingKeyKey)
	if err != nil {
		return err
	}
	if !ok {
		k, err := signing.Generate()
		if err != nil {
			return err
		}
		bx, err := db.keys.sealBox(signingKeyRow{Kind: "signing", Key: k.Marshal()})
		if err != nil {
			return err
		}
		db.signer = k
		return putJSON(meta, signingKeyKey, bx)
	}
	var row signingKeyRow
	if err := db.keys.openBox(b, &row); err != nil || row.Kind != "signing" {
		return &Error{Code: CodeInternal, Message: "the signing key does not open: the data is damaged", Err: ErrCorrupt}
	}
	k, err := signing.Parse(row.Key)
	if err != nil {
		return &Error{Code: CodeInternal, Message: "the signing key is damaged", Err: ErrCorrupt}
	}
	db.signer = k
	return nil
}

// SigningKey returns the newsroom's signing key: its fingerprint and
// allowed_signers line are public, for the newsroom to publish.
func (db *DB) SigningKey() *signing.Key { return db.signer }
