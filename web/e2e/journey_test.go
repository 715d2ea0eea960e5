package e2e

import (
	"encoding/base32"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"tyst/store/auth"
)

// Canaries: strings a reporter types that must never stay in the browser's
// storage or cache after logout.
const (
	canaryTitle   = "Canary interview Aurora 7f3a"
	canaryNote    = "Canary note: meet at the north gate 91c2"
	canaryProject = "Canary project Borealis"
)

const adminPassword = "correct horse battery staple"

// session is a logged-in admin in a browser, with what the steps learn.
type session struct {
	t        *testing.T
	srv      *server
	b        *browser
	secret   []byte   // the admin's TOTP secret
	recovery []string // the admin's unused recovery codes
	api      *apiClient
	lastStep time.Time
}

// setupAdmin walks first-run setup and TOTP enrolment in the browser.
func setupAdmin(t *testing.T, srv *server, b *browser, shots bool) *session {
	t.Helper()
	s := &session{t: t, srv: srv, b: b}
	if srv.token() == "" {
		t.Fatalf("the server printed no setup token:\n%s", srv.logText())
	}
	if shots {
		// Opened at its root, the UI finds that setup is needed.
		b.do("open the UI", chromedp.Navigate(srv.base+"/"))
		b.waitJS("the setup page", `location.hash === '#/setup' && document.querySelector('input[name=token]')`, 15*time.Second)
		b.screen("01-setup")
		b.fill("input[name=token]", srv.token())
	} else {
		// The link the server printed fills the token in.
		link := srv.base + "/#/setup/" + srv.token()
		if !strings.Contains(srv.logText(), "in a browser: "+link+"\n") {
			t.Fatalf("the server printed no setup link %s:\n%s", link, srv.logText())
		}
		b.do("open the setup link", chromedp.Navigate(link))
		b.waitJS("the setup page with the token", fmt.Sprintf(`document.querySelector('input[name=token]')?.value === %q`, srv.token()), 15*time.Second)
	}
	b.fill("input[name=username]", "admin")
	b.fill("input[name=password]", adminPassword)
	b.click("form button[type=submit]")
	// Admins must enrol a second factor first.
	b.waitJS("the account page", `location.hash === '#/account' && document.querySelector('#main input[type=password]')`, 15*time.Second)
	if shots {
		b.screen("02-account-enrol")
	}
	b.fill("#main input[type=password]", adminPassword)
	b.click("#main form button[type=submit]")
	b.waitJS("the QR code", `document.querySelector('canvas.qr') && document.querySelector('#totp-secret')`, 10*time.Second)
	// The QR code is drawn by the page: it has dark and light modules.
	dark := eval[int](b, `(() => { const c = document.querySelector('canvas.qr'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; })()`)
	if dark == 0 {
		t.Fatal("the QR code canvas is blank")
	}
	if shots {
		b.screen("03-totp-qr")
	}
	secretText := strings.ReplaceAll(b.text("#totp-secret"), " ", "")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secretText)
	if err != nil {
		t.Fatalf("the secret shown is not base32: %v", err)
	}
	s.secret = secret
	b.fill("#main input[autocomplete=one-time-code]", s.code())
	b.click("#main form button[type=submit]")
	b.waitJS("the recovery codes", `document.querySelectorAll('#recovery-codes li').length > 0`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll('#recovery-codes li').length`); n < 5 {
		t.Fatalf("%d recovery codes shown, want several", n)
	}
	s.recovery = eval[[]string](b, `[...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent)`)
	if shots {
		b.screen("04-recovery-codes")
	}
	b.click("#main .actions button")
	b.waitJS("the record list", `location.hash === '#/records' && document.querySelector('#main h1')?.textContent === 'Records'`, 10*time.Second)
	return s
}

// code returns a TOTP code for a new time step (a code is accepted once).
func (s *session) code() string {
	now := time.Now()
	if !s.lastStep.IsZero() && now.Unix()/30 <= s.lastStep.Unix()/30 {
		time.Sleep(time.Duration(30-now.Unix()%30)*time.Second + 100*time.Millisecond)
		now = time.Now()
	}
	s.lastStep = now
	return auth.TOTPCode(s.secret, now)
}

// login logs in through the form, with the second factor.
func (s *session) login(user, password string) {
	s.t.Helper()
	b := s.b
	b.waitJS("the login form", `location.hash === '#/login' && document.querySelector('input[name=username]')`, 10*time.Second)
	b.fill("input[name=username]", user)
	b.fill("input[name=password]", password)
	b.click("#main form button[type=submit]")
	b.waitJS("the code field", `!document.querySelector('input[name=totp]').closest('.field').hidden`, 10*time.Second)
	b.fill("input[name=totp]", s.code())
	b.click("#main form button[type=submit]")
	b.waitJS("the record list", `location.hash === '#/records'`, 10*time.Second)
}

// flash returns the text of the message region.
func (b *browser) flash() string { return b.text("#flash") }

// waitFlash waits for the message region to contain want.
func (b *browser) waitFlash(want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("the message %q", want), fmt.Sprintf(`document.querySelector('#flash').textContent.includes(%q)`, want), 15*time.Second)
}
