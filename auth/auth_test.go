package auth

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/train"
)

const secretA = "00112233445566778899aabbccddeeff"

func TestParseKeys(t *testing.T) {
	for _, tc := range []struct {
		name, text, err string
		keys            int
	}{
		{"one", "site-a " + secretA + "\n", "", 1},
		{"comments and blanks", "# keys\n\n  site-a   " + secretA + "  \nb.c_d " + secretA + secretA + "\n", "", 2},
		{"empty", "# nothing\n", "no keys", 0},
		{"one field", "site-a\n", "keys:1: want", 0},
		{"three fields", "a b c\n", "keys:1: want", 0},
		{"bad name", "bad/name " + secretA + "\n", "only A-Z", 0},
		{"long name", strings.Repeat("n", 17) + " " + secretA + "\n", "1 to 16", 0},
		{"not hex", "a zz" + secretA[2:] + "\n", "not hex", 0},
		{"short secret", "a 0011\n", "2 bytes", 0},
		{"long secret", "a " + strings.Repeat("00", 65) + "\n", "65 bytes", 0},
		{"twice", "a " + secretA + "\na " + secretA + "\n", "keys:2: key \"a\" defined twice", 0},
		{"long line", "a " + strings.Repeat("0", 300), "line longer", 0},
	} {
		keys, err := ParseKeys(strings.NewReader(tc.text), "keys")
		if tc.err == "" && (err != nil || len(keys) != tc.keys) {
			t.Errorf("%s: %d keys, %v", tc.name, len(keys), err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestLoadKeysPermissions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte("a "+secretA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable keys file: %v", err)
	}
	os.Chmod(p, 0o600)
	if keys, err := LoadKeys(p); err != nil || keys[0].Name != "a" {
		t.Errorf("mode 600: %v %v", keys, err)
	}
	if _, err := LoadKeys(dir); err == nil {
		t.Error("a directory loaded as a keys file")
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestPick(t *testing.T) {
	keys := []Key{{Name: "a"}, {Name: "b"}}
	if _, err := Pick(keys, ""); err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("ambiguous pick: %v", err)
	}
	if k, err := Pick(keys, "b"); err != nil || k.Name != "b" {
		t.Errorf("pick b: %v %v", k, err)
	}
	if _, err := Pick(keys, "c"); err == nil {
		t.Error("picked a missing key")
	}
	if k, err := Pick(keys[:1], ""); err != nil || k.Name != "a" {
		t.Errorf("only key: %v %v", k, err)
	}
}

func datagram(n int) []byte {
	b := make([]byte, n)
	train.PutHeader(b, &train.Header{Type: train.TypeProbe, Session: 7, Len: 2, Seq: 3, SentNs: 99})
	return b
}

func TestSignVerify(t *testing.T) {
	a := Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	b := Key{Name: "site-b", Secret: []byte("fedcba9876543210")}
	v := NewVerifier([]Key{a})
	sa, sb := NewSigner(a), NewSigner(b)
	sameNameOtherSecret := NewSigner(Key{Name: "site-a", Secret: b.Secret})
	for _, tc := range []struct {
		name string
		make func() []byte
		want error
	}{
		{"good", func() []byte { d := datagram(1472); sa.Sign(d); return d }, nil},
		{"unsigned", func() []byte { return datagram(1472) }, ErrUnsigned},
		{"unknown key", func() []byte { d := datagram(200); sb.Sign(d); return d }, ErrUnknownKey},
		{"wrong secret", func() []byte { d := datagram(200); sameNameOtherSecret.Sign(d); return d }, ErrBadSignature},
		{"header changed", func() []byte { d := datagram(200); sa.Sign(d); d[27]++; return d }, ErrBadSignature},
		{"padding changed", func() []byte { d := datagram(200); sa.Sign(d); d[199] = 1; return d }, ErrBadSignature},
		{"truncated", func() []byte { d := datagram(200); sa.Sign(d); return d[:150] }, ErrBadSignature},
		{"mac changed", func() []byte { d := datagram(200); sa.Sign(d); d[train.MACOffset] ^= 1; return d }, ErrBadSignature},
	} {
		d := tc.make()
		before := string(d)
		name, err := v.Verify(d)
		if !errors.Is(err, tc.want) || (err == nil && name != "site-a") {
			t.Errorf("%s: %q %v, want %v", tc.name, name, err, tc.want)
		}
		if string(d) != before {
			t.Errorf("%s: Verify left the datagram changed", tc.name)
		}
	}
}

func TestCookie(t *testing.T) {
	j, other := NewJar(), NewJar()
	now := time.Unix(1_800_000_000, 0)
	src := netip.MustParseAddrPort("198.18.1.2:40000")
	c := j.Issue(now, src, 5)
	tampered := c
	tampered.MAC[0] ^= 1
	for _, tc := range []struct {
		name    string
		ok      bool
		jar     *Jar
		at      time.Time
		src     netip.AddrPort
		session uint64
		c       train.Cookie
	}{
		{"valid", true, j, now, src, 5, c},
		{"valid near the end of its life", true, j, now.Add(CookieLifetime), src, 5, c},
		{"expired", false, j, now.Add(CookieLifetime + time.Second), src, 5, c},
		{"from the future", false, j, now.Add(-2 * time.Second), src, 5, c},
		{"other port", false, j, now, netip.MustParseAddrPort("198.18.1.2:40001"), 5, c},
		{"other address", false, j, now, netip.MustParseAddrPort("198.18.1.3:40000"), 5, c},
		{"other session", false, j, now, src, 6, c},
		{"tampered", false, j, now, src, 5, tampered},
		{"other reflector", false, other, now, src, 5, c},
		{"zero", false, j, now, src, 5, train.Cookie{}},
	} {
		if got := tc.jar.Valid(tc.at, tc.src, tc.session, tc.c); got != tc.ok {
			t.Errorf("%s: valid = %v", tc.name, got)
		}
	}
}

func TestFresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	w := 10 * time.Second
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {w, true}, {-w, true}, {w + 1, false}, {-w - 1, false}, {-time.Hour, false}} {
		if got := Fresh(now.Add(tc.d).UnixNano(), now, w); got != tc.ok {
			t.Errorf("sent %v from now: fresh = %v", tc.d, got)
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	steps := []struct {
		seq uint32
		ok  bool
	}{
		{10, true}, {10, false}, {12, true}, {11, true}, {11, false}, {12, false},
		{10 + WindowSize, true}, {11, false}, {13, true}, {12, false},
		{5000, true}, {5000 - WindowSize, false}, {5000 - WindowSize + 1, true}, {4999, true}, {4999, false},
		{1 << 31, true}, {5000, false},
	}
	for i, s := range steps {
		if got := w.Accept(s.seq); got != s.ok {
			t.Errorf("step %d: seq %d accepted = %v, want %v", i, s.seq, got, s.ok)
		}
	}
}

func BenchmarkVerify1500(b *testing.B) {
	k := Key{Name: "a", Secret: []byte("0123456789abcdef")}
	d := datagram(1472)
	NewSigner(k).Sign(d)
	v := NewVerifier([]Key{k})
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, err := v.Verify(d); err != nil {
			b.Fatal(err)
		}
	}
}

// A reflector's signature in the trailer: verified when intact, refused
// when anything in the datagram changed, when unsigned or too short, and
// when signed with a key the verifier lacks.
func TestTrailer(t *testing.T) {
	key := Key{Name: "site-a", Secret: []byte("0123456789abcdef")}
	v := NewVerifier([]Key{key})
	other := NewVerifier([]Key{{Name: "site-b", Secret: key.Secret}})
	signed := func() []byte {
		b := make([]byte, 200)
		train.PutHeader(b, &train.Header{Type: train.TypeReply, Flags: train.FlagSigned, Session: 9, Len: 2})
		if !v.SignTrailer("site-a", b) {
			t.Fatal("SignTrailer refused a known key")
		}
		return b
	}
	if v.SignTrailer("site-x", make([]byte, 200)) {
		t.Error("SignTrailer signed with an unknown key")
	}
	for _, tc := range []struct {
		name string
		b    func() []byte
		v    *Verifier
		want error
	}{
		{"intact", signed, v, nil},
		{"header changed", func() []byte { b := signed(); b[9] ^= 1; return b }, v, ErrBadSignature},
		{"padding changed", func() []byte { b := signed(); b[100] = 7; return b }, v, ErrBadSignature},
		{"MAC changed", func() []byte { b := signed(); b[len(b)-1] ^= 1; return b }, v, ErrBadSignature},
		{"unsigned", func() []byte { return make([]byte, 200) }, v, ErrUnsigned},
		{"too short", func() []byte { return make([]byte, train.HeaderLen) }, v, ErrUnsigned},
		{"key unknown to the verifier", signed, other, ErrUnknownKey},
	} {
		b := tc.b()
		orig := append([]byte(nil), b...)
		name, err := tc.v.VerifyTrailer(b)
		if !errors.Is(err, tc.want) || (err == nil && name != "site-a") {
			t.Errorf("%s: %q, %v; want %v", tc.name, name, err, tc.want)
		}
		if !bytes.Equal(b, orig) {
			t.Errorf("%s: VerifyTrailer changed the datagram", tc.name)
		}
	}
}
