package auth

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/train"
)

// FuzzParseKeys: no input crashes the keys file parser, and whatever it
// accepts is within the documented limits.
func FuzzParseKeys(f *testing.F) {
	f.Add("site-a " + secretA + "\n# comment\n\nb " + secretA + secretA + "\n")
	f.Add("a\x00 00\n")
	f.Add(strings.Repeat("x", 300))
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeys(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		for _, k := range keys {
			if ValidName(k.Name) != nil || len(k.Secret) < MinSecret || len(k.Secret) > MaxSecret {
				t.Fatalf("accepted %q with a %d-byte secret", k.Name, len(k.Secret))
			}
		}
	})
}

// FuzzVerify: whatever arrives, verifying its signature and cookie neither
// panics nor accepts a datagram that was not signed with the key.
func FuzzVerify(f *testing.F) {
	k := Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	d := datagram(200)
	NewSigner(k).Sign(d)
	f.Add(d)
	f.Add(datagram(train.SenderBody))
	v := NewVerifier([]Key{k})
	j := NewJar()
	src := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := train.ParseHeader(b)
		if err != nil || !h.Type.FromSender() {
			return
		}
		c, err := train.ParseClientBlock(b)
		if err != nil {
			t.Fatalf("client block of a parsed sender datagram: %v", err)
		}
		j.Valid(time.Now(), src, h.Session, c.Cookie)
		if _, err := v.Verify(b); err == nil {
			// Accepted: it must be what the signer makes of it.
			e := append([]byte(nil), b...)
			NewSigner(k).Sign(e)
			if string(e) != string(b) {
				t.Fatal("accepted a datagram the key would sign differently")
			}
		}
	})
}
