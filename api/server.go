// Package api serves tyst's HTTP API (DESIGN §5) on julienschmidt/httprouter:
// routing, request ids, security headers, JSON in and out, and the one table
// that maps error codes to statuses. It reaches data only through the small
// interfaces it declares, which *store.DB implements.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"tyst/store"
)

// Records is what the API needs of the store. Each method returns *store.Error
// values whose codes the API maps to statuses.
type Records interface {
	// CreateRecord returns validation_error or not_found (unknown project).
	CreateRecord(ctx context.Context, n store.NewRecord) (*store.Record, error)
	// Record returns not_found.
	Record(ctx context.Context, id uint64) (*store.Record, error)
	// Records returns validation_error for a bad limit.
	Records(ctx context.Context, before uint64, limit int) ([]*store.Record, uint64, error)
	Projects(ctx context.Context) ([]*store.Project, error)
	// AttachAudio returns not_found, conflict, validation_error,
	// payload_too_large, unsupported_media_type, insufficient_storage.
	AttachAudio(ctx context.Context, id uint64, n store.NewAudio) (*store.Audio, error)
	// OpenAudio returns not_found; the caller closes the reader.
	OpenAudio(ctx context.Context, id uint64) (*store.AudioReader, error)
	// Ready returns unavailable when the database is closed.
	Ready(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	Records        Records
	Logger         *slog.Logger // discards when nil
	Version        string
	MaxUploadBytes int64 // store.DefaultMaxUpload when zero
	// UploadIdleTimeout ends an upload that sends nothing for this long;
	// DefaultUploadIdleTimeout when zero.
	UploadIdleTimeout time.Duration
}

// DefaultUploadIdleTimeout is how long an upload may send nothing.
const DefaultUploadIdleTimeout = time.Minute

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	records    Records
	log        *slog.Logger
	version    string
	maxUpload  int64
	uploadIdle time.Duration
	router     *httprouter.Router
	routes     []string // "METHOD /pattern", for the OpenAPI and route tests
	handler    http.Handler
}

// handlerFunc is a route handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	s := &Server{
		records:   cfg.Records,
		log:       cfg.Logger,
		version:   cfg.Version,
		maxUpload: cfg.MaxUploadBytes,
		router:    httprouter.New(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxUpload <= 0 {
		s.maxUpload = store.DefaultMaxUpload
	}
	s.uploadIdle = cfg.UploadIdleTimeout
	if s.uploadIdle <= 0 {
		s.uploadIdle = DefaultUploadIdleTimeout
	}
	// With these on, httprouter answers "GET //evil.example/" with a
	// redirect to another host; tyst answers 404 instead.
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = false
	s.router.HandleOPTIONS = false
	s.router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, "", apiError(store.CodeNotFound, "no such endpoint"))
	})
	s.router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		s.log.Error("panic in handler", keyRequestID, requestID(r.Context()))
		s.writeError(w, r, "", apiError(store.CodeInternal, "internal error"))
	}
	s.registerRoutes()
	s.handler = s.middleware(s.router)
	return s
}

// registerRoutes composes every route in one place.
func (s *Server) registerRoutes() {
	s.route("GET", "/healthz", s.handleHealthz)
	s.route("GET", "/readyz", s.handleReadyz)
	s.route("GET", "/api/v1/openapi.json", s.handleOpenAPI)
	s.route("POST", "/api/v1/record", s.handleRecordCreate)
	s.route("GET", "/api/v1/records", s.handleRecordList)
	s.route("GET", "/api/v1/record/:id", s.handleRecordGet)
	s.route("GET", "/api/v1/projects", s.handleProjectList)
	s.route("POST", "/api/v1/record/:id/audio", s.handleAudioUpload)
	s.route("GET", "/api/v1/record/:id/audio", s.handleAudioGet)
}

func (s *Server) route(method, pattern string, h handlerFunc) {
	s.routes = append(s.routes, method+" "+pattern)
	s.router.Handle(method, pattern, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		setRoute(r.Context(), pattern)
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

// middleware sets the request id and security headers and writes one access
// log line per request: method, route pattern, status, bytes, duration and
// request id; never the raw path, query, IP address or user agent.
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
		rw := &responseWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r.WithContext(ctx))
		s.log.Info("request",
			keyMethod, r.Method, keyRoute, box.pattern, keyStatus, rw.status,
			keyBytes, rw.bytes, keyDur, time.Since(start).Round(time.Microsecond).String(), keyRequestID, id)
	})
}

// responseWriter records the status and size. Unwrap lets http.ResponseController
// (and a WebSocket upgrade) reach the connection.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (rw *responseWriter) WriteHeader(status int) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = status, true
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.wroteHeader = true
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Log keys, in one place (STYLE §9).
const (
	keyMethod    = "method"
	keyRoute     = "route"
	keyStatus    = "status"
	keyCode      = "code"
	keyBytes     = "bytes"
	keyDur       = "dur"
	keyRequestID = "request_id"
	keyErr       = "err"
	keyRecordID  = "record_id"
)
