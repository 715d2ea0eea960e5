package store_test

import (
	"bytes"
	"encoding/base32"
	"net/url"
	"testing"

	"tyst/store"
	"tyst/store/auth"
)

// TestCredentialStamp: the stamp an account's device cookies are bound to
// stays put through logins and role changes, and changes when what a login
// proves changes: a password reset, a second factor enrolled or reset, the
// account disabled. (Undoing a change may bring an earlier stamp back: the
// credentials are those it stood for again.) An unknown username has none.
func TestCredentialStamp(t *testing.T) {
	db, env := mustOpenDB(t)
	const password = "a long password 1"
	u, err := db.CreateUser(ctx, store.NewUser{Username: "dana", Password: password, Role: store.RoleEditor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, store.NewUser{Username: "erik", Password: password, Role: store.RoleEditor}); err != nil {
		t.Fatal(err)
	}
	stamp := func(name string) []byte {
		t.Helper()
		s, err := db.CredentialStamp(ctx, name)
		if err != nil || len(s) != 32 {
			t.Fatalf("stamp of %s: %x, %v", name, s, err)
		}
		return s
	}
	seen := [][]byte{stamp("dana")}
	same := func(step string) {
		t.Helper()
		if s := stamp("DANA "); !bytes.Equal(s, seen[len(seen)-1]) {
			t.Fatalf("%s changed the stamp", step)
		}
	}
	changed := func(step string) {
		t.Helper()
		s := stamp("dana")
		if bytes.Equal(s, seen[len(seen)-1]) {
			t.Fatalf("%s left the stamp as it was", step)
		}
		seen = append(seen, s)
	}
	if bytes.Equal(stamp("erik"), seen[0]) {
		t.Fatal("two accounts with one password share a stamp")
	}

	session, _, err := db.Login(ctx, "dana", password, "")
	if err != nil {
		t.Fatal(err)
	}
	same("a login")
	editor := store.RoleViewer
	if _, err := db.UpdateUser(ctx, u.ID, store.UserUpdate{Role: &editor}); err != nil {
		t.Fatal(err)
	}
	same("a role change")
	p, err := db.Authenticate(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	uri, err := db.BeginTOTP(store.WithPrincipal(ctx, p), "tyst", password)
	if err != nil {
		t.Fatal(err)
	}
	same("a second factor begun, not confirmed")
	q, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmTOTP(store.WithPrincipal(ctx, p), auth.TOTPCode(secret, env.now)); err != nil {
		t.Fatal(err)
	}
	changed("enrolling a second factor")
	if _, err := db.UpdateUser(ctx, u.ID, store.UserUpdate{ResetTOTP: true}); err != nil {
		t.Fatal(err)
	}
	changed("a second-factor reset")
	newPassword := "another long password"
	if _, err := db.UpdateUser(ctx, u.ID, store.UserUpdate{Password: &newPassword}); err != nil {
		t.Fatal(err)
	}
	changed("a password reset")
	if _, err := db.UpdateUser(ctx, u.ID, store.UserUpdate{Password: &newPassword}); err != nil {
		t.Fatal(err)
	}
	changed("a reset to the same password")
	yes := true
	if _, err := db.UpdateUser(ctx, u.ID, store.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	changed("disabling the account")

	if s, err := db.CredentialStamp(ctx, "nobody"); store.ErrorCode(err) != store.CodeNotFound || s != nil {
		t.Fatalf("unknown user: %x, %v", s, err)
	}
}
