package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"time"

	"github.com/abing-net/abing/train"
)

// CookieLifetime is how long a cookie stays valid after it was issued.
const CookieLifetime = 2 * time.Minute

// Jar issues and checks stateless cookies: a MAC, under a secret drawn at
// random when the jar is made, of the issue time, the sender's address and
// port, and its session. Nothing is stored per sender.
type Jar struct {
	mac hash.Hash
	in  [4 + 16 + 2 + 8]byte
	sum [sha256.Size]byte
}

// NewJar returns a jar with a fresh random secret.
func NewJar() *Jar {
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand panics rather than return short)
	return &Jar{mac: hmac.New(sha256.New, secret)}
}

// Issue returns the cookie for a sender at src with session id.
func (j *Jar) Issue(now time.Time, src netip.AddrPort, session uint64) train.Cookie {
	c := train.Cookie{Time: uint32(now.Unix())}
	copy(c.MAC[:], j.compute(c.Time, src, session))
	return c
}

// Valid says whether c was issued by this jar to src and session within
// CookieLifetime of now.
func (j *Jar) Valid(now time.Time, src netip.AddrPort, session uint64, c train.Cookie) bool {
	age := now.Unix() - int64(c.Time)
	if age < -1 || age > int64(CookieLifetime/time.Second) {
		return false
	}
	return hmac.Equal(j.compute(c.Time, src, session), c.MAC[:])
}

func (j *Jar) compute(t uint32, src netip.AddrPort, session uint64) []byte {
	binary.BigEndian.PutUint32(j.in[0:], t)
	a := src.Addr().As16()
	copy(j.in[4:], a[:])
	binary.BigEndian.PutUint16(j.in[20:], src.Port())
	binary.BigEndian.PutUint64(j.in[22:], session)
	j.mac.Reset()
	j.mac.Write(j.in[:])
	return j.mac.Sum(j.sum[:0])[:train.CookieMACLen]
}
