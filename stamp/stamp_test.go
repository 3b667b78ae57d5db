package stamp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The packets octet by octet, as the figures of RFC 8762 §4.2.1 and
// §4.3.1 (with RFC 8972's SSID) lay them out: Sequence Number (4),
// Timestamp (8), Error Estimate (2), SSID (2), then, in a reply, Receive
// Timestamp (8), Session-Sender Sequence Number (4), Timestamp (8), Error
// Estimate (2), MBZ (2), Ses-Sender TTL (1), MBZ (3).
func TestWireLayout(t *testing.T) {
	test := Test{Seq: 0x01020304, Time: 0x1112131415161718, Err: 0x8101, SSID: 0xabcd}
	b, err := test.Append(nil, BaseLen)
	if err != nil {
		t.Fatal(err)
	}
	want := "01020304" + "1112131415161718" + "8101" + "abcd" + strings.Repeat("00", 28)
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("test packet\n%s\nwant\n%s", got, want)
	}
	reply := Reply{Seq: 0x0a0b0c0d, Time: 0x2122232425262728, Err: 0x0001, SSID: 0xabcd, RxTime: 0x3132333435363738,
		SenderSeq: 0x01020304, SenderTime: 0x1112131415161718, SenderErr: 0x8101, SenderTTL: 63}
	if b, err = reply.Append(nil, BaseLen); err != nil {
		t.Fatal(err)
	}
	want = "0a0b0c0d" + "2122232425262728" + "0001" + "abcd" + "3132333435363738" + "01020304" + "1112131415161718" + "8101" + "0000" + "3f" + "000000"
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("reply\n%s\nwant\n%s", got, want)
	}
	if back, err := ParseReply(b); err != nil || back != reply {
		t.Errorf("reply read back %+v, %v", back, err)
	}
	padded, _ := test.Append([]byte{0xff}, 1472)
	if len(padded) != 1473 || padded[0] != 0xff || !bytes.Equal(padded[1+BaseLen:], make([]byte, 1472-BaseLen)) {
		t.Errorf("padded to 1472 after one octet: %d octets", len(padded))
	}
	if back, err := ParseTest(padded[1:]); err != nil || back != test {
		t.Errorf("test read back %+v, %v", back, err)
	}
	for _, n := range []int{0, BaseLen - 1, MaxLen + 1} {
		if _, err := ParseTest(make([]byte, n)); !errors.Is(err, ErrLength) {
			t.Errorf("test packet of %d octets: %v", n, err)
		}
		if _, err := ParseReply(make([]byte, n)); !errors.Is(err, ErrLength) {
			t.Errorf("reply of %d octets: %v", n, err)
		}
		if _, err := test.Append(nil, n); !errors.Is(err, ErrLength) {
			t.Errorf("building %d octets: %v", n, err)
		}
	}
}

// Authenticated mode, octet by octet as RFC 8762 §4.2.2 and §4.3.2 lay it
// out (with RFC 8972's SSID after the Error Estimate): 112 octets, the
// last 16 the HMAC-SHA-256 of the first 96 under the shared key, truncated
// (§4.4). The expected HMAC is computed here independently of the package.
func TestAuthenticatedLayout(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	key := NewKey(secret)
	mac := func(p string) string {
		b, _ := hex.DecodeString(p)
		m := hmac.New(sha256.New, secret)
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil)[:16])
	}
	test := Test{Seq: 0x01020304, Time: 0x1112131415161718, Err: 0x8101, SSID: 0xabcd}
	b, err := test.AppendAuth(nil, AuthLen, key)
	if err != nil {
		t.Fatal(err)
	}
	body := "01020304" + strings.Repeat("00", 12) + "1112131415161718" + "8101" + "abcd" + strings.Repeat("00", 68)
	if got, want := hex.EncodeToString(b), body+mac(body); got != want {
		t.Errorf("authenticated test packet\n%s\nwant\n%s", got, want)
	}
	if back, k, err := ParseTestAuth(b, []*Key{NewKey([]byte("another key of sixteen")), key}); err != nil || back != test || k != key {
		t.Errorf("read back %+v, key %p (want %p), %v", back, k, key, err)
	}
	reply := Reply{Seq: 0x0a0b0c0d, Time: 0x2122232425262728, Err: 0x0001, SSID: 0xabcd, RxTime: 0x3132333435363738,
		SenderSeq: 0x01020304, SenderTime: 0x1112131415161718, SenderErr: 0x8101, SenderTTL: 63}
	if b, err = reply.AppendAuth(nil, 1472, key); err != nil {
		t.Fatal(err)
	}
	body = "0a0b0c0d" + strings.Repeat("00", 12) + "2122232425262728" + "0001" + "abcd" + strings.Repeat("00", 4) +
		"3132333435363738" + strings.Repeat("00", 8) + "01020304" + strings.Repeat("00", 12) +
		"1112131415161718" + "8101" + strings.Repeat("00", 6) + "3f" + strings.Repeat("00", 15)
	if got, want := hex.EncodeToString(b[:AuthLen]), body+mac(body); got != want {
		t.Errorf("authenticated reply\n%s\nwant\n%s", got, want)
	}
	if len(b) != 1472 || !bytes.Equal(b[AuthLen:], make([]byte, 1472-AuthLen)) {
		t.Errorf("padding: %d octets", len(b))
	}
	if back, err := ParseReplyAuth(b, key); err != nil || back != reply {
		t.Errorf("reply read back %+v, %v", back, err)
	}
	// One changed octet anywhere in the first 96 breaks the HMAC; the
	// padding after the HMAC is not covered (RFC 8762 §4.4).
	for _, at := range []int{0, 20, 33, 95, 100} {
		c := bytes.Clone(b)
		c[at] ^= 1
		if _, err := ParseReplyAuth(c, key); !errors.Is(err, ErrHMAC) {
			t.Errorf("octet %d changed: %v", at, err)
		}
	}
	c := bytes.Clone(b)
	c[AuthLen] ^= 1
	if _, err := ParseReplyAuth(c, key); err != nil {
		t.Errorf("padding changed: %v", err)
	}
	if _, _, err := ParseTestAuth(b, []*Key{NewKey([]byte("another key of sixteen"))}); !errors.Is(err, ErrHMAC) {
		t.Errorf("wrong key: %v", err)
	}
	for _, n := range []int{BaseLen, AuthLen - 1, MaxLen + 1} {
		if _, _, err := ParseTestAuth(make([]byte, n), []*Key{key}); !errors.Is(err, ErrLength) {
			t.Errorf("authenticated test packet of %d octets: %v", n, err)
		}
		if _, err := ParseReplyAuth(make([]byte, n), key); !errors.Is(err, ErrLength) {
			t.Errorf("authenticated reply of %d octets: %v", n, err)
		}
		if _, err := test.AppendAuth(nil, n, key); !errors.Is(err, ErrLength) {
			t.Errorf("building %d authenticated octets: %v", n, err)
		}
	}
}

// Timestamps: NTP counts from 1900 (1970 is 2,208,988,800 s later) with a
// 2^-32 s fraction; PTPv2 from 1970 with nanoseconds.
func TestTimestamps(t *testing.T) {
	unix := time.Unix(0, 0)
	if ts := NTP(unix); ts != 0x83aa7e80_00000000 {
		t.Errorf("NTP of 1970: %#x", uint64(ts))
	}
	half := time.Unix(1, 500_000_000)
	if ts := NTP(half); ts != 0x83aa7e81_80000000 {
		t.Errorf("NTP of 1970 + 1.5 s: %#x", uint64(ts))
	}
	if ts := PTP(half); ts != 0x00000001_1dcd6500 {
		t.Errorf("PTP of 1970 + 1.5 s: %#x", uint64(ts))
	}
	now := time.Date(2026, 12, 7, 1, 2, 3, 123456789, time.UTC)
	for _, ptp := range []bool{false, true} {
		ts := NTP(now)
		if ptp {
			ts = PTP(now)
		}
		back, err := ts.Time(ptp)
		if err != nil || back.Sub(now).Abs() > time.Nanosecond {
			t.Errorf("ptp %v: %v read back as %v (%v)", ptp, now, back, err)
		}
	}
	if _, err := Timestamp(0x00000001_3b9aca00).Time(true); err == nil {
		t.Error("a PTP timestamp of 10^9 ns in its fraction was taken")
	}
}

// The Error Estimate of RFC 4656 §4.1.2: S, Z, Scale, Multiplier; the
// error is Multiplier·2^(Scale−32) s.
func TestErrorEstimate(t *testing.T) {
	for _, c := range []struct {
		e           ErrorEstimate
		synced, ptp bool
		scale, mult uint8
		seconds     float64
	}{
		{MakeErrorEstimate(true, false, 22, 1), true, false, 22, 1, math.Ldexp(1, -10)}, // about 1 ms
		{MakeErrorEstimate(false, true, 0, 255), false, true, 0, 255, 255 * math.Ldexp(1, -32)},
		{0x8101, true, false, 1, 1, math.Ldexp(1, -31)},
		{0x7fff, false, true, 63, 255, 255 * math.Ldexp(1, 31)},
	} {
		if c.e.Synced() != c.synced || c.e.PTP() != c.ptp || c.e.Scale() != c.scale || c.e.Multiplier() != c.mult || c.e.Seconds() != c.seconds {
			t.Errorf("%#04x: S %v Z %v scale %d multiplier %d, %g s", uint16(c.e), c.e.Synced(), c.e.PTP(), c.e.Scale(), c.e.Multiplier(), c.e.Seconds())
		}
	}
	// The estimate of a stated error never states less than it, and not
	// more than one Multiplier step more.
	for _, sec := range []float64{1e-9, 1e-6, 15e-6, 1e-3, 0.5, 16e3} {
		e := EstimateOf(sec, true, false)
		if got := e.Seconds(); got < sec || got > sec*(1+1/128.0)+math.Ldexp(1, -32) || !e.Synced() || e.PTP() {
			t.Errorf("EstimateOf(%g) = %#04x, stating %g s", sec, uint16(e), got)
		}
	}
	if e := EstimateOf(math.NaN(), false, true); e.Multiplier() != 1 || e.Scale() != 0 || !e.PTP() {
		t.Errorf("EstimateOf(NaN) = %#04x", uint16(e))
	}
	if s := ErrorEstimate(0x8100).Seconds(); !math.IsNaN(s) {
		t.Errorf("a zero multiplier states %g s", s)
	}
}

// FuzzParse: any octets are read without a panic, and what a reply reads
// is written back to the same first 44 octets but its MBZ ones.
func FuzzParse(f *testing.F) {
	r := Reply{Seq: 1, Time: NTP(time.Unix(1, 0)), RxTime: NTP(time.Unix(1, 0)), SenderTTL: 64}
	b, _ := r.Append(nil, BaseLen)
	f.Add(b)
	f.Add(make([]byte, BaseLen-1))
	key := NewKey([]byte("fuzzing key, 16+"))
	auth, _ := r.AppendAuth(nil, AuthLen, key)
	f.Add(auth)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseTest(b)
		ParseTestAuth(b, []*Key{key})
		if rep, err := ParseReplyAuth(b, key); err == nil {
			// Only a packet with the key's own HMAC reads.
			out, _ := rep.AppendAuth(nil, len(b), key)
			if !bytes.Equal(out[AuthLen-HMACLen:AuthLen], b[AuthLen-HMACLen:AuthLen]) {
				t.Errorf("an authenticated reply read, but its HMAC is not the key's")
			}
		}
		rep, err := ParseReply(b)
		if err != nil {
			return
		}
		out, err := rep.Append(nil, len(b))
		if err != nil {
			t.Fatal(err)
		}
		mask := func(p []byte) []byte {
			p = append([]byte(nil), p[:BaseLen]...)
			p[38], p[39], p[41], p[42], p[43] = 0, 0, 0, 0, 0
			return p
		}
		if !bytes.Equal(mask(out), mask(b)) {
			t.Errorf("read and written back:\n%x\n%x", b[:BaseLen], out[:BaseLen])
		}
	})
}
