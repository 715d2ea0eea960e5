package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"tyst/store"
)

// maxJSONBody is the largest JSON request body (DESIGN §5).
const maxJSONBody = 1 << 20

// maxJSONBodyTime is how long a JSON body may take to arrive in all.
const maxJSONBodyTime = 30 * time.Second

// writeJSON marshals v before writing the header, so a marshalling failure
// can still be a 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal_error","message":"internal error"}}`, http.StatusInternalServerError)
		return nil
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(raw, '\n'))
	return nil
}

// decodeJSON reads one JSON object of at most maxJSONBody bytes into v,
// refusing unknown fields and trailing data. The body must be declared
// application/json (parameters such as charset=utf-8 allowed) and be valid
// UTF-8: encoding/json would silently replace invalid bytes with U+FFFD, so
// the raw body is checked first. A Content-Length over the limit is refused
// before a byte of the body is read.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if !isJSON(r.Header.Get("Content-Type")) {
		return apiError(store.CodeUnsupported, "request body must be JSON: send Content-Type: application/json")
	}
	if r.ContentLength > maxJSONBody {
		return apiError(store.CodeTooLarge, fmt.Sprintf("JSON body is larger than %d bytes", maxJSONBody))
	}
	// A JSON body is small: it gets the idle limit and, so that a trickle
	// cannot hold the connection either, a limit for the whole body.
	body := &idleReader{r: http.MaxBytesReader(w, r.Body, maxJSONBody), rc: http.NewResponseController(w),
		idle: s.bodyIdle, until: time.Now().Add(min(s.bodyIdle, maxJSONBodyTime))}
	raw, err := io.ReadAll(body)
	// The body is in: lift the deadline, or net/http's background read
	// would hit it and cancel the request's context mid-work.
	body.rc.SetReadDeadline(time.Time{})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return apiError(store.CodeTooLarge, fmt.Sprintf("JSON body is larger than %d bytes", maxJSONBody))
	case err != nil:
		return apiError(store.CodeValidation, "request body is incomplete")
	case !utf8.Valid(raw):
		return apiError(store.CodeValidation, "request body is not valid UTF-8")
	}
	if err := checkNames(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return apiError(store.CodeValidation, "request body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return apiError(store.CodeValidation, "request body is not valid JSON")
	case errors.As(err, &typeErr):
		return apiError(store.CodeValidation, fmt.Sprintf("field %s has the wrong type", typeErr.Field))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field name is the client's own input; echo it sanitised.
		return apiError(store.CodeValidation, "unknown field "+sanitizeField(strings.TrimPrefix(err.Error(), "json: unknown field ")))
	}
	return apiError(store.CodeValidation, "request body is not valid JSON")
}

// maxJSONDepth is how deep a request body may nest objects and arrays; the
// API's bodies nest three levels at most.
const maxJSONDepth = 32

// checkNames refuses a body in which an object has a member name that is
// not lower-case ASCII (letters, digits, underscores: every field of the
// API), or the same name twice. encoding/json matches names without
// regard to case (and folds some non-ASCII letters, as the long s, into
// ASCII ones) and keeps the last of two equal names, so {"role":"viewer",
// "Role":"admin"} would mean admin to tyst and viewer to a proxy or a
// reviewer that reads names as written. A body that does not parse is
// left to the decoder, which says so. So is one that nests deeper than
// maxJSONDepth.
func checkNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object  bool
		wantKey bool
		seen    map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or a syntax error the decoder reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if name, ok := tok.(string); ok {
				if !apiName(name) {
					return apiError(store.CodeValidation, "field names are lower-case ASCII: unknown field "+sanitizeField(name))
				}
				if top.seen[name] {
					return apiError(store.CodeValidation, "duplicate field "+sanitizeField(name))
				}
				top.seen[name] = true
				top.wantKey = false
				continue
			}
		}
		if top != nil && top.object {
			top.wantKey = true // a value ends here, or the object does
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxJSONDepth {
				return apiError(store.CodeValidation, "request body nests too deep")
			}
			obj := tok == json.Delim('{')
			stack = append(stack, &frame{object: obj, wantKey: obj, seen: map[string]bool{}})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
		}
	}
}

// apiName reports whether name is lower-case ASCII letters, digits and
// underscores, as every member name of the API.
func apiName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// isJSON reports whether a Content-Type is exactly application/json, in
// any case, with any parameters: not application/jsonx, text/json or none.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func sanitizeField(s string) string {
	s = strings.Trim(s, `"`)
	if len(s) > 40 {
		s = s[:40]
	}
	return strconv.Quote(s)
}

// parseID parses a path id strictly: decimal digits, no sign, no leading
// zero, 1 to 2^64-1.
func parseID(s string) (uint64, error) {
	bad := apiError(store.CodeValidation, "id must be a positive decimal number")
	if s == "" || len(s) > 20 || s[0] == '0' {
		return 0, bad
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, bad
	}
	return id, nil
}
