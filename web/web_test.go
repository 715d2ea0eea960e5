package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandler_Index(t *testing.T) {
	h := Handler(Config{MaxUploadBytes: 5 << 20})
	for _, p := range []string{"/", "/index.html"} {
		resp, body := get(t, h, "GET", p)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %q", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, `content="5242880" name="tyst-max-upload-bytes"`) {
			t.Fatalf("GET %s: the page does not carry the upload limit", p)
		}
	}
	resp, body := get(t, h, "HEAD", "/")
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD /: %d, %d bytes of body", resp.StatusCode, len(body))
	}
}

func TestHandler_Files(t *testing.T) {
	h := Handler(Config{})
	for path, ct := range map[string]string{
		"/app.css":                  "text/css; charset=utf-8",
		"/js/app.js":                "text/javascript; charset=utf-8",
		"/js/recorder-worklet.js":   "text/javascript; charset=utf-8",
		"/vendor/qrcode.mjs":        "text/javascript; charset=utf-8",
		"/icon.svg":                 "image/svg+xml",
		"/js/views/../dom.js":       "text/javascript; charset=utf-8",
		"/js//api.js":               "text/javascript; charset=utf-8",
		"/js/views/record.js?x=1#y": "text/javascript; charset=utf-8",
	} {
		resp, body := get(t, h, "GET", path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || body == "" {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), ct)
		}
	}
}

func TestHandler_Refuses(t *testing.T) {
	h := Handler(Config{})
	for _, path := range []string{"/nope.js", "/js/", "/js", "/vendor/README.md", "/../web.go", "/web.go", "/static/index.html", "/%2e%2e/web.go"} {
		if resp, _ := get(t, h, "GET", path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		if resp, _ := get(t, h, m, "/"); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: %d, want 405", m, resp.StatusCode)
		}
	}
}

// TestFiles_CSP checks what the Content-Security-Policy of the API
// (default-src 'self'; script-src 'self') would block: inline scripts, inline
// event handlers, style attributes, and anything from another origin.
func TestFiles_CSP(t *testing.T) {
	static, err := fs.Sub(files, "static")
	if err != nil {
		t.Fatal(err)
	}
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	handlerAttr := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleAttr := regexp.MustCompile(`(?i)\sstyle\s*=`)
	external := regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//`)
	fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "vendor/qrcode.mjs" {
			return err
		}
		b, _ := fs.ReadFile(static, p)
		s := string(b)
		if strings.HasSuffix(p, ".html") {
			for name, re := range map[string]*regexp.Regexp{"an inline script": inlineScript, "an inline event handler": handlerAttr, "a style attribute": styleAttr, "a third-party URL": external} {
				if re.MatchString(s) {
					t.Errorf("%s has %s", p, name)
				}
			}
		}
		if strings.HasSuffix(p, ".js") && (strings.Contains(s, "innerHTML") || strings.Contains(s, "eval(") || strings.Contains(s, "localStorage") || strings.Contains(s, "sessionStorage") || strings.Contains(s, "indexedDB")) {
			t.Errorf("%s uses innerHTML, eval or browser storage", p)
		}
		return nil
	})
}
