package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostAllowed reports whether a request's Host may be served (DNS
// rebinding, DESIGN §6). A page on an attacker's name that the attacker's
// DNS later points at this server reaches it with the attacker's name in
// Host, and the browser treats the answers as the attacker's own; only the
// names this server is known by are answered:
//
//   - localhost and *.localhost, which browsers resolve to loopback
//     themselves;
//   - any IP address: an address cannot be rebound, and a page at an
//     address is that address's own origin;
//   - the configured names (Config.Hosts);
//   - no Host at all (HTTP/1.0 without one): no browser sends that.
func (s *Server) hostAllowed(host string) bool {
	h := normalHost(host)
	switch {
	case h == "", h == "localhost", strings.HasSuffix(h, ".localhost"), s.hosts[h]:
		return true
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// normalHost returns host without a port or IPv6 brackets, lower-cased,
// without a trailing dot.
func normalHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
}

// encodedSeparator reports whether the request's path holds an encoded
// slash or backslash (%2F, %5C, in any case) inside a segment. The router
// sees the decoded path, in which "/api/v1/record/1%2Faudio" would be the
// audio route; such paths are answered 404 instead.
func encodedSeparator(r *http.Request) bool {
	p := r.RequestURI
	if p == "" {
		p = r.URL.RawPath
	}
	p, _, _ = strings.Cut(p, "?")
	for {
		i := strings.IndexByte(p, '%')
		if i < 0 || i+2 >= len(p) {
			return false
		}
		if e := p[i+1 : i+3]; strings.EqualFold(e, "2f") || strings.EqualFold(e, "5c") {
			return true
		}
		p = p[i+1:]
	}
}
