package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fernet/fernet-go"
)

var epoch = time.Unix(0, 0)

// sealWith encrypts a small value (a wrapped key, a hash) as one Fernet
// token carrying the epoch as its time (DESIGN §4).
func sealWith(k *fernet.Key, plain []byte) ([]byte, error) {
	return fernet.EncryptAndSignAtTime(plain, k, epoch)
}

// openWith decrypts a token of sealWith under any of keys.
func openWith(tok []byte, keys ...*fernet.Key) ([]byte, error) {
	b := fernet.VerifyAndDecrypt(tok, 0, keys)
	if b == nil {
		return nil, ErrCorrupt
	}
	return b, nil
}

// padJSON pads a JSON document with trailing spaces (which every JSON
// decoder ignores) to a coarse bucket, so a sealed field reveals its length
// only to within a power of two (at least 128 bytes; above 64 KiB, to a
// multiple of 64 KiB). Fernet alone would reveal it to 16 bytes.
func padJSON(raw []byte) []byte {
	n := len(raw)
	var bucket int
	switch {
	case n <= 128:
		bucket = 128
	case n <= 64<<10:
		bucket = 128
		for bucket < n {
			bucket <<= 1
		}
	default:
		bucket = (n + 64<<10 - 1) / (64 << 10) * (64 << 10)
	}
	out := make([]byte, bucket)
	copy(out, raw)
	for i := n; i < bucket; i++ {
		out[i] = ' '
	}
	return out
}

// sealJSON encrypts v as padded JSON under key.
func sealJSON(key *fernet.Key, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return sealWith(key, padJSON(raw))
}

// openJSON decrypts a token of sealJSON into v.
func openJSON(key *fernet.Key, tok []byte, v any) error {
	raw, err := openWith(tok, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// box is a value sealed under the newsroom key, with the id of the key that
// sealed it (DESIGN §4: every item records the key that covers it). Rows
// that grant or limit access keep their authoritative fields only in a box,
// together with the row's own id or key, so a row forged, edited or copied
// from another row without the newsroom key is refused.
type box struct {
	KeyID  string `json:"key_id"`
	Sealed token  `json:"sealed"`
}

// sealBox seals v (padded JSON) under the primary newsroom key.
func (kr *Keyring) sealBox(v any) (box, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return box{}, err
	}
	tok, id, err := kr.seal(padJSON(raw))
	return box{KeyID: id, Sealed: tok}, err
}

// openBox decrypts b into v under any configured key: ErrKeyMissing when
// its key is not configured, ErrCorrupt when it does not verify.
func (kr *Keyring) openBox(b box, v any) error {
	if !kr.Known(b.KeyID) {
		return ErrKeyMissing
	}
	raw, err := kr.open(b.Sealed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// token is a Fernet token as stored in a JSON row: it is base64url text
// already, so it is written as a JSON string rather than base64 again.
type token []byte

// MarshalJSON writes the token as a JSON string.
func (t token) MarshalJSON() ([]byte, error) {
	if t == nil {
		return []byte("null"), nil
	}
	return json.Marshal(string(t))
}

// UnmarshalJSON reads a JSON string.
func (t *token) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = token(s)
	return nil
}
