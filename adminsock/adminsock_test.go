package adminsock_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"tyst/internal/testlog"

	"tyst/adminsock"
	"tyst/store"
)

var _ adminsock.Admin = (*store.DB)(nil)

// Canaries: none of them may reach a log line.
const (
	canaryUser     = "canary-user-7q"
	canaryPassword = "CANARY-password-9x"
)

func mustOpenDB(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	kr, err := store.NewKeyring(store.GenerateKey())
	if err != nil {
		tb.Fatal(err)
	}
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Error(err)
		}
		db.Close()
	})
	return db
}

// server is a running Serve on a real store in a temp data directory.
type server struct {
	dir  string
	db   *store.DB
	logs *testlog.Buffer
	stop func() // cancels Serve and waits for it
}

func mustServe(tb testing.TB) *server {
	tb.Helper()
	dir := tb.TempDir()
	db := mustOpenDB(tb, dir)
	ln, err := adminsock.Listen(dir)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- adminsock.Serve(ctx, ln, db, &maint{db: db}, slog.New(slog.NewJSONHandler(logs, nil))) }()
	var once sync.Once
	s := &server{dir: dir, db: db, logs: logs}
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Serve returned %v", err)
				}
			case <-time.After(10 * time.Second):
				tb.Error("Serve did not return after cancel")
			}
		})
	}
	tb.Cleanup(s.stop) // before the store closes: cleanups run last first
	return s
}

// rawCall sends line as is, ends its side of the connection and returns
// the answer line.
func rawCall(tb testing.TB, dir string, line []byte) string {
	tb.Helper()
	conn, err := net.Dial("unix", filepath.Join(dir, adminsock.SocketName))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		conn.Write(line) // the server may answer before it reads everything
		conn.(*net.UnixConn).CloseWrite()
	}()
	b, err := io.ReadAll(conn)
	if err != nil && len(b) == 0 {
		tb.Fatal(err)
	}
	return string(b)
}

func TestServe_CreateUserAndToken(t *testing.T) {
	s := mustServe(t)
	ctx := t.Context()

	resp, err := adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpUserAdd, Username: canaryUser, Role: store.RoleEditor, Password: canaryPassword})
	if err != nil {
		t.Fatal(err)
	}
	if resp.UserID == 0 {
		t.Fatalf("UserID=0 in %+v", resp)
	}
	users, err := s.db.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(users), 1; got != want {
		t.Fatalf("len(Users)=%d, want %d", got, want)
	}
	if u := users[0]; u.ID != resp.UserID || u.Username != canaryUser || u.Role != store.RoleEditor {
		t.Fatalf("user %+v, want id %d", u, resp.UserID)
	}

	for _, scope := range []string{"", store.ScopeStream} {
		tok, err := adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpTokenCreate, Username: canaryUser, Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Token == "" || tok.TokenID == 0 {
			t.Fatalf("token response %+v", tok)
		}
		p, err := s.db.Authenticate(ctx, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		if p.UserID != resp.UserID || p.Role != store.RoleEditor || p.Scope != scope || p.TokenID != tok.TokenID {
			t.Fatalf("principal %+v, want user %d scope %q", p, resp.UserID, scope)
		}
		if strings.Contains(s.logs.String(), tok.Token) {
			t.Fatal("a log line holds the token")
		}
	}

	s.stop()
	logs := s.logs.String()
	for _, canary := range []string{canaryUser, canaryPassword} {
		if strings.Contains(logs, canary) {
			t.Fatalf("log holds %q:\n%s", canary, logs)
		}
	}
	if got, want := strings.Count(logs, `"msg":"admin request"`), 3; got != want {
		t.Fatalf("%d request log lines, want %d:\n%s", got, want, logs)
	}
	for _, want := range []string{`"op":"user_add"`, `"op":"token_create"`, `"code":"ok"`, `"dur":`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %s:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dir, adminsock.SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after shutdown: %v", err)
	}
}

func TestServe_BadRequests(t *testing.T) {
	s := mustServe(t)
	ctx := t.Context()
	if _, err := s.db.CreateUser(ctx, store.NewUser{Username: "existing", Role: store.RoleViewer, Password: "a long enough password"}); err != nil {
		t.Fatal(err)
	}
	line := func(r adminsock.Request) []byte {
		b, _ := json.Marshal(r)
		return append(b, '\n')
	}
	for name, c := range map[string]struct {
		line []byte
		code store.Code
	}{
		"BadJSON":      {[]byte(`{"op":"user_add",` + canaryPassword + "\n"), store.CodeValidation},
		"TwoObjects":   {[]byte(`{"op":"token_create","username":"existing"} {}` + "\n"), store.CodeValidation},
		"UnknownField": {[]byte(`{"op":"token_create","username":"existing","secret":"` + canaryPassword + `"}` + "\n"), store.CodeValidation},
		"UnknownOp":    {line(adminsock.Request{Op: "drop_" + canaryPassword, Username: canaryUser}), store.CodeValidation},
		"BadRole":      {line(adminsock.Request{Op: adminsock.OpUserAdd, Username: canaryUser, Role: "root", Password: canaryPassword}), store.CodeValidation},
		"ShortPass":    {line(adminsock.Request{Op: adminsock.OpUserAdd, Username: canaryUser, Role: store.RoleAdmin, Password: "short"}), store.CodeValidation},
		"TakenName":    {line(adminsock.Request{Op: adminsock.OpUserAdd, Username: "existing", Role: store.RoleAdmin, Password: canaryPassword}), store.CodeConflict},
		"NoSuchUser":   {line(adminsock.Request{Op: adminsock.OpTokenCreate, Username: canaryUser}), store.CodeNotFound},
		"BadScope":     {line(adminsock.Request{Op: adminsock.OpTokenCreate, Username: "existing", Scope: "all"}), store.CodeValidation},
		"Oversized":    {[]byte(`{"op":"user_add","password":"` + strings.Repeat(canaryPassword, 10_000) + `"}` + "\n"), store.CodeTooLarge},
		"NoNewline":    {[]byte(`{"op":"nope"}`), store.CodeValidation},
	} {
		t.Run(name, func(t *testing.T) {
			var resp adminsock.Response
			got := rawCall(t, s.dir, c.line)
			if err := json.Unmarshal([]byte(got), &resp); err != nil || resp.Error == nil {
				t.Fatalf("answer %q: %v", got, err)
			}
			if resp.Error.Code != c.code || resp.Error.Message == "" {
				t.Fatalf("error %+v, want code %s", resp.Error, c.code)
			}
			if resp.Token != "" || resp.UserID != 0 {
				t.Fatalf("a failed request answered %+v", resp)
			}
			if strings.Contains(got, canaryPassword) || strings.Contains(got, canaryUser) {
				t.Fatalf("answer echoes the request: %q", got)
			}
		})
	}
	users, _ := s.db.Users(ctx)
	tokens, _ := s.db.Tokens(ctx)
	if len(users) != 1 || len(tokens) != 0 {
		t.Fatalf("bad requests changed the store: %d users, %d tokens", len(users), len(tokens))
	}

	t.Run("CallReturnsStoreError", func(t *testing.T) {
		_, err := adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpTokenCreate, Username: canaryUser})
		var e *store.Error
		if !errors.As(err, &e) || e.Code != store.CodeNotFound || e.Message == "" {
			t.Fatalf("err %v, want a not_found *store.Error", err)
		}
	})

	s.stop()
	logs := s.logs.String()
	for _, canary := range []string{canaryUser, canaryPassword} {
		if strings.Contains(logs, canary) {
			t.Fatalf("log holds %q:\n%s", canary, logs)
		}
	}
	if !strings.Contains(logs, `"op":"unknown"`) || !strings.Contains(logs, `"code":"payload_too_large"`) {
		t.Fatalf("log lacks the failed requests:\n%s", logs)
	}
}

func TestListen(t *testing.T) {
	t.Run("Mode0600", func(t *testing.T) {
		s := mustServe(t)
		st, err := os.Stat(filepath.Join(s.dir, adminsock.SocketName))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want a 0600 socket", st.Mode())
		}
	})
	t.Run("ErrServerRunning", func(t *testing.T) {
		s := mustServe(t)
		ln, err := adminsock.Listen(s.dir)
		if err == nil {
			ln.Close()
			t.Fatal("a second Listen on a served data directory succeeded")
		}
		if !errors.Is(err, adminsock.ErrServerRunning) || !strings.Contains(err.Error(), "another tyst server is running") {
			t.Fatalf("err %v, want ErrServerRunning", err)
		}
		if strings.Contains(err.Error(), s.dir) {
			t.Fatalf("error names the path: %v", err)
		}
		// The first server still works and its probe left no log line.
		if _, err := adminsock.Call(s.dir, adminsock.Request{Op: "nope"}); store.ErrorCode(err) != store.CodeValidation {
			t.Fatalf("first server after a second Listen: %v", err)
		}
		s.stop()
		if got := strings.Count(s.logs.String(), `"msg":"admin request"`); got != 1 {
			t.Fatalf("%d request log lines, want 1:\n%s", got, s.logs.String())
		}
	})
	t.Run("StaleSocket", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, adminsock.SocketName)
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false) // as if the server had crashed
		old.Close()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("no stale socket file: %v", err)
		}
		if _, err := adminsock.Call(dir, adminsock.Request{Op: adminsock.OpTokenCreate}); !errors.Is(err, adminsock.ErrNoServer) {
			t.Fatalf("Call on a stale socket: %v, want ErrNoServer", err)
		}
		ln, err := adminsock.Listen(dir)
		if err != nil {
			t.Fatalf("Listen after a stale socket: %v", err)
		}
		defer ln.Close()
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("socket %v, %v", st, err)
		}
	})
	t.Run("ErrNotASocket", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, adminsock.SocketName), []byte("x"), 0o600)
		if ln, err := adminsock.Listen(dir); err == nil {
			ln.Close()
			t.Fatal("Listen replaced a regular file")
		} else if strings.Contains(err.Error(), dir) {
			t.Fatalf("error names the path: %v", err)
		}
	})
	t.Run("ErrNoDir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "missing")
		if ln, err := adminsock.Listen(dir); err == nil {
			ln.Close()
			t.Fatal("Listen in a missing directory succeeded")
		} else if strings.Contains(err.Error(), dir) {
			t.Fatalf("error names the path: %v", err)
		}
	})
}

func TestCall_ErrNoServer(t *testing.T) {
	if _, err := adminsock.Call(t.TempDir(), adminsock.Request{Op: adminsock.OpTokenCreate}); !errors.Is(err, adminsock.ErrNoServer) {
		t.Fatalf("err %v, want ErrNoServer", err)
	}
	if _, err := adminsock.Call(filepath.Join(t.TempDir(), "missing"), adminsock.Request{Op: adminsock.OpTokenCreate}); !errors.Is(err, adminsock.ErrNoServer) {
		t.Fatalf("missing dir: err %v, want ErrNoServer", err)
	}
}

// TestServe_ShutdownCutsIdleConnections: a client that connects and sends
// nothing does not hold up shutdown for 30 s.
func TestServe_ShutdownCutsIdleConnections(t *testing.T) {
	s := mustServe(t)
	conn, err := net.Dial("unix", filepath.Join(s.dir, adminsock.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let Serve accept it
	start := time.Now()
	s.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// maint answers the long ops with the store, as serve's maintainer does,
// reporting progress twice.
type maint struct{ db *store.DB }

func (m *maint) Purge(ctx context.Context, dryRun bool, days int, progress func(done, total int)) (any, error) {
	return map[string]any{"dry_run": dryRun, "retention_days": days}, nil
}

func (m *maint) Verify(ctx context.Context, _ string, progress func(done, total int)) (any, error) {
	progress(1, 2)
	progress(2, 2)
	return m.db.Verify(ctx, store.VerifyOptions{})
}

func (m *maint) Rekey(ctx context.Context, progress func(done, total int)) (any, error) {
	return m.db.Rekey(ctx, store.RekeyOptions{Progress: progress})
}

func (m *maint) Backup(ctx context.Context, out string, progress func(done, total int)) (any, error) {
	return m.db.Backup(ctx, out, store.BackupOptions{Progress: progress})
}

func (m *maint) SigningKey(ctx context.Context) (any, error) {
	return map[string]string{"fingerprint": m.db.SigningKey().Fingerprint()}, nil
}

// TestLongOps: the long ops answer a JSON result after their progress
// lines; a relative backup path is refused.
func TestLongOps(t *testing.T) {
	s := mustServe(t)
	var seen [][2]int
	resp, err := adminsock.CallProgress(s.dir, adminsock.Request{Op: adminsock.OpVerify}, func(done, total int) { seen = append(seen, [2]int{done, total}) })
	if err != nil || len(seen) != 2 || seen[1] != [2]int{2, 2} || !strings.Contains(string(resp.Result), `"ok":true`) {
		t.Fatalf("verify: %s %v progress %v", resp.Result, err, seen)
	}
	resp, err = adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpPurge, DryRun: true, RetentionDays: 3})
	if err != nil || string(resp.Result) != `{"dry_run":true,"retention_days":3}` {
		t.Fatalf("purge: %s %v", resp.Result, err)
	}
	_, err = adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpBackup, Out: "relative/dir"})
	if store.ErrorCode(err) != store.CodeValidation {
		t.Fatalf("relative backup path: %v", err)
	}
	out := filepath.Join(t.TempDir(), "b")
	resp, err = adminsock.Call(s.dir, adminsock.Request{Op: adminsock.OpBackup, Out: out})
	if err != nil || !strings.Contains(string(resp.Result), "database_bytes") {
		t.Fatalf("backup: %s %v", resp.Result, err)
	}
	if _, err := os.Stat(filepath.Join(out, "tyst.db")); err != nil {
		t.Fatalf("backup wrote no database: %v", err)
	}
}
