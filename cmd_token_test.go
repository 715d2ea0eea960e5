package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/adminsock"
	"tyst/internal/testlog"
	"tyst/store"
)

func TestToken_Errors(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
	dir := t.TempDir()
	for name, c := range map[string]struct {
		args    []string
		code    int
		mention string
	}{
		"ErrNoSuchUser": {[]string{"create", "--data", dir, "--username", userCanary}, 1, "not_found"},
		"ErrBadScope":   {[]string{"create", "--data", dir, "--username", userCanary, "--scope", "all"}, 2, "--scope"},
		"ErrNoUsername": {[]string{"create", "--data", dir}, 2, "--username"},
		"ErrNoDataDir":  {[]string{"create", "--data", filepath.Join(dir, "missing"), "--username", userCanary}, 1, "does not exist"},
		"ErrUnknownSub": {[]string{"revoke"}, 2, "unknown subcommand"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runTokenCmd(t, c.args...)
			if code != c.code || out != "" || !strings.Contains(errOut, c.mention) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want a mention of %s)", code, c.code, out, errOut, c.mention)
			}
			if strings.Contains(errOut, userCanary) || strings.Contains(errOut, dir) {
				t.Fatalf("stderr shows the username or a path: %q", errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token create made a data directory: %v", err)
	}
}

// TestTokenCreate_RunningServer: while a server holds the database, token
// create and user add go over the admin socket. The "server" is the store
// and adminsock.Serve, as serve wires them.
func TestTokenCreate_RunningServer(t *testing.T) {
	clearKeyEnv(t)
	serverKey := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", store.GenerateKey()) // the CLI's key does not matter over the socket
	dir := t.TempDir()
	db := mustOpenStore(t, dir, serverKey)
	defer db.Close()
	ln, err := adminsock.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- adminsock.Serve(ctx, ln, db, newMaintainer(db, nil, dir, 0, nil), slog.New(slog.NewJSONHandler(&logs, nil)))
	}()
	stopAdmin := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not stop")
		}
	}
	defer cancel()

	out, errOut, code := runUserCmd(t, passwordCanary+"\n", "add", "--data", dir, "--username", userCanary, "--role", "viewer", "--password-stdin")
	if code != 0 || out != "" || !strings.Contains(errOut, "user created (id 1)") {
		t.Fatalf("user add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runUserCmd(t, passwordCanary+"\n", "add", "--data", dir, "--username", userCanary, "--role", "viewer", "--password-stdin"); code != 1 || !strings.Contains(errOut, "taken") {
		t.Fatalf("duplicate over the socket: exit %d, %q", code, errOut)
	}
	out, errOut, code = runTokenCmd(t, "create", "--data", dir, "--username", userCanary, "--scope", "stream")
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	token := strings.TrimSuffix(out, "\n")
	p, err := db.Authenticate(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != 1 || p.Role != store.RoleViewer || p.Scope != store.ScopeStream {
		t.Fatalf("principal %+v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "files.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the CLI touched the keys while a server ran: %v", err)
	}
	stopAdmin()
	for _, canary := range []string{userCanary, passwordCanary, token} {
		if strings.Contains(logs.String(), canary) || strings.Contains(errOut, canary) {
			t.Fatalf("logs or stderr show %q:\n%s", canary, logs.String())
		}
	}

	// The socket is gone but the database is still held: a clear error, not a hang.
	start := time.Now()
	out, errOut, code = runTokenCmd(t, "create", "--data", dir, "--username", userCanary)
	if code != 1 || out != "" || !strings.Contains(errOut, "held by another tyst process") {
		t.Fatalf("locked database: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("locked database took %v", d)
	}
}
