// Package api serves tyst's HTTP API (DESIGN §5) on julienschmidt/httprouter:
// routing, request ids, security headers, JSON in and out, and the one table
// that maps error codes to statuses. It reaches data only through the small
// interfaces it declares, which *store.DB implements.
package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
	"tyst/store/signing"
)

// Records is what the API needs of the store. Each method returns *store.Error
// values whose codes the API maps to statuses.
type Records interface {
	// CreateRecord returns validation_error or not_found (unknown project).
	CreateRecord(ctx context.Context, n store.NewRecord) (*store.Record, error)
	// Record returns not_found.
	Record(ctx context.Context, id uint64) (*store.Record, error)
	// Records returns validation_error for a bad limit or query, not_found
	// for a project the caller may not see.
	Records(ctx context.Context, f store.RecordFilter) ([]*store.Record, uint64, error)
	Projects(ctx context.Context) ([]*store.Project, error)
	// CreateProject returns validation_error.
	CreateProject(ctx context.Context, n store.NewProject) (*store.Project, error)
	// RenameProject returns not_found, validation_error.
	RenameProject(ctx context.Context, id uint64, name string) (*store.Project, error)
	// AttachAudio returns not_found, conflict, validation_error,
	// payload_too_large, unsupported_media_type, insufficient_storage.
	AttachAudio(ctx context.Context, id uint64, n store.NewAudio) (*store.Audio, error)
	// OpenAudio returns not_found; the caller closes the reader.
	OpenAudio(ctx context.Context, id uint64) (*store.AudioReader, error)
	// Ready returns unavailable when the database is closed.
	Ready(ctx context.Context) error
	// UpdateRecord returns not_found, validation_error, forbidden.
	UpdateRecord(ctx context.Context, id uint64, up store.RecordUpdate) (*store.Record, error)
	// PutSegments returns not_found, validation_error.
	PutSegments(ctx context.Context, id uint64, segs []store.Segment) error
	Segments(ctx context.Context, id uint64) ([]store.Segment, error)
	// AddNote returns not_found, validation_error.
	AddNote(ctx context.Context, id uint64, text string) (*store.Note, error)
	Notes(ctx context.Context, id uint64) ([]*store.Note, error)
	// DeleteNote returns not_found.
	DeleteNote(ctx context.Context, id, noteID uint64) error
	// RemoveAudio returns not_found, validation_error, conflict.
	RemoveAudio(ctx context.Context, id uint64, confirm bool, reason string) (*store.Receipt, error)
	// Destroy returns not_found, validation_error.
	Destroy(ctx context.Context, id uint64, req store.DestroyRequest) (store.DestroyResult, error)
	// Receipt returns not_found.
	Receipt(ctx context.Context, id string) (*store.Receipt, error)
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, uint64, error)
	SigningKey() *signing.Key
	Storage(ctx context.Context) (store.Storage, error)
	// Export returns not_found, validation_error, forbidden,
	// quota_exceeded, insufficient_storage, conflict, and unavailable once
	// ctx is done (it then leaves nothing).
	Export(ctx context.Context, id uint64, req store.ExportRequest) (*store.ExportResult, error)
	// OpenExport returns not_found; the caller closes the reader.
	OpenExport(ctx context.Context, id string) (*store.ExportReader, error)
	KeyUsage(ctx context.Context) (map[string]int, error)
}

// Streams serves live audio over WebSocket (DESIGN §8). The API calls it
// after authenticating the request (the principal is in r's context) and
// parsing the id, with check, which authorizes the request's credential
// again (unauthorized or forbidden once it no longer may stream) for as
// long as the connection lasts. An error it returns means nothing was
// upgraded and is answered as JSON; after an upgrade it returns nil.
type Streams interface {
	ServeStream(w http.ResponseWriter, r *http.Request, recordID uint64, check func(context.Context) error) error
	// Busy reports whether a live stream holds record id (running, or
	// dropped and still resumable).
	Busy(recordID uint64) bool
}

// Config configures a Server.
type Config struct {
	Records        Records
	Accounts       Accounts
	Streams        Streams      // nil: live streaming answers 404
	Logger         *slog.Logger // discards when nil
	Version        string
	MaxUploadBytes int64 // store.DefaultMaxUpload when zero
	// BodyIdleTimeout ends a request (an upload, a JSON body) whose body
	// sends nothing for this long; DefaultBodyIdleTimeout when zero.
	BodyIdleTimeout time.Duration
	// UploadMinRate is the least average rate, in bytes per second since
	// the upload began, that an audio upload must keep once UploadGrace
	// has passed; a slower one is ended with a 400. DefaultUploadMinRate
	// when zero.
	UploadMinRate int64
	// UploadGrace is how long an upload may run before UploadMinRate
	// applies; DefaultUploadGrace when zero.
	UploadGrace time.Duration
	// WriteIdleTimeout cuts off a response (an audio download above all)
	// when one write to the client does not complete for this long: a
	// client that stops reading releases its buffers.
	// DefaultWriteIdleTimeout when zero.
	WriteIdleTimeout time.Duration
	// MaxDownloads and MaxDownloadsPerUser bound the audio downloads in
	// progress in all and per account (user id); MaxUploads and
	// MaxUploadsPerUser the audio uploads. A request over an account's
	// share gets 429, one over the total 503, both with Retry-After. The
	// Default… constants when zero.
	MaxDownloads, MaxDownloadsPerUser int
	MaxUploads, MaxUploadsPerUser     int
	// MaxExports and MaxExportsPerUser bound the export packages being
	// built, in all and per account, the same way (DefaultMaxExports,
	// DefaultMaxExportsPerUser when zero).
	MaxExports, MaxExportsPerUser int
	// SecureCookies marks the session cookie Secure (serve sets it under TLS).
	SecureCookies bool
	// SessionTTL is the cookie lifetime; store.DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// Now is the clock of the login rate limits; time.Now when nil.
	Now func() time.Time
	// Status builds GET /api/v1/status; unavailable when nil.
	Status StatusFunc
	// ClientIPHeader, when set, names the header in which a trusted proxy in
	// front passes the client's address (e.g. X-Forwarded-For), for the
	// per-client login limit. Never logged.
	ClientIPHeader string
	// UI, when set, serves GET and HEAD requests for paths outside /api/
	// that no route matches: the browser UI (package web). It is not a
	// route, so the route list and the OpenAPI document stay the API's.
	UI http.Handler
	// Hosts are the host names requests may address besides loopback names
	// and IP addresses (DNS rebinding, DESIGN §6): the --listen host and
	// the --public-host names. Case and a trailing dot do not matter.
	Hosts []string
	// HSTS adds Strict-Transport-Security to every response (serve sets it
	// when it serves TLS itself).
	HSTS bool
}

// DefaultBodyIdleTimeout is how long a request body may send nothing.
const DefaultBodyIdleTimeout = time.Minute

// Defaults of the upload rate floor: 512 bytes a second (4 kbit/s) is well
// under what a single GPRS timeslot carries, so a real field link passes,
// while a client that trickles a byte every few seconds is ended after the
// grace period, which leaves a 2G link time for slow start and a stall.
const (
	DefaultUploadMinRate = 512
	DefaultUploadGrace   = time.Minute
)

// DefaultWriteIdleTimeout is how long one write to a client may block.
const DefaultWriteIdleTimeout = 30 * time.Second

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	records   Records
	accounts  Accounts
	status    StatusFunc
	streams   Streams
	log       *slog.Logger
	version   string
	maxUpload int64
	bodyIdle  time.Duration
	// Upload rate floor and grace, write deadline, transfer slots.
	uploadMinRate               int64
	uploadGrace                 time.Duration
	writeIdle                   time.Duration
	downloads, uploads, exports *slots
	// Login rate limits: failures per username (or per device cookie, see
	// devices) and per client address.
	userLimit, deviceLimit, clientLimit *limiter
	devices                             *devices
	secureCookies                       bool
	clientIPHeader                      string
	sessionTTL                          time.Duration
	hosts                               map[string]bool // allowed Host names, normalised
	hsts                                bool
	router                              *httprouter.Router
	routes                              []string // "METHOD /pattern", for the OpenAPI and route tests
	rules                               []rule   // who may call routes[i]
	handler                             http.Handler
	ui                                  http.Handler
}

// handlerFunc is a route handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	s := &Server{
		records:        cfg.Records,
		accounts:       cfg.Accounts,
		status:         cfg.Status,
		streams:        cfg.Streams,
		secureCookies:  cfg.SecureCookies,
		clientIPHeader: cfg.ClientIPHeader,
		sessionTTL:     cfg.SessionTTL,
		log:            cfg.Logger,
		version:        cfg.Version,
		maxUpload:      cfg.MaxUploadBytes,
		hosts:          map[string]bool{},
		hsts:           cfg.HSTS,
		router:         httprouter.New(),
		ui:             cfg.UI,
	}
	for _, h := range cfg.Hosts {
		if h = normalHost(h); h != "" {
			s.hosts[h] = true
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxUpload <= 0 {
		s.maxUpload = store.DefaultMaxUpload
	}
	if s.sessionTTL <= 0 {
		s.sessionTTL = store.DefaultSessionTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s.userLimit = newLimiter(now, loginWindow, maxUserFailures)
	s.deviceLimit = newLimiter(now, loginWindow, maxUserFailures)
	s.devices = newDevices()
	s.clientLimit = newLimiter(now, loginWindow, maxClientFailures)
	s.bodyIdle = cfg.BodyIdleTimeout
	if s.bodyIdle <= 0 {
		s.bodyIdle = DefaultBodyIdleTimeout
	}
	s.uploadMinRate, s.uploadGrace, s.writeIdle = cfg.UploadMinRate, cfg.UploadGrace, cfg.WriteIdleTimeout
	if s.uploadMinRate <= 0 {
		s.uploadMinRate = DefaultUploadMinRate
	}
	if s.uploadGrace <= 0 {
		s.uploadGrace = DefaultUploadGrace
	}
	if s.writeIdle <= 0 {
		s.writeIdle = DefaultWriteIdleTimeout
	}
	s.downloads = newSlots("downloads", cfg.MaxDownloads, cfg.MaxDownloadsPerUser, DefaultMaxDownloads, DefaultMaxDownloadsPerUser)
	s.uploads = newSlots("uploads", cfg.MaxUploads, cfg.MaxUploadsPerUser, DefaultMaxUploads, DefaultMaxUploadsPerUser)
	s.exports = newSlots("exports", cfg.MaxExports, cfg.MaxExportsPerUser, DefaultMaxExports, DefaultMaxExportsPerUser)
	// With these on, httprouter answers "GET //evil.example/" with a
	// redirect to another host; tyst answers 404 instead.
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = false
	s.router.HandleOPTIONS = false
	s.router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ui != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.ui.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, "", apiError(store.CodeNotFound, "no such endpoint"))
	})
	s.router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		s.log.Error("panic in handler", keyRequestID, requestID(r.Context()))
		s.writeError(w, r, "", apiError(store.CodeInternal, "internal error"))
	}
	s.registerRoutes()
	// Refuse cross-origin state-changing requests (CSRF): browsers send
	// Sec-Fetch-Site or Origin, which must match the host. Scripts and
	// devices send neither and pass.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, "", apiError(store.CodeForbidden, "cross-origin request refused"))
	}))
	s.handler = s.middleware(csrf.Handler(s.router))
	return s
}

// Login rate limits (DESIGN §6).
const (
	loginWindow       = 15 * time.Minute
	maxUserFailures   = 5  // per username and window (and per device cookie)
	maxClientFailures = 20 // per client address and window
)

// registerRoutes composes every route in one place, with who may call it.
func (s *Server) registerRoutes() {
	s.route("GET", "/healthz", public, s.handleHealthz)
	s.route("GET", "/readyz", public, s.handleReadyz)
	s.route("GET", "/api/v1/setup", public, s.handleSetupState)
	s.route("POST", "/api/v1/setup", public, s.handleSetup)
	s.route("POST", "/api/v1/session", public, s.handleLogin)
	s.route("DELETE", "/api/v1/session", self, s.handleLogout)
	s.route("GET", "/api/v1/me", self, s.handleMe)
	s.route("POST", "/api/v1/me/totp", self, s.handleTOTPBegin)
	s.route("POST", "/api/v1/me/totp/confirm", self, s.handleTOTPConfirm)
	s.route("GET", "/api/v1/openapi.json", viewer, s.handleOpenAPI)
	s.route("POST", "/api/v1/record", editorOrSt, s.handleRecordCreate)
	s.route("GET", "/api/v1/records", viewer, s.handleRecordList)
	s.route("GET", "/api/v1/record/:id", viewer, s.handleRecordGet)
	s.route("GET", "/api/v1/projects", viewer, s.handleProjectList)
	s.route("POST", "/api/v1/projects", editor, s.handleProjectCreate)
	s.route("PATCH", "/api/v1/projects/:id", editor, s.handleProjectRename)
	s.route("POST", "/api/v1/record/:id/audio", editorOrSt, s.handleAudioUpload)
	s.route("GET", "/api/v1/record/:id/audio", viewer, s.handleAudioGet)
	s.route("HEAD", "/api/v1/record/:id/audio", viewer, s.handleAudioGet)
	s.route("DELETE", "/api/v1/record/:id/audio", editor, s.handleAudioRemove)
	s.route("PATCH", "/api/v1/record/:id", editor, s.handleRecordUpdate)
	s.route("PUT", "/api/v1/record/:id/segments", editor, s.handleSegmentsPut)
	s.route("GET", "/api/v1/record/:id/segments", viewer, s.handleSegmentsGet)
	s.route("POST", "/api/v1/record/:id/notes", editor, s.handleNoteAdd)
	s.route("GET", "/api/v1/record/:id/notes", viewer, s.handleNoteList)
	s.route("DELETE", "/api/v1/record/:id/notes/:note_id", editor, s.handleNoteDelete)
	s.route("POST", "/api/v1/record/:id/destroy", editor, s.handleDestroy)
	s.route("POST", "/api/v1/record/:id/export", editor, s.handleExport)
	s.route("GET", "/api/v1/exports/:package_id", viewer, s.handleExportDownload)
	s.route("GET", "/api/v1/receipts/:receipt_id", viewer, s.handleReceiptGet)
	s.route("GET", "/api/v1/audit", admin, s.handleAuditList)
	s.route("GET", "/api/v1/status", viewer, s.handleStatus)
	s.route("GET", "/api/v1/record/:id/stream", editorOrSt, s.handleRecordStream)
	s.route("GET", "/api/v1/users", admin, s.handleUserList)
	s.route("POST", "/api/v1/users", admin, s.handleUserCreate)
	s.route("PATCH", "/api/v1/users/:id", admin, s.handleUserUpdate)
	s.route("GET", "/api/v1/tokens", admin, s.handleTokenList)
	s.route("POST", "/api/v1/tokens", admin, s.handleTokenCreate)
	s.route("DELETE", "/api/v1/tokens/:id", admin, s.handleTokenRevoke)
	s.route("GET", "/api/v1/settings", admin, s.handleSettingsGet)
	s.route("PUT", "/api/v1/settings", admin, s.handleSettingsUpdate)
}

// handleRecordStream hands the WebSocket upgrade to the stream server.
func (s *Server) handleRecordStream(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := parseID(ps.ByName("id"))
	if err != nil {
		return err
	}
	if s.streams == nil {
		return apiError(store.CodeNotFound, "live streaming is not enabled")
	}
	if !webSocketUpgrade(r) {
		// Answered here, as JSON with the security headers: the upgrader
		// would write its own plain-text 400.
		return apiError(store.CodeValidation, "this route takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
	}
	// The credential is checked again while the stream lives: a logout, a
	// revoked token, a disabled account or a lowered role ends it.
	check := func(ctx context.Context) error {
		_, err := s.authorize(r.WithContext(ctx), editorOrSt)
		return err
	}
	return s.streams.ServeStream(w, r, id, check)
}

// webSocketUpgrade reports whether r asks for a WebSocket (RFC 6455
// §4.2.1): Connection holds the token upgrade, and Upgrade websocket. The
// rest of the handshake is the upgrader's to check (a version other than
// 13 gets its 426 with the version it speaks).
func webSocketUpgrade(r *http.Request) bool {
	return headerToken(r.Header, "Connection", "upgrade") && headerToken(r.Header, "Upgrade", "websocket")
}

// headerToken reports whether a comma-separated header holds token, in
// any case.
func headerToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (s *Server) route(method, pattern string, ru rule, h handlerFunc) {
	s.routes = append(s.routes, method+" "+pattern)
	s.rules = append(s.rules, ru)
	s.router.Handle(method, pattern, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		setRoute(r.Context(), pattern)
		if ru.role != "" {
			p, err := s.authorize(r, ru)
			if err != nil {
				s.writeError(w, r, pattern, err)
				return
			}
			r = r.WithContext(store.WithPrincipal(r.Context(), p))
		}
		if err := h(w, r, ps); err != nil {
			s.writeError(w, r, pattern, err)
		}
	})
}

// Routes returns every registered route as "METHOD /pattern".
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxRoute
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

// routeBox lets the router tell the middleware which pattern matched.
type routeBox struct{ pattern string }

func setRoute(ctx context.Context, pattern string) {
	if b, ok := ctx.Value(ctxRoute).(*routeBox); ok {
		b.pattern = pattern
	}
}

// newRequestID returns a random id; it says nothing about the request.
func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// middleware sets the request id and security headers, refuses requests to
// a foreign Host or with an encoded separator in the path, bounds how long
// one write to the client may block, and writes one access log line per
// request: method, route pattern, status, the response size in whole MiB
// rounded up, duration and request id; never the raw path, query, IP
// address or user agent, and never an exact size (see store.MiB).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		box := &routeBox{}
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxRoute, box)
		h := w.Header()
		h.Set("X-Request-ID", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		h.Set("Cache-Control", "no-store")
		// No other origin may load a response (an <audio>, an <img>) into
		// its page, nor hold a window of tyst's.
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		// Each write gets the write deadline anew (responseWriter.Write).
		// After the handler, one more covers net/http's final flush of the
		// response, which then lifts it for the next request on the
		// connection (net/http's conn.serve, after finishRequest).
		rc := http.NewResponseController(w)
		rw := &responseWriter{ResponseWriter: w, status: http.StatusOK, rc: rc, writeIdle: s.writeIdle}
		defer func() {
			if !rw.hijacked { // a hijacked connection is its new owner's
				rc.SetWriteDeadline(time.Now().Add(s.writeIdle))
			}
		}()
		r = r.WithContext(ctx)
		switch {
		case !s.hostAllowed(r.Host):
			s.writeError(rw, r, "", apiError(store.CodeForbidden, "this server does not answer to that host name: an operator can add it with --public-host"))
		case encodedSeparator(r):
			s.writeError(rw, r, "", apiError(store.CodeNotFound, "no such endpoint"))
		default:
			next.ServeHTTP(rw, r)
		}
		s.log.Info("request",
			keyMethod, r.Method, keyRoute, box.pattern, keyStatus, rw.status,
			keyMiB, store.MiB(rw.bytes), keyDur, time.Since(start).Round(time.Microsecond).String(), keyRequestID, id)
	})
}

// responseWriter records the status and size and renews the write deadline
// before each write, so a client that stops reading is cut off after
// writeIdle however long the response. Unwrap lets http.ResponseController
// (and a WebSocket upgrade) reach the connection.
type responseWriter struct {
	http.ResponseWriter
	rc          *http.ResponseController
	writeIdle   time.Duration
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
}

func (rw *responseWriter) WriteHeader(status int) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = status, true
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.wroteHeader = true
	rw.rc.SetWriteDeadline(time.Now().Add(rw.writeIdle)) // unsupported writers: no limit
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Hijack hands the connection over (a WebSocket upgrade, through
// http.ResponseController) and notes it, so the middleware sets no
// deadline on a connection it no longer owns.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		rw.hijacked = true
	}
	return conn, brw, err
}

// Log keys, in one place (STYLE §9).
const (
	keyMethod    = "method"
	keyRoute     = "route"
	keyStatus    = "status"
	keyCode      = "code"
	keyMiB       = "mib"
	keyDur       = "dur"
	keyRequestID = "request_id"
	keyErr       = "err"
	keyRecordID  = "record_id"
)
