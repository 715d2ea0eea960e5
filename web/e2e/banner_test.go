package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWarningBanners: a server whose newsroom key lies beside the data,
// with the debug dump asked for, shows both warnings as banners and on the
// status page, as GET /api/v1/status reports them.
func TestWarningBanners(t *testing.T) {
	needBrowser(t)
	srv := startServerKeyless(t, "ECHOPANEL_DEBUG_AUDIO_DUMP=1")
	b := startBrowser(t, srv, browserOptions{})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	var st struct {
		Keys struct {
			BesideData bool `json:"beside_data"`
		} `json:"keys"`
		DebugDump struct {
			Enabled bool `json:"enabled"`
		} `json:"debug_dump"`
	}
	s.api.getJSON("/api/v1/status", &st)
	if !st.Keys.BesideData {
		t.Fatal("status: keys.beside_data is false for a server that generated its key")
	}
	if !st.DebugDump.Enabled {
		t.Fatal("status: debug_dump.enabled is false with ECHOPANEL_DEBUG_AUDIO_DUMP=1")
	}
	b.waitJS("the key banner", `document.querySelector('#banners').textContent.includes('lies beside the data')`, 10*time.Second)
	dumpBanner := eval[bool](b, `document.querySelector('#banners').textContent.includes('debug audio dump is on')`)
	if dumpBanner != st.DebugDump.Enabled {
		t.Errorf("debug dump banner shown = %v, status says enabled = %v", dumpBanner, st.DebugDump.Enabled)
	}
	b.screen("29-banners")
	b.click(`#nav a[href="#/status"]`)
	b.waitJS("the status page", `document.querySelector('#status-retention')`, 10*time.Second)
	main := b.text("#main")
	if !strings.Contains(main, "lies beside the data") {
		t.Errorf("status page lacks the key warning: %q", short(main))
	}
	if st.DebugDump.Enabled && !strings.Contains(main, "debug audio dump is on") {
		t.Errorf("status page lacks the debug dump warning")
	}
	b.screen("30-status-warnings")

	// A non-admin sees the dump banner (it concerns their recordings) but
	// not the key banner, which only an admin can act on.
	s.api.call("POST", "/api/v1/users", map[string]any{"username": "rep", "password": "reporter password 1", "role": "editor"})
	b.click("#logout")
	b.waitJS("the login page", `location.hash === '#/login' && document.querySelector('input[name=username]')`, 10*time.Second)
	b.fill("input[name=username]", "rep")
	b.fill("input[name=password]", "reporter password 1")
	b.click("#main form button[type=submit]")
	b.waitJS("the record list", `location.hash === '#/records' && document.querySelector('#records, #main p.muted')`, 10*time.Second)
	b.do("settle", chromedp.Sleep(300*time.Millisecond))
	banners := b.text("#banners")
	if strings.Contains(banners, "beside the data") {
		t.Error("an editor sees the key banner")
	}
	if st.DebugDump.Enabled && !strings.Contains(banners, "debug audio dump is on") {
		t.Error("an editor does not see the debug dump banner")
	}
	if eval[bool](b, `document.querySelector('#nav a[href="#/admin/users"]').offsetParent !== null`) {
		t.Error("an editor sees the admin navigation")
	}
	b.checkClean()
}
