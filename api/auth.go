package api

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"tyst/store"
)

// Accounts is what the API needs for logins and account management. Each
// method returns *store.Error values whose codes the API maps to statuses.
type Accounts interface {
	HasUsers(ctx context.Context) (bool, error)
	// CompleteSetup returns forbidden (closed), unauthorized (bad token), validation_error.
	CompleteSetup(ctx context.Context, token string, n store.NewUser) (*store.User, error)
	// Login returns unauthorized for any failure.
	Login(ctx context.Context, username, password, code string) (string, *store.User, error)
	// CredentialStamp returns a value that changes when the account's
	// password or second factor is reset or it is disabled; not_found.
	CredentialStamp(ctx context.Context, username string) ([]byte, error)
	// Authenticate returns unauthorized for an unknown, expired or revoked secret.
	Authenticate(ctx context.Context, secret string) (*store.Principal, error)
	Logout(ctx context.Context) error
	User(ctx context.Context, id uint64) (*store.User, error)
	Users(ctx context.Context) ([]*store.User, error)
	// CreateUser returns validation_error, conflict.
	CreateUser(ctx context.Context, n store.NewUser) (*store.User, error)
	// UpdateUser returns not_found, validation_error, conflict (last admin).
	UpdateUser(ctx context.Context, id uint64, up store.UserUpdate) (store.UserUpdated, error)
	// CreateToken returns not_found (user), validation_error.
	CreateToken(ctx context.Context, username, scope, label string) (string, *store.Token, error)
	Tokens(ctx context.Context) ([]*store.Token, error)
	// RevokeToken returns not_found.
	RevokeToken(ctx context.Context, id uint64) error
	// BeginTOTP returns forbidden (a token, a wrong password), conflict
	// when a factor is enrolled.
	BeginTOTP(ctx context.Context, issuer, password string) (string, error)
	// ConfirmTOTP returns validation_error (wrong code), conflict (nothing pending).
	ConfirmTOTP(ctx context.Context, code string) ([]string, error)
	Settings(ctx context.Context) (store.Settings, error)
	UpdateSettings(ctx context.Context, st store.Settings) error
}

// sessionCookie is the name of the login cookie.
const sessionCookie = "tyst_session"

// rule says who may call a route.
type rule struct {
	role   string // "" for public routes, else the least role
	stream bool   // stream-scoped tokens may call it
	self   bool   // account self-service: open to an admin who must still enrol TOTP
}

var (
	public     = rule{}
	viewer     = rule{role: store.RoleViewer}
	editor     = rule{role: store.RoleEditor}
	editorOrSt = rule{role: store.RoleEditor, stream: true}
	admin      = rule{role: store.RoleAdmin}
	self       = rule{role: store.RoleViewer, self: true}
)

// authorize finds the request's principal (Bearer token or session cookie)
// and checks it against r. 401 without valid credentials, 403 for a role or
// scope that may not call the route.
func (s *Server) authorize(r *http.Request, ru rule) (*store.Principal, error) {
	var secret string
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return nil, apiError(store.CodeUnauthorized, "Authorization must be: Bearer <token>")
		}
		secret = tok
	} else if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if !sameOriginFetch(r) {
			return nil, apiError(store.CodeForbidden, "cross-origin request refused")
		}
		secret = c.Value
	} else {
		return nil, apiError(store.CodeUnauthorized, "log in or send an API token")
	}
	p, err := s.accounts.Authenticate(r.Context(), secret)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Scope == store.ScopeStream && !ru.stream:
		return nil, apiError(store.CodeForbidden, "a stream token may only create records, upload and stream")
	case p.NeedsTOTP && !ru.self:
		return nil, apiError(store.CodeForbidden, "admins must enrol a second factor first: POST /api/v1/me/totp")
	case !store.RoleAtLeast(p.Role, ru.role):
		return nil, apiError(store.CodeForbidden, "your role may not do this")
	}
	return p, nil
}

// sameOriginFetch reports whether a browser sent r from tyst's own pages
// (Sec-Fetch-Site same-origin) or at the user's own hand (none: a typed
// address, a bookmark), or whether no browser says (scripts, old
// browsers). The session cookie is SameSite=Strict, which a page on
// another origin of the same site (another port, a sibling subdomain)
// still gets sent with what it loads: an <audio> of a record's audio, a
// request for an export. So a request that rides on the cookie must come
// from tyst's own origin, reads included, not only the unsafe methods
// http.CrossOriginProtection guards.
func sameOriginFetch(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// limiter counts login attempts per key in fixed windows. Keys are hashes,
// so the table holds no username or address. The table is bounded: its
// entries form a list in the order their windows began, so expired entries
// leave from the front, and when the table is full the oldest entry is
// evicted to make room. A flood of made-up usernames or addresses can
// neither grow memory nor lock out a client that has not failed; it can
// only make the limiter forget the oldest counts early. Every operation is
// O(1) (amortised: an expired entry is removed once).
type limiter struct {
	mu          sync.Mutex
	now         func() time.Time
	window      time.Duration
	max         int
	maxKeys     int
	hits        map[[32]byte]*hits
	front, back *hits // oldest and newest window
}

// hits is one key's count in its window, and its place in the list.
type hits struct {
	key        [32]byte
	start      time.Time
	n          int
	prev, next *hits
}

func newLimiter(now func() time.Time, window time.Duration, max int) *limiter {
	return &limiter{now: now, window: window, max: max, maxKeys: maxLimiterKeys, hits: map[[32]byte]*hits{}}
}

// maxLimiterKeys bounds each limiter's table (about 100 bytes an entry).
const maxLimiterKeys = 100_000

// take counts an attempt for key and reports whether it may go ahead: false
// once key has used up its attempts in this window. Counting before the
// password is checked keeps parallel attempts from all slipping through
// while the first ones are still being checked; refund gives back an
// attempt that did not fail.
func (l *limiter) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for l.front != nil && now.Sub(l.front.start) >= l.window {
		l.remove(l.front)
	}
	k := sha256.Sum256([]byte(key))
	h := l.hits[k]
	if h == nil {
		if len(l.hits) >= l.maxKeys {
			l.remove(l.front) // full of live entries: forget the oldest
		}
		h = &hits{key: k, start: now}
		l.hits[k] = h
		l.pushBack(h)
	}
	if h.n >= l.max {
		return false
	}
	h.n++
	return true
}

// refund gives back an attempt of key that did not fail.
func (l *limiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.hits[sha256.Sum256([]byte(key))]; h != nil {
		if h.n--; h.n <= 0 {
			l.remove(h)
		}
	}
}

// reset forgets key (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.hits[sha256.Sum256([]byte(key))]; h != nil {
		l.remove(h)
	}
}

// len returns the number of keys in the table.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hits)
}

func (l *limiter) pushBack(h *hits) {
	h.prev, h.next = l.back, nil
	if l.back != nil {
		l.back.next = h
	} else {
		l.front = h
	}
	l.back = h
}

func (l *limiter) remove(h *hits) {
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		l.front = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		l.back = h.prev
	}
	h.prev, h.next = nil, nil
	delete(l.hits, h.key)
}

// clientKey is the client's address for rate limiting only; it is hashed
// and never logged. Behind a proxy every client has the proxy's address,
// unless ClientIPHeader names the header in which the proxy passes the
// client's (its last value, the one the trusted proxy appended; only when
// it is an IP address). IPv6 clients count per /64, the block one host
// usually has.
func (s *Server) clientKey(r *http.Request) string {
	var ip net.IP
	if s.clientIPHeader != "" {
		if v := r.Header.Values(s.clientIPHeader); len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			ip = net.ParseIP(strings.TrimSpace(parts[len(parts)-1]))
		}
	}
	if ip == nil {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = net.ParseIP(host)
	}
	if ip == nil {
		return "client:" + r.RemoteAddr
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return "client:" + ip.String()
}
