package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/auth"
)

// Roles (DESIGN §6): each includes what the one before it may do.
const (
	RoleViewer = "viewer" // read, listen
	RoleEditor = "editor" // + create, upload, stream, edit, encrypted export, destroy
	RoleAdmin  = "admin"  // + decrypted export, hold/retention, users, tokens, audit log
)

// ScopeStream limits an API token to creating records, uploading and
// streaming.
const ScopeStream = "stream"

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 12 * time.Hour

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

func roleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// RoleAtLeast reports whether role includes min.
func RoleAtLeast(role, min string) bool { return roleRank(role) >= roleRank(min) && roleRank(min) > 0 }

// Principal is who makes a request: a user through a session or a token.
type Principal struct {
	UserID    uint64
	Role      string
	Scope     string // "" for full access, ScopeStream for stream tokens
	SessionID []byte // hash of the session secret, for logout; nil for tokens
	TokenID   uint64 // 0 for sessions
	// NeedsTOTP is true for an admin who must enrol a second factor before
	// doing anything else (Settings.RequireAdminTOTP).
	NeedsTOTP bool
}

// LogValue logs a principal as its user id only.
func (p *Principal) LogValue() slog.Value { return slog.Uint64Value(p.UserID) }

type principalKey struct{}

// WithPrincipal returns a context whose operations run as p: audited with
// its user id and limited to what p may see. Without a principal, store
// calls run as the system (CLI tools).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the context's principal, or nil for the system.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// canSee reports whether ctx's principal may see record row: a sensitive
// record only its creator and admins (DESIGN §6).
func canSee(ctx context.Context, row recordRow) bool {
	p := PrincipalFrom(ctx)
	if p == nil || row.Sensitivity != SensitivitySensitive {
		return true
	}
	return p.Role == RoleAdmin || p.UserID == row.CreatedBy
}

// User is an account.
type User struct {
	ID          uint64
	Username    string
	Role        string
	Disabled    bool
	TOTPEnabled bool
	CreatedAt   time.Time
	// Unreadable is true in lists for an account sealed under a key that is
	// not configured; Username is then "".
	Unreadable bool
}

// LogValue logs a user as its id only: usernames stay out of logs.
func (u *User) LogValue() slog.Value { return slog.Uint64Value(u.ID) }

// userRow is an account in memory. In the database only the id, role,
// flags and times stand in the clear; the username, password hash, TOTP
// secret and recovery-code hashes are sealed under the newsroom key
// (storedUser), and the username index is keyed by it, so a copy of the
// data directory without the key shows no names and nothing to crack.
type userRow struct {
	ID           uint64
	Username     string
	Role         string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	TOTP         []byte // the enrolled secret
	TOTPPending  []byte // a secret waiting for ConfirmTOTP
	TOTPEnabled  bool
	TOTPLastStep int64    // the last step used: a code works once
	Recovery     [][]byte // SHA-256 of each unused recovery code
}

// storedUser is a userRow as stored.
type storedUser struct {
	ID          uint64    `json:"id"`
	Role        string    `json:"role"`
	Disabled    bool      `json:"disabled,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	TOTPEnabled bool      `json:"totp_enabled,omitempty"`
	KeyID       string    `json:"key_id"`
	Sealed      []byte    `json:"sealed"`
}

type userSecrets struct {
	Username     string   `json:"username"`
	PasswordHash string   `json:"password_hash"`
	TOTP         []byte   `json:"totp,omitempty"`
	TOTPPending  []byte   `json:"totp_pending,omitempty"`
	TOTPLastStep int64    `json:"totp_last_step,omitempty"`
	Recovery     [][]byte `json:"recovery,omitempty"`
}

func (db *DB) putUser(tx *bolt.Tx, u userRow) error {
	raw, err := json.Marshal(userSecrets{Username: u.Username, PasswordHash: u.PasswordHash, TOTP: u.TOTP,
		TOTPPending: u.TOTPPending, TOTPLastStep: u.TOTPLastStep, Recovery: u.Recovery})
	if err != nil {
		return err
	}
	sealed, keyID, err := db.keys.seal(raw)
	if err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bucketUsers), itob(u.ID), storedUser{ID: u.ID, Role: u.Role, Disabled: u.Disabled,
		CreatedAt: u.CreatedAt, TOTPEnabled: u.TOTPEnabled, KeyID: keyID, Sealed: sealed}); err != nil {
		return err
	}
	// The username index follows the row to the primary key, so the row's
	// key id also says which key the index entry needs.
	names := tx.Bucket(bucketUsersByName)
	idx := db.keys.nameIndexes(u.Username)
	for _, k := range idx[1:] {
		if id := names.Get(k); id != nil && btoi(id) == u.ID {
			if err := names.Delete(k); err != nil {
				return err
			}
		}
	}
	return names.Put(idx[0], itob(u.ID))
}

func (db *DB) decodeUser(v []byte) (userRow, error) {
	var st storedUser
	if err := json.Unmarshal(v, &st); err != nil {
		return userRow{}, err
	}
	raw, err := db.keys.open(st.Sealed)
	if err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", st.ID, ErrKeyMissing)
	}
	var sec userSecrets
	if err := json.Unmarshal(raw, &sec); err != nil {
		return userRow{}, err
	}
	return userRow{ID: st.ID, Username: sec.Username, Role: st.Role, PasswordHash: sec.PasswordHash, Disabled: st.Disabled,
		CreatedAt: st.CreatedAt, TOTP: sec.TOTP, TOTPPending: sec.TOTPPending, TOTPEnabled: st.TOTPEnabled,
		TOTPLastStep: sec.TOTPLastStep, Recovery: sec.Recovery}, nil
}

func (u userRow) user() *User {
	return &User{ID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.Disabled, TOTPEnabled: u.TOTPEnabled, CreatedAt: u.CreatedAt}
}

type sessionRow struct {
	UserID    uint64    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Token is an API token's metadata; the secret is shown once, at creation.
type Token struct {
	ID        uint64
	UserID    uint64
	Scope     string
	CreatedAt time.Time
}

type tokenRow struct {
	ID        uint64    `json:"id"`
	UserID    uint64    `json:"user_id"`
	Scope     string    `json:"scope,omitempty"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// Settings are the newsroom-wide account settings.
type Settings struct {
	RequireAdminTOTP bool `json:"require_admin_totp"`
}

// ErrSecondFactorRequired is the cause of the unauthorized answer to a
// correct password of an account with TOTP when no code was sent: the
// first step of a two-step login, not a failure.
var ErrSecondFactorRequired = errors.New("store: second factor required")

var (
	setupTokenKey = []byte("setup_token")
	settingsKey   = []byte("settings")
)

// NewUser is what CreateUser needs.
type NewUser struct {
	Username string
	Password string
	Role     string
}

func (n *NewUser) validate() error {
	n.Username = strings.ToLower(strings.TrimSpace(n.Username))
	if !usernamePattern.MatchString(n.Username) {
		return errorf(CodeValidation, "username must be 2 to 64 characters: a-z, 0-9, dot, dash, underscore")
	}
	if roleRank(n.Role) == 0 {
		return errorf(CodeValidation, "role must be viewer, editor or admin")
	}
	if err := auth.CheckPassword(n.Password); err != nil {
		return errorf(CodeValidation, err.Error())
	}
	return nil
}

// maxConcurrentHashes bounds the argon2id computations running at once:
// each takes 19 MiB, so a burst of logins cannot exhaust a small box.
const maxConcurrentHashes = 2

// withHashSlot runs f, an argon2id computation, when a slot is free, or
// gives up when ctx ends first (a client that went away holds no slot).
func (db *DB) withHashSlot(ctx context.Context, f func()) error {
	select {
	case db.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return &Error{Code: CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
	}
	defer func() { <-db.hashSlots }()
	f()
	return nil
}

func (db *DB) hashPassword(ctx context.Context, password string) (hash string, err error) {
	if serr := db.withHashSlot(ctx, func() { hash, err = auth.HashPassword(password) }); serr != nil {
		return "", serr
	}
	return hash, err
}

// HasUsers reports whether any account exists (setup is then closed).
func (db *DB) HasUsers(ctx context.Context) (ok bool, err error) {
	defer func() { err = boundary("has users", err) }()
	err = db.bolt.View(func(tx *bolt.Tx) error {
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
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketUsers).Cursor().First(); k != nil {
			return errorf(CodeForbidden, "setup is closed: accounts exist")
		}
		return tx.Bucket(bucketMeta).Put(setupTokenKey, auth.SecretHash(token))
	})
	return token, err
}

// CompleteSetup creates the first admin with the setup token and closes
// setup for good. Returns forbidden when setup is closed, unauthorized for a
// wrong token, validation_error for a bad username or password.
func (db *DB) CompleteSetup(ctx context.Context, token string, n NewUser) (u *User, err error) {
	defer func() { err = boundary("complete setup", err) }()
	n.Role = RoleAdmin
	if err := n.validate(); err != nil {
		return nil, err
	}
	// Check before the costly hash, so closed setup or a wrong token costs
	// nothing; check again in the transaction that uses the token.
	if err := db.bolt.View(func(tx *bolt.Tx) error { return checkSetup(tx, token) }); err != nil {
		return nil, err
	}
	hash, err := db.hashPassword(ctx, n.Password)
	if err != nil {
		return nil, err
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := checkSetup(tx, token); err != nil {
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

// checkSetup returns forbidden once accounts exist and unauthorized unless
// token is the setup token.
func checkSetup(tx *bolt.Tx, token string) error {
	if k, _ := tx.Bucket(bucketUsers).Cursor().First(); k != nil {
		return errorf(CodeForbidden, "setup is closed: accounts exist")
	}
	want := tx.Bucket(bucketMeta).Get(setupTokenKey)
	if want == nil || subtle.ConstantTimeCompare(want, auth.SecretHash(token)) != 1 {
		return errorf(CodeUnauthorized, "setup token is not valid")
	}
	return nil
}

func (db *DB) putNewUser(tx *bolt.Tx, n NewUser, hash string) (userRow, error) {
	names := tx.Bucket(bucketUsersByName)
	for _, k := range db.keys.nameIndexes(n.Username) {
		if names.Get(k) != nil {
			return userRow{}, errorf(CodeConflict, "username is taken")
		}
	}
	// An account whose key is not configured has an index entry no
	// configured key can find: its name could be taken twice.
	if err := tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
		var st storedUser
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
		if !db.keys.Known(st.KeyID) {
			return errorf(CodeConflict, "some accounts are sealed under a newsroom key that is not configured: add it to PROJECT_FILES_OLD_KEYS first")
		}
		return nil
	}); err != nil {
		return userRow{}, err
	}
	id, err := tx.Bucket(bucketUsers).NextSequence()
	if err != nil {
		return userRow{}, err
	}
	row := userRow{ID: id, Username: n.Username, Role: n.Role, PasswordHash: hash, CreatedAt: db.now().UTC()}
	return row, db.putUser(tx, row)
}

// CreateUser adds an account. Returns validation_error, conflict (taken).
func (db *DB) CreateUser(ctx context.Context, n NewUser) (u *User, err error) {
	defer func() { err = boundary("create user", err) }()
	if err := n.validate(); err != nil {
		return nil, err
	}
	hash, err := db.hashPassword(ctx, n.Password)
	if err != nil {
		return nil, err
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		row, err := db.putNewUser(tx, n, hash)
		if err != nil {
			return err
		}
		u = row.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionUserCreated, Meta: map[string]any{"user_id": row.ID, "role": row.Role}})
	})
	return u, err
}

func (db *DB) loadUser(tx *bolt.Tx, id uint64) (userRow, error) {
	v := tx.Bucket(bucketUsers).Get(itob(id))
	if v == nil {
		return userRow{}, errorf(CodeNotFound, "user not found")
	}
	return db.decodeUser(v)
}

// loadUserByName finds an account by its (case-insensitive) username
// through the keyed index, under any configured key.
func (db *DB) loadUserByName(tx *bolt.Tx, name string) (userRow, error) {
	names := tx.Bucket(bucketUsersByName)
	for _, k := range db.keys.nameIndexes(name) {
		if id := names.Get(k); id != nil {
			return db.loadUser(tx, btoi(id))
		}
	}
	return userRow{}, errorf(CodeNotFound, "user not found")
}

// Users returns every account.
func (db *DB) Users(ctx context.Context) (us []*User, err error) {
	defer func() { err = boundary("users", err) }()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			row, err := db.decodeUser(v)
			if errors.Is(err, ErrKeyMissing) {
				var st storedUser
				if err := json.Unmarshal(v, &st); err != nil {
					return err
				}
				us = append(us, &User{ID: st.ID, Role: st.Role, Disabled: st.Disabled, TOTPEnabled: st.TOTPEnabled, CreatedAt: st.CreatedAt, Unreadable: true})
				return nil
			}
			if err != nil {
				return err
			}
			us = append(us, row.user())
			return nil
		})
	})
	return us, err
}

// User returns account id; not_found.
func (db *DB) User(ctx context.Context, id uint64) (u *User, err error) {
	defer func() { err = boundary("user", err) }()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		row, err := db.loadUser(tx, id)
		u = row.user()
		return err
	})
	return u, err
}

// UserUpdate changes an account; nil fields stay as they are.
type UserUpdate struct {
	Role      *string
	Password  *string
	Disabled  *bool
	ResetTOTP bool
}

// UpdateUser changes account id. Disabling it or resetting its password
// ends its sessions at once (its tokens stop working while it is disabled).
// An admin cannot demote or disable the last active admin. Returns
// not_found, validation_error, conflict (last admin).
func (db *DB) UpdateUser(ctx context.Context, id uint64, up UserUpdate) (u *User, err error) {
	defer func() { err = boundary("update user", err) }()
	if up.Role != nil && roleRank(*up.Role) == 0 {
		return nil, errorf(CodeValidation, "role must be viewer, editor or admin")
	}
	var hash string
	if up.Password != nil {
		if err := auth.CheckPassword(*up.Password); err != nil {
			return nil, errorf(CodeValidation, err.Error())
		}
		if hash, err = db.hashPassword(ctx, *up.Password); err != nil {
			return nil, err
		}
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		row, err := db.loadUser(tx, id)
		if err != nil {
			return err
		}
		meta := map[string]any{"user_id": id}
		wasActiveAdmin := row.Role == RoleAdmin && !row.Disabled
		if up.Role != nil {
			row.Role = *up.Role
			meta["role"] = row.Role
		}
		if up.Disabled != nil {
			row.Disabled = *up.Disabled
			meta["disabled"] = row.Disabled
		}
		endSessions := row.Disabled
		if hash != "" {
			row.PasswordHash = hash
			meta["password_reset"] = true
			endSessions = true
		}
		if up.ResetTOTP {
			row.TOTP, row.TOTPPending, row.TOTPEnabled, row.Recovery = nil, nil, false, nil
			meta["totp_reset"] = true
		}
		if wasActiveAdmin && (row.Role != RoleAdmin || row.Disabled) {
			if n, err := activeAdmins(tx); err != nil {
				return err
			} else if n <= 1 {
				return errorf(CodeConflict, "the last active admin cannot be demoted or disabled")
			}
		}
		if endSessions {
			if err := deleteSessionsOf(tx, id); err != nil {
				return err
			}
		}
		if err := db.putUser(tx, row); err != nil {
			return err
		}
		u = row.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionUserUpdated, Meta: meta})
	})
	return u, err
}

func activeAdmins(tx *bolt.Tx) (int, error) {
	n := 0
	err := tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
		var row storedUser
		if err := json.Unmarshal(v, &row); err != nil {
			return err
		}
		if row.Role == RoleAdmin && !row.Disabled {
			n++
		}
		return nil
	})
	return n, err
}

func deleteSessionsOf(tx *bolt.Tx, userID uint64) error {
	b := tx.Bucket(bucketSessions)
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var s sessionRow
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		if s.UserID == userID {
			dead = append(dead, append([]byte(nil), k...))
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

// Login checks a username, password and (when enrolled) a TOTP or recovery
// code, and starts a session whose secret it returns. Every failure is the
// same unauthorized error, audited as login_failed without the username;
// a missing second factor is unauthorized with a message that asks for it.
func (db *DB) Login(ctx context.Context, username, password, code string) (secret string, u *User, err error) {
	defer func() { err = boundary("login", err) }()
	var row userRow
	verr := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		row, err = db.loadUserByName(tx, username)
		return err
	})
	bad := errorf(CodeUnauthorized, "wrong username or password")
	if verr != nil {
		if ErrorCode(verr) != CodeNotFound {
			return "", nil, verr
		}
		if err := db.withHashSlot(ctx, func() { auth.DummyVerify(password) }); err != nil { // unknown usernames take as long as known ones
			return "", nil, err
		}
		return "", nil, db.loginFailed(ctx, bad, "credentials")
	}
	var match bool
	if err := db.withHashSlot(ctx, func() { match = auth.VerifyPassword(row.PasswordHash, password) }); err != nil {
		return "", nil, err
	}
	if !match || row.Disabled {
		return "", nil, db.loginFailed(ctx, bad, "credentials")
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
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		cur, err := db.loadUser(tx, row.ID) // again, inside the transaction
		if err != nil {
			return err
		}
		if cur.TOTPEnabled {
			ok, usedRecovery, err := db.checkSecondFactor(tx, &cur, code, now)
			if err != nil {
				return err
			}
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
		s := sessionRow{UserID: cur.ID, CreatedAt: now, ExpiresAt: now.Add(db.sessionTTL)}
		if err := putJSON(tx.Bucket(bucketSessions), auth.SecretHash(secret), s); err != nil {
			return err
		}
		u = cur.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionLogin, ActorID: cur.ID, Meta: map[string]any{"method": method}})
	})
	if ErrorCode(err) == CodeUnauthorized {
		return "", nil, db.loginFailed(ctx, err, "second_factor")
	}
	if err != nil {
		return "", nil, err
	}
	return secret, u, nil
}

// loginFailed audits a failed login (no username, no address) and returns e.
func (db *DB) loginFailed(ctx context.Context, e error, reason string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionLoginFailed, Meta: map[string]any{"reason": reason}})
	})
	if err != nil {
		return err
	}
	return e
}

// checkSecondFactor checks code as a TOTP code, then as a recovery code,
// updating row (last step, used recovery code) for the caller to store.
func (db *DB) checkSecondFactor(tx *bolt.Tx, row *userRow, code string, now time.Time) (ok, recovery bool, err error) {
	if step, ok := auth.VerifyTOTP(row.TOTP, strings.TrimSpace(code), now, row.TOTPLastStep); ok {
		row.TOTPLastStep = step
		return true, false, nil
	}
	h := auth.SecretHash(auth.NormalizeRecoveryCode(code))
	for i, want := range row.Recovery {
		if subtle.ConstantTimeCompare(want, h) == 1 {
			row.Recovery = append(row.Recovery[:i:i], row.Recovery[i+1:]...)
			return true, true, nil
		}
	}
	return false, false, nil
}

// Authenticate returns the principal of a session secret or API token.
// Returns unauthorized for an unknown, expired or revoked secret or a
// disabled account; it checks the account on every call, so disabling it
// locks it out at once.
func (db *DB) Authenticate(ctx context.Context, secret string) (p *Principal, err error) {
	defer func() { err = boundary("authenticate", err) }()
	h := auth.SecretHash(secret)
	now := db.now()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		p = &Principal{}
		var s sessionRow
		if ok, err := getJSON(tx.Bucket(bucketSessions), h, &s); err != nil {
			return err
		} else if ok {
			if !now.Before(s.ExpiresAt) {
				return errorf(CodeUnauthorized, "session expired: log in again")
			}
			p.UserID, p.SessionID = s.UserID, h
		} else if id := tx.Bucket(bucketTokenHashes).Get(h); id != nil {
			var t tokenRow
			if ok, err := getJSON(tx.Bucket(bucketTokens), id, &t); err != nil || !ok {
				return errorf(CodeUnauthorized, "token is not valid")
			}
			p.UserID, p.TokenID, p.Scope = t.UserID, t.ID, t.Scope
		} else {
			return errorf(CodeUnauthorized, "not logged in, or the session or token is not valid")
		}
		row, err := db.loadUser(tx, p.UserID)
		if ErrorCode(err) == CodeNotFound || row.Disabled {
			return errorf(CodeUnauthorized, "account is disabled")
		}
		if err != nil {
			return err
		}
		p.Role = row.Role
		if row.Role == RoleAdmin && !row.TOTPEnabled {
			var st Settings
			if _, err := getJSON(tx.Bucket(bucketMeta), settingsKey, &st); err != nil {
				return err
			}
			p.NeedsTOTP = st.RequireAdminTOTP
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
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete(p.SessionID); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionLogout})
	})
}

// CreateToken makes an API token for the user named username with scope ""
// (the user's full role) or ScopeStream, and returns its secret, which is
// stored only as a hash. Returns not_found, validation_error.
func (db *DB) CreateToken(ctx context.Context, username, scope string) (secret string, t *Token, err error) {
	defer func() { err = boundary("create token", err) }()
	if scope != "" && scope != ScopeStream {
		return "", nil, errorf(CodeValidation, "scope must be empty or stream")
	}
	secret = auth.NewSecret("tyst_t_")
	err = db.bolt.Update(func(tx *bolt.Tx) error {
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
		row := tokenRow{ID: id, UserID: u.ID, Scope: scope, Hash: auth.SecretHash(secret), CreatedAt: db.now().UTC()}
		if err := putJSON(b, itob(id), row); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokenHashes).Put(row.Hash, itob(id)); err != nil {
			return err
		}
		t = &Token{ID: id, UserID: u.ID, Scope: scope, CreatedAt: row.CreatedAt}
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
	err = db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var row tokenRow
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			ts = append(ts, &Token{ID: row.ID, UserID: row.UserID, Scope: row.Scope, CreatedAt: row.CreatedAt})
			return nil
		})
	})
	return ts, err
}

// RevokeToken deletes token id; it stops working at once. Returns not_found.
func (db *DB) RevokeToken(ctx context.Context, id uint64) (err error) {
	defer func() { err = boundary("revoke token", err) }()
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var row tokenRow
		if ok, err := getJSON(b, itob(id), &row); err != nil {
			return err
		} else if !ok {
			return errorf(CodeNotFound, "token not found")
		}
		if err := b.Delete(itob(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokenHashes).Delete(row.Hash); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionTokenRevoked, Meta: map[string]any{"token_id": id}})
	})
}

// BeginTOTP makes a new pending TOTP secret for ctx's principal and returns
// its otpauth:// URI; the factor is on only after ConfirmTOTP.
func (db *DB) BeginTOTP(ctx context.Context, issuer string) (uri string, err error) {
	defer func() { err = boundary("begin totp", err) }()
	p := PrincipalFrom(ctx)
	if p == nil {
		return "", errorf(CodeUnauthorized, "not logged in")
	}
	secret := auth.NewTOTPSecret()
	err = db.bolt.Update(func(tx *bolt.Tx) error {
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
// ten one-time recovery codes, stored only as hashes. Returns
// validation_error for a wrong code, conflict when nothing is pending.
func (db *DB) ConfirmTOTP(ctx context.Context, code string) (recovery []string, err error) {
	defer func() { err = boundary("confirm totp", err) }()
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, errorf(CodeUnauthorized, "not logged in")
	}
	recovery = auth.NewRecoveryCodes(10)
	err = db.bolt.Update(func(tx *bolt.Tx) error {
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

// Settings returns the account settings.
func (db *DB) Settings(ctx context.Context) (st Settings, err error) {
	defer func() { err = boundary("settings", err) }()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketMeta), settingsKey, &st)
		return err
	})
	return st, err
}

// UpdateSettings stores st.
func (db *DB) UpdateSettings(ctx context.Context, st Settings) (err error) {
	defer func() { err = boundary("update settings", err) }()
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketMeta), settingsKey, st); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionSettingsUpdated, Meta: map[string]any{"require_admin_totp": st.RequireAdminTOTP}})
	})
}
