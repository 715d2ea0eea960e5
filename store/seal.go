package store

import (
	"time"

	"github.com/fernet/fernet-go"
)

var epoch = time.Unix(0, 0)

// sealWith encrypts a small value (a title, a hash, a wrapped key) as one
// Fernet token carrying the epoch as its time.
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
