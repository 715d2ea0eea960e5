package store

import (
	"context"
	"crypto/subtle"

	bolt "go.etcd.io/bbolt"

	"tyst/store/auth"
)

// Settings are the newsroom-wide account settings.
type Settings struct {
	RequireAdminTOTP bool `json:"require_admin_totp"`
}

var (
	setupTokenKey = []byte("setup_token")
	settingsKey   = []byte("settings")
)

// settingsRow is Settings sealed under the newsroom key, written when the
// database is made, so a missing row is a tampered database too.
type settingsRow struct {
	Kind string `json:"kind"` // "settings": binds the box to its row
	Settings
}

type setupRow struct {
	Kind string `json:"kind"` // "setup"
	Hash []byte `json:"hash"`
}

func (db *DB) putSettings(tx *bolt.Tx, st Settings) error {
	b, err := db.keys.sealBox(settingsRow{Kind: "settings", Settings: st})
	if err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketMeta), settingsKey, b)
}

// settings reads the settings. A row that is missing, altered or under a
// key that is not configured reads as the strictest settings, so deleting
// or editing it turns no protection off.
func (db *DB) settings(tx *bolt.Tx) Settings {
	strict := Settings{RequireAdminTOTP: true}
	b, ok, err := getBox(tx.Bucket(bucketMeta), settingsKey)
	if err != nil || !ok {
		db.log.Warn("settings row missing or damaged: using the strictest settings")
		return strict
	}
	var row settingsRow
	if err := db.keys.openBox(b, &row); err != nil || row.Kind != "settings" {
		db.log.Warn("settings row does not open: using the strictest settings")
		return strict
	}
	return row.Settings
}

// Settings returns the account settings.
func (db *DB) Settings(ctx context.Context) (st Settings, err error) {
	defer func() { err = boundary("settings", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		st = db.settings(tx)
		return nil
	})
	return st, err
}

// UpdateSettings stores st.
func (db *DB) UpdateSettings(ctx context.Context, st Settings) (err error) {
	defer func() { err = boundary("update settings", err) }()
	return db.update(func(tx *bolt.Tx) error {
		if err := db.putSettings(tx, st); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionSettingsUpdated, Meta: map[string]any{"require_admin_totp": st.RequireAdminTOTP}})
	})
}

// HasUsers reports whether any account exists (setup is then closed).
func (db *DB) HasUsers(ctx context.Context) (ok bool, err error) {
	defer func() { err = boundary("has users", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketUsers).Cursor().First()
		ok = k != nil
		return nil
	})
	return ok, err
}

// NewSetupToken makes a one-time setup token for the first admin, replacing
// any earlier one. Returns forbidden once an account exists.
func (db *DB) NewSetupToken(ctx context.Context) (token string, err error) {
	defer func() { err = boundary("setup token", err) }()
	token = auth.NewSecret("tyst_setup_")
	err = db.update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketUsers).Cursor().First(); k != nil {
			return errorf(CodeForbidden, "setup is closed: accounts exist")
		}
		b, err := db.keys.sealBox(setupRow{Kind: "setup", Hash: auth.SecretHash(token)})
		if err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketMeta), setupTokenKey, b)
	})
	return token, err
}

// CompleteSetup creates the first admin with the setup token and closes
// setup for good. Returns forbidden when setup is closed, unauthorized for a
// wrong token, validation_error for a bad username or password. Refused
// attempts are audited (setup_refused), at most one event a minute.
func (db *DB) CompleteSetup(ctx context.Context, token string, n NewUser) (u *User, err error) {
	defer func() { err = boundary("complete setup", err) }()
	// Check before the costly hash, so closed setup or a wrong token costs
	// nothing; check again in the transaction that uses the token.
	if err := db.view(func(tx *bolt.Tx) error { return db.checkSetup(tx, token) }); err != nil {
		return nil, db.setupRefused(ctx, err)
	}
	n.Role = RoleAdmin
	if err := n.validate(); err != nil {
		return nil, err
	}
	hash, err := db.hashPassword(ctx, n.Password)
	if err != nil {
		return nil, err
	}
	err = db.update(func(tx *bolt.Tx) error {
		if err := db.checkSetup(tx, token); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Delete(setupTokenKey); err != nil {
			return err
		}
		row, err := db.putNewUser(tx, n, hash)
		if err != nil {
			return err
		}
		u = row.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionSetupCompleted, ActorID: row.ID, Meta: map[string]any{"user_id": row.ID}})
	})
	return u, err
}

// setupRefused audits a refused setup attempt (coalesced) and returns e.
func (db *DB) setupRefused(ctx context.Context, e error) error {
	reason := "closed"
	if ErrorCode(e) == CodeUnauthorized {
		reason = "bad_token"
	}
	if !db.refusals.due(reason, db.now()) {
		return e
	}
	if err := db.update(func(tx *bolt.Tx) error {
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionSetupRefused, Meta: map[string]any{"reason": reason}})
	}); err != nil {
		db.refusals.forget(reason)
		return err
	}
	return e
}

// checkSetup returns forbidden once accounts exist and unauthorized unless
// token is the setup token.
func (db *DB) checkSetup(tx *bolt.Tx, token string) error {
	if k, _ := tx.Bucket(bucketUsers).Cursor().First(); k != nil {
		return errorf(CodeForbidden, "setup is closed: accounts exist")
	}
	bad := errorf(CodeUnauthorized, "setup token is not valid")
	b, ok, err := getBox(tx.Bucket(bucketMeta), setupTokenKey)
	if err != nil || !ok {
		return bad
	}
	var row setupRow
	if err := db.keys.openBox(b, &row); err != nil || row.Kind != "setup" ||
		subtle.ConstantTimeCompare(row.Hash, auth.SecretHash(token)) != 1 {
		return bad
	}
	return nil
}
