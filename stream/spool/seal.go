package spool

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"io"
	"sync"

	"github.com/fernet/fernet-go"
)

// Codec seals chunks under one Fernet key. It keeps a free list of sealing
// buffers, so many spools share a few instead of holding one each; it is
// safe for concurrent use. (A sync.Pool would allocate now and then: an
// object put on one processor is not found from another.)
type Codec struct {
	block  cipher.Block
	macKey []byte
	mu     sync.Mutex
	free   []*sealer
}

// maxFree bounds the sealers kept for reuse.
const maxFree = 64

func (c *Codec) get() *sealer {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return s
	}
	c.mu.Unlock()
	s := &sealer{mac: newMAC(c.macKey)}
	s.cbc = cipher.NewCBCEncrypter(c.block, s.iv[:])
	s.setIV, _ = s.cbc.(ivSetter)
	return s
}

func (c *Codec) put(s *sealer) {
	c.mu.Lock()
	if len(c.free) < maxFree {
		c.free = append(c.free, s)
	}
	c.mu.Unlock()
}

// NewCodec returns a Codec that encrypts under key.
func NewCodec(key *fernet.Key) *Codec {
	block, err := aes.NewCipher(key[16:]) // Fernet: the second half encrypts
	if err != nil {
		panic("spool: aes: " + err.Error()) // a 16-byte key cannot fail
	}
	c := &Codec{block: block, macKey: append([]byte(nil), key[:16]...), free: make([]*sealer, 0, maxFree)}
	return c
}

// sealer makes Fernet tokens (version 0x80, AES-128-CBC with PKCS #7
// padding, HMAC-SHA256 over version, time, IV and ciphertext) with the Unix
// epoch as their time, in buffers it reuses.
type sealer struct {
	mac   *mac
	cbc   cipher.BlockMode
	setIV ivSetter // the standard library's CBC modes take a new IV in place
	raw   []byte   // version | time | iv | ciphertext | hmac
	out   []byte   // base64url(raw) + "\n"
	iv    [aes.BlockSize]byte
}

// mac is HMAC-SHA256 under one key (RFC 2104) that restores its keyed
// states instead of rehashing the pads, and allocates nothing per use (the
// standard library's HMAC allocates now and then when it saves its state).
type mac struct {
	inner, outer           hash.Hash
	innerState, outerState []byte
	inSum                  [sha256.Size]byte
}

func newMAC(key []byte) *mac {
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key) // keys here are 16 bytes, shorter than a block
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	m := &mac{inner: sha256.New(), outer: sha256.New()}
	m.inner.Write(ipad[:])
	m.outer.Write(opad[:])
	var err error
	if m.innerState, err = m.inner.(encoding.BinaryMarshaler).MarshalBinary(); err == nil {
		m.outerState, err = m.outer.(encoding.BinaryMarshaler).MarshalBinary()
	}
	if err != nil {
		panic("spool: sha256 state: " + err.Error()) // the standard library's sha256 always marshals
	}
	return m
}

// sum appends HMAC(key, data) to dst.
func (m *mac) sum(dst, data []byte) []byte {
	m.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.innerState)
	m.inner.Write(data)
	in := m.inner.Sum(m.inSum[:0])
	m.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.outerState)
	m.outer.Write(in)
	return m.outer.Sum(dst)
}

// ivSetter is implemented by the standard library's CBC encrypters.
type ivSetter interface{ SetIV([]byte) }

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
	if s.setIV != nil {
		s.setIV.SetIV(s.iv[:]) // no allocation per chunk
	} else {
		s.cbc = cipher.NewCBCEncrypter(block, s.iv[:])
	}
	s.cbc.CryptBlocks(pay, pay)
	raw = s.mac.sum(raw, raw) // appends in place: cap(s.raw) >= n
	enc := base64.URLEncoding.EncodedLen(len(raw))
	if cap(s.out) < enc+1 {
		s.out = make([]byte, enc+1)
	}
	line := s.out[:enc+1]
	base64.URLEncoding.Encode(line, raw)
	line[enc] = '\n'
	return line, nil
}
