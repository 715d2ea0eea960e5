package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"tyst/store"
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

// openAPIOperation is what the tests read of one operation.
type openAPIOperation struct {
	Role      string                     `json:"x-tyst-role"`
	Security  *[]map[string][]string     `json:"security"` // nil when absent
	Responses map[string]json.RawMessage `json:"responses"`
}

// openAPIDocument is what the tests read of openapi.json.
type openAPIDocument struct {
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
			In     string `json:"in"`
			Name   string `json:"name"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

func parseOpenAPI(tb testing.TB) openAPIDocument {
	tb.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// documentedOperations returns the document's operations by "method /path".
func documentedOperations(tb testing.TB) map[string]openAPIOperation {
	tb.Helper()
	ops := make(map[string]openAPIOperation)
	for path, item := range parseOpenAPI(tb).Paths {
		for key, raw := range item {
			if !openAPIMethods[key] {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				tb.Fatalf("openapi.json: %s %s: %v", key, path, err)
			}
			ops[key+" "+path] = op
		}
	}
	return ops
}

// xTystRoles are the values of the x-tyst-role extension.
var xTystRoles = map[string]bool{
	"public": true, "viewer": true, "editor": true, "editor+stream": true, "admin": true, "self": true,
}

// xTystRole names ru as openapi.json's x-tyst-role does; ok is false for a
// rule the document has no name for (extend xTystRoles and the document).
func xTystRole(ru rule) (name string, ok bool) {
	name = ru.role
	switch {
	case ru.role == "" && !ru.stream && !ru.self:
		name = "public"
	case ru.self && ru.role == store.RoleViewer && !ru.stream:
		name = "self" // any logged-in user: viewer is the least role
	case ru.self:
		return "", false
	case ru.stream:
		name += "+stream"
	}
	return name, xTystRoles[name]
}

func TestOpenAPI_Routes(t *testing.T) {
	documented := documentedOperations(t)
	s := New(Config{})
	if len(s.routes) != len(s.rules) {
		t.Fatalf("%d routes but %d rules", len(s.routes), len(s.rules))
	}
	registered := make(map[string]rule)
	for i, route := range s.Routes() {
		method, pattern, ok := strings.Cut(route, " ")
		if !ok {
			t.Fatalf("route %q is not \"METHOD /pattern\"", route)
		}
		registered[strings.ToLower(method)+" "+openAPIPath(pattern)] = s.rules[i]
	}
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
	var missing, extra []string
	for op := range registered {
		if _, ok := documented[op]; !ok {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if _, ok := registered[op]; !ok {
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

	for op, ru := range registered {
		doc, ok := documented[op]
		if !ok {
			continue
		}
		want, ok := xTystRole(ru)
		if !ok {
			t.Errorf("%s: rule %+v has no x-tyst-role name", op, ru)
			continue
		}
		if doc.Role != want {
			t.Errorf("%s: x-tyst-role=%q, want %q (registerRoutes rule %+v)", op, doc.Role, want, ru)
		}
		public := ru.role == ""
		switch {
		case public && (doc.Security == nil || len(*doc.Security) != 0):
			t.Errorf("%s is public but does not override security with []", op)
		case !public && doc.Security != nil:
			t.Errorf("%s needs a login but overrides the top-level security", op)
		}
		if !public {
			for _, status := range []string{"401", "403"} {
				if _, ok := doc.Responses[status]; !ok {
					t.Errorf("%s needs a login but documents no %s", op, status)
				}
			}
		}
	}
}

// TestOpenAPI_Security checks the document's security schemes and default.
func TestOpenAPI_Security(t *testing.T) {
	doc := parseOpenAPI(t)
	schemes := doc.Components.SecuritySchemes
	if b := schemes["bearerAuth"]; b.Type != "http" || b.Scheme != "bearer" {
		t.Errorf("bearerAuth=%+v, want http bearer", b)
	}
	if c := schemes["sessionCookie"]; c.Type != "apiKey" || c.In != "cookie" || c.Name != sessionCookie {
		t.Errorf("sessionCookie=%+v, want apiKey in cookie %s", c, sessionCookie)
	}
	got := make(map[string]bool)
	for _, req := range doc.Security {
		if len(req) != 1 {
			t.Errorf("security requirement %v: want one scheme each (either may be used)", req)
		}
		for name := range req {
			got[name] = true
		}
	}
	if !got["bearerAuth"] || !got["sessionCookie"] || len(got) != 2 {
		t.Errorf("top-level security names %v, want bearerAuth and sessionCookie", got)
	}
}

// TestOpenAPI_Refs checks that every $ref points into the document.
func TestOpenAPI_Refs(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs = append(refs, s)
				} else {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(refs) == 0 {
		t.Fatal("no $ref found")
	}
	unescape := strings.NewReplacer("~1", "/", "~0", "~")
	for _, ref := range refs {
		pointer, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			t.Errorf("$ref %q is not local", ref)
			continue
		}
		cur := doc
		for _, part := range strings.Split(pointer, "/") {
			m, _ := cur.(map[string]any)
			next, ok := m[unescape.Replace(part)]
			if !ok {
				t.Errorf("$ref %q does not resolve", ref)
				break
			}
			cur = next
		}
	}
}

func TestOpenAPI_Serve(t *testing.T) {
	keys, err := store.NewKeyring(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir(), store.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	// Usernames are 2 to 64 characters.
	if _, err := db.CreateUser(ctx, store.NewUser{Username: "viewer", Password: "correct horse battery", Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	token, _, err := db.CreateToken(ctx, "viewer", "", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Records: db, Accounts: db}))
	t.Cleanup(srv.Close)

	get := func(t *testing.T, authorization string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/openapi.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	for name, authorization := range map[string]string{
		"no credentials": "",
		"not bearer":     "Basic dmlld2VyOnB3",
		"unknown token":  "Bearer tyst_t_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, authorization)
			if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type=%q, want JSON", ct)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, body)
			}
			if e.Error.Code != store.CodeUnauthorized || e.Error.Message == "" {
				t.Fatalf("error=%+v, want code %s with a message", e.Error, store.CodeUnauthorized)
			}
			if id := resp.Header.Get("X-Request-ID"); id == "" || e.Error.RequestID != id {
				t.Fatalf("request_id=%q, X-Request-ID=%q", e.Error.RequestID, id)
			}
		})
	}

	t.Run("viewer token", func(t *testing.T) {
		resp, body := get(t, "Bearer "+token)
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Fatalf("status=%d, want %d; body %s", got, want, body)
		}
		if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
			t.Fatalf("Content-Type=%q, want %q", got, want)
		}
		if resp.Header.Get("X-Request-ID") == "" {
			t.Fatal("no X-Request-ID")
		}
		if !bytes.Equal(body, openAPIDoc) {
			t.Fatal("body is not the embedded openapi.json")
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
	})
}

// TestOpenAPI_ErrorCodes: the document's ErrorCode enum lists exactly the
// codes of the status table, and its description gives each one's status.
func TestOpenAPI_ErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Description string   `json:"description"`
					Enum        []string `json:"enum"`
				} `json:"ErrorCode"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	ec := doc.Components.Schemas.ErrorCode
	documented := map[string]bool{}
	for _, c := range ec.Enum {
		documented[c] = true
		if _, ok := statuses[store.Code(c)]; !ok {
			t.Errorf("openapi.json lists code %s, which the status table lacks", c)
		}
	}
	for code, status := range statuses {
		if !documented[string(code)] {
			t.Errorf("code %s is not in openapi.json's ErrorCode enum", code)
		}
		if want := fmt.Sprintf("%s %d", code, status); !strings.Contains(ec.Description, want) {
			t.Errorf("ErrorCode description lacks %q", want)
		}
	}
}
