package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"tyst/api"
	"tyst/store"
	"tyst/store/auth"
)

// TestLogin_DeviceCookie: five failures for a username from anywhere lock
// the username out (429), but not on a browser that has logged in as that
// user before: its device cookie is counted on its own. The cookie is bound
// to its user, cannot be forged or altered, names nobody, and goes to the
// login route only; failures on it lock that device alone.
func TestLogin_DeviceCookie(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	ts.mustUser(t, "alice", store.RoleEditor, "")
	ts.mustUser(t, "bob", store.RoleEditor, "")
	login := func(user, password, ip string, device *http.Cookie) (*http.Response, []byte) {
		return ts.deviceLogin(t, user, password, "", ip, device)
	}

	// Alice logs in on her laptop, and Bob on his.
	resp, body := login("alice", testPassword, "192.0.2.10", nil)
	laptop := deviceOf(resp)
	if resp.StatusCode != 200 || laptop == nil {
		t.Fatalf("login: %d %s, device cookie %v", resp.StatusCode, body, laptop)
	}
	if laptop.Path != "/api/v1/session" || !laptop.HttpOnly || laptop.SameSite != http.SameSiteStrictMode || laptop.MaxAge < 86400 ||
		strings.Contains(strings.ToLower(laptop.Value), "alice") {
		t.Fatalf("device cookie %+v", laptop)
	}
	resp, _ = login("bob", testPassword, "192.0.2.11", nil)
	bobs := deviceOf(resp)

	// Someone who knows her username fails five times from elsewhere.
	for range 5 {
		resp, body := login("alice", "not her password", "198.51.100.7", nil)
		wantError(t, resp, body, 401, "unauthorized")
	}
	resp, body = login("alice", testPassword, "192.0.2.12", nil)
	wantError(t, resp, body, 429, "rate_limited")
	resp, body = login("alice", testPassword, "192.0.2.12", bobs)
	wantError(t, resp, body, 429, "rate_limited") // Bob's device is not hers
	for _, forge := range []func(string) string{
		func(v string) string { return v[:len(v)-2] + "AA" },                                    // the MAC with the credentials
		func(v string) string { n, m, _ := strings.Cut(v, "."); return n + "." + "AA" + m[2:] }, // the MAC with the username
		func(v string) string { return "AA" + v[2:] },                                           // the nonce
		func(v string) string { n, _, _ := strings.Cut(v, "."); return n },                      // no MAC
	} {
		forged := *laptop
		if forged.Value = forge(laptop.Value); forged.Value == laptop.Value {
			t.Fatal("forging left the cookie as it was")
		}
		resp, body = login("alice", testPassword, "192.0.2.12", &forged)
		wantError(t, resp, body, 429, "rate_limited")
	}
	resp, body = login("alice", testPassword, "192.0.2.10", laptop)
	if resp.StatusCode != 200 {
		t.Fatalf("alice on her own laptop during the lockout: %d %s", resp.StatusCode, body)
	}
	if deviceOf(resp) != nil {
		t.Fatal("a login on a known device issued another device cookie")
	}

	// Failures on the laptop lock the laptop, not Bob's or the username's
	// count (still locked by the attacker, not by her).
	for range 5 {
		resp, body := login("alice", "a typo in it", "192.0.2.10", laptop)
		wantError(t, resp, body, 401, "unauthorized")
	}
	resp, body = login("alice", testPassword, "192.0.2.10", laptop)
	wantError(t, resp, body, 429, "rate_limited")
	resp, body = login("bob", testPassword, "192.0.2.11", bobs)
	if resp.StatusCode != 200 {
		t.Fatalf("bob: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(ts.log.String(), "tyst_device") || strings.Contains(ts.log.String(), laptop.Value) {
		t.Fatal("the device cookie reached the log")
	}
}

// deviceLogin logs in as user from address ip (X-Forwarded-For), with
// device cookie device when it is not nil;
// code is a second-factor code, or "".
func (ts *testServer) deviceLogin(tb testing.TB, user, password, code, ip string, device *http.Cookie) (*http.Response, []byte) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password, "totp": code})
	hdr := []string{"Authorization", "", "X-Forwarded-For", ip}
	if device != nil {
		hdr = append(hdr, "Cookie", device.Name+"="+device.Value)
	}
	return ts.do(tb, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), hdr...)
}

// deviceOf returns the device cookie resp sets, or nil.
func deviceOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "tyst_device" {
			return c
		}
	}
	return nil
}

// mustDevice logs user in with password from ip and returns the device
// cookie the login issued.
func (ts *testServer) mustDevice(tb testing.TB, user, password, ip string, device *http.Cookie) *http.Cookie {
	tb.Helper()
	return ts.mustDeviceTOTP(tb, user, password, "", ip, device)
}

// mustDeviceTOTP is mustDevice with a second-factor code.
func (ts *testServer) mustDeviceTOTP(tb testing.TB, user, password, code, ip string, device *http.Cookie) *http.Cookie {
	tb.Helper()
	resp, body := ts.deviceLogin(tb, user, password, code, ip, device)
	c := deviceOf(resp)
	if resp.StatusCode != 200 || c == nil {
		tb.Fatalf("login: %d %s, device cookie %v", resp.StatusCode, body, c)
	}
	return c
}

// userID returns the id of account name.
func (ts *testServer) userID(tb testing.TB, name string) uint64 {
	tb.Helper()
	us, err := ts.db.Users(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range us {
		if u.Username == name {
			return u.ID
		}
	}
	tb.Fatalf("no user %s", name)
	return 0
}

// patchUser changes account name as the admin, through the API.
func (ts *testServer) patchUser(tb testing.TB, name, change string) {
	tb.Helper()
	resp, body := ts.do(tb, "PATCH", fmt.Sprintf("/api/v1/users/%d", ts.userID(tb, name)), "application/json", strings.NewReader(change))
	if resp.StatusCode != 200 {
		tb.Fatalf("PATCH %s: %d %s", change, resp.StatusCode, body)
	}
}

// wantLogins sends one login per password in order, with device cookie
// device (nil: none), and checks each answer's status.
func (ts *testServer) wantLogins(tb testing.TB, user, ip string, device *http.Cookie, passwords []string, statuses ...int) {
	tb.Helper()
	for i, p := range passwords {
		resp, body := ts.deviceLogin(tb, user, p, "", ip, device)
		if resp.StatusCode != statuses[i] {
			tb.Fatalf("login %d of %d: %d %s, want %d", i+1, len(passwords), resp.StatusCode, body, statuses[i])
		}
	}
}

// repeat returns n copies of s.
func repeat[T any](n int, s T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// enrolTOTP enrols a second factor for user and returns its current code.
func (ts *testServer) enrolTOTP(tb testing.TB, user string, clk *clock) func() string {
	tb.Helper()
	session := ts.mustLogin(tb, user)
	resp, body := ts.do(tb, "POST", "/api/v1/me/totp", "application/json", strings.NewReader(`{"password":"`+testPassword+`"}`), asCookie(session)...)
	var begin struct {
		URI string `json:"otpauth_uri"`
	}
	mustUnmarshal(tb, body, &begin)
	u, err := url.Parse(begin.URI)
	if resp.StatusCode != 200 || err != nil {
		tb.Fatalf("begin: %d %s", resp.StatusCode, body)
	}
	secret := mustBase32(tb, u.Query().Get("secret"))
	code := func() string { return auth.TOTPCode(secret, clk.Now()) }
	resp, body = ts.do(tb, "POST", "/api/v1/me/totp/confirm", "application/json", strings.NewReader(`{"code":"`+code()+`"}`), asCookie(session)...)
	if resp.StatusCode != 200 {
		tb.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}
	return code
}

// TestLogin_DeviceCookiesVoidAfterReset: someone who once knew a password
// (and second factor) can gather a device cookie from every login he
// makes. After a password or second-factor reset, each of them counts as
// no cookie: all of them together get the username's 5 guesses in the
// window, not 5 each (the second adversarial review drew 50 from 10
// cookies), and the next login with the new credentials on such a browser
// gets it a new cookie.
func TestLogin_DeviceCookiesVoidAfterReset(t *testing.T) {
	for _, reset := range []string{`{"password":"a brand new password"}`, `{"reset_totp":true}`} {
		t.Run(reset, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
			ts := mustServe(t, withClock(clk), func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
			ts.mustUser(t, "carol", store.RoleEditor, "")
			code := ts.enrolTOTP(t, "carol", clk)
			var cookies []*http.Cookie
			for i := range 10 {
				clk.Add(30 * time.Second) // a code works once
				cookies = append(cookies, ts.mustDeviceTOTP(t, "carol", testPassword, code(), fmt.Sprintf("203.0.113.%d", i), nil))
			}
			ts.patchUser(t, "carol", reset)
			password := testPassword
			if strings.Contains(reset, "password") {
				password = "a brand new password"
			}
			checked := 0
			for i := range 60 {
				c := cookies[i%len(cookies)]
				resp, b := ts.deviceLogin(t, "carol", "an old password", "", fmt.Sprintf("198.51.100.%d", i), c)
				switch resp.StatusCode {
				case 401:
					checked++
				case 429:
				default:
					t.Fatalf("guess %d: %d %s", i, resp.StatusCode, b)
				}
			}
			if checked != 5 {
				t.Fatalf("%d guesses reached the password check through 10 stale device cookies, want 5", checked)
			}
			// Counted as the username's: no cookie, stale or not, helps now.
			ts.wantLogins(t, "carol", "192.0.2.1", nil, []string{password}, 429)
			ts.wantLogins(t, "carol", "192.0.2.1", cookies[0], []string{password}, 429)
		})
	}

	// The owner's browser from before the reset gets a new cookie at its
	// next login, which then counts on its own again.
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	ts.mustUser(t, "dave", store.RoleEditor, "")
	old := ts.mustDevice(t, "dave", testPassword, "192.0.2.1", nil)
	ts.patchUser(t, "dave", `{"password":"a brand new password"}`)
	fresh := ts.mustDevice(t, "dave", "a brand new password", "192.0.2.1", old)
	if fresh.Value == old.Value {
		t.Fatal("the new device cookie is the old one")
	}
	ts.wantLogins(t, "dave", "198.51.100.1", nil, repeat(5, "wrong"), repeat(5, 401)...)
	ts.wantLogins(t, "dave", "192.0.2.1", old, []string{"a brand new password"}, 429)
	ts.wantLogins(t, "dave", "192.0.2.1", fresh, []string{"a brand new password"}, 200)
}

// TestLogin_StaleCookiesCannotLockOutOwner replays the fourth adversarial
// review's sequence: a former holder of the password keeps two device
// cookies from before an admin reset it, and fails with each of them, and
// without one, until every budget he can reach is spent. The owner, who
// has logged in with his new password since, still logs in on his laptop;
// so he does when someone fails with the owner's own other devices'
// cookies (a stolen phone): each device has its own 5, none shared. A
// success clears the device's failures.
func TestLogin_StaleCookiesCannotLockOutOwner(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	ts.mustUser(t, "ed", store.RoleEditor, "")
	const newPassword = "brand-new-secret-pw"
	laptop := ts.mustDevice(t, "ed", testPassword, "192.0.2.10", nil)
	stale := []*http.Cookie{
		ts.mustDevice(t, "ed", testPassword, "198.51.100.7", nil),
		ts.mustDevice(t, "ed", testPassword, "198.51.100.7", nil),
	}
	ts.patchUser(t, "ed", `{"password":"`+newPassword+`"}`)
	laptop = ts.mustDevice(t, "ed", newPassword, "192.0.2.10", laptop) // the owner gets his new password
	phone := ts.mustDevice(t, "ed", newPassword, "192.0.2.20", nil)
	tablet := ts.mustDevice(t, "ed", newPassword, "192.0.2.30", nil)

	// The stale cookies count as none: the username's 5, then 429.
	ts.wantLogins(t, "ed", "198.51.100.7", stale[0], repeat(5, "x"), repeat(5, 401)...)
	ts.wantLogins(t, "ed", "198.51.100.8", stale[1], repeat(5, "x"), repeat(5, 429)...)
	ts.wantLogins(t, "ed", "198.51.100.9", nil, repeat(5, "y"), repeat(5, 429)...)
	// The owner's other devices fail 5 times each (10: what all devices of
	// a username shared before), and lock only themselves.
	ts.wantLogins(t, "ed", "203.0.113.1", phone, append(repeat(5, "z"), newPassword), append(repeat(5, 401), 429)...)
	ts.wantLogins(t, "ed", "203.0.113.2", tablet, append(repeat(5, "z"), newPassword), append(repeat(5, 401), 429)...)

	ts.wantLogins(t, "ed", "192.0.2.10", laptop, []string{newPassword}, 200)
	// A success clears the laptop's failures: 4 typos, a login, 5 more.
	ts.wantLogins(t, "ed", "192.0.2.10", laptop, append(append(repeat(4, "typo"), newPassword), repeat(5, "typo")...),
		append(append(repeat(4, 401), 200), repeat(5, 401)...)...)
	ts.wantLogins(t, "ed", "192.0.2.10", laptop, []string{newPassword}, 429)
	// A new browser is still the username's, locked by the flood (README).
	ts.wantLogins(t, "ed", "192.0.2.11", nil, []string{newPassword}, 429)
}
