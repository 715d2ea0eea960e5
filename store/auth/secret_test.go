package auth

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := NewSecret("tyst_")
		rest, ok := strings.CutPrefix(s, "tyst_")
		if !ok {
			t.Fatalf("NewSecret=%q, want prefix tyst_", s)
		}
		if got, want := len(rest), 43; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(b), 32; got != want {
			t.Fatalf("decoded=%d bytes, want %d", got, want)
		}
	})
	t.Run("NoPrefix", func(t *testing.T) {
		if got, want := len(NewSecret("")), 43; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
	})
	t.Run("Unique", func(t *testing.T) {
		seen := make(map[string]bool)
		for range 1000 {
			s := NewSecret("s_")
			if seen[s] {
				t.Fatalf("duplicate secret %q", s)
			}
			seen[s] = true
		}
	})
}

func TestSecretHash(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := NewSecret("tyst_")
		h := SecretHash(s)
		if got, want := len(h), 32; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
		if !bytes.Equal(h, SecretHash(s)) {
			t.Fatal("SecretHash is not deterministic")
		}
		if bytes.Equal(h, SecretHash(s+"x")) {
			t.Fatal("different secrets hash the same")
		}
	})
	t.Run("KnownAnswer", func(t *testing.T) {
		// SHA-256("abc"), FIPS 180-2 Appendix B.1.
		const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
		if got := base16(SecretHash("abc")); got != want {
			t.Fatalf("SecretHash(abc)=%s, want %s", got, want)
		}
	})
}

func base16(b []byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&0x0f])
	}
	return s.String()
}

func TestNewRecoveryCodes(t *testing.T) {
	format := regexp.MustCompile(`^[a-z2-9]{5}-[a-z2-9]{5}$`)

	t.Run("OK", func(t *testing.T) {
		codes := NewRecoveryCodes(10)
		if got, want := len(codes), 10; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
		for _, c := range codes {
			if !format.MatchString(c) {
				t.Fatalf("code %q does not match %s", c, format)
			}
			if got, want := NormalizeRecoveryCode(c), strings.Replace(c, "-", "", 1); got != want {
				t.Fatalf("Normalize(%q)=%q, want %q", c, got, want)
			}
		}
	})
	t.Run("UnambiguousAlphabet", func(t *testing.T) {
		if strings.ContainsAny(recoveryAlphabet, "0oO1lIi") {
			t.Fatalf("alphabet %q has an ambiguous character", recoveryAlphabet)
		}
		used := make(map[rune]bool)
		for _, c := range NewRecoveryCodes(500) {
			for _, r := range strings.ReplaceAll(c, "-", "") {
				if !strings.ContainsRune(recoveryAlphabet, r) {
					t.Fatalf("code %q has %q, not in the alphabet", c, r)
				}
				used[r] = true
			}
		}
		// 5000 draws from 31 characters: all of them show up.
		if got, want := len(used), len(recoveryAlphabet); got != want {
			t.Fatalf("characters used=%d, want %d", got, want)
		}
	})
	t.Run("Unique", func(t *testing.T) {
		seen := make(map[string]bool)
		for _, c := range NewRecoveryCodes(2000) {
			if seen[c] {
				t.Fatalf("duplicate code %q", c)
			}
			seen[c] = true
		}
	})
	t.Run("NoneForZeroOrLess", func(t *testing.T) {
		for _, n := range []int{0, -1} {
			if got, want := len(NewRecoveryCodes(n)), 0; got != want {
				t.Fatalf("len(NewRecoveryCodes(%d))=%d, want %d", n, got, want)
			}
		}
	})
}

func TestNormalizeRecoveryCode(t *testing.T) {
	for _, tt := range []struct {
		name, code, want string
	}{
		{"Formatted", "abcde-fghij", "abcdefghij"},
		{"UpperWithTrailingSpace", "ABCDE-fghij ", "abcdefghij"},
		{"Space", "abcde fghij", "abcdefghij"},
		{"Loose", " ab-cde\tFG hij\n", "abcdefghij"},
		{"Empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := NormalizeRecoveryCode(tt.code), tt.want; got != want {
				t.Fatalf("Normalize(%q)=%q, want %q", tt.code, got, want)
			}
		})
	}
	t.Run("SameHash", func(t *testing.T) {
		a := SecretHash(NormalizeRecoveryCode("ABCDE-fghij "))
		b := SecretHash(NormalizeRecoveryCode("abcde fghij"))
		if !bytes.Equal(a, b) {
			t.Fatal("hashes differ")
		}
	})
}
