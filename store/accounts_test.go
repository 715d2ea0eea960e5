package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tyst/store"
)

// TestAccounts_SecretsOnlyHashed: passwords, session ids, API tokens, TOTP
// secrets never stand in the database file; usernames and password hashes
// only sealed under the newsroom key.
func TestAccounts_SecretsOnlyHashed(t *testing.T) {
	db, env := mustOpenDB(t)
	const password = "CANARY-password-1234"
	const username = "canary-username-77"
	if _, err := db.CreateUser(ctx, store.NewUser{Username: username, Password: password, Role: store.RoleEditor}); err != nil {
		t.Fatal(err)
	}
	token, _, err := db.CreateToken(ctx, username, "", "")
	if err != nil {
		t.Fatal(err)
	}
	session, u, err := db.Login(ctx, username, password, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Authenticate(ctx, session)
	if err != nil || p.UserID != u.ID || p.Role != store.RoleEditor {
		t.Fatalf("principal=%+v err=%v", p, err)
	}
	uri, err := db.BeginTOTP(store.WithPrincipal(ctx, p), "tyst", password)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(filepath.Join(env.dir, "tyst.db"))
	if err != nil {
		t.Fatal(err)
	}
	secret := uri[bytes.Index([]byte(uri), []byte("secret="))+7:]
	secret = secret[:bytes.IndexByte([]byte(secret), '&')]
	for what, s := range map[string]string{"password": password, "token": token, "session": session, "totp secret": secret,
		"username": username, "password hash": "$argon2id$"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the database holds the %s", what)
		}
	}
}

func TestAccounts_Authenticate(t *testing.T) {
	env := newEnv(t)
	opts := testOptions(t, env)
	opts.SessionTTL = time.Hour
	db := mustOpenEnv(t, env, opts)
	if _, err := db.CreateUser(ctx, store.NewUser{Username: "viewer", Password: "a long password", Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	session, _, err := db.Login(ctx, "viewer", "a long password", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret  string
		advance time.Duration
		code    store.Code
	}{
		"Unknown": {"tyst_s_nope", 0, store.CodeUnauthorized},
		"Empty":   {"", 0, store.CodeUnauthorized},
		"Expired": {session, time.Hour, store.CodeUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			env.now = env.now.Add(c.advance)
			_, err := db.Authenticate(ctx, c.secret)
			wantCode(t, err, c.code)
		})
	}
	t.Run("WrongPasswordSameErrorAsUnknownUser", func(t *testing.T) {
		_, _, e1 := db.Login(ctx, "viewer", "wrong password!", "")
		_, _, e2 := db.Login(ctx, "nobody", "wrong password!", "")
		if store.ErrorMessage(e1) != store.ErrorMessage(e2) || store.ErrorCode(e1) != store.CodeUnauthorized {
			t.Fatalf("%v / %v: a wrong password and an unknown user must look alike", e1, e2)
		}
	})
	t.Run("UsernameCaseAndSpace", func(t *testing.T) {
		if _, _, err := db.Login(ctx, "  VIEWER ", "a long password", ""); err != nil {
			t.Fatalf("login with case and spaces: %v", err)
		}
		_, err := db.CreateUser(ctx, store.NewUser{Username: "Viewer", Password: "a long password", Role: store.RoleViewer})
		wantCode(t, err, store.CodeConflict)
	})
}

// TestSensitive_NoTrace: another user sees no trace of a sensitive record:
// not in lists, not through a next-page cursor, not in project lists or
// counts; its creator and admins see it.
func TestSensitive_NoTrace(t *testing.T) {
	db, _ := mustOpenDB(t)
	owner := store.WithPrincipal(ctx, &store.Principal{UserID: 10, Role: store.RoleEditor})
	other := store.WithPrincipal(ctx, &store.Principal{UserID: 11, Role: store.RoleEditor})
	admin := store.WithPrincipal(ctx, &store.Principal{UserID: 12, Role: store.RoleAdmin})
	visible, err := db.CreateRecord(other, store.NewRecord{Title: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := db.CreateRecord(owner, store.NewRecord{Title: "secret", Sensitivity: store.SensitivitySensitive})
	if err != nil {
		t.Fatal(err)
	}
	recs, next, err := db.Records(other, store.RecordFilter{Before: 0, Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].ID != visible.ID || next != 0 {
		t.Fatalf("other's page: %v next=%d err=%v", recs, next, err)
	}
	if _, err := db.Record(other, secret.ID); store.ErrorCode(err) != store.CodeNotFound {
		t.Fatalf("other reads it: %v", err)
	}
	ps, _ := db.Projects(other)
	if len(ps) != 1 || ps[0].ID != visible.ProjectID {
		t.Fatalf("other's projects: %+v", ps)
	}
	for name, c := range map[string]context.Context{"owner": owner, "admin": admin} {
		if _, err := db.Record(c, secret.ID); err != nil {
			t.Fatalf("%s cannot read it: %v", name, err)
		}
		ps, _ := db.Projects(c)
		found := false
		for _, p := range ps {
			found = found || (p.ID == secret.ProjectID && p.Records == 1)
		}
		if !found {
			t.Fatalf("%s does not see its project: %+v", name, ps)
		}
	}
}

// TestAccounts_KeyRotation: an account written after a rotation moves to
// the new key, index and all, and still logs in once the old key is gone;
// while an account needs a key that is not configured, no name can be
// taken twice.
func TestAccounts_KeyRotation(t *testing.T) {
	k1, k2 := store.GenerateKey(), store.GenerateKey()
	env := newEnv(t)
	env.keys, _ = store.NewKeyring(k1)
	db := mustOpenEnv(t, env, testOptions(t, env))
	for _, name := range []string{"alice", "bob"} {
		if _, err := db.CreateUser(ctx, store.NewUser{Username: name, Password: "a long password", Role: store.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	env.keys, _ = store.NewKeyring(k2, k1) // rotated, old key kept
	db = mustOpenEnv(t, env, testOptions(t, env))
	editor := store.RoleEditor
	if _, err := db.UpdateUser(ctx, 1, store.UserUpdate{Role: &editor}); err != nil { // alice moves to k2
		t.Fatal(err)
	}
	_, err := db.CreateUser(ctx, store.NewUser{Username: " BOB", Password: "a long password", Role: store.RoleViewer})
	wantCode(t, err, store.CodeConflict)
	usage, _ := db.KeyUsage(ctx)
	if usage[env.keys.IDs()[1]] == 0 {
		t.Fatalf("bob still needs the old key, usage=%v", usage)
	}
	db.Close()

	env.keys, _ = store.NewKeyring(k2) // old key dropped
	db = mustOpenEnv(t, env, testOptions(t, env))
	if _, _, err := db.Login(ctx, "alice", "a long password", ""); err != nil {
		t.Fatalf("alice after the old key is gone: %v", err)
	}
	_, err = db.CreateUser(ctx, store.NewUser{Username: "bob", Password: "a long password", Role: store.RoleViewer})
	wantCode(t, err, store.CodeConflict)
	us, err := db.Users(ctx)
	if err != nil || len(us) != 2 || us[1].Unreadable != true || us[1].Username != "" || us[0].Username != "alice" {
		t.Fatalf("users=%+v err=%v", us, err)
	}
}
