package signing

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

const armorBegin = "-----BEGIN " + sshsig.PEMType + "-----"

// Verify checks sig, an armored SSHSIG signature, against msg (read to its
// end) as `ssh-keygen -Y verify -f ALLOWED -I tyst -n NAMESPACE -s SIG < MSG`
// does: the signature must be in namespace, by a key that a line of
// allowedSigners (the text of an allowed_signers file) admits for Principal
// and for namespace, and match msg. It returns the signing key's
// fingerprint ("SHA256:…").
//
// Lines with the options cert-authority, valid-after or valid-before, or
// options ssh-keygen does not know, admit no key here: tyst signs with a
// plain key and its signatures hold no time. Every failure wraps ErrInvalid;
// the error names no key or principal.
func Verify(allowedSigners []byte, namespace string, msg io.Reader, sig []byte) (string, error) {
	if !bytes.HasPrefix(sig, []byte(armorBegin)) {
		return "", fmt.Errorf("%w: not an armored SSH signature", ErrInvalid)
	}
	s, err := sshsig.Unarmor(sig)
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature", ErrInvalid)
	}
	if s.Namespace != namespace {
		return "", fmt.Errorf("%w: signature is for another namespace", ErrInvalid)
	}
	if err := s.HashAlgorithm.Available(); err != nil {
		return "", fmt.Errorf("%w: unsupported hash algorithm", ErrInvalid)
	}
	if !admitted(allowedSigners, s.PublicKey, namespace) {
		return "", fmt.Errorf("%w: the signing key is not in allowed_signers for principal %s and this namespace", ErrInvalid, Principal)
	}
	if err := sshsig.Verify(msg, s, s.PublicKey, s.HashAlgorithm, namespace); err != nil {
		return "", fmt.Errorf("%w: signature does not match the signed file", ErrInvalid)
	}
	return ssh.FingerprintSHA256(s.PublicKey), nil
}

// admitted reports whether a line of allowed admits key for Principal in
// namespace.
func admitted(allowed []byte, key ssh.PublicKey, namespace string) bool {
	want := key.Marshal()
	for line := range bytes.Lines(allowed) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		principals, rest := cutPrincipals(line)
		if !matchList(Principal, principals) {
			continue
		}
		pub, _, options, _, err := ssh.ParseAuthorizedKey(rest)
		if err != nil || !bytes.Equal(pub.Marshal(), want) || !optionsAdmit(options, namespace) {
			continue
		}
		return true
	}
	return false
}

// cutPrincipals splits the principals field (quoted or not) from the rest of
// an allowed_signers line.
func cutPrincipals(line []byte) (string, []byte) {
	if line[0] == '"' {
		if end := bytes.IndexByte(line[1:], '"'); end >= 0 {
			return string(line[1 : end+1]), line[end+2:]
		}
		return "", nil
	}
	end := bytes.IndexAny(line, " \t")
	if end < 0 {
		return "", nil
	}
	return string(line[:end]), line[end:]
}

// optionsAdmit reports whether options admit a plain key for namespace: only
// the namespaces option is understood, and without it every namespace is
// admitted, as in ssh-keygen.
func optionsAdmit(options []string, namespace string) bool {
	for _, opt := range options {
		name, value, _ := strings.Cut(opt, "=")
		if !strings.EqualFold(name, "namespaces") {
			return false
		}
		value, ok := strings.CutPrefix(value, `"`)
		if ok {
			value, ok = strings.CutSuffix(value, `"`)
		}
		if !ok || !matchList(namespace, value) {
			return false
		}
	}
	return true
}

// matchList reports whether s matches the comma-separated pattern list as
// OpenSSH's match_pattern_list does: a match of a "!"-negated pattern refuses
// at once, otherwise one matching pattern is enough.
func matchList(s, list string) bool {
	matched := false
	for p := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if match(s, p) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// match reports whether s matches pattern, where "*" stands for any run of
// bytes and "?" for one byte. It backtracks only to the last "*", so its
// time is at most len(s)·len(pattern).
func match(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
