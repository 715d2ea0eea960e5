package api_test

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tyst/api"
	"tyst/store"
	"tyst/store/auth"
)

// clock is a settable time source for store and api.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func withClock(c *clock) serverOption {
	return func(o *store.Options, cfg *api.Config) {
		o.Now = c.Now
		cfg.Now = c.Now
	}
}

// login logs in over HTTP and returns the session cookie.
func (ts *testServer) login(tb testing.TB, username, password, code string) (*http.Cookie, *http.Response, []byte) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password, "totp": code})
	resp, b := ts.do(tb, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), "Authorization", "")
	for _, c := range resp.Cookies() {
		if c.Name == "tyst_session" {
			return c, resp, b
		}
	}
	return nil, resp, b
}

func (ts *testServer) mustLogin(tb testing.TB, username string) *http.Cookie {
	tb.Helper()
	c, resp, body := ts.login(tb, username, testPassword, "")
	if c == nil {
		tb.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	return c
}

// as returns header pairs for do that authenticate with a cookie or token
// (and no admin token).
func asCookie(c *http.Cookie) []string {
	return []string{"Authorization", "", "Cookie", c.Name + "=" + c.Value}
}
func asToken(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
func anonymous() []string         { return []string{"Authorization", ""} }

// routeClass is who may call each route, written out here independently of
// the server's own rules. A route missing here fails the matrix test.
var routeClass = map[string]string{
	"GET /healthz":                             "public",
	"GET /readyz":                              "public",
	"GET /api/v1/setup":                        "public",
	"POST /api/v1/setup":                       "public",
	"POST /api/v1/session":                     "public",
	"DELETE /api/v1/session":                   "self",
	"GET /api/v1/me":                           "self",
	"POST /api/v1/me/totp":                     "self-session",
	"POST /api/v1/me/totp/confirm":             "self-session",
	"GET /api/v1/openapi.json":                 "viewer",
	"POST /api/v1/record":                      "editor+stream",
	"GET /api/v1/records":                      "viewer",
	"GET /api/v1/record/:id":                   "viewer",
	"GET /api/v1/projects":                     "viewer",
	"POST /api/v1/projects":                    "editor",
	"PATCH /api/v1/projects/:id":               "editor",
	"POST /api/v1/record/:id/audio":            "editor+stream",
	"GET /api/v1/record/:id/stream":            "editor+stream",
	"GET /api/v1/record/:id/audio":             "viewer",
	"HEAD /api/v1/record/:id/audio":            "viewer",
	"DELETE /api/v1/record/:id/audio":          "editor",
	"PATCH /api/v1/record/:id":                 "editor",
	"PUT /api/v1/record/:id/segments":          "editor",
	"GET /api/v1/record/:id/segments":          "viewer",
	"POST /api/v1/record/:id/notes":            "editor",
	"GET /api/v1/record/:id/notes":             "viewer",
	"DELETE /api/v1/record/:id/notes/:note_id": "editor",
	"POST /api/v1/record/:id/export":           "editor",
	"GET /api/v1/exports/:package_id":          "viewer",
	"POST /api/v1/record/:id/destroy":          "editor",
	"GET /api/v1/receipts/:receipt_id":         "viewer",
	"GET /api/v1/audit":                        "admin",
	"GET /api/v1/status":                       "viewer",
	"GET /api/v1/users":                        "admin",
	"POST /api/v1/users":                       "admin",
	"PATCH /api/v1/users/:id":                  "admin",
	"GET /api/v1/tokens":                       "admin",
	"POST /api/v1/tokens":                      "admin",
	"DELETE /api/v1/tokens/:id":                "admin",
	"GET /api/v1/settings":                     "admin",
	"PUT /api/v1/settings":                     "admin",
}

// matrixRequest is a concrete request for a route: ids filled in, and a
// body where the route takes one.
func matrixRequest(tb testing.TB, route string, recordID, userID, tokenID uint64, wav []byte) (method, path, ct string, body []byte) {
	tb.Helper()
	method, pattern, _ := strings.Cut(route, " ")
	path = pattern
	switch {
	case strings.HasPrefix(pattern, "/api/v1/record/:id"):
		path = strings.Replace(pattern, ":id", fmt.Sprint(recordID), 1)
		path = strings.Replace(path, ":note_id", "1", 1)
	case strings.HasPrefix(pattern, "/api/v1/exports/:package_id"):
		path = "/api/v1/exports/" + strings.Repeat("0", 32)
	case strings.HasPrefix(pattern, "/api/v1/receipts/:receipt_id"):
		path = "/api/v1/receipts/rcpt_" + strings.Repeat("0", 32)
	case strings.HasPrefix(pattern, "/api/v1/users/:id"):
		path = strings.Replace(pattern, ":id", fmt.Sprint(userID), 1)
	case strings.HasPrefix(pattern, "/api/v1/tokens/:id"):
		path = strings.Replace(pattern, ":id", fmt.Sprint(tokenID), 1)
	case strings.HasPrefix(pattern, "/api/v1/projects/:id"):
		path = strings.Replace(pattern, ":id", "1", 1) // the admin's first, standard project
	}
	ct = "application/json"
	switch route {
	case "POST /api/v1/setup":
		body = []byte(`{"token":"x","username":"someone","password":"correct horse battery"}`)
	case "POST /api/v1/session":
		body = []byte(`{"username":"target","password":"` + testPassword + `"}`)
	case "POST /api/v1/me/totp":
		body = []byte(`{"password":"` + testPassword + `"}`)
	case "POST /api/v1/me/totp/confirm":
		body = []byte(`{"code":"000000"}`)
	case "DELETE /api/v1/record/:id/audio":
		body = []byte(`{"confirm":true,"reason":"matrix"}`)
	case "PATCH /api/v1/record/:id":
		body = []byte(`{"title":"renamed"}`)
	case "PUT /api/v1/record/:id/segments":
		body = []byte(`{"segments":[{"start_ms":0,"end_ms":10,"text":"x"}]}`)
	case "POST /api/v1/record/:id/notes":
		body = []byte(`{"text":"a note"}`)
	case "POST /api/v1/record/:id/export":
		body = []byte(`{"confirm":true,"reason":"matrix"}`)
	case "POST /api/v1/record/:id/destroy":
		body = []byte(`{"dry_run":true}`)
	case "POST /api/v1/projects":
		body = []byte(`{"name":"matrix project"}`)
	case "PATCH /api/v1/projects/:id":
		body = []byte(`{"name":"renamed"}`)
	case "POST /api/v1/record":
		body = []byte(`{"title":"matrix"}`)
	case "POST /api/v1/record/:id/audio":
		var b *bytes.Buffer
		ct, b = multipartBody(tb, "file", "a.wav", "audio/wav", wav)
		body = b.Bytes()
	case "POST /api/v1/users":
		body = []byte(`{"username":"new-user","password":"correct horse battery","role":"viewer"}`)
	case "PATCH /api/v1/users/:id":
		body = []byte(`{"role":"viewer"}`)
	case "POST /api/v1/tokens":
		body = []byte(`{"username":"target"}`)
	case "PUT /api/v1/settings":
		body = []byte(`{"require_admin_totp":false}`)
	default:
		ct = ""
	}
	return method, path, ct, body
}

// TestAuthorizationMatrix calls every registered route as every kind of
// caller and asserts the status: 401 without credentials, 403 for a role or
// scope that may not, 404 for another user's sensitive record, and for the
// rest an answer from the handler itself (not 401 or 403).
func TestAuthorizationMatrix(t *testing.T) {
	ts := mustServe(t)
	wav := mustRead(t, audioDir+"tone.wav")
	viewerToken := ts.mustUser(t, "viewer", store.RoleViewer, "")
	editorToken := ts.mustUser(t, "editor", store.RoleEditor, "")
	streamToken := ts.mustUser(t, "editor", store.RoleEditor, store.ScopeStream)
	ts.mustUser(t, "owner", store.RoleEditor, "")
	ts.mustUser(t, "target", store.RoleViewer, "")
	target, _ := ts.db.Users(t.Context())
	var targetID uint64
	for _, u := range target {
		if u.Username == "target" {
			targetID = u.ID
		}
	}

	// A record of the admin (standard) and a sensitive one of "owner".
	standard := ts.mustCreate(t, "standard")
	ownerCookie := ts.mustLogin(t, "owner")
	resp, body := ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"secret","sensitivity":"sensitive"}`), asCookie(ownerCookie)...)
	if resp.StatusCode != 201 {
		t.Fatalf("create sensitive: %d %s", resp.StatusCode, body)
	}
	var sens struct {
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(t, body, &sens)

	type caller struct {
		name string
		hdr  func() []string
		// expect returns the status wanted for a route class, or 0 for
		// "answered by the handler" (neither 401 nor 403).
		expect func(class string) int
	}
	sessions := map[string]*http.Cookie{}
	for _, n := range []string{"viewer", "editor", "admin"} {
		sessions[n] = ts.mustLogin(t, n)
	}
	byRole := func(role string) func(string) int {
		return func(class string) int {
			if class == "self-session" {
				// A second factor is enrolled from a session only.
				if strings.HasSuffix(role, "-token") {
					return 403
				}
				return 0
			}
			allowed := map[string][]string{
				"viewer": {"public", "self", "viewer"},
				"editor": {"public", "self", "viewer", "editor", "editor+stream"},
				"admin":  {"public", "self", "viewer", "editor", "editor+stream", "admin"},
			}[strings.TrimSuffix(role, "-token")]
			for _, a := range allowed {
				if a == class {
					return 0
				}
			}
			return 403
		}
	}
	callers := []caller{
		{"anonymous", anonymous, func(class string) int {
			if class == "public" {
				return 0
			}
			return 401
		}},
		{"viewer", func() []string { return asCookie(sessions["viewer"]) }, byRole("viewer")},
		{"editor", func() []string { return asCookie(sessions["editor"]) }, byRole("editor")},
		{"admin", func() []string { return asCookie(sessions["admin"]) }, byRole("admin")},
		{"token", func() []string { return asToken(editorToken) }, byRole("editor-token")},
		{"viewer-token", func() []string { return asToken(viewerToken) }, byRole("viewer-token")},
		{"admin-token", func() []string { return asToken(ts.token) }, byRole("admin-token")},
		{"stream-token", func() []string { return asToken(streamToken) }, func(class string) int {
			if class == "public" || class == "editor+stream" {
				return 0
			}
			return 403
		}},
	}

	srv := api.New(api.Config{})
	for _, route := range srv.Routes() {
		class, ok := routeClass[route]
		if !ok {
			t.Errorf("route %s is not in the matrix: add it to routeClass", route)
			continue
		}
		for _, c := range callers {
			// Fresh objects for routes that use them up.
			recID := ts.mustCreate(t, "matrix target")
			_, tok, err := ts.db.CreateToken(t.Context(), "target", "", "")
			if err != nil {
				t.Fatal(err)
			}
			method, path, ct, body := matrixRequest(t, route, recID, targetID, tok.ID, wav)
			resp, got := ts.do(t, method, path, ct, bytes.NewReader(body), c.hdr()...)
			want := c.expect(class)
			if route == "POST /api/v1/setup" && want == 0 {
				want = 403 // accounts exist: setup is closed for everyone
			}
			switch {
			case want == 0 && (resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 500):
				t.Errorf("%s as %s: %d %s, want the handler's answer (not 401, 403 or 5xx)", route, c.name, resp.StatusCode, got)
			case want != 0 && resp.StatusCode != want:
				t.Errorf("%s as %s: %d %s, want %d", route, c.name, resp.StatusCode, got, want)
			}
			if route == "DELETE /api/v1/session" && resp.StatusCode == 204 {
				sessions[c.name] = ts.mustLogin(t, c.name) // it logged out
			}
		}
		// Another user's sensitive record: 404, as if it did not exist.
		if strings.HasPrefix(strings.SplitN(route, " ", 2)[1], "/api/v1/record/:id") {
			for _, c := range []caller{callers[2], callers[4]} { // an editor by session and by token
				method, path, ct, body := matrixRequest(t, route, sens.TranscriptID, targetID, 0, wav)
				resp, got := ts.do(t, method, path, ct, bytes.NewReader(body), c.hdr()...)
				if resp.StatusCode != 404 {
					t.Errorf("%s on another's sensitive record as %s: %d %s, want 404", route, c.name, resp.StatusCode, got)
				}
			}
		}
	}
	for route := range routeClass {
		found := false
		for _, r := range srv.Routes() {
			found = found || r == route
		}
		if !found {
			t.Errorf("routeClass lists %s, which is not a route", route)
		}
	}

	// Lists do not show it either; its creator and admins see it.
	listed := func(hdr []string) bool {
		_, b := ts.do(t, "GET", "/api/v1/records?limit=200&q=secret", "", nil, hdr...)
		return strings.Contains(string(b), `"title":"secret"`)
	}
	if listed(asCookie(sessions["editor"])) || listed(asToken(editorToken)) {
		t.Error("another editor's list shows the sensitive record")
	}
	if !listed(asCookie(ownerCookie)) || !listed(asCookie(sessions["admin"])) {
		t.Error("the creator or an admin does not see the sensitive record")
	}
	_ = standard
}

// TestCSRF: a cookie-authenticated state-changing request from another
// origin is refused; the same request from the app's own origin works.
func TestCSRF(t *testing.T) {
	ts := mustServe(t)
	ts.mustUser(t, "editor", store.RoleEditor, "")
	cookie := ts.mustLogin(t, "editor")
	host := strings.TrimPrefix(ts.URL, "http://")
	create := func(hdr ...string) (*http.Response, []byte) {
		return ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"x"}`), append(asCookie(cookie), hdr...)...)
	}
	before := ts.snapshot(t)
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://" + host + ".evil.example"},
		{"Origin", "null"},
	} {
		resp, body := create(hdr...)
		wantError(t, resp, body, 403, "forbidden")
	}
	if after := ts.snapshot(t); after != before {
		t.Fatal("a refused cross-origin request changed the store")
	}
	if resp, body := create("Origin", "http://"+host, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 201 {
		t.Fatalf("same-origin create: %d %s", resp.StatusCode, body)
	}
	if resp, _ := ts.do(t, "GET", "/api/v1/records", "", nil, append(asCookie(cookie), "Origin", "https://evil.example")...); resp.StatusCode != 200 {
		t.Fatalf("GET with a foreign Origin but no Sec-Fetch-Site (no browser): %d, want 200", resp.StatusCode)
	}

	// Reads that ride on the cookie too: a page on another origin of the
	// same site (another port, a sibling subdomain), which SameSite=Strict
	// does not stop, cannot load a record's audio into itself, learn which
	// records have audio, or write an audio_accessed event in the user's
	// name. The user's own pages and the address bar can; a token, which
	// no browser sends by itself, is not asked.
	id := ts.mustCreate(t, "sensitive interview")
	if resp, body := ts.upload(t, id, "audio/wav", bigWAV(1<<20)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	audio := fmt.Sprintf("/api/v1/record/%d/audio", id)
	before = ts.snapshot(t)
	for _, site := range []string{"same-site", "cross-site"} {
		for _, p := range []string{audio, "/api/v1/records", "/api/v1/me"} {
			resp, body := ts.do(t, "GET", p, "", nil, append(asCookie(cookie), "Sec-Fetch-Site", site, "Sec-Fetch-Dest", "audio")...)
			wantError(t, resp, body, 403, "forbidden")
			if resp.Header.Get("Cross-Origin-Resource-Policy") != "same-origin" {
				t.Fatalf("%s: no Cross-Origin-Resource-Policy: same-origin", p)
			}
		}
	}
	if after := ts.snapshot(t); after != before || ts.accessed(t, id) != 0 {
		t.Fatal("a refused same-site read changed the store or was audited as a listen")
	}
	for _, site := range []string{"same-origin", "none"} {
		if resp, _ := ts.do(t, "GET", audio, "", nil, append(asCookie(cookie), "Sec-Fetch-Site", site)...); resp.StatusCode != 200 {
			t.Fatalf("audio with Sec-Fetch-Site %s: %d, want 200", site, resp.StatusCode)
		}
	}
	if resp, _ := ts.do(t, "GET", audio, "", nil, "Authorization", "Bearer "+ts.token, "Sec-Fetch-Site", "same-site"); resp.StatusCode != 200 {
		t.Fatalf("audio with a token: %d, want 200", resp.StatusCode)
	}
}

func TestSession(t *testing.T) {
	clk := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	ts := mustServe(t, withClock(clk))
	ts.mustUser(t, "editor", store.RoleEditor, "")

	t.Run("Cookie", func(t *testing.T) {
		c := ts.mustLogin(t, "editor")
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
			t.Fatalf("cookie=%+v", c)
		}
		if c.Secure {
			t.Fatal("Secure cookie over plain HTTP would never be sent back")
		}
		resp, body := ts.do(t, "GET", "/api/v1/me", "", nil, asCookie(c)...)
		var me map[string]any
		mustUnmarshal(t, body, &me)
		if resp.StatusCode != 200 || me["username"] != "editor" || me["role"] != "editor" {
			t.Fatalf("me: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("Logout", func(t *testing.T) {
		c := ts.mustLogin(t, "editor")
		resp, body := ts.do(t, "DELETE", "/api/v1/session", "", nil, asCookie(c)...)
		if resp.StatusCode != 204 {
			t.Fatalf("logout: %d %s", resp.StatusCode, body)
		}
		resp, body = ts.do(t, "GET", "/api/v1/me", "", nil, asCookie(c)...)
		wantError(t, resp, body, 401, "unauthorized")
	})
	t.Run("Expiry", func(t *testing.T) {
		c := ts.mustLogin(t, "editor")
		clk.Add(store.DefaultSessionTTL - time.Second)
		if resp, _ := ts.do(t, "GET", "/api/v1/me", "", nil, asCookie(c)...); resp.StatusCode != 200 {
			t.Fatalf("just before expiry: %d", resp.StatusCode)
		}
		clk.Add(time.Second)
		resp, body := ts.do(t, "GET", "/api/v1/me", "", nil, asCookie(c)...)
		wantError(t, resp, body, 401, "unauthorized")
	})
	t.Run("BadCredentials", func(t *testing.T) {
		for _, hdr := range [][]string{
			{"Authorization", "Bearer tyst_t_forged"},
			{"Authorization", "Basic dXNlcjpwYXNz"},
			{"Authorization", "Bearer "},
			{"Authorization", "", "Cookie", "tyst_session=forged"},
		} {
			resp, body := ts.do(t, "GET", "/api/v1/me", "", nil, hdr...)
			wantError(t, resp, body, 401, "unauthorized")
		}
	})
}

// TestLockout: disabling a user, resetting a password and revoking a token
// take effect on the very next request.
func TestLockout(t *testing.T) {
	ts := mustServe(t)
	tok := ts.mustUser(t, "editor", store.RoleEditor, "")
	cookie := ts.mustLogin(t, "editor")
	var users struct {
		Users []struct {
			UserID   uint64 `json:"user_id"`
			Username string `json:"username"`
		} `json:"users"`
	}
	_, body := ts.do(t, "GET", "/api/v1/users", "", nil)
	mustUnmarshal(t, body, &users)
	var id uint64
	for _, u := range users.Users {
		if u.Username == "editor" {
			id = u.UserID
		}
	}
	ok := func(hdr []string) bool {
		resp, _ := ts.do(t, "GET", "/api/v1/records", "", nil, hdr...)
		return resp.StatusCode == 200
	}
	if !ok(asToken(tok)) || !ok(asCookie(cookie)) {
		t.Fatal("credentials do not work to begin with")
	}
	resp, body := ts.do(t, "PATCH", fmt.Sprintf("/api/v1/users/%d", id), "application/json", strings.NewReader(`{"disabled":true}`))
	if resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}
	if ok(asToken(tok)) || ok(asCookie(cookie)) {
		t.Fatal("a disabled user still gets in")
	}
	if c, _, _ := ts.login(t, "editor", testPassword, ""); c != nil {
		t.Fatal("a disabled user can log in")
	}
	ts.do(t, "PATCH", fmt.Sprintf("/api/v1/users/%d", id), "application/json", strings.NewReader(`{"disabled":false}`))
	if !ok(asToken(tok)) {
		t.Fatal("re-enabled user's token does not work")
	}
	if ok(asCookie(cookie)) {
		t.Fatal("a session survived disabling")
	}

	t.Run("PasswordReset", func(t *testing.T) {
		c := ts.mustLogin(t, "editor")
		ts.do(t, "PATCH", fmt.Sprintf("/api/v1/users/%d", id), "application/json", strings.NewReader(`{"password":"another long password"}`))
		if ok(asCookie(c)) {
			t.Fatal("a session survived a password reset")
		}
		if c, _, _ := ts.login(t, "editor", "another long password", ""); c == nil {
			t.Fatal("new password does not work")
		}
	})
	t.Run("TokenRevoked", func(t *testing.T) {
		resp, body := ts.do(t, "POST", "/api/v1/tokens", "application/json", strings.NewReader(`{"username":"editor","scope":"stream"}`))
		var created struct {
			TokenID uint64 `json:"token_id"`
			Token   string `json:"token"`
			Scope   string `json:"scope"`
		}
		mustUnmarshal(t, body, &created)
		if resp.StatusCode != 201 || !strings.HasPrefix(created.Token, "tyst_t_") || created.Scope != "stream" {
			t.Fatalf("token: %d %s", resp.StatusCode, body)
		}
		if resp, _ := ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"x"}`), asToken(created.Token)...); resp.StatusCode != 201 {
			t.Fatalf("stream token cannot create: %d", resp.StatusCode)
		}
		_, list := ts.do(t, "GET", "/api/v1/tokens", "", nil)
		if strings.Contains(string(list), created.Token) {
			t.Fatal("the token list shows a secret")
		}
		resp, _ = ts.do(t, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", created.TokenID), "", nil)
		if resp.StatusCode != 204 {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		resp, body = ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"x"}`), asToken(created.Token)...)
		wantError(t, resp, body, 401, "unauthorized")
	})
	t.Run("LastAdmin", func(t *testing.T) {
		resp, body := ts.do(t, "PATCH", "/api/v1/users/1", "application/json", strings.NewReader(`{"role":"viewer"}`))
		wantError(t, resp, body, 409, "conflict")
	})
}

// TestLoginRateLimit: five failures lock a username for the window (even
// the right password then gets 429); twenty from one client lock the
// client for every username; the window passing unlocks both.
func TestLoginRateLimit(t *testing.T) {
	clk := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	ts := mustServe(t, withClock(clk))
	ts.mustUser(t, "editor", store.RoleEditor, "")
	for i := range 5 {
		if _, resp, _ := ts.login(t, "editor", "wrong password "+fmt.Sprint(i), ""); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	_, resp, body := ts.login(t, "editor", testPassword, "")
	wantError(t, resp, body, 429, "rate_limited")
	if c := ts.mustLogin(t, "admin"); c == nil {
		t.Fatal("another username is blocked by one username's failures")
	}
	for i := range 20 {
		ts.login(t, fmt.Sprintf("nobody%d", i), "wrong password!", "")
	}
	_, resp, body = ts.login(t, "admin", testPassword, "")
	wantError(t, resp, body, 429, "rate_limited")
	clk.Add(15 * time.Minute)
	if c := ts.mustLogin(t, "editor"); c == nil {
		t.Fatal("still blocked after the window")
	}
	for _, line := range strings.Split(ts.log.String(), "\n") {
		if strings.Contains(line, "127.0.0.1") {
			t.Fatalf("a log line holds the client address: %s", line)
		}
	}
}

// TestSetup: the first admin is made with the one-time setup token; then
// setup is closed for good.
func TestSetup(t *testing.T) {
	keys, _ := store.NewKeyring(store.GenerateKey())
	db, err := store.Open(t.TempDir(), store.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(api.New(api.Config{Records: db, Accounts: db}))
	defer srv.Close()
	ts := &testServer{Server: srv, db: db}
	token, err := db.NewSetupToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	state := func() bool {
		_, body := ts.do(t, "GET", "/api/v1/setup", "", nil, anonymous()...)
		var s struct{ Needed bool }
		mustUnmarshal(t, body, &s)
		return s.Needed
	}
	if !state() {
		t.Fatal("setup not needed on a fresh store")
	}
	if resp, _ := ts.do(t, "GET", "/api/v1/records", "", nil, anonymous()...); resp.StatusCode != 401 {
		t.Fatalf("records before setup: %d, want 401", resp.StatusCode)
	}
	post := func(tok, user, pass string) (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]string{"token": tok, "username": user, "password": pass})
		return ts.do(t, "POST", "/api/v1/setup", "application/json", bytes.NewReader(b), anonymous()...)
	}
	resp, body := post("tyst_setup_wrong", "boss", testPassword)
	wantError(t, resp, body, 401, "unauthorized")
	resp, body = post(token, "boss", "short")
	wantError(t, resp, body, 400, "validation_error")
	resp, body = post(token, "boss", testPassword)
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"role":"admin"`) {
		t.Fatalf("setup: %d %s", resp.StatusCode, body)
	}
	resp, body = post(token, "second", testPassword)
	wantError(t, resp, body, 403, "forbidden")
	if state() {
		t.Fatal("setup still needed after it was done")
	}
	if _, err := db.NewSetupToken(t.Context()); store.ErrorCode(err) != store.CodeForbidden {
		t.Fatalf("a new setup token after setup: %v", err)
	}
	if c := ts.mustLogin(t, "boss"); c == nil {
		t.Fatal("the first admin cannot log in")
	}
}

func mustBase32(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestTOTP enrols a second factor, logs in with it, refuses a replayed code,
// and uses a recovery code once.
func TestTOTP(t *testing.T) {
	clk := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	ts := mustServe(t, withClock(clk))
	ts.mustUser(t, "editor", store.RoleEditor, "")
	cookie := ts.mustLogin(t, "editor")
	resp, body := ts.do(t, "POST", "/api/v1/me/totp", "application/json", strings.NewReader(`{"password":"wrong password!!"}`), asCookie(cookie)...)
	wantError(t, resp, body, 403, "forbidden")
	editorToken := ts.mustUser(t, "editor2", store.RoleEditor, "")
	resp, body = ts.do(t, "POST", "/api/v1/me/totp", "application/json", strings.NewReader(`{"password":"`+testPassword+`"}`), asToken(editorToken)...)
	wantError(t, resp, body, 403, "forbidden")
	resp, body = ts.do(t, "POST", "/api/v1/me/totp", "application/json", strings.NewReader(`{"password":"`+testPassword+`"}`), asCookie(cookie)...)
	var begin struct {
		URI string `json:"otpauth_uri"`
	}
	mustUnmarshal(t, body, &begin)
	u, err := url.Parse(begin.URI)
	if resp.StatusCode != 200 || err != nil || u.Scheme != "otpauth" {
		t.Fatalf("begin: %d %s", resp.StatusCode, body)
	}
	secret := mustBase32(t, u.Query().Get("secret"))
	code := func() string { return auth.TOTPCode(secret, clk.Now()) }

	resp, body = ts.do(t, "POST", "/api/v1/me/totp/confirm", "application/json", strings.NewReader(`{"code":"000000"}`), asCookie(cookie)...)
	if code() != "000000" {
		wantError(t, resp, body, 400, "validation_error")
	}
	resp, body = ts.do(t, "POST", "/api/v1/me/totp/confirm", "application/json", strings.NewReader(`{"code":"`+code()+`"}`), asCookie(cookie)...)
	var confirmed struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	mustUnmarshal(t, body, &confirmed)
	if resp.StatusCode != 200 || len(confirmed.RecoveryCodes) != 10 {
		t.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}

	clk.Add(30 * time.Second)
	if c, resp, body := ts.login(t, "editor", testPassword, ""); c != nil || resp.StatusCode != 401 || !strings.Contains(string(body), "second factor required") {
		t.Fatalf("login without code: %d %s", resp.StatusCode, body)
	}
	for range 6 { // the first step of a two-step login is no failure
		ts.login(t, "editor", testPassword, "")
	}
	current := code()
	if c, resp, body := ts.login(t, "editor", testPassword, current); c == nil {
		t.Fatalf("login with code: %d %s", resp.StatusCode, body)
	}
	if c, _, _ := ts.login(t, "editor", testPassword, current); c != nil {
		t.Fatal("a TOTP code worked twice")
	}
	rc := strings.ToUpper(confirmed.RecoveryCodes[0])
	if c, resp, body := ts.login(t, "editor", testPassword, rc); c == nil {
		t.Fatalf("login with a recovery code: %d %s", resp.StatusCode, body)
	}
	if c, _, _ := ts.login(t, "editor", testPassword, rc); c != nil {
		t.Fatal("a recovery code worked twice")
	}
	events, _, _ := ts.db.AuditEvents(t.Context(), store.AuditFilter{})
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action)
	}
	joined := strings.Join(actions, ",")
	for _, want := range []string{"totp_enabled", "recovery_code_used", "login", "login_failed"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("audit lacks %s: %s", want, joined)
		}
	}
}

// TestRequireAdminTOTP: with the setting on, an admin without a second
// factor can only enrol one (and see and end their session).
func TestRequireAdminTOTP(t *testing.T) {
	ts := mustServe(t)
	resp, body := ts.do(t, "PUT", "/api/v1/settings", "application/json", strings.NewReader(`{"require_admin_totp":true}`))
	if resp.StatusCode != 200 {
		t.Fatalf("settings: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/api/v1/records", "", nil)
	wantError(t, resp, body, 403, "forbidden")
	resp, body = ts.do(t, "GET", "/api/v1/me", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"needs_totp":true`) {
		t.Fatalf("me: %d %s", resp.StatusCode, body)
	}
	admin := ts.mustLogin(t, "admin")
	if resp, body := ts.do(t, "POST", "/api/v1/me/totp", "application/json", strings.NewReader(`{"password":"`+testPassword+`"}`), asCookie(admin)...); resp.StatusCode != 200 {
		t.Fatalf("enrol: %d %s", resp.StatusCode, body)
	}
	// Editors are not affected.
	tok := ts.mustUser(t, "editor", store.RoleEditor, "")
	if resp, _ := ts.do(t, "GET", "/api/v1/records", "", nil, asToken(tok)...); resp.StatusCode != 200 {
		t.Fatalf("editor under the admin rule: %d", resp.StatusCode)
	}
}

// TestAccountCanaries: usernames and passwords never reach the log, and
// failed logins are audited without them.
func TestAccountCanaries(t *testing.T) {
	ts := mustServe(t)
	user, pass := "canary-user-5e1f", "CANARY-PASSWORD-88a2"
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass, "role": "editor"})
	if resp, b := ts.do(t, "POST", "/api/v1/users", "application/json", bytes.NewReader(body)); resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	ts.login(t, user, pass+"x", "")
	ts.login(t, user+"x", pass, "")
	c, _, _ := ts.login(t, user, pass, "")
	if c == nil {
		t.Fatal("login failed")
	}
	ts.do(t, "GET", "/api/v1/me", "", nil, asCookie(c)...)
	ts.do(t, "POST", "/api/v1/tokens", "application/json", strings.NewReader(`{"username":"`+user+`"}`))
	ts.do(t, "POST", "/api/v1/users", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+pass+`","role":"editor"}`)) // conflict
	logs := ts.log.String()
	for _, s := range []string{user, pass, c.Value} {
		if strings.Contains(logs, s) {
			t.Fatalf("log holds %q", s)
		}
	}
	events, _, _ := ts.db.AuditEvents(t.Context(), store.AuditFilter{})
	raw, _ := json.Marshal(events)
	if strings.Contains(string(raw), user) || strings.Contains(string(raw), pass) {
		t.Fatal("audit holds a username or password")
	}
	failed, logins := 0, 0
	for _, ev := range events {
		switch ev.Action {
		case store.ActionLoginFailed: // coalesced: each event counts the failures since the last
			n, _ := ev.Meta["count"].(float64)
			failed += int(n)
		case store.ActionLogin:
			if ev.ActorID == 0 {
				t.Fatal("login event without the actor's user id")
			}
			logins++
		}
	}
	if failed != 2 || logins != 1 {
		t.Fatalf("login_failed counts %d failures, login=%d, want 2 and 1", failed, logins)
	}
}

// TestLoginRateLimit_Parallel: attempts sent at once cannot all slip
// through while the first ones are still being checked.
func TestLoginRateLimit_Parallel(t *testing.T) {
	ts := mustServe(t)
	ts.mustUser(t, "editor", store.RoleEditor, "")
	const n = 30
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, resp, _ := ts.login(t, "editor", fmt.Sprintf("wrong password %d", i), "")
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	checked := 0
	for s := range statuses {
		switch s {
		case 401:
			checked++
		case 429:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if checked > 5 {
		t.Fatalf("%d of %d parallel guesses were checked, want at most 5", checked, n)
	}
}

// TestLoginRateLimit_ClientHeader: behind a proxy that passes the client's
// address, one client's failures do not lock out the others.
func TestLoginRateLimit_ClientHeader(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.ClientIPHeader = "X-Forwarded-For" })
	try := func(user, ip string) int {
		body, _ := json.Marshal(map[string]string{"username": user, "password": "wrong password!"})
		resp, _ := ts.do(t, "POST", "/api/v1/session", "application/json", bytes.NewReader(body), "Authorization", "", "X-Forwarded-For", "10.9.9.9, "+ip)
		return resp.StatusCode
	}
	for i := range 20 {
		try(fmt.Sprintf("u%d", i), "192.0.2.1")
	}
	if got := try("someone", "192.0.2.1"); got != 429 {
		t.Fatalf("the guessing client: %d, want 429", got)
	}
	if got := try("someone", "192.0.2.2"); got != 401 {
		t.Fatalf("another client behind the same proxy: %d, want 401 (checked, not blocked)", got)
	}
	if strings.Contains(ts.log.String(), "192.0.2.") {
		t.Fatal("a client address reached the log")
	}
}

// TestSensitive_ProjectAndUpload: another user can neither put a record
// into a project that holds only someone's sensitive record, nor learn from
// an upload that such a record exists.
func TestSensitive_ProjectAndUpload(t *testing.T) {
	ts := mustServe(t)
	ts.mustUser(t, "owner", store.RoleEditor, "")
	otherToken := ts.mustUser(t, "other", store.RoleEditor, "")
	owner := ts.mustLogin(t, "owner")
	resp, body := ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(`{"title":"secret","sensitivity":"sensitive"}`), asCookie(owner)...)
	var rec struct {
		ProjectID    uint64 `json:"project_id"`
		TranscriptID uint64 `json:"transcript_id"`
	}
	mustUnmarshal(t, body, &rec)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "POST", "/api/v1/record", "application/json", strings.NewReader(fmt.Sprintf(`{"title":"x","project_id":%d}`, rec.ProjectID)), asToken(otherToken)...)
	wantError(t, resp, body, 404, "not_found")
	resp, body = ts.upload(t, rec.TranscriptID, "audio/wav", mustRead(t, audioDir+"tone.wav"), asToken(otherToken)...)
	wantError(t, resp, body, 404, "not_found")
	_, body = ts.do(t, "GET", "/api/v1/projects", "", nil, asToken(otherToken)...)
	if strings.Contains(string(body), fmt.Sprintf(`"project_id":%d`, rec.ProjectID)) {
		t.Fatalf("the hidden project is listed: %s", body)
	}
}

// TestSetup_ClosedDoesNotLockOut: once setup is closed, setup attempts are
// answered 403 and never touch the login limiter: many of them from one
// address do not keep anyone behind it from logging in. While setup is
// open, wrong tokens still count.
func TestSetup_ClosedDoesNotLockOut(t *testing.T) {
	ts := mustServe(t) // has an admin: setup is closed
	ts.mustUser(t, "editor", store.RoleEditor, "")
	for i := range 50 {
		body := fmt.Sprintf(`{"token":"tyst_setup_guess%d","username":"boss","password":"correct horse battery"}`, i)
		resp, b := ts.do(t, "POST", "/api/v1/setup", "application/json", strings.NewReader(body), anonymous()...)
		wantError(t, resp, b, 403, "forbidden")
	}
	if c := ts.mustLogin(t, "editor"); c == nil {
		t.Fatal("setup attempts locked the client out of logging in")
	}

	keys, _ := store.NewKeyring(store.GenerateKey())
	db, err := store.Open(t.TempDir(), store.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(api.New(api.Config{Records: db, Accounts: db}))
	defer srv.Close()
	open := &testServer{Server: srv, db: db}
	if _, err := db.NewSetupToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	statuses := map[int]int{}
	for i := range 21 {
		body := fmt.Sprintf(`{"token":"tyst_setup_guess%d","username":"boss","password":"correct horse battery"}`, i)
		resp, _ := open.do(t, "POST", "/api/v1/setup", "application/json", strings.NewReader(body), anonymous()...)
		statuses[resp.StatusCode]++
	}
	if statuses[401] != 20 || statuses[429] != 1 {
		t.Fatalf("21 wrong setup tokens while open: statuses %v, want 20×401 and 1×429", statuses)
	}
}

// TestUserCreate_WeakPasswords: white space only, one character repeated
// and common passwords (in any case) are refused with a clear 400 when an
// account is created or its password is set, and nothing changes.
func TestUserCreate_WeakPasswords(t *testing.T) {
	ts := mustServe(t)
	before := ts.snapshot(t)
	for pass, msg := range map[string]string{
		"            ":  "white space",
		"xxxxxxxxxxxx":  "repeated",
		"QWERTYUIOP":    "common",
		"1q2w3e4r5t":    "common",
		" password123 ": "common",
	} {
		body, _ := json.Marshal(map[string]string{"username": "newbie", "password": pass, "role": "viewer"})
		resp, b := ts.do(t, "POST", "/api/v1/users", "application/json", bytes.NewReader(body))
		wantError(t, resp, b, 400, "validation_error")
		if p := strings.TrimSpace(pass); !strings.Contains(string(b), msg) || (p != "" && strings.Contains(string(b), p)) {
			t.Fatalf("password %q: message %s, want one that says %q without the password", pass, b, msg)
		}
		resp, b = ts.do(t, "PATCH", "/api/v1/users/1", "application/json", strings.NewReader(`{"password":`+strconv.Quote(pass)+`}`))
		wantError(t, resp, b, 400, "validation_error")
	}
	if after := ts.snapshot(t); after != before {
		t.Fatalf("refused passwords changed the store:\n%s\n%s", before, after)
	}
	if c := ts.mustLogin(t, "admin"); c == nil {
		t.Fatal("the admin's password changed")
	}
}
