package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// openAPIPath turns an httprouter pattern into an OpenAPI path:
// "/api/v1/record/:id" becomes "/api/v1/record/{id}".
func openAPIPath(pattern string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if len(p) > 1 && (p[0] == ':' || p[0] == '*') {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// documentedOperations returns the document's operations as "method /path".
func documentedOperations(tb testing.TB) map[string]bool {
	tb.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	ops := make(map[string]bool)
	for path, item := range doc.Paths {
		for key := range item {
			if openAPIMethods[key] {
				ops[key+" "+path] = true
			}
		}
	}
	return ops
}

func TestOpenAPI_Routes(t *testing.T) {
	documented := documentedOperations(t)
	registered := make(map[string]bool)
	for _, route := range New(Config{}).Routes() {
		method, pattern, ok := strings.Cut(route, " ")
		if !ok {
			t.Fatalf("route %q is not \"METHOD /pattern\"", route)
		}
		registered[strings.ToLower(method)+" "+openAPIPath(pattern)] = true
	}
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
	var missing, extra []string
	for op := range registered {
		if !documented[op] {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if !registered[op] {
			extra = append(extra, op)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, op := range missing {
		t.Errorf("route %s is not in openapi.json", op)
	}
	for _, op := range extra {
		t.Errorf("openapi.json lists %s, which is not a registered route", op)
	}
}

func TestOpenAPI_Serve(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
		t.Fatalf("Content-Type=%q, want %q", got, want)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Fatal("no X-Request-ID")
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi=%q, want 3.x", doc.OpenAPI)
	}
}
