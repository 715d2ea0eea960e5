package fstream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"io"
	"time"

	"github.com/fernet/fernet-go"
)

// epoch as their time, into buffers it reuses.
type sealer struct {
	block cipher.Block
	mac   hash.Hash
	raw   []byte // version | time | iv | ciphertext | hmac
	out   []byte // base64url(raw) + "\n"
	iv    [aes.BlockSize]byte
}

func newSealer(key *fernet.Key) *sealer {
	block, err := aes.NewCipher(key[16:]) // Fernet: second half encrypts
	if err != nil {
		panic("fstream: aes: " + err.Error()) // a 16-byte key cannot fail
	}
	return &sealer{block: block, mac: hmac.New(sha256.New, key[:16])}
}

// line returns the token for plain followed by "\n", valid until the next
// call.
func (s *sealer) line(plain []byte) ([]byte, error) {
	if _, err := io.ReadFull(rand.Reader, s.iv[:]); err != nil {
		return nil, err
	}
	return s.lineAt(plain, s.iv, epoch), nil
}

// lineAt is line with a given IV and time, for the spec's known answers.
func (s *sealer) lineAt(plain []byte, iv [aes.BlockSize]byte, ts time.Time) []byte {
	const payOffset = 1 + 8 + aes.BlockSize
	padded := len(plain)/aes.BlockSize*aes.BlockSize + aes.BlockSize
	n := payOffset + padded + sha256.Size
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	raw := s.raw[:payOffset+padded]
	raw[0] = 0x80
	binary.BigEndian.PutUint64(raw[1:9], uint64(ts.Unix()))
	copy(raw[9:payOffset], iv[:])
	pay := raw[payOffset:]
	copy(pay, plain)
	for i := len(plain); i < padded; i++ {
		pay[i] = byte(padded - len(plain))
	}
	cipher.NewCBCEncrypter(s.block, iv[:]).CryptBlocks(pay, pay)
	s.mac.Reset()
	s.mac.Write(raw)
	raw = s.mac.Sum(raw) // appends in place: cap(s.raw) >= n
	enc := base64.URLEncoding.EncodedLen(len(raw))
	if cap(s.out) < enc+1 {
		s.out = make([]byte, enc+1)
	}
	line := s.out[:enc+1]
	base64.URLEncoding.Encode(line, raw)
	line[enc] = '\n'
	return line
}
