package api

import (
	"net/http"
	"net/textproto"
	"strings"
)

// checkPreconditions evaluates a GET or HEAD's conditional headers against
// the audio's current entity tag in the order of RFC 9110 §13.2.2, before
// the audio is opened, and returns 0 to go on, 304 Not Modified or 412
// Precondition Failed. It then removes them from r (and the Range, when an
// If-Range does not match), so http.ServeContent serves what was decided.
//
// tyst sends no Last-Modified, so If-Unmodified-Since and If-Modified-Since
// are ignored, as §13.1.3 and §13.1.4 require without a modification date;
// an If-Range with a date never matches. If-Match and If-Range compare
// strongly, If-None-Match weakly; "*" matches, since the audio exists.
func checkPreconditions(r *http.Request, etag string) int {
	h := r.Header
	defer func() {
		for _, k := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
			h.Del(k)
		}
	}()
	if im := h.Values("If-Match"); len(im) > 0 && !etagListMatches(im, etag, false) {
		return http.StatusPreconditionFailed
	}
	if inm := h.Values("If-None-Match"); len(inm) > 0 && etagListMatches(inm, etag, true) {
		return http.StatusNotModified
	}
	if ir := textproto.TrimString(h.Get("If-Range")); ir != "" && h.Get("Range") != "" {
		if tag, rest, ok := scanETag(ir); !ok || rest != "" || tag.weak || tag.opaque != etag {
			h.Del("Range") // another version, or a date: the whole file
		}
	}
	return 0
}

// entityTag is one parsed entity tag; opaque keeps its quotes.
type entityTag struct {
	opaque string
	weak   bool
}

// etagListMatches reports whether a header of "*" or a comma-separated
// list of entity tags (over one or more lines) holds etag: compared weakly
// (W/ ignored) or strongly (a weak tag never matches). A malformed list
// matches nothing after the error.
func etagListMatches(values []string, etag string, weakOK bool) bool {
	for _, v := range values {
		v = textproto.TrimString(v)
		if v == "*" {
			return true
		}
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			tag, rest, ok := scanETag(v)
			if !ok {
				break
			}
			if tag.opaque == etag && (weakOK || !tag.weak) {
				return true
			}
			v = rest
		}
	}
	return false
}

// scanETag reads one entity tag (RFC 9110 §8.8.3: [W/] DQUOTE *etagc
// DQUOTE) from the start of s and returns it and what follows.
func scanETag(s string) (tag entityTag, rest string, ok bool) {
	if after, found := strings.CutPrefix(s, "W/"); found {
		tag.weak, s = true, after
	}
	if len(s) < 2 || s[0] != '"' {
		return tag, "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			tag.opaque = s[:i+1]
			return tag, s[i+1:], true
		case c == 0x21, c >= 0x23 && c <= 0x7E, c >= 0x80:
		default:
			return tag, "", false
		}
	}
	return tag, "", false
}
