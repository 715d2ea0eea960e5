package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"tyst/api"
	"tyst/store"
)

// doHost sends a GET for path with the given Host header and the admin's
// token.
func (ts *testServer) doHost(tb testing.TB, host, path string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

// TestHost_Rebinding: a request whose Host is not a loopback name, an IP
// address or a configured name is refused with a JSON 403 before routing,
// on every route; the configured names, in any case and with a port or a
// trailing dot, are served.
func TestHost_Rebinding(t *testing.T) {
	ts := mustServe(t, func(_ *store.Options, c *api.Config) { c.Hosts = []string{"tyst.example.org", "Box.Local."} })
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.URL, "http://"), ":")
	for _, host := range []string{
		"evil.example", "evil.example:" + port, "tyst.example.org.evil.example", "localhost.evil.example",
		"example.org", "xtyst.example.org", "tyst.example", "box.local.evil",
	} {
		for _, path := range []string{"/api/v1/records", "/healthz", "/api/v1/nothing", "/api/v1/session"} {
			resp, body := ts.doHost(t, host, path)
			wantError(t, resp, body, 403, "forbidden")
			if strings.Contains(string(body), host) {
				t.Fatalf("the error echoes the host name: %s", body)
			}
		}
	}
	for _, host := range []string{
		"localhost", "localhost:" + port, "LOCALHOST.", "tyst.localhost", "127.0.0.1:" + port, "127.9.9.9",
		"[::1]:" + port, "[::1]", "192.0.2.7", "[2001:db8::1]:443",
		"tyst.example.org", "TYST.Example.Org:443", "tyst.example.org.", "box.local", "box.local:8443",
	} {
		if resp, body := ts.doHost(t, host, "/api/v1/records"); resp.StatusCode != 200 {
			t.Fatalf("Host %q: %d %s, want 200", host, resp.StatusCode, body)
		}
	}
}

// TestPath_EncodedSeparator: an encoded slash or backslash inside a path
// segment is not decoded into a separator before routing: such a path is a
// 404, not the route it would decode to. Other escapes still work.
func TestPath_EncodedSeparator(t *testing.T) {
	ts := mustServe(t)
	id := ts.mustCreate(t, "x")
	if resp, body := ts.upload(t, id, "audio/wav", mustRead(t, audioDir+"tone.wav")); resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	accessed := ts.accessed(t, id)
	for _, path := range []string{
		fmt.Sprintf("/api/v1/record/%d%%2Faudio", id),
		fmt.Sprintf("/api/v1/record/%d%%2faudio", id),
		fmt.Sprintf("/api/v1/record/%d%%5Caudio", id),
		fmt.Sprintf("/api/v1/record/%d%%5caudio", id),
		"/api%2Fv1/records",
		"/api/v1/records%2F",
	} {
		resp, body := ts.do(t, "GET", path, "", nil)
		wantError(t, resp, body, 404, "not_found")
	}
	if got := ts.accessed(t, id); got != accessed {
		t.Fatalf("%d audio_accessed events, want %d: an encoded path reached the audio", got, accessed)
	}
	if resp, body := ts.do(t, "GET", fmt.Sprintf("/api/v1/record/%%3%d", id), "", nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"title":"x"`) {
		t.Fatalf("an ordinary escape (%%3%d): %d %s", id, resp.StatusCode, body)
	}
}

// TestHSTS: with HSTS on (serve under TLS), every response carries
// Strict-Transport-Security, errors and refusals included; without, none.
func TestHSTS(t *testing.T) {
	on := mustServe(t, func(_ *store.Options, c *api.Config) { c.HSTS = true })
	off := mustServe(t)
	for _, path := range []string{"/healthz", "/api/v1/records", "/api/v1/nothing", "/api/v1/record/1%2Faudio"} {
		resp, _ := on.do(t, "GET", path, "", nil)
		if got, want := resp.Header.Get("Strict-Transport-Security"), "max-age=63072000"; got != want {
			t.Fatalf("%s: Strict-Transport-Security=%q, want %q", path, got, want)
		}
		if resp, _ := off.do(t, "GET", path, "", nil); resp.Header.Get("Strict-Transport-Security") != "" {
			t.Fatalf("%s: HSTS without TLS", path)
		}
	}
	resp, _ := on.doHost(t, "evil.example", "/api/v1/records")
	if resp.StatusCode != 403 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("refused host: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

// TestJSON_ContentType: JSON bodies are accepted with application/json in
// any case and with parameters, and nothing else.
func TestJSON_ContentType(t *testing.T) {
	ts := mustServe(t)
	for _, ct := range []string{"application/json", "Application/JSON; charset=UTF-8", "application/json;charset=utf-8"} {
		resp, body := ts.do(t, "POST", "/api/v1/record", ct, strings.NewReader(`{"title":"a"}`))
		if resp.StatusCode != 201 {
			t.Fatalf("%q: %d %s", ct, resp.StatusCode, body)
		}
	}
}
