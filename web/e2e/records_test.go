package e2e

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const canaryTranscript = "Canary transcript: the source works at the harbour office 55d1"

// TestJourney walks a reporter's and an admin's day through the UI in a
// real Chromium: setup, TOTP, projects, a record, upload (refusals first),
// listening with seeking, transcript, notes, rename and move, list search
// and filter, hold, export, admin screens, destroy with receipt, logout,
// and afterwards no trace of a title, note or transcript in the profile.
func TestJourney(t *testing.T) {
	needBrowser(t)
	srv := startServer(t, "TYST_MAX_UPLOAD_MB=1")
	b := startBrowser(t, srv, browserOptions{})
	s := setupAdmin(t, srv, b, true)
	dir := t.TempDir()

	// Projects: create two, rename one.
	b.do("open projects", chromedp.Navigate(srv.base+"/#/projects"))
	b.waitJS("the projects page", `document.querySelector('#main h1')?.textContent === 'Projects'`, 10*time.Second)
	for _, name := range []string{canaryProject, "Second project"} {
		b.fill("#main form input[type=text]", name)
		b.click("#main form button[type=submit]")
		b.waitFlash("Project created.")
		b.waitJS("the new project in the list", fmt.Sprintf(`[...document.querySelectorAll('#projects a')].some(a => a.textContent === %q)`, name), 10*time.Second)
	}
	b.click(`#projects button[aria-label="Rename project Second project"]`)
	b.fill("#projects input[type=text]", "Second project renamed")
	b.click("#projects form button[type=submit]")
	b.waitFlash("Project renamed.")
	b.waitJS("the renamed project", `[...document.querySelectorAll('#projects a')].some(a => a.textContent === 'Second project renamed')`, 10*time.Second)
	b.screen("06-projects")
	b.checkClean()
	// The check sees what the CSP blocks: an inline style attribute is reported.
	eval[chromedp.Void](b, `document.body.append(Object.assign(document.createElement('div'), {id: 'csp-probe'})); document.querySelector('#csp-probe').setAttribute('style', 'color: red')`)
	b.waitJS("the CSP report", `true`, time.Second)
	time.Sleep(300 * time.Millisecond)
	b.mu.Lock()
	reported := strings.Contains(strings.Join(b.console, "\n"), "Content Security Policy")
	b.console = nil
	b.mu.Unlock()
	if !reported {
		t.Fatal("an inline style attribute raised no CSP report: the check for CSP violations would see none")
	}

	// A new record in the canary project.
	b.click(`#nav a[href="#/new"]`)
	b.waitJS("the new-record form", `document.querySelector('#main input[name=title]')`, 10*time.Second)
	b.fill("#main input[name=title]", canaryTitle)
	eval[chromedp.Void](b, fmt.Sprintf(`(() => { const s = document.querySelector('#main select'); s.value = [...s.options].find(o => o.textContent === %q).value; })()`, canaryProject))
	b.screen("07-new-record")
	b.click("#main form button[type=submit]")
	b.waitJS("the record page", `location.hash.startsWith('#/record/') && document.querySelector('#record-title')`, 10*time.Second)
	recordID := strings.TrimPrefix(eval[string](b, `location.hash`), "#/record/")
	if got := b.text("#record-title"); got != canaryTitle {
		t.Fatalf("record title shown %q, want %q", got, canaryTitle)
	}
	b.screen("08-record-empty")

	// Refusals before a byte is sent: a text file, and a file over the limit.
	notAudio := filepath.Join(dir, "notes.txt")
	os.WriteFile(notAudio, []byte("not audio at all"), 0o644)
	tooBig := filepath.Join(dir, "long.wav")
	writeToneWAV(t, tooBig, 16000, 440, 40) // 1.28 MB > 1 MiB
	b.do("choose a text file", chromedp.SetUploadFiles("#upload-file", []string{notAudio}))
	b.waitJS("the type refusal", `document.querySelector('#upload-error').textContent.includes('not accepted')`, 5*time.Second)
	b.do("choose a large file", chromedp.SetUploadFiles("#upload-file", []string{tooBig}))
	b.waitJS("the size refusal", `document.querySelector('#upload-error').textContent.includes('at most 1 MiB')`, 5*time.Second)
	b.screen("09-upload-refused")
	if n := strings.Count(srv.logText(), `"method":"POST","route":"/api/v1/record/:id/audio"`); n != 0 {
		t.Fatalf("refused files reached the server: %d upload requests", n)
	}

	// A real upload, throttled so the progress bar shows progress.
	tone := filepath.Join(dir, "interview.wav")
	writeToneWAV(t, tone, 16000, 440, 20) // 640 KB, 20 s
	b.throttleUpload(160_000)
	// Record every value the progress bar shows.
	eval[chromedp.Void](b, `(() => { window.progressSeen = []; const p = document.querySelector('#upload-progress');
		new MutationObserver(() => window.progressSeen.push(p.value)).observe(p, {attributes: true, attributeFilter: ['value']}); })()`)
	b.do("choose the recording", chromedp.SetUploadFiles("#upload-file", []string{tone}))
	b.waitJS("the upload to start", `window.progressSeen && window.progressSeen.length > 0`, 10*time.Second)
	b.shot("10-upload-progress")
	b.waitJS("the player", `document.querySelector('#player')`, 30*time.Second)
	seen := eval[[]float64](b, `window.progressSeen`)
	between := 0
	for _, v := range seen {
		if v > 0 && v < 100 {
			between++
		}
	}
	if between == 0 || seen[len(seen)-1] != 100 {
		t.Fatalf("the progress bar showed %v: want values between 0 and 100, ending at 100", seen)
	}
	b.throttleUpload(-1)
	b.waitFlash("Audio uploaded")
	if n := strings.Count(srv.logText(), `"method":"POST","route":"/api/v1/record/:id/audio"`); n != 1 {
		t.Fatalf("%d upload requests in the server log, want the 1 real upload", n)
	}

	// Listen with seeking: the player reads the audio with Range requests.
	type playState struct {
		Duration, Time float64
		Err            string
	}
	ps := eval[playState](b, `(async () => {
		const a = document.querySelector('#player');
		if (a.readyState < 1) await new Promise((ok, bad) => { a.onloadedmetadata = ok; a.onerror = () => bad(new Error('audio error')); });
		const seeked = new Promise(ok => a.addEventListener('seeked', ok, {once: true}));
		a.currentTime = 12;
		await seeked;
		await a.play();
		await new Promise(ok => setTimeout(ok, 700));
		a.pause();
		return {Duration: a.duration, Time: a.currentTime, Err: a.error ? String(a.error.code) : ''};
	})()`)
	if ps.Err != "" || ps.Duration < 19.9 || ps.Duration > 20.1 || ps.Time < 12.2 || ps.Time > 14 {
		t.Fatalf("player after seeking to 12 s and playing: %+v, want duration 20 s and time past 12.2 s", ps)
	}
	b.screen("11-record-audio")

	// Transcript: WebVTT, then SubRip, then JSON; a broken file changes nothing.
	vtt := filepath.Join(dir, "t.vtt")
	os.WriteFile(vtt, []byte("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Anna>"+canaryTranscript+"\n\n00:00:05.000 --> 00:00:09.500\nSecond line.\n"), 0o644)
	srt := filepath.Join(dir, "t.srt")
	os.WriteFile(srt, []byte("1\n00:00:01,000 --> 00:00:04,000\n"+canaryTranscript+"\n\n2\n00:00:05,000 --> 00:00:07,000\nTwo\n\n3\n00:00:08,000 --> 00:00:09,000\nThree\n"), 0o644)
	js := filepath.Join(dir, "t.json")
	os.WriteFile(js, []byte(`{"segments":[{"start_ms":1000,"end_ms":4000,"speaker":"Anna","text":"`+canaryTranscript+`"},{"start_ms":12000,"end_ms":15000,"speaker":"Reporter","text":"And then?"}]}`), 0o644)
	bad := filepath.Join(dir, "bad.vtt")
	os.WriteFile(bad, []byte("not a webvtt file\n"), 0o644)
	for _, c := range []struct {
		file string
		n    int
	}{{vtt, 2}, {srt, 3}, {js, 2}} {
		b.do("import "+filepath.Base(c.file), chromedp.SetUploadFiles("#transcript-file", []string{c.file}))
		b.waitJS(fmt.Sprintf("%d segments", c.n), fmt.Sprintf(`document.querySelectorAll('#segments li').length === %d && document.querySelector('#segments').textContent.includes(%q)`, c.n, canaryTranscript), 10*time.Second)
	}
	b.do("import a broken file", chromedp.SetUploadFiles("#transcript-file", []string{bad}))
	b.waitJS("the transcript error", `document.querySelector('#transcript-error').textContent !== ''`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll('#segments li').length`); n != 2 {
		t.Fatalf("a broken transcript changed the segments: %d, want 2", n)
	}
	// A time stamp seeks the player.
	b.click(`#segments li:nth-child(2) button`)
	b.waitJS("the player at 12 s", `Math.abs(document.querySelector('#player').currentTime - 12) < 1.5`, 5*time.Second)
	eval[chromedp.Void](b, `document.querySelector('#player').pause()`)

	// Notes: add two, delete one.
	for _, text := range []string{canaryNote, "A note to delete"} {
		b.fill("#note-text", text)
		b.click("#notes-h ~ form button[type=submit], section[aria-labelledby=notes-h] form button[type=submit]")
		b.waitJS("the note", fmt.Sprintf(`[...document.querySelectorAll('#notes .note-text')].some(p => p.textContent === %q)`, text), 10*time.Second)
	}
	eval[chromedp.Void](b, `window.confirm = () => true`)
	b.click(`#notes li:nth-child(2) button`)
	b.waitFlash("Note deleted.")
	b.waitJS("one note left", `document.querySelectorAll('#notes li').length === 1`, 10*time.Second)
	b.screen("12-transcript-notes")

	// Rename, move to the other project, and (admin) put on hold.
	b.click("details.card summary")
	b.fill("details.card input[type=text]", canaryTitle+" (edited)")
	eval[chromedp.Void](b, `(() => { const s = document.querySelector('details.card select'); s.value = [...s.options].find(o => o.textContent === 'Second project renamed').value; })()`)
	b.click(`details.card input[type=checkbox]`)
	b.screen("13-record-details")
	b.click("details.card form button[type=submit]")
	b.waitFlash("Changes saved.")
	b.waitJS("the new title", fmt.Sprintf(`document.querySelector('#record-title').textContent === %q`, canaryTitle+" (edited)"), 10*time.Second)
	var rec struct {
		Title     string `json:"title"`
		ProjectID uint64 `json:"project_id"`
		Hold      bool   `json:"hold"`
	}
	s.api = browserAPI(t, b, srv)
	s.api.getJSON("/api/v1/record/"+recordID, &rec)
	if rec.Title != canaryTitle+" (edited)" || !rec.Hold {
		t.Fatalf("record after edit: %+v", rec)
	}

	// The list: columns, search, filter, hold badge.
	b.click(`#nav a[href="#/records"]`)
	b.waitJS("the list", `document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	row := b.text("#records tbody tr")
	for _, want := range []string{canaryTitle, "Second project renamed", "640 KB", "0:20", "On hold"} {
		if !strings.Contains(row, want) {
			t.Errorf("the list row %q lacks %q", row, want)
		}
	}
	b.screen("14-records")
	b.fill("#main input[type=search]", "aurora")
	b.click("#main form[role=search] button[type=submit]")
	// The list before the search also shows one row: the focus, which moves
	// to the new screen once it is drawn, tells the two apart.
	b.waitJS("one match", `location.hash.includes('q=aurora') && document.activeElement?.id === 'main' && document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	b.fill("#main input[type=search]", "nothing like it")
	b.click("#main form[role=search] button[type=submit]")
	b.waitJS("no match", `document.querySelector('#main').textContent.includes('No record matches.')`, 10*time.Second)
	b.do("filter by the first project", chromedp.Navigate(srv.base+"/#/records"))
	b.waitJS("the list", `document.querySelectorAll('#records tbody tr').length === 1`, 10*time.Second)
	eval[chromedp.Void](b, fmt.Sprintf(`(() => { const s = document.querySelector('#main form[role=search] select'); s.value = [...s.options].find(o => o.textContent === %q).value; s.dispatchEvent(new Event('change')); })()`, canaryProject))
	b.waitJS("the empty project", `location.hash.includes('project=') && document.querySelector('#main').textContent.includes('No record matches.')`, 10*time.Second)
	b.checkClean()

	var exportURL string // the first package's download URL, once exported
	t.Run("Export", func(t *testing.T) {
		exportURL = exportJourney(t, srv, b, recordID, dir)
	})

	adminJourney(t, srv, b, s)

	// The record's own audit trail.
	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+recordID))
	b.click("#record-audit")
	b.waitJS("the record's audit trail", `location.hash === '#/admin/audit?record=`+recordID+`' && document.querySelectorAll('#audit li').length > 3`, 10*time.Second)
	if other := eval[int](b, `[...document.querySelectorAll('#audit li a')].filter(a => a.getAttribute('href') !== '#/record/`+recordID+`').length`); other != 0 {
		t.Errorf("the record's audit trail links %d events of other records", other)
	}

	// Destroy: dry-run counts, the title typed, then the receipt.
	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+recordID))
	b.waitJS("the record page", `document.querySelector('#destroy-open')`, 10*time.Second)
	b.click("#destroy-open")
	b.waitJS("the dry-run counts", `document.querySelector('#destroy-counts')`, 10*time.Second)
	if got := b.text("#destroy-counts"); !strings.Contains(got, "1 audio file") || !strings.Contains(got, "2 transcript segments") || !strings.Contains(got, "1 note") {
		t.Fatalf("dry-run counts %q, want 1 audio file, 2 segments, 1 note", got)
	}
	if exportURL != "" {
		want := "2 export packages on this server will be deleted too; copies already downloaded are not."
		if got := b.text("#destroy-exports-note"); got != want {
			t.Fatalf("the destroy dialog says %q about export packages, want %q", got, want)
		}
	}
	if !eval[bool](b, `document.querySelector('#destroy-dialog button.danger').disabled`) {
		t.Fatal("the destroy button is enabled before the title is typed")
	}
	b.fill("#destroy-title", "wrong title")
	if !eval[bool](b, `document.querySelector('#destroy-dialog button.danger').disabled`) {
		t.Fatal("the destroy button is enabled for a wrong title")
	}
	b.fill("#destroy-title", canaryTitle+" (edited)")
	b.fill("#destroy-reason", "The source asked us to delete it")
	b.viewShot("20-destroy-confirm")
	b.axe("destroy dialog")
	b.click("#destroy-dialog button.danger")
	b.waitJS("the receipt", `document.querySelector('#receipt-document')`, 15*time.Second)
	doc := b.text("#receipt-document")
	if strings.Contains(doc, canaryTitle) || !strings.Contains(doc, recordID) {
		t.Fatalf("receipt document %q: must name the record id and not its title", doc)
	}
	b.viewShot("21-destroy-receipt")
	b.axe("destroy receipt")
	b.click("#destroy-dialog .actions button")
	b.waitJS("the list after destroy", `location.hash === '#/records' && document.querySelectorAll('#records tbody tr').length === 1 && !document.querySelector('#records').textContent.includes('Aurora')`, 10*time.Second)
	if status, _ := s.api.call("GET", "/api/v1/record/"+recordID, nil); status != 404 {
		t.Fatalf("destroyed record answers %d, want 404", status)
	}
	if exportURL != "" {
		if status, _ := s.api.call("GET", exportURL, nil); status != 404 {
			t.Fatalf("the destroyed record's export package answers %d, want 404", status)
		}
	}
	b.checkClean()

	logoutLeavesNothing(t, b, srv)
}

// throttleUpload limits the page's upload rate (bytes/s; -1: no limit).
func (b *browser) throttleUpload(rate float64) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: rate}},
	}); err != nil {
		b.t.Fatal(err)
	}
}

// browserAPI returns an API client that uses the browser's session cookie.
func browserAPI(t *testing.T, b *browser, srv *server) *apiClient {
	t.Helper()
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.base}})
	if err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, srv.base, "")
	var header []string
	for _, ck := range cookies.Cookies {
		header = append(header, ck.Name+"="+ck.Value)
	}
	c.cookie = strings.Join(header, "; ")
	return c
}

// exportJourney exports through the dialog, downloads the ZIP and checks
// it with tyst verify-package, then makes a decrypted package too. It
// returns the first package's download URL.
func exportJourney(t *testing.T, srv *server, b *browser, recordID, dir string) string {
	downloads := filepath.Join(dir, "downloads")
	os.MkdirAll(downloads, 0o755)
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatal(err)
	}
	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+recordID))
	b.waitJS("the record page", `document.querySelector('#export-open')`, 10*time.Second)
	b.click("#export-open")
	b.waitJS("the export dialog", `document.querySelector('#export-reason')`, 10*time.Second)
	b.fill("#export-reason", "For the legal review of the story")
	b.click("#export-confirm")
	b.viewShot("15-export-dialog")
	b.axe("export dialog")
	b.click("#export-dialog form button[type=submit]")
	b.waitJS("the download link", `document.querySelector('#export-download')`, 30*time.Second)
	url := eval[string](b, `document.querySelector('#export-download').getAttribute('href')`)
	fp := b.text("#export-fingerprint")
	if !regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`).MatchString(fp) {
		t.Errorf("the dialog shows fingerprint %q, want SHA256:…", fp)
	}
	b.viewShot("16-export-ready")
	b.axe("export ready")
	b.click("#export-download")
	var zipPath string
	deadline := time.Now().Add(30 * time.Second)
	for zipPath == "" {
		ents, _ := os.ReadDir(downloads)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".zip") {
				zipPath = filepath.Join(downloads, e.Name())
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the export ZIP did not download within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := zip.OpenReader(zipPath); err != nil {
		t.Fatalf("the download is not a ZIP: %v", err)
	}
	keyFile := filepath.Join(dir, "files.key")
	os.WriteFile(keyFile, []byte(srv.key+"\n"), 0o600)
	// The receiver trusts the allowed_signers line the newsroom publishes
	// (the status page shows it), not the one inside the ZIP.
	var st struct {
		SigningKey struct {
			AllowedSigners string `json:"allowed_signers"`
		} `json:"signing_key"`
	}
	browserAPI(t, b, srv).getJSON("/api/v1/status", &st)
	signers := filepath.Join(dir, "allowed_signers")
	os.WriteFile(signers, []byte(st.SigningKey.AllowedSigners+"\n"), 0o644)
	cmd := exec.Command(tystBin, "verify-package", zipPath, "--allowed-signers", signers, "--key-file", keyFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tyst verify-package refused the downloaded ZIP: %v\n%s\n%s", err, out, stderr.String())
	}
	var report struct {
		OK        bool `json:"ok"`
		Signature struct {
			OK, Trusted bool
			Fingerprint string
		} `json:"signature"`
		Audio struct {
			Present, Checked, OK bool
		} `json:"audio"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("verify-package output: %v\n%s", err, out)
	}
	if !report.OK || !report.Signature.OK || !report.Signature.Trusted || report.Signature.Fingerprint != fp ||
		!report.Audio.Present || !report.Audio.Checked || !report.Audio.OK {
		t.Fatalf("verify-package report %s: want ok, a trusted signature by %s, the audio checked", out, fp)
	}
	// The command the dialog gives, with the fingerprint it shows, says
	// good; without a trust anchor verify-package says only "intact,
	// signer not checked" (exit 3), never good.
	verifyCmd := strings.Fields(b.text("#export-verify-command"))
	if want := []string{"tyst", "verify-package", "package.zip", "--fingerprint", fp}; !slices.Equal(verifyCmd, want) {
		t.Fatalf("the dialog's verify command is %q, want %q", verifyCmd, want)
	}
	cmd = exec.Command(tystBin, "verify-package", zipPath, verifyCmd[3], verifyCmd[4], "--key-file", keyFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the dialog's verify command refused the downloaded ZIP: %v\n%s", err, out)
	}
	cmd = exec.Command(tystBin, "verify-package", zipPath, "--key-file", keyFile)
	cmd.Env = append(os.Environ(), "TYST_ALLOWED_SIGNERS=", "TYST_FINGERPRINT=")
	if out, err := cmd.Output(); cmd.ProcessState.ExitCode() != 3 || !strings.Contains(string(out), `"intact": true`) {
		t.Fatalf("verify-package without a trust anchor: exit %d (want 3), %v\n%s", cmd.ProcessState.ExitCode(), err, out)
	}
	b.click("#export-dialog .actions button.secondary")
	b.waitJS("the dialog closed", `!document.querySelector('#export-dialog')`, 5*time.Second)

	// Decrypted audio (admins): a reason of 10 characters at least, and
	// the server's warning shown.
	b.click("#export-open")
	b.waitJS("the export dialog", `document.querySelector('#export-reason')`, 10*time.Second)
	b.click("#mode-dec")
	b.fill("#export-reason", "short")
	b.click("#export-confirm")
	b.click("#export-dialog form button[type=submit]")
	b.waitJS("the refusal", `document.querySelector('#export-dialog .error').textContent.includes('at least 10 characters')`, 5*time.Second)
	b.fill("#export-reason", "The lawyer needs to listen to it")
	b.click("#export-dialog form button[type=submit]")
	b.waitJS("the download link", `document.querySelector('#export-download')`, 30*time.Second)
	if got := b.text("#export-dialog"); !strings.Contains(got, "Handle with extreme care") {
		t.Errorf("the decrypted export's warning is not shown: %q", short(got))
	}
	b.viewShot("17-export-decrypted")
	b.click("#export-dialog .actions button.secondary")
	return url
}

// adminJourney visits users, tokens, settings, audit and status.
func adminJourney(t *testing.T, srv *server, b *browser, s *session) {
	t.Helper()
	b.click(`#nav a[href="#/admin/users"]`)
	b.waitJS("the users page", `document.querySelector('#users')`, 10*time.Second)
	b.fill("#main form input[type=text]", "reporter1")
	b.fill("#main form input[type=password]", "a long enough password 1")
	eval[chromedp.Void](b, `document.querySelector('#main form select').value = 'editor'`)
	b.click("#main form button[type=submit]")
	b.waitFlash("User created.")
	b.waitJS("the new user", `document.querySelector('#users').textContent.includes('reporter1')`, 10*time.Second)
	// Change the role to viewer.
	eval[chromedp.Void](b, `(() => { const s = document.querySelector('select[aria-label="Role of reporter1"]'); s.value = 'viewer'; })()`)
	b.click(`#users tr:nth-child(2) .actions button:nth-child(1)`)
	b.waitFlash("Role changed.")
	b.screen("17-users")

	// A token for reporter1, shown once; it works.
	b.click(`#nav a[href="#/admin/tokens"]`)
	b.waitJS("the tokens page", `document.querySelector('#main h1')?.textContent === 'API tokens'`, 10*time.Second)
	eval[chromedp.Void](b, `document.querySelector('#main form select').value = 'reporter1'`)
	b.fill("#main form input[type=text]", "laptop of reporter1")
	b.click("#main form button[type=submit]")
	b.waitJS("the new token", `document.querySelector('#new-token')`, 10*time.Second)
	b.shot("18-token-created")
	token := b.text("#new-token")
	api := newAPIClient(t, srv.base, token)
	if status, body := api.call("GET", "/api/v1/me", nil); status != 200 || !strings.Contains(string(body), "reporter1") {
		t.Fatalf("the new token: GET /me answered %d %s", status, body)
	}
	b.click("#token-dialog .actions button:last-child")
	b.waitJS("the token in the list", `document.querySelector('#tokens')?.textContent.includes('laptop of reporter1')`, 10*time.Second)
	if strings.Contains(b.text("#main"), token) {
		t.Fatal("the token list shows the token itself")
	}
	b.screen("19-tokens")

	// A stream token for a field box, revoked from the list.
	b.fill("#main form input[type=text]", "field box 2")
	b.click("#scope-stream")
	b.click("#main form button[type=submit]")
	b.waitJS("the new token", `document.querySelector('#new-token')`, 10*time.Second)
	fieldBox := newAPIClient(t, srv.base, b.text("#new-token"))
	b.click("#token-dialog .actions button:last-child")
	b.waitJS("the stream token in the list", `document.querySelector('#tokens')?.textContent.includes('field box 2')`, 10*time.Second)
	if got := b.text("#tokens"); !strings.Contains(got, "stream") {
		t.Errorf("token list %q does not show the stream scope", got)
	}
	if status, _ := fieldBox.call("POST", "/api/v1/record", map[string]any{"title": "from the field"}); status != 201 {
		t.Fatalf("the stream token cannot create a record: %d", status)
	}
	eval[chromedp.Void](b, `window.confirm = () => true`)
	b.click(`#tokens button[aria-label="Revoke token field box 2"]`)
	b.waitFlash("Token revoked.")
	b.waitJS("the token gone", `!document.querySelector('#tokens')?.textContent.includes('field box 2')`, 10*time.Second)
	if status, _ := fieldBox.call("GET", "/api/v1/records", nil); status != 401 {
		t.Fatalf("a revoked token: %d, want 401", status)
	}

	// Resetting reporter1's password revokes the token and says so.
	b.click(`#nav a[href="#/admin/users"]`)
	b.waitJS("the users page", `document.querySelector('#users')?.textContent.includes('reporter1')`, 10*time.Second)
	b.click(`#users tr:nth-child(2) .actions button:nth-child(3)`)
	b.fill("#reset-password input[type=password]", "another long password 2")
	b.click("#reset-password button[type=submit]")
	b.waitFlash("1 token revoked")
	if status, _ := api.call("GET", "/api/v1/me", nil); status != 401 {
		t.Fatalf("the token after a password reset: GET /me answered %d, want 401", status)
	}
	// Disable reporter1.
	b.waitJS("the users page", `document.querySelector('#users')?.textContent.includes('reporter1')`, 10*time.Second)
	b.click(`#users tr:nth-child(2) .actions button:nth-child(2)`)
	b.waitFlash("User disabled")
	b.waitJS("the disabled badge", `document.querySelector('#users tr:nth-child(2)').textContent.includes('disabled')`, 10*time.Second)

	b.click(`#nav a[href="#/admin/settings"]`)
	b.waitJS("the settings page", `document.querySelector('#set-admin-totp')`, 10*time.Second)
	if eval[bool](b, `document.querySelector('#set-admin-totp').checked`) {
		t.Error("settings: require_admin_totp is shown on, the server's default is off")
	}
	b.click("#set-admin-totp")
	b.screen("22-settings")
	b.click("#main form button[type=submit]")
	b.waitFlash("Settings saved.")
	var st struct {
		RequireAdminTOTP bool `json:"require_admin_totp"`
	}
	s.api.getJSON("/api/v1/settings", &st)
	if !st.RequireAdminTOTP {
		t.Error("require_admin_totp is still off after saving it on")
	}

	b.click(`#nav a[href="#/admin/audit"]`)
	b.waitJS("the audit timeline", `document.querySelectorAll('#audit li').length > 3`, 10*time.Second)
	if got := b.text("#audit"); !strings.Contains(got, "Audio uploaded") || !strings.Contains(got, "Record created") {
		t.Errorf("audit timeline lacks events: %q", short(got))
	}
	if strings.Contains(b.text("#audit"), canaryTitle) {
		t.Error("the audit timeline shows a title")
	}
	if !strings.Contains(b.text("#audit"), "by admin") {
		t.Errorf("the audit timeline does not name the actor: %q", short(b.text("#audit")))
	}
	b.screen("23-audit")

	b.click(`#nav a[href="#/status"]`)
	b.waitJS("the status page", `document.querySelector('#main h1')?.textContent === 'Status' && document.querySelector('#main p, #main section')`, 10*time.Second)
	if got := b.text("#status-fingerprint"); !strings.HasPrefix(got, "SHA256:") {
		t.Errorf("status page fingerprint %q", got)
	}
	if got := b.text("#status-retention"); !strings.Contains(got, "14 days") {
		t.Errorf("status page retention %q, want 14 days", got)
	}
	b.screen("24-status")
	b.checkClean()
}

// logoutLeavesNothing logs out, checks the browser's storage, closes the
// browser and searches its whole profile for the canaries.
func logoutLeavesNothing(t *testing.T, b *browser, srv *server) {
	t.Helper()
	b.click("#logout")
	b.waitJS("the login page", `location.hash === '#/login' && document.querySelector('input[name=username]')`, 10*time.Second)
	type storage struct {
		Local, Session, Caches, IDB int
	}
	st := eval[storage](b, `(async () => ({Local: localStorage.length, Session: sessionStorage.length,
		Caches: (await caches.keys()).length, IDB: (await indexedDB.databases()).length}))()`)
	if st != (storage{}) {
		t.Errorf("browser storage after logout: %+v, want all empty", st)
	}
	if status, _ := newAPIClient(t, srv.base, "").call("GET", "/api/v1/me", nil); status != 401 {
		t.Errorf("GET /me without a session: %d", status)
	}
	b.checkClean()
	// Close the browser so it writes what it keeps, then search the profile.
	chromedp.Cancel(b.ctx)
	time.Sleep(500 * time.Millisecond)
	// The search can find things: the profile does name the server.
	if len(grepDir(t, b.profile, strings.TrimPrefix(srv.base, "http://"))) == 0 {
		t.Fatal("the profile search finds not even the server's address: it would find no canary either")
	}
	for _, c := range []string{canaryTitle, canaryNote, canaryTranscript, canaryProject, "Aurora 7f3a", "north gate 91c2", "harbour office 55d1"} {
		if hits := grepDir(t, b.profile, c); len(hits) > 0 {
			t.Errorf("the browser profile keeps %q after logout in %v", c, hits)
		}
	}
}

// grepDir returns the files under dir that contain s (also as UTF-16LE).
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	u16 := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		u16 = append(u16, c, 0)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if strings.Contains(string(b), s) || strings.Contains(string(b), string(u16)) {
			rel, _ := filepath.Rel(dir, p)
			hits = append(hits, rel)
		}
		return nil
	})
	return hits
}
