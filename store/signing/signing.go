// Package signing holds the newsroom's signing key (DESIGN §4): an Ed25519
// key that signs export manifests and receipts as OpenSSH signatures (SSHSIG),
// so that anyone can check them offline with `ssh-keygen -Y verify`.
//
// The store generates the key on first start and keeps Marshal's bytes sealed
// under the newsroom key; this package never touches the disk. A signature
// holds the public key, the namespace, the hash algorithm and the signature
// itself: no time and no name. The only name is the principal of the
// allowed_signers line, Principal.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespaces of tyst's signatures. A signature made for one is refused for
// the other, so a receipt cannot pass for a manifest.
const (
	NamespaceExport  = "tyst-export-v1"
	NamespaceReceipt = "tyst-receipt-v1"
)

// Principal is the identity of the signing key in allowed_signers lines, the
// `-I` of `ssh-keygen -Y verify`.
const Principal = "tyst"

// hashAlg is the message hash of the signatures, the one `ssh-keygen -Y sign`
// uses by default.
const hashAlg = sshsig.HashSHA512

// ErrInvalid is returned (wrapped, with the reason) by Verify for a signature
// that is malformed, made by a key that allowed_signers does not list for
// the namespace, or that does not match the message.
var ErrInvalid = errors.New("signing: signature does not verify")

// Key is the newsroom's Ed25519 signing key. It never prints its private
// half: fmt, slog and encoding/json show the fingerprint at most. A Key is
// safe for concurrent use.
type Key struct {
	priv   ed25519.PrivateKey
	signer ssh.Signer
	fp     string
}

// Generate returns a new random signing key.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signing: generate: %w", err)
	}
	return newKey(priv)
}

func newKey(priv ed25519.PrivateKey) (*Key, error) {
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return &Key{priv: priv, signer: signer, fp: ssh.FingerprintSHA256(signer.PublicKey())}, nil
}

// Marshal returns the private key as an unencrypted OpenSSH private key file
// (PEM, no comment), for the store to seal under the newsroom key. It is the
// form ssh-keygen reads, so a newsroom can still use the key without tyst.
func (k *Key) Marshal() []byte {
	block, err := ssh.MarshalPrivateKey(k.priv, "")
	if err != nil {
		panic("signing: marshal ed25519 key: " + err.Error()) // cannot fail for ed25519
	}
	return pem.EncodeToMemory(block)
}

// Parse returns the key that Marshal wrote. It refuses anything but an
// unencrypted OpenSSH Ed25519 private key; the error never holds key bytes.
func Parse(b []byte) (*Key, error) {
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		return nil, errors.New("signing: not an OpenSSH private key")
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		priv = *k
	case ed25519.PrivateKey:
		priv = k
	default:
		return nil, errors.New("signing: not an Ed25519 key")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("signing: not an Ed25519 key")
	}
	return newKey(priv)
}

// PublicKey returns the public half in SSH form.
func (k *Key) PublicKey() ssh.PublicKey { return k.signer.PublicKey() }

// Fingerprint returns the key's fingerprint exactly as `ssh-keygen -l` and
// `ssh-keygen -Y verify` print it: "SHA256:" and unpadded base64.
func (k *Key) Fingerprint() string { return k.fp }

// AllowedSigners returns the key as one allowed_signers line (without a
// trailing newline) that admits it for tyst's namespaces only:
//
//	tyst namespaces="tyst-export-v1,tyst-receipt-v1" ssh-ed25519 AAAA…
func (k *Key) AllowedSigners() string {
	pub := ssh.MarshalAuthorizedKey(k.signer.PublicKey()) // "ssh-ed25519 AAAA…\n"
	return fmt.Sprintf("%s namespaces=%q %s", Principal, NamespaceExport+","+NamespaceReceipt, pub[:len(pub)-1])
}

// Sign reads msg to its end and returns an armored SSHSIG signature of it
// ("-----BEGIN SSH SIGNATURE-----" …) in namespace, which must be
// NamespaceExport or NamespaceReceipt. Only msg's hash is held in memory.
func (k *Key) Sign(namespace string, msg io.Reader) ([]byte, error) {
	if namespace != NamespaceExport && namespace != NamespaceReceipt {
		return nil, errors.New("signing: unknown namespace")
	}
	sig, err := sshsig.Sign(msg, k.signer, hashAlg, namespace)
	if err != nil {
		return nil, fmt.Errorf("signing: sign: %w", err)
	}
	return sshsig.Armor(sig), nil
}

// The methods that print a Key have value receivers, so that a copied Key
// (fmt.Print(*k)) hides its private half as well as a *Key does.

// String returns "signing key SHA256:…"; the private half is never printed.
func (k Key) String() string { return "signing key " + k.fp }

// Format prints String for every verb, so no verb (%x, %d, %+v …) reaches
// the private key.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue logs the fingerprint only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.fp) }

// MarshalJSON encodes the fingerprint only.
func (k Key) MarshalJSON() ([]byte, error) { return fmt.Appendf(nil, "%q", k.fp), nil }
