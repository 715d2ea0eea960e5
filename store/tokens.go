package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/auth"
)

// MaxTokenLabelRunes is the longest token label.
const MaxTokenLabelRunes = 64

// Token is an API token's metadata; the secret is shown once, at creation.
type Token struct {
	ID        uint64
	UserID    uint64
	Scope     string
	Label     string // e.g. "field box 3"
	CreatedAt time.Time
	// Unreadable is true in lists for a token sealed under a key that is
	// not configured; only ID is set then, and it does not authenticate.
	Unreadable bool
}

// tokenRow is a token as stored: its id, and the rest sealed under the
// newsroom key together with the hash of its secret, so a token cannot be
// forged, widened or moved to another user without the key.
type tokenRow struct {
	ID  uint64 `json:"id"`
	Box box    `json:"box"` // tokenSecrets
}

type tokenSecrets struct {
	ID        uint64    `json:"id"`
	UserID    uint64    `json:"user_id"`
	Scope     string    `json:"scope,omitempty"`
	Label     string    `json:"label,omitempty"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

func (t tokenSecrets) token() *Token {
	return &Token{ID: t.ID, UserID: t.UserID, Scope: t.Scope, Label: t.Label, CreatedAt: t.CreatedAt}
}

func (db *DB) openToken(v []byte) (tokenSecrets, error) {
	var row tokenRow
	var t tokenSecrets
	if err := json.Unmarshal(v, &row); err != nil {
		return t, ErrCorrupt
	}
	if err := db.keys.openBox(row.Box, &t); err != nil {
		return t, err
	}
	if t.ID != row.ID {
		return t, ErrCorrupt
	}
	return t, nil
}

// tokenByHash finds the token whose secret hashes to h; false when there
// is none or its row is not genuine.
func (db *DB) tokenByHash(tx *bolt.Tx, h []byte) (tokenSecrets, bool, error) {
	id := tx.Bucket(bucketTokenHashes).Get(h)
	if id == nil {
		return tokenSecrets{}, false, nil
	}
	v := tx.Bucket(bucketTokens).Get(id)
	if v == nil {
		return tokenSecrets{}, false, nil
	}
	t, err := db.openToken(v)
	if err != nil || subtle.ConstantTimeCompare(t.Hash, h) != 1 || t.ID != btoi(id) {
		db.log.Warn("token row refused: not sealed for its secret", "token_id", btoi(id))
		return t, false, nil
	}
	return t, true, nil
}

// CreateToken makes an API token for the user named username with scope ""
// (the user's full role) or ScopeStream and an optional label, and returns
// its secret, which is stored only as a hash. Returns not_found,
// validation_error.
func (db *DB) CreateToken(ctx context.Context, username, scope, label string) (secret string, t *Token, err error) {
	defer func() { err = boundary("create token", err) }()
	if scope != "" && scope != ScopeStream {
		return "", nil, errorf(CodeValidation, "scope must be empty or stream")
	}
	if label != "" {
		if label, err = cleanText("label", label, MaxTokenLabelRunes, false); err != nil {
			return "", nil, err
		}
	}
	secret = auth.NewSecret("tyst_t_")
	err = db.update(func(tx *bolt.Tx) error {
		u, err := db.loadUserByName(tx, username)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errorf(CodeValidation, "account is disabled")
		}
		b := tx.Bucket(bucketTokens)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		sec := tokenSecrets{ID: id, UserID: u.ID, Scope: scope, Label: label, Hash: auth.SecretHash(secret), CreatedAt: db.now().UTC()}
		bx, err := db.keys.sealBox(sec)
		if err != nil {
			return err
		}
		if err := putJSON(b, itob(id), tokenRow{ID: id, Box: bx}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokenHashes).Put(sec.Hash, itob(id)); err != nil {
			return err
		}
		t = sec.token()
		meta := map[string]any{"token_id": id, "user_id": u.ID}
		if scope != "" {
			meta["scope"] = scope
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionTokenCreated, Meta: meta})
	})
	return secret, t, err
}

// Tokens returns every API token's metadata.
func (db *DB) Tokens(ctx context.Context) (ts []*Token, err error) {
	defer func() { err = boundary("tokens", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			t, err := db.openToken(v)
			if err != nil {
				ts = append(ts, &Token{ID: btoi(k), Unreadable: true})
				return nil
			}
			ts = append(ts, t.token())
			return nil
		})
	})
	return ts, err
}

// RevokeToken deletes token id; it stops working at once. Returns not_found.
func (db *DB) RevokeToken(ctx context.Context, id uint64) (err error) {
	defer func() { err = boundary("revoke token", err) }()
	return db.update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(itob(id))
		if v == nil {
			return errorf(CodeNotFound, "token not found")
		}
		if err := db.deleteToken(tx, id, v); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionTokenRevoked, Meta: map[string]any{"token_id": id}})
	})
}

// deleteToken removes token id (stored as v) and its hash entry.
func (db *DB) deleteToken(tx *bolt.Tx, id uint64, v []byte) error {
	if t, err := db.openToken(v); err == nil {
		if err := tx.Bucket(bucketTokenHashes).Delete(t.Hash); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketTokens).Delete(itob(id))
}

// deleteTokensOf revokes every token of userID and returns how many.
func (db *DB) deleteTokensOf(tx *bolt.Tx, userID uint64) (int, error) {
	type dead struct {
		id uint64
		v  []byte
	}
	var ds []dead
	err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		if t, err := db.openToken(v); err == nil && t.UserID == userID {
			ds = append(ds, dead{btoi(k), append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if err := db.deleteToken(tx, d.id, d.v); err != nil {
			return 0, err
		}
	}
	return len(ds), nil
}
