// Package adminsock is the local admin socket of a running tyst server,
// <data>/admin.sock (DESIGN §3, §10, §12). Commands such as `tyst token
// create` ask the server through it, because bbolt lets only one process
// open the database; with no server they open the database themselves.
//
// The protocol is one JSON request line and one JSON response line per
// connection. Calls run as the system (no principal): whoever can open the
// 0600 socket is the server's own user or root. Nothing here logs a
// username, password or token, and no error names a path.
package adminsock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"tyst/store"

	"tyst/internal/pathfree"
)

// SocketName is the admin socket's file name in the data directory.
const SocketName = "admin.sock"

// Ops of the protocol.
const (
	OpUserAdd     = "user_add"     // Username, Role, Password → UserID
	OpTokenCreate = "token_create" // Username, Scope, Label → Token, TokenID
	// The long ops answer Result (a JSON document), after progress lines.
	OpPurge      = "purge"       // DryRun, RetentionDays → Result
	OpVerify     = "verify"      // → Result
	OpRekey      = "rekey"       // → Result
	OpBackup     = "backup"      // Out (an absolute path) → Result
	OpSigningKey = "signing_key" // → Result
)

// longOps may run for minutes: they get no overall deadline, send progress
// lines, and each write to the connection has writeTimeout.
var longOps = map[string]bool{OpPurge: true, OpVerify: true, OpRekey: true, OpBackup: true}

// knownOps are logged by name; anything else as "unknown" (a typo could
// hold a secret).
var knownOps = map[string]bool{OpUserAdd: true, OpTokenCreate: true, OpPurge: true, OpVerify: true, OpRekey: true, OpBackup: true, OpSigningKey: true}

const (
	maxLineBytes = 64 << 10         // largest request or response line, without its newline
	connTimeout  = 30 * time.Second // a connection's whole life on the server, for short ops
	dialTimeout  = 2 * time.Second
	callTimeout  = connTimeout + 5*time.Second
	writeTimeout = 30 * time.Second // each progress or answer line of a long op
	// longIdle is how long a client of a long op waits for the next line:
	// progress comes after every record or file, so this is generous.
	longIdle = 10 * time.Minute
)

// Log keys, in one place (STYLE §9).
const (
	keyOp   = "op"
	keyCode = "code"
	keyDur  = "dur"
	keyErr  = "err"
)

// ErrNoServer is returned by Call when no server listens on the data
// directory's admin socket (no socket file, or a stale one): the caller may
// open the database itself.
var ErrNoServer = errors.New("adminsock: no tyst server is running on this data directory")

// ErrServerRunning is returned by Listen when a server already answers on
// the data directory's admin socket.
var ErrServerRunning = errors.New("another tyst server is running on this data directory")

// Admin is what the socket serves; *store.DB implements it.
type Admin interface {
	// CreateUser adds an account. Returns validation_error, conflict (taken).
	CreateUser(ctx context.Context, n store.NewUser) (*store.User, error)
	// CreateToken makes an API token for username with scope "" or
	// store.ScopeStream and returns its secret. Returns not_found,
	// validation_error.
	CreateToken(ctx context.Context, username, scope, label string) (string, *store.Token, error)
}

// Maintainer answers the long ops; its results are JSON documents (purge
// stats, verify report, rekey stats, backup stats). progress may be nil.
type Maintainer interface {
	Purge(ctx context.Context, dryRun bool, retentionDays int, progress func(done, total int)) (any, error)
	Verify(ctx context.Context, auditHead string, progress func(done, total int)) (any, error)
	Rekey(ctx context.Context, progress func(done, total int)) (any, error)
	Backup(ctx context.Context, out string, progress func(done, total int)) (any, error)
	SigningKey(ctx context.Context) (any, error)
}

// Request is one request line.
type Request struct {
	Op       string `json:"op"`
	Username string `json:"username,omitempty"`
	Role     string `json:"role,omitempty"`     // OpUserAdd
	Password string `json:"password,omitempty"` // OpUserAdd
	Scope    string `json:"scope,omitempty"`    // OpTokenCreate
	Label    string `json:"label,omitempty"`    // OpTokenCreate
	DryRun   bool   `json:"dry_run,omitempty"`  // OpPurge
	// RetentionDays overrides the server's retention for one purge; 0
	// keeps it.
	RetentionDays int    `json:"retention_days,omitempty"`
	Out           string `json:"out,omitempty"` // OpBackup: an absolute path
	// AuditHead is an earlier verify report's audit.head for OpVerify to
	// check ("SEQ:HASH"); empty checks none.
	AuditHead string `json:"audit_head,omitempty"`
}

// LogValue logs a request as its op only: never the username or password.
func (r Request) LogValue() slog.Value { return slog.StringValue(r.Op) }

// Response is one response line: the result of the op, or Error.
type Response struct {
	UserID  uint64          `json:"user_id,omitempty"`  // OpUserAdd
	Token   string          `json:"token,omitempty"`    // OpTokenCreate: the secret, shown once
	TokenID uint64          `json:"token_id,omitempty"` // OpTokenCreate
	Result  json.RawMessage `json:"result,omitempty"`   // the long ops and OpSigningKey
	// Progress marks a progress line of a long op; the answer follows.
	Progress *Progress      `json:"progress,omitempty"`
	Error    *ResponseError `json:"error,omitempty"`
}

// Progress is how much of a long op is done.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// LogValue logs a response as its error code or "ok": never the token.
func (r Response) LogValue() slog.Value {
	if r.Error != nil {
		return slog.StringValue(string(r.Error.Code))
	}
	return slog.StringValue("ok")
}

// ResponseError is a failed request's store.Code and client-safe message.
type ResponseError struct {
	Code    store.Code `json:"code"`
	Message string     `json:"message"`
}

// Listen opens the admin socket dataDir/admin.sock with mode 0600; dataDir
// must exist. A socket file left by a crashed server is replaced; one that a
// server answers on gives ErrServerRunning. Closing the listener removes the
// socket file.
func Listen(dataDir string) (net.Listener, error) {
	path := filepath.Join(dataDir, SocketName)
	ln, err := net.Listen("unix", path)
	if errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStale(path); err != nil {
			return nil, err
		}
		ln, err = net.Listen("unix", path)
	}
	if err != nil {
		return nil, fmt.Errorf("admin socket cannot be opened: %w", pathFree(err))
	}
	// The mode of a new socket follows the umask; the data directory is
	// 0700, so nobody else can reach it before this.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket cannot be restricted to 0600: %w", pathFree(err))
	}
	return ln, nil
}

// removeStale removes the socket file at path unless a server answers on it.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("admin socket cannot be opened: %w", pathFree(err))
	}
	if st.Mode().Type() != fs.ModeSocket {
		return errors.New("admin socket cannot be opened: admin.sock in the data directory is not a socket")
	}
	conn, err := net.DialTimeout("unix", path, dialTimeout)
	if err == nil {
		conn.Close()
		return ErrServerRunning
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket cannot be checked: %w", pathFree(err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stale admin socket cannot be removed: %w", pathFree(err))
	}
	return nil
}

// Serve answers requests on ln with a until ctx is done, then closes ln,
// waits for the requests in flight and returns nil. Each connection gets
// 30 s for one request line (at most 64 KiB) and its answer. Serve logs one
// line per request: op, code ("ok" or a store.Code) and duration. It returns
// an error only when ln fails for another reason.
func Serve(ctx context.Context, ln net.Listener, a Admin, m Maintainer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	// On shutdown, stop accepting and cut short reads that are still waiting
	// for a request; a request being carried out finishes and is answered.
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	defer wg.Wait()
	defer ln.Close()

	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return errors.New("admin socket: listener closed")
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("admin socket accept failed", keyErr, pathFree(err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		mu.Lock()
		conns[conn] = struct{}{}
		if ctx.Err() != nil {
			conn.SetReadDeadline(time.Now())
		}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
			}()
			handle(ctx, conn, a, m, log)
		})
	}
}

// handle answers the one request on conn and closes it.
func handle(ctx context.Context, conn net.Conn, a Admin, m Maintainer, log *slog.Logger) {
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(connTimeout))

	op := "unknown"
	var resp Response
	var cause error
	line, err := readLine(conn)
	switch {
	case errors.Is(err, errTooLarge):
		resp = errorResponse(err)
	case len(line) == 0 && err != nil:
		// Nothing came: a probe (Listen checking for a running server), or
		// an idle client cut off by the timeout or shutdown.
		return
	case err != nil:
		resp, cause = errorResponse(&store.Error{Code: store.CodeValidation, Message: "no complete request line"}), pathFree(err)
	default:
		var req Request
		if err := decodeRequest(line, &req); err != nil {
			resp = errorResponse(err)
			break
		}
		if knownOps[req.Op] {
			op = req.Op
		}
		opCtx, cancel := context.WithDeadline(ctx, start.Add(connTimeout))
		if longOps[req.Op] {
			// No overall deadline; each line written has its own.
			conn.SetDeadline(time.Time{})
			opCtx, cancel = context.WithCancel(ctx)
		}
		progress := func(done, total int) {
			out, _ := json.Marshal(Response{Progress: &Progress{Done: done, Total: total}})
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := conn.Write(append(out, '\n')); err != nil {
				cancel() // the client went away: stop the work
			}
		}
		resp, cause = do(opCtx, a, m, req, progress)
		cancel()
	}
	code := "ok"
	if resp.Error != nil {
		code = string(resp.Error.Code)
	}
	out, _ := json.Marshal(resp)
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(append(out, '\n')); err != nil && cause == nil {
		cause = pathFree(err)
	}
	args := []any{keyOp, op, keyCode, code, keyDur, time.Since(start).Round(time.Microsecond).String()}
	if cause = loggedCause(cause); cause != nil {
		args = append(args, keyErr, cause)
	}
	log.Info("admin request", args...)
}

// loggedCause returns what of err the log line needs beyond its code and
// message: a *store.Error's cause (path-free, store's promise), or err.
func loggedCause(err error) error {
	var e *store.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

// do carries out req.
func do(ctx context.Context, a Admin, m Maintainer, req Request, progress func(done, total int)) (Response, error) {
	var result any
	var err error
	switch req.Op {
	case OpUserAdd:
		u, err := a.CreateUser(ctx, store.NewUser{Username: req.Username, Password: req.Password, Role: req.Role})
		if err != nil {
			return errorResponse(err), err
		}
		return Response{UserID: u.ID}, nil
	case OpTokenCreate:
		secret, t, err := a.CreateToken(ctx, req.Username, req.Scope, req.Label)
		if err != nil {
			return errorResponse(err), err
		}
		return Response{Token: secret, TokenID: t.ID}, nil
	case OpPurge:
		result, err = m.Purge(ctx, req.DryRun, req.RetentionDays, progress)
	case OpVerify:
		result, err = m.Verify(ctx, req.AuditHead, progress)
	case OpRekey:
		result, err = m.Rekey(ctx, progress)
	case OpBackup:
		if !filepath.IsAbs(req.Out) {
			return errorResponse(&store.Error{Code: store.CodeValidation, Message: "backup directory must be an absolute path"}), nil
		}
		result, err = m.Backup(ctx, req.Out, progress)
	case OpSigningKey:
		result, err = m.SigningKey(ctx)
	default:
		return errorResponse(&store.Error{Code: store.CodeValidation, Message: "unknown op"}), nil
	}
	if err != nil {
		return errorResponse(err), err
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return errorResponse(err), err
	}
	return Response{Result: raw}, nil
}

// errorResponse answers err with its code and client-safe message, never
// its cause.
func errorResponse(err error) Response {
	return Response{Error: &ResponseError{Code: store.ErrorCode(err), Message: store.ErrorMessage(err)}}
}

// errTooLarge is readLine's error for a line longer than maxLineBytes.
var errTooLarge = &store.Error{Code: store.CodeTooLarge, Message: "line is larger than 64 KiB"}

// readLine reads one line of at most maxLineBytes (without its newline). A
// last line without a newline counts too; no line at all is io.EOF. On
// other errors it returns what it read so far.
func readLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, maxLineBytes+1))
	line, err := br.ReadBytes('\n')
	line = bytes.TrimSuffix(line, []byte("\n"))
	switch {
	case len(line) > maxLineBytes:
		return nil, errTooLarge
	case err == io.EOF && len(line) > 0:
		return line, nil
	}
	return line, err
}

// decodeRequest decodes one JSON object of the protocol, strictly.
func decodeRequest(line []byte, req *Request) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil || dec.More() {
		return &store.Error{Code: store.CodeValidation, Message: "request is not a JSON object of the admin protocol"}
	}
	return nil
}

// Call sends req to the server running on dataDir and returns its answer.
// It returns ErrNoServer when there is no socket file or nobody listens on
// it; a response with an error becomes a *store.Error with its code and
// message.
func Call(dataDir string, req Request) (Response, error) {
	return CallProgress(dataDir, req, nil)
}

// CallProgress is Call for the long ops: it calls progress, when not nil,
// for each progress line the server sends before its answer.
func CallProgress(dataDir string, req Request, progress func(done, total int)) (Response, error) {
	conn, err := net.DialTimeout("unix", filepath.Join(dataDir, SocketName), dialTimeout)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, ErrNoServer
		}
		return Response{}, fmt.Errorf("admin socket: %w", pathFree(err))
	}
	defer conn.Close()
	idle := callTimeout
	if longOps[req.Op] {
		idle = longIdle
	}
	conn.SetDeadline(time.Now().Add(idle))
	out, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	if _, err := conn.Write(append(out, '\n')); err != nil {
		return Response{}, fmt.Errorf("admin socket: send: %w", pathFree(err))
	}
	br := bufio.NewReaderSize(conn, 4096)
	for {
		line, err := readLineFrom(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Response{}, errors.New("admin socket: the server closed the connection without an answer")
			}
			if errors.Is(err, errTooLarge) {
				return Response{}, errors.New("admin socket: the server's answer is larger than 64 KiB")
			}
			return Response{}, fmt.Errorf("admin socket: no answer: %w", pathFree(err))
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return Response{}, errors.New("admin socket: the server's answer is not valid JSON")
		}
		if resp.Progress != nil {
			if progress != nil {
				progress(resp.Progress.Done, resp.Progress.Total)
			}
			conn.SetDeadline(time.Now().Add(idle))
			continue
		}
		if resp.Error != nil {
			return resp, &store.Error{Code: resp.Error.Code, Message: resp.Error.Message}
		}
		return resp, nil
	}
}

// readLineFrom reads one line of at most maxLineBytes from br.
func readLineFrom(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLineBytes+1 {
			return nil, errTooLarge
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// pathFree drops the socket path that net and os errors print.
func pathFree(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return pathfree.Strip(err)
}
