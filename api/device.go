package api

import (
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
// device they have used. The cookie holds a random nonce and a MAC that
// binds it to the username; it names nobody and is sent to the login
// route only. Its key lives in memory: after a restart every login counts
// per username again until it succeeds once.

// deviceCookie is the name of the device cookie.
const deviceCookie = "tyst_device"

// deviceCookieTTL is how long a browser keeps its device cookie.
const deviceCookieTTL = 90 * 24 * time.Hour

// deviceMACSize is the length of a device cookie's MAC, in bytes.
const deviceMACSize = 16

// devices issues and checks device cookies.
type devices struct {
	key [32]byte
}

func newDevices() *devices {
	d := &devices{}
	rand.Read(d.key[:])
	return d
}

// mac binds nonce to userKey (the normalised username's limiter key).
func (d *devices) mac(nonce []byte, userKey string) []byte {
	m := hmac.New(sha256.New, d.key[:])
	m.Write(nonce)
	m.Write([]byte{0})
	m.Write([]byte(userKey))
	return m.Sum(nil)[:deviceMACSize]
}

// known returns the limiter key of r's device cookie when it was issued
// for userKey, else "".
func (d *devices) known(r *http.Request, userKey string) string {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return ""
	}
	n, m, ok := strings.Cut(c.Value, ".")
	nonce, err1 := base64.RawURLEncoding.DecodeString(n)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if !ok || err1 != nil || err2 != nil || len(nonce) != 16 || !hmac.Equal(mac, d.mac(nonce, userKey)) {
		return ""
	}
	return "device:" + n
}

// issue sets a new device cookie for userKey.
func (d *devices) issue(w http.ResponseWriter, userKey string, secure bool) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookie,
		Value:    base64.RawURLEncoding.EncodeToString(nonce) + "." + base64.RawURLEncoding.EncodeToString(d.mac(nonce, userKey)),
		Path:     "/api/v1/session",
		MaxAge:   int(deviceCookieTTL / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}
