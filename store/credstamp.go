package store

import (
	"context"
	"crypto/sha256"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// CredentialStamp returns a value that changes whenever what a login of
// account username proves changes: its password is reset, a second factor
// is enrolled or reset, the account is disabled (or enabled again). It does
// not change at a login, a role change or a rekey. It is the SHA-256 of the
// stored password hash, the enrolled second-factor secret and the disabled
// flag, so it reveals none of them; the API binds device cookies to it. It
// never leaves the server. Being derived from the credentials, it follows
// every way they change without a counter to keep; undoing a change (a
// second factor enrolled, then reset) brings the earlier stamp back, which
// is sound: a cookie issued then was issued for the credentials in force
// again. Returns not_found for an unknown or unreadable
// account.
func (db *DB) CredentialStamp(ctx context.Context, username string) (stamp []byte, err error) {
	defer func() { err = boundary("credential stamp", err) }()
	var row userRow
	err = db.view(func(tx *bolt.Tx) error {
		var err error
		row, err = db.loadUserByName(tx, username)
		return err
	})
	if err != nil {
		if ErrorCode(err) == CodeNotFound || errors.Is(err, ErrKeyMissing) || errors.Is(err, ErrCorrupt) {
			return nil, errorf(CodeNotFound, "user not found")
		}
		return nil, err
	}
	disabled := byte(0)
	if row.Disabled {
		disabled = 1
	}
	h := sha256.New()
	h.Write([]byte("tyst credential stamp v1\x00"))
	h.Write([]byte(row.PasswordHash)) // PHC text: no NUL in it
	h.Write([]byte{0, disabled})
	h.Write(row.TOTP) // the rest
	return h.Sum(nil), nil
}
