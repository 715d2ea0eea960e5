package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new hashes: OWASP's minimum for argon2id (19 MiB,
// 2 passes, 1 lane). One hash takes 25-40 ms and 19 MiB on the amd64
// development machine (2 vCPUs, BenchmarkHashPassword); a Raspberry Pi 4 class
// machine should stay well under 300 ms (not measured here). Hashes carry
// their parameters, so raising these later does not break existing hashes.
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonSaltBytes = 16
	argonKeyBytes  = 32
)

// Limits on the parameters VerifyPassword accepts from a stored hash. Anything
// outside is treated as a non-match instead of being computed, so a corrupt or
// planted hash cannot make a login allocate gigabytes or spin for minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 10
	maxArgonThreads   = 16
	minArgonSaltBytes = 8 // RFC 9106 §3.1
	maxArgonSaltBytes = 64
	minArgonKeyBytes  = 16
	maxArgonKeyBytes  = 64
)

// Password policy (CheckPassword).
const (
	minPasswordRunes = 10
	maxPasswordRunes = 256
)

// The policy errors of CheckPassword; their messages are meant for clients.
var (
	errPasswordEncoding = errors.New("password must be valid UTF-8")
	errPasswordShort    = fmt.Errorf("password must be at least %d characters", minPasswordRunes)
	errPasswordLong     = fmt.Errorf("password must be at most %d characters", maxPasswordRunes)
	errPasswordBlank    = errors.New("password must not be only white space")
	errPasswordRepeated = errors.New("password must not be one character repeated")
	errPasswordCommon   = errors.New("password is one of the most common passwords: choose another")
)

var b64 = base64.RawStdEncoding.Strict()

// dummyPHC is what DummyVerify verifies against: a well-formed hash with the
// current parameters that no password matches (its key is all zeros, so a
// match would be an argon2 preimage).
var dummyPHC = encodePHC(argonParams{
	memoryKiB: argonMemoryKiB, time: argonTime, threads: argonThreads,
	salt: make([]byte, argonSaltBytes), key: make([]byte, argonKeyBytes),
})

// CheckPassword reports whether password meets the policy: valid UTF-8, at
// least 10 and at most 256 characters (runes), not only white space, not one
// character repeated, and not one of the 10,000 most common passwords
// (compared case-insensitively, see commonPasswordsTxt). It returns nil or
// an error whose message is safe to show to the client as is.
func CheckPassword(password string) error {
	if !utf8.ValidString(password) {
		return errPasswordEncoding
	}
	switch n := utf8.RuneCountInString(password); {
	case n < minPasswordRunes:
		return errPasswordShort
	case n > maxPasswordRunes:
		return errPasswordLong
	}
	if strings.TrimFunc(password, unicode.IsSpace) == "" {
		return errPasswordBlank
	}
	first, size := utf8.DecodeRuneInString(password)
	if strings.Trim(password[size:], string(first)) == "" {
		return errPasswordRepeated
	}
	if isCommonPassword(password) {
		return errPasswordCommon
	}
	return nil
}

// HashPassword returns an argon2id hash of password in the PHC string format
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" (base64 without padding) with
// a fresh 16-byte random salt and a 32-byte key. It takes tens of milliseconds
// (see the parameters above).
//
// It refuses a password that CheckPassword refuses, with CheckPassword's
// error, so a hash of a password that breaks the policy is never stored.
func HashPassword(password string) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltBytes)
	rand.Read(salt) // never returns an error; crashes the program if the OS cannot give randomness
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyBytes)
	return encodePHC(argonParams{
		memoryKiB: argonMemoryKiB, time: argonTime, threads: argonThreads, salt: salt, key: key,
	}), nil
}

// VerifyPassword reports whether password matches phc, a hash from
// HashPassword. The parameters are read from phc, so hashes made with older
// parameters still verify. A malformed phc, another algorithm or version, or
// parameters beyond sane limits (memory over 1 GiB, more than 10 passes or 16
// lanes, salt or key of an odd length) is a non-match. The key comparison is
// constant-time. It never panics.
func VerifyPassword(phc, password string) bool {
	p, ok := parsePHC(phc)
	if !ok {
		return false
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memoryKiB, uint8(p.threads), uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// DummyVerify does the work of a VerifyPassword against a hash with the
// current parameters and discards the result. Call it when the username is
// unknown, so the response time does not reveal which usernames exist. (A
// user whose hash has older parameters answers in a different time; rehash on
// login to keep those rare.)
func DummyVerify(password string) {
	VerifyPassword(dummyPHC, password)
}

// argonParams is a parsed PHC string.
type argonParams struct {
	memoryKiB, time, threads uint32
	salt, key                []byte
}

func encodePHC(p argonParams) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memoryKiB, p.time, p.threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parsePHC parses "$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>" strictly (no
// other parameters, no other order, canonical base64) and checks the limits.
// ok is false for anything else.
func parsePHC(phc string) (p argonParams, ok bool) {
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, false
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return p, false
	}
	var ok1, ok2, ok3 bool
	p.memoryKiB, ok1 = parseParam(ps[0], "m=", maxArgonMemoryKiB)
	p.time, ok2 = parseParam(ps[1], "t=", maxArgonTime)
	p.threads, ok3 = parseParam(ps[2], "p=", maxArgonThreads)
	if !ok1 || !ok2 || !ok3 || p.time < 1 || p.threads < 1 || p.memoryKiB < 8*p.threads {
		return p, false
	}
	var err error
	if p.salt, err = b64.DecodeString(f[4]); err != nil || len(p.salt) < minArgonSaltBytes || len(p.salt) > maxArgonSaltBytes {
		return p, false
	}
	if p.key, err = b64.DecodeString(f[5]); err != nil || len(p.key) < minArgonKeyBytes || len(p.key) > maxArgonKeyBytes {
		return p, false
	}
	return p, true
}

// parseParam parses "<name><decimal>" with a value of at most max: ASCII
// digits only, no sign, no leading zeros.
func parseParam(s, name string, max uint32) (uint32, bool) {
	d, ok := strings.CutPrefix(s, name)
	if !ok || d == "" || len(d) > 10 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
		v = v*10 + uint64(d[i]-'0')
	}
	if v > uint64(max) {
		return 0, false
	}
	return uint32(v), true
}
