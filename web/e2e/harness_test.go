// Package e2e drives the browser UI in a real Chromium (Debian's chromium
// package, through github.com/chromedp/chromedp) against a real tyst serve
// on loopback, built once in TestMain. Without a browser the tests skip with
// a message; with TYST_E2E_REQUIRED=1 (set by .ci/run) a missing browser
// fails them. Screenshots land in testdata/screenshots/ (git-ignored).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"tyst/internal/testproc"
)

var (
	tystBin    string // the built tyst binary
	browserBin string // chromium
	skipReason string // why the tests skip, when they do
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browserBin = p
			break
		}
	}
	if browserBin == "" {
		if os.Getenv("TYST_E2E_REQUIRED") == "1" {
			fmt.Fprintln(os.Stderr, "e2e: TYST_E2E_REQUIRED=1 but no chromium is installed (apt-get install -y chromium)")
			return 1
		}
		skipReason = "no chromium installed: the browser tests skip (apt-get install -y chromium, or set TYST_E2E_REQUIRED=1 to fail instead)"
		fmt.Fprintln(os.Stderr, "e2e:", skipReason)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "tyst-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if tystBin, err = testproc.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

func needBrowser(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// server is a running tyst serve.
type server struct {
	*testproc.Server
	base string
	data string
	key  string
}

var setupTokenRE = regexp.MustCompile(`tyst_setup_[A-Za-z0-9_-]+`)

// startServer runs tyst serve on a free loopback port with a fresh data
// directory and newsroom key, plus extra environment.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	key, err := exec.Command(tystBin, "keygen").Output()
	if err != nil {
		t.Fatalf("tyst keygen: %v", err)
	}
	s := &server{data: t.TempDir(), key: strings.TrimSpace(string(key))}
	s.start(t, "127.0.0.1:0", env...)
	return s
}

// startServerKeyless runs tyst serve with no newsroom key given, so it
// generates one beside the data.
func startServerKeyless(t *testing.T, env ...string) *server {
	t.Helper()
	s := &server{data: t.TempDir()}
	s.start(t, "127.0.0.1:0", env...)
	return s
}

func (s *server) start(t *testing.T, listen string, env ...string) {
	t.Helper()
	if s.key != "" {
		env = append([]string{"PROJECT_FILES_KEY=" + s.key}, env...)
	}
	s.Server = testproc.Start(t, tystBin, listen, s.data, env...)
	s.base = s.Base
}

// restart stops the server with SIGTERM and starts it again on the same
// address and data directory.
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.Stop(t)
	s.start(t, strings.TrimPrefix(s.base, "http://"))
}

func (s *server) logText() string { return s.String() }

// token returns the newest setup token the server logged, if it did.
func (s *server) token() string {
	all := setupTokenRE.FindAllString(s.String(), -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// browser is one Chromium with a fresh profile, and the page it drives.
type browser struct {
	t          *testing.T
	ctx        context.Context
	profile    string
	downloads  string
	shots      string
	origin     string
	axeSource  string
	mu         sync.Mutex
	console    []string // errors and CSP reports from the page
	foreign    []string // requests to anything but the server
	allowHosts []string
}

// browserOptions tunes a browser.
type browserOptions struct {
	fakeAudio string // WAV file for Chromium's fake microphone; "" for none
	noMic     bool   // deny microphone permission
}

// startBrowser starts Chromium headless with a fresh user-data-dir.
func startBrowser(t *testing.T, srv *server, opt browserOptions) *browser {
	t.Helper()
	b := &browser{t: t, profile: t.TempDir(), downloads: t.TempDir(), origin: srv.base}
	b.shots = filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browserBin),
		chromedp.UserDataDir(b.profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 900),
	}
	if opt.fakeAudio != "" {
		opts = append(opts,
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
			chromedp.Flag("use-file-for-fake-audio-capture", opt.fakeAudio))
	}
	if opt.noMic {
		opts = append(opts, chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("deny-permission-prompts", true))
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	b.ctx = ctx
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil { // CSP reports arrive here
		t.Fatal(err)
	}
	axe, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	b.axeSource = string(axe)
	return b
}

// onEvent records console errors, CSP reports and requests to other hosts.
func (b *browser) onEvent(ev any) {
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		b.mu.Lock()
		b.console = append(b.console, "exception: "+e.ExceptionDetails.Text+" "+exceptionText(e.ExceptionDetails))
		b.mu.Unlock()
	case *runtime.EventConsoleAPICalled:
		if e.Type == "error" {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.mu.Lock()
			b.console = append(b.console, "console.error: "+strings.Join(parts, " "))
			b.mu.Unlock()
		}
	case *cdplog.EventEntryAdded:
		// Network entries are the API's own error statuses, which the
		// page handles; anything else at error level counts.
		if (e.Entry.Level == "error" && e.Entry.Source != "network") || strings.Contains(e.Entry.Text, "Content Security Policy") {
			b.mu.Lock()
			b.console = append(b.console, "browser log: "+e.Entry.Text)
			b.mu.Unlock()
		}
	case *network.EventRequestWillBeSent:
		u := e.Request.URL
		if !strings.HasPrefix(u, b.origin+"/") && !strings.HasPrefix(u, strings.Replace(b.origin, "http:", "ws:", 1)+"/") &&
			!strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "blob:") {
			b.mu.Lock()
			b.foreign = append(b.foreign, u)
			b.mu.Unlock()
		}
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// checkClean fails the test if the page logged errors or asked another host.
func (b *browser) checkClean(allowed ...string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.console {
		ok := false
		for _, a := range allowed {
			if strings.Contains(c, a) {
				ok = true
			}
		}
		if !ok {
			b.t.Errorf("the page logged an error: %s", c)
		}
	}
	if len(b.foreign) > 0 {
		b.t.Errorf("the page made requests to other hosts: %v", b.foreign)
	}
	b.console = nil
}

// do runs actions, failing the test with what on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + sanitize(b.t.Name()))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.shot("failed-" + sanitize(b.t.Name()))
		b.t.Fatalf("evaluate %q: %v", short(js), err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true.
func (b *browser) waitJS(what, cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot("failed-" + sanitize(b.t.Name()))
			b.t.Fatalf("waiting for %s: not true within %v (%s) [err %v]", what, timeout, short(cond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q)||{textContent:''}).textContent`, sel))
}

// click clicks an element with a real mouse event.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(sel, chromedp.NodeVisible))
}

// fill clears an input and types text into it.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.do("find "+sel, chromedp.WaitVisible(sel))
	eval[chromedp.Void](b, fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
	b.do("fill "+sel, chromedp.SendKeys(sel, text, chromedp.NodeVisible))
}

// shot saves a full-page screenshot as testdata/screenshots/name.png.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// viewShot saves a screenshot of what the window shows (for dialogs).
func (b *browser) viewShot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// axe runs axe-core on the page and fails on serious or critical violations.
func (b *browser) axe(screen string) {
	b.t.Helper()
	if !eval[bool](b, `typeof window.axe !== 'undefined'`) {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](b.axeSource))
		cancel()
		if err != nil {
			b.t.Fatalf("inject axe-core: %v", err)
		}
	}
	type node struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	}
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []node `json:"nodes"`
	}
	vs := eval[[]violation](b, `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help, nodes: v.nodes.slice(0, 3).map(n => ({target: n.target, html: n.html.slice(0, 160)}))})))`)
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("axe on %s: %s (%s): %s %v", screen, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
}

// screen saves a screenshot and runs the accessibility check.
func (b *browser) screen(name string) {
	b.t.Helper()
	b.shot(name)
	b.axe(name)
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "-", " ", "_").Replace(s)
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// apiClient is a plain HTTP client for checks from the test side.
type apiClient struct {
	t      *testing.T
	base   string
	token  string
	cookie string // a browser session's cookie header, when set
	http   *http.Client
}

func newAPIClient(t *testing.T, base, token string) *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{t: t, base: base, token: token, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

// call sends a request and returns status and body.
func (c *apiClient) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON GETs path and decodes a 200 answer into v.
func (c *apiClient) getJSON(path string, v any) {
	c.t.Helper()
	status, b := c.call("GET", path, nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}
