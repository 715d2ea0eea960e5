package signing_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"tyst/store/signing"
)

// mustSSHKeygen returns the path of the real ssh-keygen (Debian package
// openssh-client); the tests need it and fail without it.
func mustSSHKeygen(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		tb.Fatal("ssh-keygen not found: apt-get install -y openssh-client")
	}
	return p
}

func mustGenerate(tb testing.TB) *signing.Key {
	tb.Helper()
	k, err := signing.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustSign(tb testing.TB, k *signing.Key, ns string, msg []byte) []byte {
	tb.Helper()
	sig, err := k.Sign(ns, bytes.NewReader(msg))
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

func writeFile(tb testing.TB, dir, name string, b []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// sshVerify runs `ssh-keygen -Y verify` and returns its output and whether it
// accepted the signature.
func sshVerify(tb testing.TB, allowed string, ns string, msg, sig []byte) (string, bool) {
	tb.Helper()
	dir := tb.TempDir()
	af := writeFile(tb, dir, "allowed_signers", []byte(allowed+"\n"))
	sf := writeFile(tb, dir, "msg.sig", sig)
	cmd := exec.Command(mustSSHKeygen(tb), "-Y", "verify", "-f", af, "-I", signing.Principal, "-n", ns, "-s", sf)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		tb.Fatal(err)
	}
	return string(out), err == nil
}

func TestKey_MarshalParse(t *testing.T) {
	k := mustGenerate(t)
	b := k.Marshal()
	if !bytes.HasPrefix(b, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Fatalf("Marshal is not an OpenSSH private key file: %.40q", b)
	}
	k2, err := signing.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k2.Fingerprint(), k.Fingerprint(); got != want {
		t.Fatalf("Fingerprint=%s after Parse, want %s", got, want)
	}
	if got, want := k2.AllowedSigners(), k.AllowedSigners(); got != want {
		t.Fatalf("AllowedSigners=%q after Parse, want %q", got, want)
	}
	// Ed25519 is deterministic: the parsed key signs exactly as the original.
	msg := []byte("manifest")
	if !bytes.Equal(mustSign(t, k2, signing.NamespaceExport, msg), mustSign(t, k, signing.NamespaceExport, msg)) {
		t.Fatal("the parsed key signs differently")
	}
	if k3 := mustGenerate(t); k3.Fingerprint() == k.Fingerprint() {
		t.Fatal("Generate returned the same key twice")
	}
}

func TestParse_Err(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(edPriv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaBlock, err := ssh.MarshalPrivateKey(rsaPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	good := mustGenerate(t).Marshal()
	cut := good[:len(good)/2]
	for name, in := range map[string][]byte{
		"Empty":     nil,
		"Garbage":   []byte("not a key at all"),
		"Seed":      edPriv.Seed(),
		"Truncated": cut,
		"Encrypted": pem.EncodeToMemory(encrypted),
		"RSA":       pem.EncodeToMemory(rsaBlock),
	} {
		t.Run(name, func(t *testing.T) {
			k, err := signing.Parse(in)
			if err == nil || k != nil {
				t.Fatalf("Parse accepted %s", name)
			}
			if strings.Contains(err.Error(), "BEGIN") || len(in) > 0 && strings.Contains(err.Error(), string(in[:min(len(in), 16)])) {
				t.Fatalf("error repeats its input: %v", err)
			}
		})
	}
}

func TestKey_FingerprintAsSSHKeygen(t *testing.T) {
	k := mustGenerate(t)
	dir := t.TempDir()
	pub := writeFile(t, dir, "key.pub", ssh.MarshalAuthorizedKey(k.PublicKey()))
	out, err := exec.Command(mustSSHKeygen(t), "-l", "-f", pub).Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(out)) // "256 SHA256:… no comment (ED25519)"
	if len(fields) < 2 {
		t.Fatalf("ssh-keygen -l printed %q", out)
	}
	if got, want := k.Fingerprint(), fields[1]; got != want {
		t.Fatalf("Fingerprint=%s, ssh-keygen -l says %s", got, want)
	}
}

func TestKey_AllowedSigners(t *testing.T) {
	k := mustGenerate(t)
	line := k.AllowedSigners()
	re := regexp.MustCompile(`^tyst namespaces="tyst-export-v1,tyst-receipt-v1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=*$`)
	if !re.MatchString(line) {
		t.Fatalf("AllowedSigners=%q", line)
	}
	if !strings.HasSuffix(line, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))) {
		t.Fatalf("AllowedSigners does not end with the public key: %q", line)
	}
}

// TestKey_SignVerifiedBySSHKeygen: the real ssh-keygen accepts tyst's
// signatures in their namespace, and refuses them for another namespace or a
// changed message.
func TestKey_SignVerifiedBySSHKeygen(t *testing.T) {
	k := mustGenerate(t)
	msg := []byte(`{"package_id":"p1"}` + "\n")
	for _, ns := range []string{signing.NamespaceExport, signing.NamespaceReceipt} {
		sig := mustSign(t, k, ns, msg)
		out, ok := sshVerify(t, k.AllowedSigners(), ns, msg, sig)
		if !ok {
			t.Fatalf("ssh-keygen refused a %s signature: %s", ns, out)
		}
		if want := fmt.Sprintf("Good %q signature for tyst with ED25519 key %s", ns, k.Fingerprint()); !strings.Contains(out, want) {
			t.Fatalf("ssh-keygen printed %q, want %q", out, want)
		}
		other := signing.NamespaceReceipt
		if ns == other {
			other = signing.NamespaceExport
		}
		if out, ok := sshVerify(t, k.AllowedSigners(), other, msg, sig); ok {
			t.Fatalf("ssh-keygen accepted a %s signature as %s: %s", ns, other, out)
		}
		changed := bytes.Clone(msg)
		changed[3] ^= 1
		if out, ok := sshVerify(t, k.AllowedSigners(), ns, changed, sig); ok {
			t.Fatalf("ssh-keygen accepted a changed message: %s", out)
		}
	}
	if _, err := k.Sign("file", bytes.NewReader(msg)); err == nil {
		t.Fatal("Sign accepted a namespace that is not tyst's")
	}
}

// TestKey_SignAsSSHKeygen: the signature of a message is exactly the one
// `ssh-keygen -Y sign` makes with the same key (Ed25519 is deterministic), so
// it holds nothing ssh-keygen's does not: no time, no name. Signing again
// later gives the same bytes.
func TestKey_SignAsSSHKeygen(t *testing.T) {
	k := mustGenerate(t)
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "signing_key", k.Marshal())
	msg := []byte("the manifest\n")
	msgFile := writeFile(t, dir, "manifest.json", msg)
	cmd := exec.Command(mustSSHKeygen(t), "-Y", "sign", "-f", keyFile, "-n", signing.NamespaceExport, msgFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign with Marshal's key file: %v: %s", err, out)
	}
	theirs, err := os.ReadFile(msgFile + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	ours := mustSign(t, k, signing.NamespaceExport, msg)
	if got, want := unarmor(t, ours), unarmor(t, theirs); !bytes.Equal(got, want) {
		t.Fatalf("signature differs from ssh-keygen's:\n%x\n%x", got, want)
	}
	if again := mustSign(t, k, signing.NamespaceExport, msg); !bytes.Equal(again, ours) {
		t.Fatal("signing the same message twice gave different bytes")
	}
	// And ours reads ssh-keygen's signature.
	fp, err := signing.Verify([]byte(k.AllowedSigners()), signing.NamespaceExport, bytes.NewReader(msg), theirs)
	if err != nil || fp != k.Fingerprint() {
		t.Fatalf("Verify of ssh-keygen's signature: %q, %v", fp, err)
	}
}

func unarmor(tb testing.TB, armored []byte) []byte {
	tb.Helper()
	s, err := sshsig.Unarmor(armored)
	if err != nil {
		tb.Fatal(err)
	}
	return s.Marshal()
}

func TestVerify(t *testing.T) {
	k := mustGenerate(t)
	other := mustGenerate(t)
	msg := []byte("manifest bytes\n")
	sig := mustSign(t, k, signing.NamespaceExport, msg)
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))

	t.Run("OK", func(t *testing.T) {
		for name, allowed := range map[string]string{
			"Own":           k.AllowedSigners(),
			"AmongOthers":   "# newsroom keys\n\n" + other.AllowedSigners() + "\n" + k.AllowedSigners() + "\n",
			"NoNamespaces":  "tyst " + pub,
			"Patterns":      `ty*,!nobody namespaces="tyst-export-?1,x" ` + pub + " comment",
			"QuotedName":    `"tyst" ` + pub,
			"CRLF":          k.AllowedSigners() + "\r\n",
			"SeveralOfThem": "alice,tyst " + pub,
		} {
			t.Run(name, func(t *testing.T) {
				fp, err := signing.Verify([]byte(allowed), signing.NamespaceExport, bytes.NewReader(msg), sig)
				if err != nil {
					t.Fatal(err)
				}
				if fp != k.Fingerprint() {
					t.Fatalf("fingerprint %s, want %s", fp, k.Fingerprint())
				}
			})
		}
	})

	changedSig := bytes.Clone(sig)
	changedSig[len(changedSig)/2] ^= 0x04 // a base64 letter of the signature body
	changedMsg := bytes.Clone(msg)
	changedMsg[0] ^= 1
	for name, c := range map[string]struct {
		allowed, ns string
		msg, sig    []byte
	}{
		"ChangedMessage":   {k.AllowedSigners(), signing.NamespaceExport, changedMsg, sig},
		"ChangedSignature": {k.AllowedSigners(), signing.NamespaceExport, msg, changedSig},
		"OtherNamespace":   {k.AllowedSigners(), signing.NamespaceReceipt, msg, sig},
		"OtherKey":         {other.AllowedSigners(), signing.NamespaceExport, msg, sig},
		"EmptyAllowed":     {"", signing.NamespaceExport, msg, sig},
		"OtherPrincipal":   {"newsroom " + pub, signing.NamespaceExport, msg, sig},
		"NegatedPrincipal": {"*,!tyst " + pub, signing.NamespaceExport, msg, sig},
		"NamespaceLimited": {`tyst namespaces="tyst-receipt-v1" ` + pub, signing.NamespaceExport, msg, sig},
		"CertAuthority":    {"tyst cert-authority " + pub, signing.NamespaceExport, msg, sig},
		"ValidBefore":      {`tyst valid-before="29991231" ` + pub, signing.NamespaceExport, msg, sig},
		"CommentedOut":     {"#" + k.AllowedSigners(), signing.NamespaceExport, msg, sig},
		"NotArmored":       {k.AllowedSigners(), signing.NamespaceExport, msg, unarmor(t, sig)},
		"Garbage":          {k.AllowedSigners(), signing.NamespaceExport, msg, []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n")},
		"Empty":            {k.AllowedSigners(), signing.NamespaceExport, msg, nil},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			fp, err := signing.Verify([]byte(c.allowed), c.ns, bytes.NewReader(c.msg), c.sig)
			if !errors.Is(err, signing.ErrInvalid) || fp != "" {
				t.Fatalf("Verify=%q, %v; want ErrInvalid", fp, err)
			}
			if strings.Contains(err.Error(), k.Fingerprint()) || strings.Contains(err.Error(), pub[12:40]) {
				t.Fatalf("error names the key: %v", err)
			}
		})
	}
}

// TestKey_NeverPrinted: fmt with any verb, slog and encoding/json show at
// most the fingerprint, never the private key.
func TestKey_NeverPrinted(t *testing.T) {
	k := mustGenerate(t)
	var secrets []string
	raw, err := ssh.ParseRawPrivateKey(k.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	priv := *raw.(*ed25519.PrivateKey)
	seed := priv.Seed()
	secrets = append(secrets, hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed)[:20],
		fmt.Sprint(seed[:8]), string(k.Marshal()[40:80]))

	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", k)
		fmt.Fprintf(&out, verb+"\n", *k)
		fmt.Fprintf(&out, verb+"\n", struct{ K *signing.Key }{k})
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("key", "k", k)
	slog.New(slog.NewTextHandler(&out, nil)).Info("key", "k", k)
	j, err := json.Marshal(struct{ K *signing.Key }{k})
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Fatalf("output holds the private key (%q):\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), k.Fingerprint()) {
		t.Fatalf("output does not even show the fingerprint:\n%s", out.String())
	}
}
