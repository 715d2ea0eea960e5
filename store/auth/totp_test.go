package auth

import (
	"encoding/base32"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA1 seed of RFC 6238 Appendix B.
var rfcSecret = []byte("12345678901234567890")

func TestTOTPCode(t *testing.T) {
	// RFC 6238 Appendix B, SHA1: the last 6 digits of the 8-digit codes.
	for _, tt := range []struct {
		unix int64
		want string
	}{
		{59, "287082"},          // 94287082
		{1111111109, "081804"},  // 07081804
		{1111111111, "050471"},  // 14050471
		{1234567890, "005924"},  // 89005924
		{2000000000, "279037"},  // 69279037
		{20000000000, "353130"}, // 65353130
	} {
		t.Run(time.Unix(tt.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			if got, want := TOTPCode(rfcSecret, time.Unix(tt.unix, 0)), tt.want; got != want {
				t.Fatalf("TOTPCode(%d)=%s, want %s", tt.unix, got, want)
			}
		})
	}
}

func TestTOTPStep(t *testing.T) {
	for _, tt := range []struct {
		unix, want int64
	}{
		{0, 0}, {29, 0}, {30, 1}, {59, 1}, {-1, -1}, {-30, -1}, {-31, -2},
	} {
		if got, want := totpStep(time.Unix(tt.unix, 0)), tt.want; got != want {
			t.Fatalf("totpStep(%d)=%d, want %d", tt.unix, got, want)
		}
	}
}

func TestVerifyTOTP(t *testing.T) {
	secret := NewTOTPSecret()
	now := time.Unix(1111111111, 0)
	step := totpStep(now)
	code := func(d time.Duration) string { return TOTPCode(secret, now.Add(d)) }

	t.Run("OK", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			d    time.Duration
			want int64
		}{
			{"Current", 0, step},
			{"Previous", -30 * time.Second, step - 1},
			{"Next", 30 * time.Second, step + 1},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, ok := VerifyTOTP(secret, code(tt.d), now, 0)
				if !ok {
					t.Fatal("VerifyTOTP=false, want true")
				}
				if want := tt.want; got != want {
					t.Fatalf("step=%d, want %d", got, want)
				}
			})
		}
	})
	t.Run("TwoStepsAway", func(t *testing.T) {
		for _, d := range []time.Duration{-60 * time.Second, 60 * time.Second} {
			c := code(d)
			if c == code(-30*time.Second) || c == code(0) || c == code(30*time.Second) {
				t.Skip("code collides with one in the window")
			}
			if _, ok := VerifyTOTP(secret, c, now, 0); ok {
				t.Fatalf("VerifyTOTP(now%+v)=true, want false", d)
			}
		}
	})
	t.Run("Replay", func(t *testing.T) {
		s, ok := VerifyTOTP(secret, code(0), now, 0)
		if !ok {
			t.Fatal("first VerifyTOTP=false, want true")
		}
		if _, ok := VerifyTOTP(secret, code(0), now, s); ok {
			t.Fatal("replayed VerifyTOTP=true, want false")
		}
	})
	t.Run("LaterAfterEarlier", func(t *testing.T) {
		s, ok := VerifyTOTP(secret, code(-30*time.Second), now, 0)
		if !ok {
			t.Fatal("earlier VerifyTOTP=false, want true")
		}
		got, ok := VerifyTOTP(secret, code(0), now, s)
		if !ok {
			t.Fatal("later VerifyTOTP=false, want true")
		}
		if want := step; got != want {
			t.Fatalf("step=%d, want %d", got, want)
		}
	})
	t.Run("EarlierAfterLater", func(t *testing.T) {
		if _, ok := VerifyTOTP(secret, code(-30*time.Second), now, step); ok {
			t.Fatal("VerifyTOTP=true, want false")
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		if _, ok := VerifyTOTP(NewTOTPSecret(), code(0), now, 0); ok {
			t.Fatal("VerifyTOTP=true, want false")
		}
	})
	t.Run("EmptySecret", func(t *testing.T) {
		if _, ok := VerifyTOTP(nil, TOTPCode(nil, now), now, 0); ok {
			t.Fatal("VerifyTOTP=true, want false")
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, c := range []string{"", "12345", "1234567", "12a456", " 123456", "123456 ", "١٢٣٤٥٦", "+12345", "-12345", code(0) + "0"} {
			if _, ok := VerifyTOTP(secret, c, now, 0); ok {
				t.Fatalf("VerifyTOTP(%q)=true, want false", c)
			}
		}
	})
}

func TestTOTPURI(t *testing.T) {
	secret := NewTOTPSecret()
	for _, tt := range []struct {
		name, issuer, account string
	}{
		{"Plain", "tyst", "anna"},
		{"Escaped", "Tyst Newsroom: Oslo", "anna: Müller/ö @example.org?#&=+%"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := TOTPURI(tt.issuer, tt.account, secret)
			if strings.ContainsAny(raw, " +") {
				t.Fatalf("URI %q has a raw space or a '+'", raw)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.Scheme, "otpauth"; got != want {
				t.Fatalf("scheme=%q, want %q", got, want)
			}
			if got, want := u.Host, "totp"; got != want {
				t.Fatalf("host=%q, want %q", got, want)
			}
			label := strings.TrimPrefix(u.EscapedPath(), "/")
			if got, want := strings.Count(label, ":"), 1; got != want {
				t.Fatalf("label %q has %d colons, want %d", label, got, want)
			}
			iss, acc, _ := strings.Cut(label, ":")
			if got, err := url.PathUnescape(iss); err != nil || got != tt.issuer {
				t.Fatalf("label issuer=%q (%v), want %q", got, err, tt.issuer)
			}
			if got, err := url.PathUnescape(acc); err != nil || got != tt.account {
				t.Fatalf("label account=%q (%v), want %q", got, err, tt.account)
			}
			q := u.Query()
			if got, want := q.Get("issuer"), tt.issuer; got != want {
				t.Fatalf("issuer=%q, want %q", got, want)
			}
			for k, want := range map[string]string{"algorithm": "SHA1", "digits": "6", "period": "30"} {
				if got := q.Get(k); got != want {
					t.Fatalf("%s=%q, want %q", k, got, want)
				}
			}
			s := q.Get("secret")
			if strings.Contains(s, "=") {
				t.Fatalf("secret %q is padded", s)
			}
			b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), string(secret); got != want {
				t.Fatalf("secret=%x, want %x", got, want)
			}
		})
	}
}
