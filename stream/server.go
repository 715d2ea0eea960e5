// Package stream takes in live audio over WebSocket (DESIGN §8): a client
// sends start (or resume), raw PCM in binary frames and stop; the server
// keeps the PCM in an encrypted spool, acknowledges only what is durable,
// and on stop (or when an abandoned stream's resume window ends) stores a
// WAV of it as the record's audio.
//
// Promises:
//   - An ack names bytes that are encrypted, written and synced into the
//     spool (<data>/spool/<stream_id>.spool, package stream/spool), never
//     bytes merely received. Spools are synced by group commit: every
//     SyncTick, the streams due (each about every AckInterval) go to a pool
//     of sync workers that write and sync them at once (the file system
//     commits them together); each is acknowledged when its sync is done.
//   - A dropped connection leaves the stream resumable for ResumeWindow
//     (EmptyWindow, 30 s, when it never received audio: it then goes
//     with its spool and leaves its record without audio); a resume gets
//     the durable offset and the client resends from there.
//     After a restart the spools are found again and stay resumable until
//     their window ends; the metadata a restart needs (record, principal,
//     format, source, times) lives encrypted inside the spool.
//   - One stream per record; a record that has audio takes none.
//   - Streams held (live, resumable or being stored) are bounded in all
//     (MaxStreams), per account (MaxStreamsPerUser, all its tokens and
//     sessions) and per API token (MaxStreamsPerToken); a start over a
//     bound is refused before its spool is made, and no spool costs a MiB
//     before audio arrives. One credential cannot take every slot.
//   - A connection lives only as long as its credential: the credential
//     it was opened with is checked again at start, resume and stop and
//     every CredentialInterval while it streams; once the session ends or
//     expires, the token is revoked, the account is disabled or may no
//     longer stream, the client is told unauthorized or forbidden (1008),
//     nothing more is acknowledged, and the stream is detached as if the
//     client had dropped: what it holds stays in the spool, resumable by
//     the same account (with a valid credential) for the resume window,
//     then stored into the record.
//   - Upgraded connections that have not started (or resumed) a stream are
//     bounded per API token, per account and in all, checked before the
//     upgrade (MaxUnstarted*); each must send start or resume within
//     StartTimeout of the upgrade (pings do not extend it) or is closed
//     with timeout. One credential cannot hold descriptors and memory with
//     sockets that never stream.
//   - Every read and write has a deadline; frames over proto.MaxFrameBytes
//     are refused from their header, before a byte of payload is read;
//     the frame read path allocates nothing in steady state; a client that
//     never reads gets its acks coalesced, not queued, and is closed when a
//     write times out.
//   - A record destroyed or purged (RecordGone, which the store calls
//     through store.DB.OnRecordGone) ends its stream at once, live or
//     resumable: the client is told record_destroyed, the spool is
//     overwritten and removed, the slot freed, and nothing is stored. A
//     spool of a destroyed record found at start is erased too.
//   - Spools are overwritten before removal (package internal/shred), after
//     a rename to <stream_id>.erasing and a sync of the directory, so that a
//     crash during the overwrite leaves a file the next start erases, never
//     one it takes for a damaged stream. After a stop the overwrite runs
//     once stored is answered.
//   - Nothing a client sends (titles never pass here; the source name, the
//     audio) and no address is logged.
//
// The store is reached through the Store interface, with the caller's
// principal in the context (store.WithPrincipal), also when a stream is
// stored after a restart.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream/dump"
	"tyst/stream/proto"
	"tyst/stream/spool"
)

// Store is what streaming needs of the store. Both run as the principal in
// ctx.
type Store interface {
	// Record returns not_found for a record that does not exist or that the
	// principal may not see.
	Record(ctx context.Context, id uint64) (*store.Record, error)
	// AttachAudio returns not_found, conflict (the record has audio),
	// forbidden, validation_error, payload_too_large, insufficient_storage,
	// internal_error; an *store.Error the body returns is passed through.
	AttachAudio(ctx context.Context, id uint64, n store.NewAudio) (*store.Audio, error)
	// Uploading reports whether an upload into record id is running.
	Uploading(id uint64) bool
	// RecordGone reports whether record id was destroyed or purged (whoever
	// the principal), for spools found after a restart.
	RecordGone(id uint64) (bool, error)
}

// Keys is the newsroom keyring: spools are sealed under the primary key
// and read with any.
type Keys interface {
	Primary() *fernet.Key
	All() []*fernet.Key
}

// Defaults of Config.
const (
	DefaultResumeWindow = 10 * time.Minute
	DefaultAckInterval  = time.Second
	DefaultSyncTick     = 50 * time.Millisecond
	DefaultIdleTimeout  = 60 * time.Second
	DefaultPingInterval = 20 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxStreams   = 4096
	// DefaultCredentialInterval is how often a live stream's credential is
	// checked again.
	DefaultCredentialInterval = time.Second
	// DefaultStartTimeout is how long an upgraded connection may take to
	// send start or resume.
	DefaultStartTimeout = 10 * time.Second
	// DefaultMaxUnstarted bounds the upgraded connections that have not
	// started a stream, in all; per account and per API token the bound is
	// twice their MaxStreamsPer*.
	DefaultMaxUnstarted = 1024
	// DefaultMaxStreamsPerUser and DefaultMaxStreamsPerToken bound the
	// streams one account, and one of its API tokens, holds: live and
	// resumable together.
	DefaultMaxStreamsPerUser  = 8
	DefaultMaxStreamsPerToken = 4
	// DefaultEmptyWindow is how long a dropped stream that never received
	// audio stays resumable.
	DefaultEmptyWindow = 30 * time.Second
	// DefaultMaxStreamBytes keeps a stream's WAV under 4 GiB, the most its
	// header can describe.
	DefaultMaxStreamBytes = 1<<32 - 1<<20
	spoolDirName          = "spool"
	spoolExt              = ".spool"
)

// Config configures a Server. Zero durations take their defaults.
type Config struct {
	Store   Store
	Keys    Keys
	DataDir string       // spools live in DataDir/spool (0700)
	Logger  *slog.Logger // discards when nil
	Dumper  *dump.Dumper // the debug dump (DESIGN §9); nil when off

	ResumeWindow time.Duration // how long a dropped stream stays resumable
	// EmptyWindow is how long a dropped stream that never received a byte
	// of audio stays resumable (at most ResumeWindow).
	EmptyWindow  time.Duration
	AckInterval  time.Duration // how often a stream is synced and acknowledged
	SyncTick     time.Duration // how often the group commit looks for due streams
	IdleTimeout  time.Duration // read deadline: a peer silent this long is closed
	PingInterval time.Duration // the server pings this often
	WriteTimeout time.Duration // deadline of every write
	// MaxStreams bounds the streams held at once, live and resumable.
	MaxStreams int
	// MaxStreamsPerUser bounds those of one account, all its API tokens
	// and sessions together; MaxStreamsPerToken those of one API token.
	MaxStreamsPerUser  int
	MaxStreamsPerToken int
	// MaxStreamBytes bounds one stream's PCM.
	MaxStreamBytes int64
	// CredentialInterval is how often a live stream's credential is
	// checked again (ServeStream's check).
	CredentialInterval time.Duration
	// StartTimeout is how long an upgraded connection may take to send
	// start or resume; pings do not extend it.
	StartTimeout time.Duration
	// MaxUnstarted bounds the upgraded connections that have not started
	// or resumed a stream, in all; MaxUnstartedPerUser and
	// MaxUnstartedPerToken those of one account and of one API token
	// (twice MaxStreamsPerUser and MaxStreamsPerToken when zero). A
	// connection over a bound is refused before the upgrade.
	MaxUnstarted         int
	MaxUnstartedPerUser  int
	MaxUnstartedPerToken int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// WrapSpool, when set, wraps each spool as it is opened; tests inject a
	// failing disk with it.
	WrapSpool func(SpoolFile) SpoolFile
}

// SpoolFile is what a stream writes its spool through (*spool.File).
type SpoolFile interface {
	Append(data []byte) error
	AppendMeta(meta []byte) error
	Sync() error
	Close() error
}

// Server serves the stream endpoint and owns the spools. It is safe for
// concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	dir   string
	codec *spool.Codec
	now   func() time.Time

	mu       sync.Mutex
	streams  map[string]*stream
	byRecord map[uint64]*stream
	// held counts the streams claimed (a start making its spool) or held,
	// in all and per principal (admit.go).
	held    tally
	conns   map[*conn]struct{}
	closing bool
	closed  bool // Close has returned: RecordGone leaves spools to the next start
	// unstarted counts the upgraded connections that have not started or
	// resumed a stream, in all, per user and per token (admit.go).
	unstarted tally
	// finished remembers streams stored lately (bounded, oldest forgotten
	// first), so that their owner, resuming after the window ended, learns
	// how much was stored.
	finished      map[string]finishedStream
	finishedOrder []string

	quit      chan struct{}
	syncq     chan *stream   // streams due for a sync, to the sync workers
	loops     sync.WaitGroup // syncer, its workers, janitor
	finals    sync.WaitGroup // finalisations in flight
	finalSlot chan struct{}  // bounds concurrent finalisations
	connWG    sync.WaitGroup
}

// Open creates the spool directory, finds the spools a previous run left
// (they stay resumable until their window ends) and starts the group
// commit and the expiry of abandoned streams. Close it.
func Open(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.DataDir == "" {
		return nil, errors.New("stream: Store, Keys and DataDir are required")
	}
	setDefault(&cfg.ResumeWindow, DefaultResumeWindow)
	setDefault(&cfg.EmptyWindow, DefaultEmptyWindow)
	cfg.EmptyWindow = min(cfg.EmptyWindow, cfg.ResumeWindow)
	setDefault(&cfg.AckInterval, DefaultAckInterval)
	setDefault(&cfg.SyncTick, DefaultSyncTick)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.PingInterval, DefaultPingInterval)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if cfg.MaxStreamsPerToken <= 0 {
		cfg.MaxStreamsPerToken = DefaultMaxStreamsPerToken
	}
	if cfg.MaxStreamBytes <= 0 {
		cfg.MaxStreamBytes = DefaultMaxStreamBytes
	}
	setDefault(&cfg.CredentialInterval, DefaultCredentialInterval)
	setDefault(&cfg.StartTimeout, DefaultStartTimeout)
	if cfg.MaxUnstarted <= 0 {
		cfg.MaxUnstarted = DefaultMaxUnstarted
	}
	if cfg.MaxUnstartedPerUser <= 0 {
		cfg.MaxUnstartedPerUser = 2 * cfg.MaxStreamsPerUser
	}
	if cfg.MaxUnstartedPerToken <= 0 {
		cfg.MaxUnstartedPerToken = 2 * cfg.MaxStreamsPerToken
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now,
		dir:       filepath.Join(cfg.DataDir, spoolDirName),
		codec:     spool.NewCodec(cfg.Keys.Primary()),
		streams:   map[string]*stream{},
		byRecord:  map[uint64]*stream{},
		held:      newTally(),
		unstarted: newTally(),
		conns:     map[*conn]struct{}{},
		finished:  map[string]finishedStream{},
		quit:      make(chan struct{}),
		syncq:     make(chan *stream, 1024),
		finalSlot: make(chan struct{}, 2),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("stream: spool directory cannot be created: %w", pathFree(err))
	}
	if err := s.sweepLeftovers(); err != nil {
		return nil, err
	}
	if err := s.recoverSpools(); err != nil {
		return nil, err
	}
	s.loops.Add(2 + maxSyncers)
	go s.syncLoop()
	for range maxSyncers {
		go s.syncWorker()
	}
	go s.janitorLoop()
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Close ends every connection (clients resume later, after a restart too),
// waits for finalisations in flight, syncs and closes the spools. Spools
// stay on disk.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	s.connWG.Wait()
	close(s.quit)
	s.loops.Wait()
	s.finals.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var first error
	for _, st := range s.streams {
		if err := st.closeFile(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ServeStream serves GET /api/v1/record/{id}/stream. The API calls it after
// authenticating the request (the principal is in r's context) and parsing
// the id. check tells whether the credential the request was authenticated
// with still allows streaming: it returns an unauthorized or forbidden
// *store.Error once it does not (other errors are taken as passing
// failures), and is called at start, resume and stop and every
// CredentialInterval while the stream is live; nil checks nothing.
//
// It checks the Origin of cookie-authenticated requests and the bounds of
// connections not yet streaming, then upgrades; an error it returns
// (forbidden, rate_limited, unavailable) is to be answered as JSON, and
// means nothing was upgraded. After the upgrade it serves the connection
// until it ends and returns nil.
func (s *Server) ServeStream(w http.ResponseWriter, r *http.Request, recordID uint64, check func(context.Context) error) error {
	p := store.PrincipalFrom(r.Context())
	if p == nil {
		return &store.Error{Code: store.CodeUnauthorized, Message: "log in or send an API token"}
	}
	if p.SessionID != nil && !sameOrigin(r) {
		// gobwas/ws checks no Origin: a page of another site could
		// otherwise stream into a logged-in reporter's record.
		return &store.Error{Code: store.CodeForbidden, Message: "cross-origin WebSocket refused"}
	}
	// Claimed before the upgrade, so that a refusal costs no socket past
	// this request; released when the connection starts a stream or ends.
	cl, err := s.claimUnstarted(p)
	if err != nil {
		return err
	}
	defer s.releaseUnstarted(cl)
	u := ws.HTTPUpgrader{Timeout: s.cfg.WriteTimeout}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		// The upgrader answered the request itself (400, 426).
		s.log.Info("websocket upgrade refused", "err", err.Error())
		return nil
	}
	c := newConn(s, nc, rw.Reader, p, recordID)
	c.check, c.claim = check, cl
	if !s.track(c) {
		c.writeClose(proto.CloseGoingAway, &proto.Error{Code: string(store.CodeUnavailable), Message: "server is shutting down"})
		c.nc.Close()
		return nil
	}
	defer s.untrack(c)
	c.serve()
	return nil
}

// sameOrigin reports whether the request's Origin names the host it was
// sent to. An absent Origin is refused: browsers always send one on a
// WebSocket, and only browsers send cookies.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// newStreamID returns 16 random bytes in hex.
func newStreamID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) spoolPath(id string) string { return filepath.Join(s.dir, id+spoolExt) }

// Streams returns the number of streams held (live and resumable), for
// status pages and tests.
func (s *Server) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Live returns the number of streams a connection is sending into.
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.streams {
		st.mu.Lock()
		if st.state == stateAttached {
			n++
		}
		st.mu.Unlock()
	}
	return n
}

// finishedStream is what a resume of a stored (or erased) stream is told.
type finishedStream struct {
	userID, recordID uint64
	stored           int64 // PCM bytes stored
	gone             bool  // erased: its record was destroyed
}

// maxFinished bounds the stored streams remembered.
const maxFinished = 4096

// rememberFinished records that st was stored with n PCM bytes, or, when
// gone, erased with its record.
func (s *Server) rememberFinished(st *stream, n int64, gone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.finishedOrder) >= maxFinished {
		delete(s.finished, s.finishedOrder[0])
		s.finishedOrder = s.finishedOrder[1:]
	}
	if gone {
		n = 0
	}
	s.finished[st.id] = finishedStream{userID: st.m.UserID, recordID: st.m.RecordID, stored: n, gone: gone}
	s.finishedOrder = append(s.finishedOrder, st.id)
}

// Busy reports whether a stream holds record id: running, or dropped and
// still resumable.
func (s *Server) Busy(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRecord[id] != nil
}
