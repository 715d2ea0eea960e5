package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

const testPassword = "correct horse battery staple"

func mustHashPassword(tb testing.TB, password string) string {
	tb.Helper()
	phc, err := HashPassword(password)
	if err != nil {
		tb.Fatal(err)
	}
	return phc
}

func TestHashPassword(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		phc := mustHashPassword(t, testPassword)
		if got, want := phc, "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(got, want) {
			t.Fatalf("HashPassword=%q, want prefix %q", got, want)
		}
		f := strings.Split(phc, "$")
		if got, want := len(f), 6; got != want {
			t.Fatalf("fields=%d, want %d", got, want)
		}
		salt, err := base64.RawStdEncoding.DecodeString(f[4])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(salt), 16; got != want {
			t.Fatalf("salt=%d bytes, want %d", got, want)
		}
		key, err := base64.RawStdEncoding.DecodeString(f[5])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(key), 32; got != want {
			t.Fatalf("key=%d bytes, want %d", got, want)
		}
		if strings.Contains(phc, testPassword) {
			t.Fatal("hash contains the password")
		}
	})
	t.Run("SaltedDifferently", func(t *testing.T) {
		if a, b := mustHashPassword(t, testPassword), mustHashPassword(t, testPassword); a == b {
			t.Fatalf("two hashes of the same password are equal: %q", a)
		}
	})
	t.Run("ErrPolicy", func(t *testing.T) {
		phc, err := HashPassword("short")
		if got, want := err, errPasswordShort; got != want {
			t.Fatalf("err=%v, want %v", got, want)
		}
		if phc != "" {
			t.Fatalf("HashPassword=%q, want empty", phc)
		}
	})
}

func TestVerifyPassword(t *testing.T) {
	phc := mustHashPassword(t, testPassword)

	t.Run("OK", func(t *testing.T) {
		if !VerifyPassword(phc, testPassword) {
			t.Fatal("VerifyPassword=false, want true")
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		for _, pw := range []string{"", "correct horse battery stapl", testPassword + " ", strings.ToUpper(testPassword)} {
			if VerifyPassword(phc, pw) {
				t.Fatalf("VerifyPassword(%q)=true, want false", pw)
			}
		}
	})
	t.Run("OtherParameters", func(t *testing.T) {
		// A hash as an older tyst (or another tool) would have written it,
		// built by hand rather than with HashPassword.
		salt := make([]byte, 16)
		rand.Read(salt)
		key := argon2.IDKey([]byte(testPassword), salt, 1, 4096, 1, 32)
		old := fmt.Sprintf("$argon2id$v=19$m=4096,t=1,p=1$%s$%s",
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
		if !VerifyPassword(old, testPassword) {
			t.Fatal("VerifyPassword=false, want true")
		}
		if VerifyPassword(old, "not the password") {
			t.Fatal("VerifyPassword(wrong)=true, want false")
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		f := strings.Split(phc, "$")
		salt, key := f[4], f[5]
		b64 := base64.RawStdEncoding.EncodeToString
		with := func(params, salt, key string) string {
			return "$argon2id$v=19$" + params + "$" + salt + "$" + key
		}
		const params = "m=19456,t=2,p=1"
		for _, tt := range []struct{ name, phc string }{
			{"Empty", ""},
			{"Dollar", "$"},
			{"Garbage", "not a hash"},
			{"NoLeadingDollar", strings.TrimPrefix(phc, "$")},
			{"TrailingDollar", phc + "$"},
			{"TrailingSpace", phc + " "},
			{"Argon2i", strings.Replace(phc, "argon2id", "argon2i", 1)},
			{"Bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
			{"Version16", strings.Replace(phc, "v=19", "v=16", 1)},
			{"NoVersion", "$argon2id$" + params + "$" + salt + "$" + key},
			{"ParamsReordered", with("t=2,m=19456,p=1", salt, key)},
			{"ParamsExtra", with(params+",k=1", salt, key)},
			{"ParamsMissing", with("m=19456,t=2", salt, key)},
			{"ParamsEmpty", with("", salt, key)},
			{"MemoryZero", with("m=0,t=2,p=1", salt, key)},
			{"MemoryBelow8P", with("m=64,t=1,p=16", salt, key)},
			{"MemoryOver1GiB", with("m=1048577,t=2,p=1", salt, key)},
			{"MemoryMaxUint32", with("m=4294967295,t=2,p=1", salt, key)},
			{"MemoryOverflow", with("m=18446744073709551617,t=2,p=1", salt, key)},
			{"MemoryNegative", with("m=-1,t=2,p=1", salt, key)},
			{"MemoryPlus", with("m=+19456,t=2,p=1", salt, key)},
			{"MemoryLeadingZero", with("m=019456,t=2,p=1", salt, key)},
			{"MemoryHex", with("m=0x4c00,t=2,p=1", salt, key)},
			{"MemoryNoValue", with("m=,t=2,p=1", salt, key)},
			{"TimeZero", with("m=19456,t=0,p=1", salt, key)},
			{"TimeOver10", with("m=19456,t=11,p=1", salt, key)},
			{"ThreadsZero", with("m=19456,t=2,p=0", salt, key)},
			{"ThreadsOver16", with("m=19456,t=2,p=17", salt, key)},
			{"ThreadsOverUint8", with("m=19456,t=2,p=257", salt, key)},
			{"SaltEmpty", with(params, "", key)},
			{"SaltShort", with(params, b64(make([]byte, 4)), key)},
			{"SaltLong", with(params, b64(make([]byte, 65)), key)},
			{"SaltPadded", with(params, salt+"==", key)},
			{"SaltNotBase64", with(params, "!!!!!!!!!!!!!!!!!!!!!!", key)},
			{"SaltURLAlphabet", with(params, "-_-_-_-_-_-_-_-_-_-_-_", key)},
			{"KeyEmpty", with(params, salt, "")},
			{"KeyShort", with(params, salt, b64(make([]byte, 4)))},
			{"KeyLong", with(params, salt, b64(make([]byte, 65)))},
			{"KeyTruncated", with(params, salt, key[:len(key)-1])},
			{"KeyNonCanonical", with(params, salt, key[:len(key)-1]+"B")},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if VerifyPassword(tt.phc, testPassword) {
					t.Fatalf("VerifyPassword(%q)=true, want false", tt.phc)
				}
			})
		}
	})
}

func TestDummyVerify(t *testing.T) {
	t.Run("DoesTheWork", func(t *testing.T) {
		// DummyVerify only hides timing if its hash parses and is computed.
		p, ok := parsePHC(dummyPHC)
		if !ok {
			t.Fatalf("parsePHC(%q) failed", dummyPHC)
		}
		if got, want := p.memoryKiB, uint32(argonMemoryKiB); got != want {
			t.Fatalf("memory=%d, want %d", got, want)
		}
		if got, want := p.time, uint32(argonTime); got != want {
			t.Fatalf("time=%d, want %d", got, want)
		}
		if got, want := len(p.key), argonKeyBytes; got != want {
			t.Fatalf("key=%d bytes, want %d", got, want)
		}
		DummyVerify(testPassword)
	})
}

func TestCheckPassword(t *testing.T) {
	for _, tt := range []struct {
		name     string
		password string
		want     error
	}{
		{"ErrEmpty", "", errPasswordShort},
		{"ErrNineChars", "12345678x", errPasswordShort},
		{"ErrNineRunesOf27Bytes", strings.Repeat("€", 9), errPasswordShort},
		{"OKTenChars", "tyst-8f3k2", nil},
		{"OKTenRunesOf20Bytes", "äöåäöåäöåü", nil},
		{"OK256Runes", strings.Repeat("äö", 128), nil},
		{"OKSpacesInside", "  a b c d e  ", nil},
		{"Err257Chars", strings.Repeat("ab", 128) + "c", errPasswordLong},
		{"ErrInvalidUTF8", "0123456789\xff", errPasswordEncoding},
		{"ErrInvalidUTF8Short", "\xff", errPasswordEncoding},
		{"ErrSpaces", "          ", errPasswordBlank},
		{"ErrWhiteSpaceMixed", " \t\n\r\u00a0\u2003\u3000  \v\f", errPasswordBlank},
		{"ErrRepeated", "aaaaaaaaaa", errPasswordRepeated},
		{"ErrRepeatedRunes", strings.Repeat("ä", 256), errPasswordRepeated},
		{"ErrRepeatedDigits", "0000000000000", errPasswordRepeated},
		{"ErrCommon", "1234567890", errPasswordCommon},
		{"ErrCommonUpperCase", "PassWord123", errPasswordCommon},
		{"ErrCommonSpaced", "  qwertyuiop ", errPasswordCommon},
		{"ErrCommonDeepInList", "1qaz2wsx3edc", errPasswordCommon},
		{"OKCommonPlusOne", "1234567890!", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword(tt.password)
			if got, want := err, tt.want; !errors.Is(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("CheckPassword=%v, want %v", got, want)
			}
			if err != nil && tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("error %q contains the password", err)
			}
		})
	}
}

// TestCheckPassword_CommonList: the embedded list holds the 10,000 most
// common passwords, lower-cased, one a line; every one of them is refused
// (most by the length rule, the rest as common), in any case.
func TestCheckPassword_CommonList(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(commonPasswordsTxt, "\n"), "\n")
	if got, want := len(lines), 10000; got != want {
		t.Fatalf("list has %d entries, want %d", got, want)
	}
	if got, want := lines[0], "123456"; got != want {
		t.Fatalf("first entry %q, want %q (most common first)", got, want)
	}
	long := 0
	for _, p := range lines {
		if p == "" || p != strings.ToLower(p) {
			t.Fatalf("entry %q is empty or not lower-case", p)
		}
		if CheckPassword(p) == nil || CheckPassword(strings.ToUpper(p)) == nil {
			t.Fatalf("listed password %q passes the policy", p)
		}
		if len(p) >= minPasswordRunes {
			long++
		}
	}
	if got := len(commonPasswords()); got != long || long < 200 {
		t.Fatalf("the set holds %d passwords, want the %d listed ones of %d or more characters", got, long, minPasswordRunes)
	}
}

// BenchmarkCheckPassword: the policy check once the set is built.
func BenchmarkCheckPassword(b *testing.B) {
	CheckPassword(testPassword)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckPassword(testPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword(testPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	phc := mustHashPassword(b, testPassword)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyPassword(phc, testPassword) {
			b.Fatal("VerifyPassword=false")
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	f.Add(dummyPHC, testPassword)
	f.Add("$argon2id$v=19$m=4096,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "\xff\x00")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$$", "x")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, phc, password string) {
		// Parameters within the limits can still cost up to 10 GiB-passes;
		// verify only the cheap ones so the fuzzer keeps its pace and its
		// memory. Parsing, where the garbage goes, is always exercised.
		if p, ok := parsePHC(phc); ok && uint64(p.memoryKiB)*uint64(p.time) > 64*1024 {
			return
		}
		VerifyPassword(phc, password)
	})
}
