package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"tyst/api"
	"tyst/store"
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
		body, _ := json.Marshal(map[string]string{"username": user, "password": password})
		hdr := []string{"Authorization", "", "X-Forwarded-For", ip}
		if device != nil {
			hdr = append(hdr, "Cookie", device.Name+"="+device.Value)
		}
		return ts.do(t, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), hdr...)
	}
	deviceOf := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == "tyst_device" {
				return c
			}
		}
		return nil
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
	forged := *laptop
	forged.Value = laptop.Value[:len(laptop.Value)-2] + "AA"
	resp, body = login("alice", testPassword, "192.0.2.12", &forged)
	wantError(t, resp, body, 429, "rate_limited")
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

// TestLogin_DeviceCookiesDoNotMultiplyGuesses: someone who once knew a
// password can gather a device cookie from every login he makes; after a
// password reset, all of them together get 10 guesses in the window, not
// 5 each (the second adversarial review drew 50 from 10 cookies).
func TestLogin_DeviceCookiesDoNotMultiplyGuesses(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	ts.mustUser(t, "carol", store.RoleEditor, "")
	var cookies []*http.Cookie
	for i := range 10 {
		body, _ := json.Marshal(map[string]string{"username": "carol", "password": testPassword})
		resp, b := ts.do(t, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), "Authorization", "", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		for _, c := range resp.Cookies() {
			if c.Name == "tyst_device" {
				cookies = append(cookies, c)
			}
		}
		if resp.StatusCode != 200 || len(cookies) != i+1 {
			t.Fatalf("login %d: %d %s", i, resp.StatusCode, b)
		}
	}
	checked := 0
	for i := range 60 {
		c := cookies[i%len(cookies)]
		body, _ := json.Marshal(map[string]string{"username": "carol", "password": "an old password"})
		resp, b := ts.do(t, "POST", "/api/v1/session", "application/json", bytes.NewReader(body),
			"Authorization", "", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i), "Cookie", c.Name+"="+c.Value)
		switch resp.StatusCode {
		case 401:
			checked++
		case 429:
		default:
			t.Fatalf("guess %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if checked != 10 {
		t.Fatalf("%d guesses reached the password check through 10 device cookies, want 10", checked)
	}
}
