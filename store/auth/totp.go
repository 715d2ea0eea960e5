package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"net/url"
	"strings"
	"time"
)

// TOTP as every authenticator app does it: RFC 6238 over HMAC-SHA1, 6 digits,
// 30-second steps counted from the Unix epoch.
const (
	totpSecretBytes = 20 // RFC 4226 §4 recommends 160 bits
	totpDigits      = 6
	totpPeriod      = 30 * time.Second
	totpSkewSteps   = 1
)

var totpBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a fresh 20-byte TOTP secret. Store it (it is needed to
// compute codes) alongside the last accepted step.
func NewTOTPSecret() []byte {
	b := make([]byte, totpSecretBytes)
	rand.Read(b) // never returns an error; crashes the program if the OS cannot give randomness
	return b
}

// TOTPURI returns the otpauth:// URI to show as a QR code for enrolment:
//
//	otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
//
// issuer and account are percent-encoded (all but RFC 3986's unreserved
// characters: spaces as %20, colons as %3A, UTF-8 bytes escaped) and the
// secret is base32 without padding.
func TOTPURI(issuer, account string, secret []byte) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(escape(issuer))
	b.WriteString(":")
	b.WriteString(escape(account))
	b.WriteString("?secret=")
	b.WriteString(totpBase32.EncodeToString(secret))
	b.WriteString("&issuer=")
	b.WriteString(escape(issuer))
	b.WriteString("&algorithm=SHA1&digits=6&period=30")
	return b.String()
}

// escape percent-encodes everything but RFC 3986's unreserved characters:
// spaces become %20 (some authenticator apps show a '+' literally) and a colon
// inside the issuer or account becomes %3A, so it cannot move the split of
// the label. QueryEscape turns a real '+' into %2B first, so replacing the
// '+' it makes of spaces is safe.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// totpStep returns the number of the 30-second step containing t (floor
// division, so times before 1970 get negative steps).
func totpStep(t time.Time) int64 {
	const period = int64(totpPeriod / time.Second)
	s := t.Unix()
	step := s / period
	if s%period < 0 {
		step--
	}
	return step
}

// TOTPCode returns the 6-digit code for the 30-second step containing t.
func TOTPCode(secret []byte, t time.Time) string {
	return hotp(secret, totpStep(t))
}

// hotp is RFC 4226 §5.3 with 6 digits: HMAC-SHA1 of the big-endian step,
// dynamic truncation, modulo 10^6, zero-padded.
func hotp(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	v %= 1_000_000
	var code [totpDigits]byte
	for i := totpDigits - 1; i >= 0; i-- {
		code[i] = byte('0' + v%10)
		v /= 10
	}
	return string(code[:])
}

// VerifyTOTP reports whether code is the code of the step containing t or of
// the step before or after it (one step of clock skew either way), and
// refuses every step <= lastStep, so each code works once and an older code
// never works after a newer one. On success it returns the matched step:
// store it as the new lastStep. The comparison is constant-time; a code that
// is not exactly 6 ASCII digits, or an empty secret, is refused.
func VerifyTOTP(secret []byte, code string, t time.Time, lastStep int64) (step int64, ok bool) {
	if len(secret) == 0 || !isTOTPCode(code) {
		return 0, false
	}
	now := totpStep(t)
	// Check every candidate, without stopping at a match, so the time spent
	// does not say which step matched. If two steps share the code, take the
	// later one: lastStep only moves forward.
	for s := now - totpSkewSteps; s <= now+totpSkewSteps; s++ {
		match := subtle.ConstantTimeCompare([]byte(hotp(secret, s)), []byte(code)) == 1
		if match && s > lastStep {
			step, ok = s, true
		}
	}
	return step, ok
}

func isTOTPCode(code string) bool {
	if len(code) != totpDigits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}
