package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

const (
	userCanary     = "canary-reporter"
	passwordCanary = "CANARY-pass-phrase-42"
)

// runUserCmd runs `tyst user ...` in-process and returns stdout, stderr and
// the exit code.
func runUserCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runCmd(t, strings.NewReader(stdin), append([]string{"user"}, args...)...)
}

// runTokenCmd runs `tyst token ...` in-process.
func runTokenCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCmd(t, nil, append([]string{"token"}, args...)...)
}

// mustOpenStore opens the data directory with key, as serve would.
func mustOpenStore(t *testing.T, dir, key string) *store.DB {
	t.Helper()
	kr, err := store.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestUserAddAndTokenCreate_Offline(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := filepath.Join(t.TempDir(), "data") // user add sets up a new data directory
	var outputs strings.Builder

	out, errOut, code := runUserCmd(t, passwordCanary+"\n", "add", "--data", dir, "--username", userCanary, "--role", "editor", "--password-stdin")
	outputs.WriteString(out + errOut)
	if code != 0 || out != "" || !strings.Contains(errOut, "user created (id 1)") {
		t.Fatalf("user add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	tokens := map[string]string{}
	for _, scope := range []string{"", store.ScopeStream} {
		args := []string{"create", "--data", dir, "--username", userCanary}
		if scope != "" {
			args = append(args, "--scope", scope)
		}
		out, errOut, code := runTokenCmd(t, args...)
		outputs.WriteString(errOut)
		if code != 0 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 || len(out) < 20 {
			t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		tokens[scope] = strings.TrimSuffix(out, "\n")
	}
	for _, canary := range []string{userCanary, passwordCanary, tokens[""], tokens[store.ScopeStream]} {
		if strings.Contains(outputs.String(), canary) {
			t.Fatalf("output shows %q:\n%s", canary, outputs.String())
		}
	}

	db := mustOpenStore(t, dir, key)
	defer db.Close()
	for scope, tok := range tokens {
		p, err := db.Authenticate(t.Context(), tok)
		if err != nil {
			t.Fatalf("scope %q: %v", scope, err)
		}
		if p.UserID != 1 || p.Role != store.RoleEditor || p.Scope != scope {
			t.Fatalf("principal %+v, want user 1, editor, scope %q", p, scope)
		}
	}
	if _, _, err := db.Login(t.Context(), userCanary, passwordCanary, ""); err != nil {
		t.Fatalf("login with the stdin password: %v", err)
	}
}

func TestUserAdd_Errors(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
	dir := t.TempDir()
	add := func(stdin string, args ...string) (string, string, int) {
		return runUserCmd(t, stdin, append([]string{"add", "--data", dir}, args...)...)
	}
	if _, errOut, code := add(passwordCanary+"\n", "--username", "taken-name", "--role", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("first add: exit %d, %q", code, errOut)
	}
	for name, c := range map[string]struct {
		stdin   string
		args    []string
		code    int
		mention string
	}{
		"ErrTaken":      {passwordCanary + "\n", []string{"--username", "taken-name", "--role", "viewer", "--password-stdin"}, 1, "taken"},
		"ErrBadRole":    {passwordCanary + "\n", []string{"--username", userCanary, "--role", "root", "--password-stdin"}, 2, "--role"},
		"ErrNoStdin":    {passwordCanary + "\n", []string{"--username", userCanary, "--role", "viewer"}, 2, "--password-stdin"},
		"ErrEmptyStdin": {"", []string{"--username", userCanary, "--role", "viewer", "--password-stdin"}, 2, "stdin"},
		"ErrShortPass":  {"short\n", []string{"--username", userCanary, "--role", "viewer", "--password-stdin"}, 1, "validation_error"},
		"ErrBadName":    {passwordCanary + "\n", []string{"--username", "A B", "--role", "viewer", "--password-stdin"}, 1, "username"},
		"ErrNoUsername": {passwordCanary + "\n", []string{"--role", "viewer", "--password-stdin"}, 2, "--username"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := add(c.stdin, c.args...)
			if code != c.code || out != "" || !strings.Contains(errOut, c.mention) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want a mention of %s)", code, c.code, out, errOut, c.mention)
			}
			if strings.Contains(errOut, passwordCanary) {
				t.Fatalf("stderr shows the password: %q", errOut)
			}
		})
	}
	t.Run("ErrNoSubcommand", func(t *testing.T) {
		if _, errOut, code := runUserCmd(t, "", "remove"); code != 2 || !strings.Contains(errOut, "unknown subcommand") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
		if _, _, code := runUserCmd(t, ""); code != 2 {
			t.Fatalf("no subcommand: exit %d", code)
		}
	})
	db := mustOpenStore(t, dir, os.Getenv("PROJECT_FILES_KEY"))
	defer db.Close()
	if users, _ := db.Users(t.Context()); len(users) != 1 {
		t.Fatalf("%d users after failed adds, want 1", len(users))
	}
}

func TestUserAndToken_Help(t *testing.T) {
	for _, c := range []struct {
		run     func() (string, string, int)
		mention string
	}{
		{func() (string, string, int) { return runUserCmd(t, "", "add", "--help") }, "-password-stdin"},
		{func() (string, string, int) { return runUserCmd(t, "", "--help") }, "user add"},
		{func() (string, string, int) { return runTokenCmd(t, "create", "--help") }, "-scope"},
		{func() (string, string, int) { return runTokenCmd(t, "--help") }, "token create"},
	} {
		if _, errOut, code := c.run(); code != 0 || !strings.Contains(errOut, c.mention) {
			t.Fatalf("--help: exit %d, %q lacks %s", code, errOut, c.mention)
		}
	}
}

// TestUserAdd_NoKey: offline, without a key, the tools refuse rather than
// make a key of their own that the server would not use.
func TestUserAdd_NoKey(t *testing.T) {
	clearKeyEnv(t)
	dir := t.TempDir()
	_, errOut, code := runUserCmd(t, "a long enough password\n", "add", "--data", dir, "--username", "ed", "--role", "editor", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "no newsroom key") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "files.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("files.key was made: %v", err)
	}
}

// TestUserAdd_Normalised: a username stored lower-cased or trimmed says so,
// without repeating the name or the password, and the login works.
func TestUserAdd_Normalised(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := t.TempDir()
	for _, c := range []struct{ typed, stored, note string }{
		{"Canary-Editor", "canary-editor", "stored lower-cased (logins ignore case)"},
		{" canary-viewer\t", "canary-viewer", "stored without its surrounding spaces"},
		{" Canary-Admin ", "canary-admin", "stored lower-cased and without its surrounding spaces"},
		{"canary-plain", "canary-plain", ""},
	} {
		out, errOut, code := runUserCmd(t, passwordCanary+"\n", "add", "--data", dir, "--username", c.typed, "--role", "viewer", "--password-stdin")
		if code != 0 || out != "" || !strings.Contains(errOut, "user created (id") {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", c.typed, code, out, errOut)
		}
		if c.note == "" && strings.Contains(errOut, "stored") || !strings.Contains(errOut, c.note) {
			t.Fatalf("%q: stderr %q, want the note %q", c.typed, errOut, c.note)
		}
		if strings.Contains(strings.ToLower(errOut), "canary") {
			t.Fatalf("%q: stderr repeats the username or password: %q", c.typed, errOut)
		}
	}
	db := mustOpenStore(t, dir, key)
	defer db.Close()
	for _, name := range []string{"canary-editor", "canary-viewer", "canary-admin"} {
		if _, _, err := db.Login(t.Context(), name, passwordCanary, ""); err != nil {
			t.Fatalf("login as the stored name %q: %v", name, err)
		}
	}
}

// TestUserAdd_BadKey: offline, a malformed key stops user add before it
// makes the data directory.
func TestUserAdd_BadKey(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("PROJECT_FILES_KEY", "SECRET-not-a-key")
	dir := filepath.Join(t.TempDir(), "new")
	_, errOut, code := runUserCmd(t, passwordCanary+"\n", "add", "--data", dir, "--username", "ed", "--role", "editor", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "PROJECT_FILES_KEY") || strings.Contains(errOut, "SECRET") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was made: %v", err)
	}
}
