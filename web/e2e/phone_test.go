package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestPhoneScreens shows every main screen on a 360 px wide phone: nothing
// wider than the screen, and no serious accessibility violation.
func TestPhoneScreens(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := startBrowser(t, srv, browserOptions{})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	id := createRecordAPI(t, s.api, "Phone check: a rather long interview title that has to wrap on a small screen")
	s.api.call("POST", "/api/v1/record/"+id+"/notes", map[string]any{"text": "A note"})
	b.do("phone viewport", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	for _, sc := range []struct{ name, hash, ready string }{
		{"phone-records", "#/records", `document.querySelectorAll('#records tbody tr').length === 1`},
		{"phone-new-record", "#/new", `document.querySelector('#main input[name=title]')`},
		{"phone-record", "#/record/" + id, `document.querySelector('#rec-start, #live-unsupported')`},
		{"phone-projects", "#/projects", `document.querySelector('#projects')`},
		{"phone-users", "#/admin/users", `document.querySelector('#users')`},
		{"phone-tokens", "#/admin/tokens", `document.querySelector('#main form')`},
		{"phone-audit", "#/admin/audit", `document.querySelectorAll('#audit li').length > 0`},
		{"phone-status", "#/status", `document.querySelector('#main h1')?.textContent === 'Status' && document.querySelector('#main section, #main p')`},
		{"phone-account", "#/account", `document.querySelector('#main h1')?.textContent === 'Your account'`},
	} {
		b.do("open "+sc.hash, chromedp.Navigate(srv.base+"/"+sc.hash), chromedp.Reload())
		b.waitJS(sc.name, sc.ready, 10*time.Second)
		if w := eval[int](b, `Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - document.documentElement.clientWidth + 360`); w > 360 {
			b.shot(sc.name)
			t.Errorf("%s is %d px wide on a 360 px screen", sc.name, w)
		}
		b.screen(sc.name)
	}
	b.checkClean()
}

// TestKeyboardOnly logs in and works the record list and a dialog with the
// keyboard alone, and checks that focus is visible.
func TestKeyboardOnly(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := startBrowser(t, srv, browserOptions{})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	createRecordAPI(t, s.api, "Keyboard record")
	b.click("#logout")
	b.waitJS("the login page", `location.hash === '#/login' && document.activeElement?.name === 'username'`, 10*time.Second)

	key := func(keys string) { b.t.Helper(); b.do("type", chromedp.KeyEvent(keys)) }
	key("admin")
	key("\t")
	key(adminPassword)
	key("\r")
	b.waitJS("the code field, focused", `document.activeElement?.name === 'totp'`, 10*time.Second)
	key(s.recovery[0]) // a recovery code: no wait for the next TOTP step
	key("\r")
	b.waitJS("the record list", `location.hash === '#/records' && document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)

	// From the top: the skip link comes first, visible, with a focus ring.
	b.do("reload", chromedp.Reload())
	b.waitJS("the record list", `document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	key(kb.Tab)
	type focus struct {
		Text, Outline string
		Left          float64
	}
	f := eval[focus](b, `(() => { const e = document.activeElement; const cs = getComputedStyle(e);
		return {Text: e.textContent, Outline: cs.outlineStyle + ' ' + cs.outlineWidth, Left: e.getBoundingClientRect().left}; })()`)
	if f.Text != "Skip to content" || f.Left < 0 || f.Outline == "none 0px" {
		t.Fatalf("first Tab focuses %+v, want the visible skip link with an outline", f)
	}
	key("\r")
	b.waitJS("main focused", `document.activeElement?.id === 'main'`, 5*time.Second)

	// Tab to the search field, search by typing and Enter.
	tabTo := func(what, cond string) {
		b.t.Helper()
		for range 40 {
			if eval[bool](b, "!!("+cond+")") {
				if o := eval[string](b, `getComputedStyle(document.activeElement).outlineStyle`); o == "none" {
					t.Errorf("%s has focus but no visible outline", what)
				}
				return
			}
			key(kb.Tab)
		}
		b.shot("failed-keyboard")
		t.Fatalf("40 presses of Tab did not reach %s", what)
	}
	tabTo("the search field", `document.activeElement?.type === 'search'`)
	key("keyboard")
	key("\r")
	// The old list also shows one row, and the hash changes before the new
	// list is drawn: wait for the focus, which moves to the new screen.
	b.waitJS("the search result", `location.hash.includes('q=keyboard') && document.activeElement?.id === 'main' && document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	tabTo("the record link", `document.activeElement?.closest('#records td.title a')`)
	key("\r")
	b.waitJS("the record page", `document.querySelector('#destroy-open')`, 10*time.Second)
	tabTo("the destroy button", `document.activeElement?.id === 'destroy-open'`)
	key("\r")
	b.waitJS("the dialog with focus inside", `document.querySelector('#destroy-dialog')?.open && document.querySelector('#destroy-dialog').contains(document.activeElement)`, 10*time.Second)
	key(kb.Escape)
	b.waitJS("the dialog closed", `!document.querySelector('#destroy-dialog')`, 5*time.Second)
	b.checkClean()
}

// TestNoWebAudio opens a record in a browser without WebAudio (as Tor
// Browser) and in one that refuses the microphone: the page says so and
// offers the upload.
func TestNoWebAudio(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := startBrowser(t, srv, browserOptions{noMic: true})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	id := createRecordAPI(t, s.api, "No microphone")

	// Microphone refused.
	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+id))
	b.waitJS("the record button", `document.querySelector('#rec-start')`, 10*time.Second)
	b.click("#rec-start")
	b.waitJS("the refusal", `document.querySelector('#rec-error').textContent.includes('upload a recording instead')`, 15*time.Second)
	if !eval[bool](b, `document.activeElement?.id === 'upload-file'`) {
		t.Error("after the refusal, focus is not on the upload")
	}
	b.screen("27-mic-refused")

	// No WebAudio at all, as in Tor Browser.
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `delete window.AudioWorkletNode; delete window.AudioContext;`,
	}); err != nil {
		t.Fatal(err)
	}
	b.do("reload", chromedp.Navigate(srv.base+"/#/record/"+id), chromedp.Reload())
	b.waitJS("the notice", `document.querySelector('#live-unsupported')`, 10*time.Second)
	if got := b.text("#live-unsupported"); got == "" || !strings.Contains(got, "WebAudio") || !strings.Contains(got, "upload") {
		t.Errorf("notice %q", got)
	}
	if eval[bool](b, `!!document.querySelector('#rec-start')`) {
		t.Error("the record button is offered without WebAudio")
	}
	if !eval[bool](b, `!!document.querySelector('#upload-file')`) {
		t.Error("no upload offered without WebAudio")
	}
	b.screen("28-no-webaudio")

	// The upload it offers takes a file dropped on it.
	eval[chromedp.Void](b, `(() => {
		const rate = 8000, n = rate, buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
		const str = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
		str(0, 'RIFF'); v.setUint32(4, 36 + 2 * n, true); str(8, 'WAVEfmt '); v.setUint32(16, 16, true);
		v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true);
		v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, 'data'); v.setUint32(40, 2 * n, true);
		for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / rate)), true);
		const dt = new DataTransfer();
		dt.items.add(new File([buf], 'dropped.wav', {type: 'audio/wav'}));
		const zone = document.querySelector('#drop');
		zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
		zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`)
	b.waitJS("the player after the drop", `document.querySelector('#player')`, 15*time.Second)
	var rec struct {
		Audio *struct {
			MIMEType   string `json:"mime_type"`
			DurationMS int64  `json:"duration_ms"`
		} `json:"audio"`
	}
	s.api.getJSON("/api/v1/record/"+id, &rec)
	if rec.Audio == nil || rec.Audio.MIMEType != "audio/wav" || rec.Audio.DurationMS != 1000 {
		t.Fatalf("after the drop the record holds %+v, want a 1 s audio/wav", rec.Audio)
	}

	// Remove the audio again: reason, confirmation, signed receipt.
	b.click("#audio-h ~ .actions button")
	b.waitJS("the removal dialog", `document.querySelector('#remove-reason')`, 10*time.Second)
	if got, want := b.text("#remove-exports-note"), "Export packages of this audio on this server will be deleted too; copies already downloaded are not."; got != want {
		t.Errorf("the removal dialog says %q about export packages, want %q", got, want)
	}
	b.click("#remove-audio-dialog button.danger")
	// The browser refuses the form without a reason; nothing is sent.
	b.waitJS("the refusal", `document.querySelector('#remove-audio-dialog').open && !document.querySelector('#remove-reason').validity.valid`, 5*time.Second)
	if n := strings.Count(srv.logText(), `"method":"DELETE","route":"/api/v1/record/:id/audio"`); n != 0 {
		t.Fatalf("the refused form sent %d removal requests", n)
	}
	b.fill("#remove-reason", "Recorded the wrong interview")
	b.click("#remove-confirm")
	b.click("#remove-audio-dialog button.danger")
	b.waitJS("the receipt", `document.querySelector('#receipt-document')`, 10*time.Second)
	if doc := b.text("#receipt-document"); !strings.Contains(doc, "audio_removal") || strings.Contains(doc, "wrong interview") ||
		!strings.Contains(doc, `"exports": 0`) || strings.Contains(doc, "audio_sha256") {
		t.Errorf("removal receipt %q: want kind audio_removal, the export packages counted, no hash and no reason in the clear", short(doc))
	}
	b.viewShot("31-audio-removed")
	if n := strings.Count(srv.logText(), `"method":"DELETE","route":"/api/v1/record/:id/audio"`); n != 1 {
		t.Fatalf("%d removal requests in the server log, want 1", n)
	}
	b.click("#remove-audio-dialog .actions button")
	b.waitJS("the upload again", `document.querySelector('#upload-file') && !document.querySelector('#player')`, 10*time.Second)
	s.api.getJSON("/api/v1/record/"+id, &rec)
	if rec.Audio != nil {
		t.Fatalf("after removal the record still has audio %+v", rec.Audio)
	}
	b.checkClean()
}
