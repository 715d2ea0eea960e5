package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"unicode"
)

// secretBytes is the entropy of a NewSecret: 256 bits.
const secretBytes = 32

// NewSecret returns a fresh opaque secret: prefix followed by 32 random bytes
// in base64url without padding (43 characters), for example
// NewSecret("tyst_") = "tyst_" + 43 characters. The prefix says what the
// secret is (and lets secret scanners find leaked ones); it adds no entropy.
// Store SecretHash of the whole string, never the secret.
func NewSecret(prefix string) string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never returns an error; crashes the program if the OS cannot give randomness
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// SecretHash returns the SHA-256 of s (32 bytes): what the database stores and
// looks up instead of the secret. A plain hash is enough because secrets from
// NewSecret and recovery codes are random, not chosen by people; passwords use
// HashPassword.
func SecretHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// recoveryAlphabet has no 0, o, 1, l or i (nor their capitals after
// NormalizeRecoveryCode): 31 characters, so a 10-character code carries
// about 49.5 bits.
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

const recoveryCodeChars = 10

// NewRecoveryCodes returns n distinct one-time recovery codes, each 10
// characters from an unambiguous lower-case alphabet formatted "xxxxx-xxxxx".
// It returns an empty slice for n <= 0. Store SecretHash of
// NormalizeRecoveryCode(code) for each code, and delete it once used.
func NewRecoveryCodes(n int) []string {
	codes := make([]string, 0, max(n, 0))
	seen := make(map[string]bool, max(n, 0))
	for len(codes) < n {
		c := newRecoveryCode()
		if seen[c] {
			continue
		}
		seen[c] = true
		codes = append(codes, c)
	}
	return codes
}

// newRecoveryCode draws each character uniformly: bytes >= 248 (8*31) are
// dropped so the modulo has no bias.
func newRecoveryCode() string {
	const limit = 256 - 256%len(recoveryAlphabet)
	code := make([]byte, 0, recoveryCodeChars+1)
	buf := make([]byte, 2*recoveryCodeChars)
	for {
		rand.Read(buf) // never returns an error
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			if len(code) == recoveryCodeChars/2 {
				code = append(code, '-')
			}
			code = append(code, recoveryAlphabet[int(b)%len(recoveryAlphabet)])
			if len(code) == recoveryCodeChars+1 {
				return string(code)
			}
		}
	}
}

// NormalizeRecoveryCode returns code lower-cased with spaces (any Unicode
// white space) and dashes removed, so "ABCDE-fghij " and "abcde fghij" are
// the same code. Hash the result, not what the user typed.
func NormalizeRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, code)
}
