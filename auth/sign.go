package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"

	"github.com/abing-net/abing/train"
)

// Signature errors, values so that a reflector can count drops by cause.
var (
	ErrUnsigned     = errors.New("datagram not signed")
	ErrUnknownKey   = errors.New("signed with an unknown key")
	ErrBadSignature = errors.New("bad signature")
)

// Signer signs a sender's datagrams with one key.
type Signer struct {
	name [train.KeyNameLen]byte
	mac  hash.Hash
	sum  [sha256.Size]byte
}

// NewSigner returns a signer for k.
func NewSigner(k Key) *Signer {
	s := &Signer{mac: hmac.New(sha256.New, k.Secret)}
	copy(s.name[:], k.Name)
	return s
}

// Sign writes the key name and the signature into the client block of b, a
// complete sender datagram (header, client block, body and padding).
func (s *Signer) Sign(b []byte) {
	copy(b[train.HeaderLen+train.CookieLen:], s.name[:])
	field := b[train.MACOffset : train.MACOffset+train.MACLen]
	clear(field)
	copy(field, s.digest(b))
}

func (s *Signer) digest(b []byte) []byte {
	s.mac.Reset()
	s.mac.Write(b)
	return s.mac.Sum(s.sum[:0])[:train.MACLen]
}

// Verifier checks signatures against a set of keys.
type Verifier struct {
	keys map[[train.KeyNameLen]byte]*Signer
	got  [train.MACLen]byte
}

// NewVerifier returns a verifier that accepts datagrams signed with any of
// keys.
func NewVerifier(keys []Key) *Verifier {
	v := &Verifier{keys: map[[train.KeyNameLen]byte]*Signer{}}
	for _, k := range keys {
		s := NewSigner(k)
		v.keys[s.name] = s
	}
	return v
}

// Signed is the cheap part of Verify: whether b names a key of the set,
// without computing the signature (ErrUnsigned, ErrUnknownKey or nil).
func (v *Verifier) Signed(b []byte) error {
	_, err := v.signer(b[train.HeaderLen+train.CookieLen:])
	return err
}

// Verify checks the signature of sender datagram b (at least
// train.SenderBody long) and returns the name of the key that signed it. b
// is modified during the check and restored before Verify returns.
func (v *Verifier) Verify(b []byte) (string, error) {
	return v.check(b, b[train.HeaderLen+train.CookieLen:train.MACOffset+train.MACLen])
}

// signer finds the key named in the first train.KeyNameLen bytes of name.
func (v *Verifier) signer(name []byte) (*Signer, error) {
	var n [train.KeyNameLen]byte
	copy(n[:], name)
	switch s := v.keys[n]; {
	case n == ([train.KeyNameLen]byte{}):
		return nil, ErrUnsigned
	case s == nil:
		return nil, ErrUnknownKey
	default:
		return s, nil
	}
}

// check verifies datagram b against its signature block sig (inside b):
// the key name, then the MAC, which covers all of b with the MAC zeroed.
// b is modified during the check and restored before check returns.
func (v *Verifier) check(b, sig []byte) (string, error) {
	s, err := v.signer(sig)
	if err != nil {
		return "", err
	}
	field := sig[train.KeyNameLen : train.KeyNameLen+train.MACLen]
	copy(v.got[:], field)
	clear(field)
	want := s.digest(b)
	copy(field, v.got[:])
	if !hmac.Equal(want, v.got[:]) {
		return "", ErrBadSignature
	}
	return string(trimZero(s.name[:])), nil
}

// TrailerLen is what a signature adds to the end of a reflector's message:
// the key name and the MAC, in its last bytes.
const TrailerLen = train.KeyNameLen + train.MACLen

// SignTrailer signs a reflector's message b, whose last TrailerLen bytes
// are for the signature, with the key named name; it reports false if the
// set has no such key. The MAC covers the whole datagram (the MAC field
// zeroed), header and padding included, as a sender's signature does.
func (v *Verifier) SignTrailer(name string, b []byte) bool {
	var n [train.KeyNameLen]byte
	copy(n[:], name)
	s := v.keys[n]
	if s == nil || len(b) < train.HeaderLen+TrailerLen {
		return false
	}
	t := b[len(b)-TrailerLen:]
	copy(t, n[:])
	field := t[train.KeyNameLen:]
	clear(field)
	copy(field, s.digest(b))
	return true
}

// VerifyTrailer checks the signature a reflector put at the end of message
// b and returns the name of its key. b is modified during the check and
// restored before VerifyTrailer returns.
func (v *Verifier) VerifyTrailer(b []byte) (string, error) {
	if len(b) < train.HeaderLen+TrailerLen {
		return "", ErrUnsigned
	}
	return v.check(b, b[len(b)-TrailerLen:])
}

func trimZero(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
