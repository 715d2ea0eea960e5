package store

import (
	"context"
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

// ScopeStream limits an API token to creating records, and uploading and
// streaming into the records it created.
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

// canSee reports whether ctx's principal may see a record: a stream token
// only the records it created; a sensitive record only its creator and
// admins (DESIGN §6).
func canSee(ctx context.Context, acc recordAccess) bool {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil:
		return true
	case p.Scope == ScopeStream:
		return p.TokenID != 0 && acc.CreatedByToken == p.TokenID
	case acc.Sensitivity != SensitivitySensitive:
		return true
	}
	return p.Role == RoleAdmin || p.UserID == acc.CreatedBy
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
	// not configured; only ID is set then.
	Unreadable bool
}

// LogValue logs a user as its id only: usernames stay out of logs.
func (u *User) LogValue() slog.Value { return slog.Uint64Value(u.ID) }

// userRow is an account in memory. In the database only its id stands in
// the clear: everything else, the role and disabled flag included, is
// sealed under the newsroom key with the id (storedUser), and the username
// index is keyed, so a copy of the data directory shows no names, nothing
// to crack, and an edited or forged row is refused.
type userRow struct {
	ID           uint64    `json:"id"`
	Username     string    `json:"username"`
	Role         string    `json:"role"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	PasswordHash string    `json:"password_hash"`
	TOTP         []byte    `json:"totp,omitempty"`         // the enrolled secret
	TOTPPending  []byte    `json:"totp_pending,omitempty"` // a secret waiting for ConfirmTOTP
	TOTPEnabled  bool      `json:"totp_enabled,omitempty"`
	TOTPLastStep int64     `json:"totp_last_step,omitempty"` // the last step used: a code works once
	Recovery     [][]byte  `json:"recovery,omitempty"`       // SHA-256 of each unused recovery code
}

// storedUser is a userRow as stored.
type storedUser struct {
	ID  uint64 `json:"id"`
	Box box    `json:"box"` // userRow
}

func (db *DB) putUser(tx *bolt.Tx, u userRow) error {
	b, err := db.keys.sealBox(u)
	if err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bucketUsers), itob(u.ID), storedUser{ID: u.ID, Box: b}); err != nil {
		return err
	}
	return tx.Bucket(bucketUsersByName).Put(db.usernameKey(u.Username), itob(u.ID))
}

func (db *DB) usernameKey(name string) []byte {
	return db.indexMAC(indexUsername, []byte(strings.ToLower(strings.TrimSpace(name))))
}

// decodeUser opens a stored account: ErrKeyMissing when its key is not
// configured, ErrCorrupt when it was altered or moved to another id.
func (db *DB) decodeUser(v []byte) (userRow, error) {
	var st storedUser
	if err := json.Unmarshal(v, &st); err != nil {
		return userRow{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var u userRow
	if err := db.keys.openBox(st.Box, &u); err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", st.ID, err)
	}
	if u.ID != st.ID {
		return userRow{}, fmt.Errorf("user %d: sealed for another row: %w", st.ID, ErrCorrupt)
	}
	return u, nil
}

func (u userRow) user() *User {
	return &User{ID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.Disabled, TOTPEnabled: u.TOTPEnabled, CreatedAt: u.CreatedAt}
}

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

func (db *DB) putNewUser(tx *bolt.Tx, n NewUser, hash string) (userRow, error) {
	if tx.Bucket(bucketUsersByName).Get(db.usernameKey(n.Username)) != nil {
		return userRow{}, errorf(CodeConflict, "username is taken")
	}
	id, err := tx.Bucket(bucketUsers).NextSequence()
	if err != nil {
		return userRow{}, err
	}
	row := userRow{ID: id, Username: n.Username, Role: n.Role, PasswordHash: hash, CreatedAt: db.now().UTC()}
	return row, db.putUser(tx, row)
}

// CreateUser adds an account; the username is stored lower-cased and
// trimmed (the returned User has it). Returns validation_error, conflict
// (taken).
func (db *DB) CreateUser(ctx context.Context, n NewUser) (u *User, err error) {
	defer func() { err = boundary("create user", err) }()
	if err := n.validate(); err != nil {
		return nil, err
	}
	hash, err := db.hashPassword(ctx, n.Password)
	if err != nil {
		return nil, err
	}
	err = db.update(func(tx *bolt.Tx) error {
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
// through the keyed index; an index entry that points at another account
// (an edited database) is not_found.
func (db *DB) loadUserByName(tx *bolt.Tx, name string) (userRow, error) {
	id := tx.Bucket(bucketUsersByName).Get(db.usernameKey(name))
	if id == nil {
		return userRow{}, errorf(CodeNotFound, "user not found")
	}
	u, err := db.loadUser(tx, btoi(id))
	if err == nil && u.Username != strings.ToLower(strings.TrimSpace(name)) {
		return userRow{}, errorf(CodeNotFound, "user not found")
	}
	return u, err
}

// Users returns every account; one sealed under a key that is not
// configured is listed as unreadable.
func (db *DB) Users(ctx context.Context) (us []*User, err error) {
	defer func() { err = boundary("users", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			row, err := db.decodeUser(v)
			if errors.Is(err, ErrKeyMissing) || errors.Is(err, ErrCorrupt) {
				db.log.Warn("account unreadable", "user_id", btoi(k), "err", err.Error())
				us = append(us, &User{ID: btoi(k), Unreadable: true})
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
	err = db.view(func(tx *bolt.Tx) error {
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

// UserUpdated is the result of UpdateUser.
type UserUpdated struct {
	User *User
	// TokensRevoked is how many API tokens of the account a password or
	// second-factor reset revoked.
	TokensRevoked int
}

// UpdateUser changes account id. Disabling it, or resetting its password or
// second factor, ends its sessions at once; a password or second-factor
// reset also revokes its API tokens (whoever reset it should know how many:
// UserUpdated.TokensRevoked). An admin cannot demote or disable the last
// active admin. Returns not_found, validation_error, conflict (last admin).
func (db *DB) UpdateUser(ctx context.Context, id uint64, up UserUpdate) (res UserUpdated, err error) {
	defer func() { err = boundary("update user", err) }()
	if up.Role != nil && roleRank(*up.Role) == 0 {
		return res, errorf(CodeValidation, "role must be viewer, editor or admin")
	}
	var hash string
	if up.Password != nil {
		if err := auth.CheckPassword(*up.Password); err != nil {
			return res, errorf(CodeValidation, err.Error())
		}
		if hash, err = db.hashPassword(ctx, *up.Password); err != nil {
			return res, err
		}
	}
	err = db.update(func(tx *bolt.Tx) error {
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
		endSessions, revokeTokens := row.Disabled, false
		if hash != "" {
			row.PasswordHash = hash
			meta["password_reset"] = true
			endSessions, revokeTokens = true, true
		}
		if up.ResetTOTP {
			row.TOTP, row.TOTPPending, row.TOTPEnabled, row.Recovery = nil, nil, false, nil
			meta["totp_reset"] = true
			endSessions, revokeTokens = true, true
		}
		if wasActiveAdmin && (row.Role != RoleAdmin || row.Disabled) {
			if n, err := db.activeAdmins(tx); err != nil {
				return err
			} else if n <= 1 {
				return errorf(CodeConflict, "the last active admin cannot be demoted or disabled")
			}
		}
		if endSessions {
			if err := db.deleteSessionsOf(tx, id); err != nil {
				return err
			}
		}
		if revokeTokens {
			n, err := db.deleteTokensOf(tx, id)
			if err != nil {
				return err
			}
			res.TokensRevoked = n
			meta["tokens_revoked"] = n
		}
		if err := db.putUser(tx, row); err != nil {
			return err
		}
		res.User = row.user()
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionUserUpdated, Meta: meta})
	})
	return res, err
}

func (db *DB) activeAdmins(tx *bolt.Tx) (int, error) {
	n := 0
	err := tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
		row, err := db.decodeUser(v)
		if err == nil && row.Role == RoleAdmin && !row.Disabled {
			n++
		}
		return nil // an unreadable account is no active admin
	})
	return n, err
}
