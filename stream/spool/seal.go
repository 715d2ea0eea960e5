package spool

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
	"sync"

	"github.com/fernet/fernet-go"
)

// Codec seals chunks under one Fernet key. It keeps a pool of sealing
// buffers, so many spools share a few buffers instead of holding one each;
// it is safe for concurrent use.
type Codec struct {
	block  cipher.Block
	macKey []byte
	pool   sync.Pool // *sealer
}

// NewCodec returns a Codec that encrypts under key.
func NewCodec(key *fernet.Key) *Codec {
	block, err := aes.NewCipher(key[16:]) // Fernet: the second half encrypts
	if err != nil {
		panic("spool: aes: " + err.Error()) // a 16-byte key cannot fail
	}
	c := &Codec{block: block, macKey: append([]byte(nil), key[:16]...)}
	c.pool.New = func() any { return &sealer{mac: hmac.New(sha256.New, c.macKey)} }
	return c
}

// sealer makes Fernet tokens (version 0x80, AES-128-CBC with PKCS #7
// padding, HMAC-SHA256 over version, time, IV and ciphertext) with the Unix
// epoch as their time, in buffers it reuses.
type sealer struct {
	mac hash.Hash
	raw []byte // version | time | iv | ciphertext | hmac
	out []byte // base64url(raw) + "\n"
	iv  [aes.BlockSize]byte
}

const fernetOverhead = 1 + 8 + aes.BlockSize + sha256.Size // version, time, iv, hmac

// lineLen returns the length of the line (token and "\n") of a chunk of n
// data bytes.
func lineLen(n int) int {
	plain := HeaderSize + n
	raw := plain/aes.BlockSize*aes.BlockSize + aes.BlockSize + fernetOverhead
	return base64.URLEncoding.EncodedLen(raw) + 1
}

// seal returns the line for header and data, valid until the sealer is
// used again.
func (s *sealer) seal(block cipher.Block, header, data []byte) ([]byte, error) {
	if _, err := io.ReadFull(rand.Reader, s.iv[:]); err != nil {
		return nil, err
	}
	const payOffset = 1 + 8 + aes.BlockSize
	plain := len(header) + len(data)
	padded := plain/aes.BlockSize*aes.BlockSize + aes.BlockSize
	n := payOffset + padded + sha256.Size
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	raw := s.raw[:payOffset+padded]
	raw[0] = 0x80
	binary.BigEndian.PutUint64(raw[1:9], 0) // the Unix epoch (DESIGN §4)
	copy(raw[9:payOffset], s.iv[:])
	pay := raw[payOffset:]
	copy(pay, header)
	copy(pay[len(header):], data)
	for i := plain; i < padded; i++ {
		pay[i] = byte(padded - plain)
	}
	cipher.NewCBCEncrypter(block, s.iv[:]).CryptBlocks(pay, pay)
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
	return line, nil
}
