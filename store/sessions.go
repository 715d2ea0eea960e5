package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/auth"
)

// sessionRow is a login as stored under the hash of its secret. ExpiresAt
// stands in the clear only so purge can sweep old rows without the key;
// what Authenticate trusts is the sealed copy, which also names the hash it
// belongs to, so a session row cannot be minted or moved without the key.
type sessionRow struct {
	ExpiresAt time.Time `json:"expires_at"`
	Box       box       `json:"box"` // sessionSecrets
}

type sessionSecrets struct {
	Hash      []byte    `json:"hash"`
	UserID    uint64    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ErrSecondFactorRequired is the cause of the unauthorized answer to a
// correct password of an account with TOTP when no code was sent: the
// first step of a two-step login, not a failure.
var ErrSecondFactorRequired = errors.New("store: second factor required")

// Login checks a username, password and (when enrolled) a TOTP or recovery
// code, and starts a session whose secret it returns. Every failure is the
// same unauthorized error, audited as login_failed without the username
// (coalesced: one event per window and reason carries the count);
// a missing second factor is unauthorized with a message that asks for it.
func (db *DB) Login(ctx context.Context, username, password, code string) (secret string, u *User, err error) {
	defer func() { err = boundary("login", err) }()
	var row userRow
	verr := db.view(func(tx *bolt.Tx) error {
		var err error
		row, err = db.loadUserByName(tx, username)
		return err
	})
	bad := errorf(CodeUnauthorized, "wrong username or password")
	if verr != nil {
		if ErrorCode(verr) != CodeNotFound && !errors.Is(verr, ErrKeyMissing) && !errors.Is(verr, ErrCorrupt) {
			return "", nil, verr
		}
		if err := db.withHashSlot(ctx, func() { auth.DummyVerify(password) }); err != nil { // unknown usernames take as long as known ones
			return "", nil, err
		}
		return "", nil, db.loginFailed(bad, "credentials", username)
	}
	var match bool
	if err := db.withHashSlot(ctx, func() { match = auth.VerifyPassword(row.PasswordHash, password) }); err != nil {
		return "", nil, err
	}
	if !match || row.Disabled {
		return "", nil, db.loginFailed(bad, "credentials", username)
	}
	method := "password"
	if row.TOTPEnabled {
		if strings.TrimSpace(code) == "" {
			return "", nil, &Error{Code: CodeUnauthorized, Message: "second factor required: send totp", Err: ErrSecondFactorRequired}
		}
		method = "totp"
	}
	secret = auth.NewSecret("tyst_s_")
	now := db.now().UTC()
	err = db.update(func(tx *bolt.Tx) error {
		cur, err := db.loadUser(tx, row.ID) // again, inside the transaction
		if err != nil {
			return err
		}
		if cur.TOTPEnabled {
			ok, usedRecovery := checkSecondFactor(&cur, code, now)
			if !ok {
				return errorf(CodeUnauthorized, "wrong second factor code")
			}
			if usedRecovery {
				method = "recovery_code"
				if err := db.appendAudit(ctx, tx, AuditEvent{Action: ActionRecoveryCodeUsed, ActorID: cur.ID, Meta: map[string]any{"remaining": len(cur.Recovery)}}); err != nil {
					return err
				}
			}
			if err := db.putUser(tx, cur); err != nil {
				return err
			}
		}
		if err := db.putSession(tx, auth.SecretHash(secret), cur.ID, now); err != nil {
			return err
		}
		u = cur.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionLogin, ActorID: cur.ID, Meta: map[string]any{"method": method}})
	})
	if ErrorCode(err) == CodeUnauthorized {
		return "", nil, db.loginFailed(err, "second_factor", username)
	}
	if err != nil {
		return "", nil, err
	}
	return secret, u, nil
}

func (db *DB) putSession(tx *bolt.Tx, hash []byte, userID uint64, now time.Time) error {
	sec := sessionSecrets{Hash: hash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(db.sessionTTL)}
	b, err := db.keys.sealBox(sec)
	if err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketSessions), hash, sessionRow{ExpiresAt: sec.ExpiresAt, Box: b})
}

// openSession opens the session stored under hash h; false when there is
// none or it is not genuine.
func (db *DB) openSession(tx *bolt.Tx, h []byte) (sessionSecrets, bool, error) {
	var row sessionRow
	var sec sessionSecrets
	ok, err := getJSON(tx.Bucket(bucketSessions), h, &row)
	if err != nil || !ok {
		return sec, false, err
	}
	if err := db.keys.openBox(row.Box, &sec); err != nil || subtle.ConstantTimeCompare(sec.Hash, h) != 1 {
		db.log.Warn("session row refused: not sealed for its key")
		return sec, false, nil
	}
	return sec, true, nil
}

// loginFailed audits a failed login of username (coalesced, see
// loginFailedWindow; no username, no address) and returns e.
func (db *DB) loginFailed(e error, reason, username string) error {
	if err := db.failures.add(reason, username); err != nil {
		return err
	}
	return e
}

// checkSecondFactor checks code as a TOTP code, then as a recovery code,
// updating row (last step, used recovery code) for the caller to store.
func checkSecondFactor(row *userRow, code string, now time.Time) (ok, recovery bool) {
	if step, ok := auth.VerifyTOTP(row.TOTP, strings.TrimSpace(code), now, row.TOTPLastStep); ok {
		row.TOTPLastStep = step
		return true, false
	}
	h := auth.SecretHash(auth.NormalizeRecoveryCode(code))
	for i, want := range row.Recovery {
		if subtle.ConstantTimeCompare(want, h) == 1 {
			row.Recovery = append(row.Recovery[:i:i], row.Recovery[i+1:]...)
			return true, true
		}
	}
	return false, false
}

// Authenticate returns the principal of a session secret or API token.
// Returns unauthorized for an unknown, expired, revoked or forged secret
// or a disabled account; it checks the account on every call, so disabling
// it locks it out at once.
func (db *DB) Authenticate(ctx context.Context, secret string) (p *Principal, err error) {
	defer func() { err = boundary("authenticate", err) }()
	h := auth.SecretHash(secret)
	now := db.now()
	err = db.view(func(tx *bolt.Tx) error {
		p = &Principal{}
		if s, ok, err := db.openSession(tx, h); err != nil {
			return err
		} else if ok {
			if !now.Before(s.ExpiresAt) {
				return errorf(CodeUnauthorized, "session expired: log in again")
			}
			p.UserID, p.SessionID = s.UserID, h
		} else if t, ok, err := db.tokenByHash(tx, h); err != nil {
			return err
		} else if ok {
			p.UserID, p.TokenID, p.Scope = t.UserID, t.ID, t.Scope
		} else {
			return errorf(CodeUnauthorized, "not logged in, or the session or token is not valid")
		}
		row, err := db.loadUser(tx, p.UserID)
		if err != nil || row.Disabled {
			return errorf(CodeUnauthorized, "account is disabled or cannot be read")
		}
		p.Role = row.Role
		if row.Role == RoleAdmin && !row.TOTPEnabled {
			p.NeedsTOTP = db.settings(tx).RequireAdminTOTP
		}
		return nil
	})
	return p, err
}

// Logout ends the session of ctx's principal.
func (db *DB) Logout(ctx context.Context) (err error) {
	defer func() { err = boundary("logout", err) }()
	p := PrincipalFrom(ctx)
	if p == nil || p.SessionID == nil {
		return errorf(CodeValidation, "not a session")
	}
	return db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete(p.SessionID); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionLogout})
	})
}

func (db *DB) deleteSessionsOf(tx *bolt.Tx, userID uint64) error {
	b := tx.Bucket(bucketSessions)
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var row sessionRow
		var sec sessionSecrets
		if json.Unmarshal(v, &row) != nil || db.keys.openBox(row.Box, &sec) != nil || sec.UserID == userID {
			dead = append(dead, append([]byte(nil), k...)) // a row that does not open is worthless too
		}
		return nil
	})
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return err
}

// selfWithPassword checks that ctx's principal is a browser session (not a
// token) and that password is its account's current password: what
// enrolling or changing a second factor needs.
func (db *DB) selfWithPassword(ctx context.Context, password string) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, errorf(CodeUnauthorized, "not logged in")
	}
	if p.SessionID == nil {
		return nil, errorf(CodeForbidden, "a second factor is enrolled from a logged-in session, not with an API token")
	}
	var row userRow
	if err := db.view(func(tx *bolt.Tx) error {
		var err error
		row, err = db.loadUser(tx, p.UserID)
		return err
	}); err != nil {
		return nil, err
	}
	var match bool
	if err := db.withHashSlot(ctx, func() { match = auth.VerifyPassword(row.PasswordHash, password) }); err != nil {
		return nil, err
	}
	if !match {
		return nil, errorf(CodeForbidden, "current password is wrong")
	}
	return p, nil
}

// BeginTOTP makes a new pending TOTP secret for ctx's principal, a browser
// session whose current password is password, and returns its otpauth://
// URI; the factor is on only after ConfirmTOTP. Returns forbidden (a token,
// or a wrong password), conflict (already enrolled).
func (db *DB) BeginTOTP(ctx context.Context, issuer, password string) (uri string, err error) {
	defer func() { err = boundary("begin totp", err) }()
	p, err := db.selfWithPassword(ctx, password)
	if err != nil {
		return "", err
	}
	secret := auth.NewTOTPSecret()
	err = db.update(func(tx *bolt.Tx) error {
		row, err := db.loadUser(tx, p.UserID)
		if err != nil {
			return err
		}
		if row.TOTPEnabled {
			return errorf(CodeConflict, "a second factor is already enrolled; an admin can reset it")
		}
		row.TOTPPending = secret
		uri = auth.TOTPURI(issuer, row.Username, secret)
		return db.putUser(tx, row)
	})
	return uri, err
}

// ConfirmTOTP turns the pending factor on when code matches it, and returns
// ten one-time recovery codes, stored only as hashes. It needs a browser
// session. Returns validation_error for a wrong code, conflict when nothing
// is pending, forbidden for a token.
func (db *DB) ConfirmTOTP(ctx context.Context, code string) (recovery []string, err error) {
	defer func() { err = boundary("confirm totp", err) }()
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, errorf(CodeUnauthorized, "not logged in")
	}
	if p.SessionID == nil {
		return nil, errorf(CodeForbidden, "a second factor is enrolled from a logged-in session, not with an API token")
	}
	recovery = auth.NewRecoveryCodes(10)
	err = db.update(func(tx *bolt.Tx) error {
		row, err := db.loadUser(tx, p.UserID)
		if err != nil {
			return err
		}
		if row.TOTPEnabled || row.TOTPPending == nil {
			return errorf(CodeConflict, "no second factor is waiting for confirmation")
		}
		step, ok := auth.VerifyTOTP(row.TOTPPending, strings.TrimSpace(code), db.now(), 0)
		if !ok {
			return errorf(CodeValidation, "code does not match: check the authenticator's clock and try the next code")
		}
		row.TOTP, row.TOTPPending, row.TOTPEnabled, row.TOTPLastStep = row.TOTPPending, nil, true, step
		row.Recovery = nil
		for _, c := range recovery {
			row.Recovery = append(row.Recovery, auth.SecretHash(auth.NormalizeRecoveryCode(c)))
		}
		if err := db.putUser(tx, row); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionTOTPEnabled})
	})
	return recovery, err
}
