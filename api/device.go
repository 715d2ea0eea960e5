package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// Device cookies (OWASP, "Slow down online guessing attacks with device
// cookies"): the per-username login limit would let anyone who knows a
// username lock its owner out by failing five times. A browser that has
// logged in as a user gets a device cookie for that user; a login that
// presents it is counted against that device's own limit instead of the
// username's, so failures from elsewhere do not lock the owner out on a
// device they have used, and a success clears that device's failures.
//
// The cookie holds a random nonce and two MACs. The first binds it to the
// username; the second also to the account's credential stamp
// (store.DB.CredentialStamp), which changes when its password or second
// factor is reset or it is disabled. A cookie from before such a change
// counts as no cookie: someone who once knew the password, and gathered
// cookies by logging in then, gains nothing from them after the reset. A
// cookie of the present stamp can only be had by logging in with the
// present credentials, whose holder needs no guesses, so each device
// keeps its own budget and there is no budget the devices of a username
// share (one let a former holder spend it with his stale cookies and lock
// the owner's own browser out). The stamp is read only for a cookie whose
// first MAC holds, so a made-up cookie costs no database read and its
// timing tells nothing about whether the account exists.
//
// The cookie names nobody and is sent to the login route only. Its key
// lives in memory: after a restart every login counts per username again
// until it succeeds once.

// deviceCookie is the name of the device cookie.
const deviceCookie = "tyst_device"

// deviceCookieTTL is how long a browser keeps its device cookie.
const deviceCookieTTL = 90 * 24 * time.Hour

// deviceNonceSize and deviceMACSize are the lengths of a device cookie's
// nonce and of each of its two MACs, in bytes.
const (
	deviceNonceSize = 16
	deviceMACSize   = 16
)

// devices issues and checks device cookies.
type devices struct {
	key [32]byte
}

func newDevices() *devices {
	d := &devices{}
	rand.Read(d.key[:])
	return d
}

// macs returns the cookie's two MACs for nonce: the first binds it to
// userKey (the normalised username's limiter key), the second to userKey
// and the account's credential stamp.
func (d *devices) macs(nonce []byte, userKey string, stamp []byte) []byte {
	out := make([]byte, 0, 2*deviceMACSize)
	for i, s := range [][]byte{nil, stamp} {
		m := hmac.New(sha256.New, d.key[:])
		m.Write([]byte{byte(i)})
		m.Write(nonce)
		m.Write([]byte{0})
		m.Write([]byte(userKey))
		if i == 1 {
			m.Write([]byte{0})
			m.Write(s)
		}
		out = append(out, m.Sum(nil)[:deviceMACSize]...)
	}
	return out
}

// known returns the limiter key of r's device cookie when it was issued for
// userKey under the account's present credential stamp, else "". It calls
// stamp (which returns nil for an unknown account) only when the cookie's
// first MAC shows it was issued for userKey, and returns what it read, nil
// when it read nothing.
func (d *devices) known(r *http.Request, userKey string, stamp func() []byte) (dev string, read []byte) {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return "", nil
	}
	n, m, ok := strings.Cut(c.Value, ".")
	nonce, err1 := base64.RawURLEncoding.DecodeString(n)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if !ok || err1 != nil || err2 != nil || len(nonce) != deviceNonceSize || len(mac) != 2*deviceMACSize ||
		!hmac.Equal(mac[:deviceMACSize], d.macs(nonce, userKey, nil)[:deviceMACSize]) {
		return "", nil
	}
	read = stamp()
	if read == nil || !hmac.Equal(mac[deviceMACSize:], d.macs(nonce, userKey, read)[deviceMACSize:]) {
		return "", read
	}
	return "device:" + n, read
}

// issue sets a new device cookie for userKey under the credential stamp
// read before the login succeeded (a change meanwhile voids the cookie; it
// never binds one to credentials the login did not prove).
func (d *devices) issue(w http.ResponseWriter, userKey string, stamp []byte, secure bool) {
	nonce := make([]byte, deviceNonceSize)
	rand.Read(nonce)
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookie,
		Value:    base64.RawURLEncoding.EncodeToString(nonce) + "." + base64.RawURLEncoding.EncodeToString(d.macs(nonce, userKey, stamp)),
		Path:     "/api/v1/session",
		MaxAge:   int(deviceCookieTTL / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// credentialStamp returns the credential stamp of account username, nil
// when it is unknown or cannot be read.
func (s *Server) credentialStamp(ctx context.Context, username string) []byte {
	stamp, err := s.accounts.CredentialStamp(ctx, username)
	if err != nil {
		return nil
	}
	return stamp
}
