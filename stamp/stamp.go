// Package stamp is what a STAMP test packet is on the wire (RFC 8762, with
// the Session-Sender Identifier of RFC 8972): the Session-Sender's test
// packet and the Session-Reflector's reply, 44 octets each before padding in
// unauthenticated mode and 112 in authenticated mode, where the last 16
// octets are an HMAC-SHA-256 of the first 96, truncated (RFC 8762 §4.4).
// Unauthenticated STAMP is on-wire compatible with TWAMP-Light (RFC 5357,
// Appendix I), so the same packets measure against routers that answer
// either.
//
// The layouts, octet offsets (MBZ octets are zero; RFC 8762 §4.6 has a
// receiver ignore them, and so does this package):
//
//	unauthenticated test:  0 Sequence Number, 4 Timestamp, 12 Error Estimate,
//	                       14 SSID, 16 MBZ (28)
//	unauthenticated reply: 0 Sequence Number, 4 Timestamp (T3), 12 Error
//	                       Estimate, 14 SSID, 16 Receive Timestamp (T2),
//	                       24 Session-Sender Sequence Number, 28 its
//	                       Timestamp (T1), 36 its Error Estimate, 38 MBZ (2),
//	                       40 Session-Sender TTL, 41 MBZ (3)
//	authenticated test:    0 Sequence Number, 4 MBZ (12), 16 Timestamp,
//	                       24 Error Estimate, 26 SSID, 28 MBZ (68), 96 HMAC
//	authenticated reply:   0 Sequence Number, 4 MBZ (12), 16 Timestamp,
//	                       24 Error Estimate, 26 SSID, 28 MBZ (4),
//	                       32 Receive Timestamp, 40 MBZ (8), 48 Session-Sender
//	                       Sequence Number, 52 MBZ (12), 64 its Timestamp,
//	                       72 its Error Estimate, 74 MBZ (6), 80 Session-Sender
//	                       TTL, 81 MBZ (15), 96 HMAC
//
// A reply is the size of the test packet it answers (RFC 8762 §4.3): a
// reflector adds no amplification. Timestamps are 64-bit NTP (32-bit
// seconds since 1900, 32-bit fraction) unless the Error Estimate's Z bit
// says PTPv2 (32-bit seconds since 1970, 32-bit nanoseconds).
package stamp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"time"
)

// Port is STAMP's default destination port (RFC 8762 §4.1).
const Port = 862

// Lengths of a test packet or reply without padding, in each mode, and of
// the HMAC field.
const (
	BaseLen = 44
	AuthLen = 112
	HMACLen = 16
)

// MaxLen bounds a packet this package builds or reads: a 9000-byte jumbo
// frame's UDP payload over IPv4.
const MaxLen = 8972

// Timestamp is a 64-bit STAMP timestamp, NTP or PTPv2 as its Error
// Estimate says.
type Timestamp uint64

// ntpEpoch is 1970-01-01 in NTP seconds (since 1900-01-01).
const ntpEpoch = 2208988800

// NTP is t as an NTP timestamp.
func NTP(t time.Time) Timestamp {
	sec := uint64(t.Unix() + ntpEpoch)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return Timestamp(sec<<32 | frac)
}

// PTP is t as a truncated PTPv2 timestamp.
func PTP(t time.Time) Timestamp {
	return Timestamp(uint64(t.Unix())<<32 | uint64(t.Nanosecond()))
}

// Time is ts as a time, read as PTPv2 when ptp is set, else as NTP. A
// PTPv2 nanosecond field of a second or more is not a time.
func (ts Timestamp) Time(ptp bool) (time.Time, error) {
	sec, low := int64(ts>>32), uint64(ts&0xffffffff)
	if ptp {
		if low >= 1e9 {
			return time.Time{}, fmt.Errorf("PTP timestamp %#x: %d ns in its nanosecond field", uint64(ts), low)
		}
		return time.Unix(sec, int64(low)), nil
	}
	return time.Unix(sec-ntpEpoch, int64((low*1e9)>>32)), nil
}

// ErrorEstimate is the Error Estimate field of RFC 4656 §4.1.2: S (the
// clock is synchronised to UTC), Z (the timestamps are PTPv2), a 6-bit
// Scale and an 8-bit Multiplier.
type ErrorEstimate uint16

// MakeErrorEstimate builds the field; scale is at most 63.
func MakeErrorEstimate(synced, ptp bool, scale, multiplier uint8) ErrorEstimate {
	e := ErrorEstimate(scale&0x3f)<<8 | ErrorEstimate(multiplier)
	if synced {
		e |= 0x8000
	}
	if ptp {
		e |= 0x4000
	}
	return e
}

// Synced is the S bit.
func (e ErrorEstimate) Synced() bool { return e&0x8000 != 0 }

// PTP is the Z bit: the timestamps are PTPv2.
func (e ErrorEstimate) PTP() bool { return e&0x4000 != 0 }

// Scale is the 6-bit scale.
func (e ErrorEstimate) Scale() uint8 { return uint8(e>>8) & 0x3f }

// Multiplier is the 8-bit multiplier.
func (e ErrorEstimate) Multiplier() uint8 { return uint8(e) }

// Seconds is the error the field states: Multiplier·2^(Scale−32) s. A
// multiplier of zero states no estimate (RFC 4656 says it must not be
// zero): NaN.
func (e ErrorEstimate) Seconds() float64 {
	if e.Multiplier() == 0 {
		return math.NaN()
	}
	return math.Ldexp(float64(e.Multiplier()), int(e.Scale())-32)
}

// EstimateOf is the Error Estimate stating an error of seconds: the
// smallest Scale whose Multiplier (rounded up, at least 1) fits in 8 bits,
// so that the stated error is never less than seconds. A NaN, negative or
// zero error states the resolution of the format (Multiplier 1, Scale 0).
func EstimateOf(seconds float64, synced, ptp bool) ErrorEstimate {
	if !(seconds > 0) {
		return MakeErrorEstimate(synced, ptp, 0, 1)
	}
	for scale := 0; scale <= 63; scale++ {
		if m := math.Ceil(math.Ldexp(seconds, 32-scale)); m <= 255 {
			return MakeErrorEstimate(synced, ptp, uint8(scale), uint8(max(m, 1)))
		}
	}
	return MakeErrorEstimate(synced, ptp, 63, 255)
}

// Test is a Session-Sender test packet.
type Test struct {
	Seq  uint32
	Time Timestamp // when it was sent
	Err  ErrorEstimate
	SSID uint16 // RFC 8972; zero (MBZ) in RFC 8762 and TWAMP-Light
}

// Reply is a Session-Reflector reply packet.
type Reply struct {
	Seq        uint32    // the reflector's: a copy of SenderSeq when stateless
	Time       Timestamp // T3: when the reply was sent
	Err        ErrorEstimate
	SSID       uint16
	RxTime     Timestamp // T2: when the test packet arrived
	SenderSeq  uint32
	SenderTime Timestamp // T1, copied
	SenderErr  ErrorEstimate
	SenderTTL  uint8 // the test packet's TTL or hop limit as it arrived
}

// layout is where a mode puts each field.
type layout struct {
	min                                     int
	ts, err, ssid, rx, sseq, sts, serr, ttl int
}

var (
	open   = layout{min: BaseLen, ts: 4, err: 12, ssid: 14, rx: 16, sseq: 24, sts: 28, serr: 36, ttl: 40}
	authed = layout{min: AuthLen, ts: 16, err: 24, ssid: 26, rx: 32, sseq: 48, sts: 64, serr: 72, ttl: 80}
)

// Errors of the parsers and builders.
var (
	// ErrLength: a packet shorter than its mode's base length or longer
	// than MaxLen, or a size out of those bounds.
	ErrLength = errors.New("stamp: length out of bounds")
	// ErrHMAC: an authenticated packet whose HMAC no key reproduces.
	ErrHMAC = errors.New("stamp: HMAC does not match")
)

// Key is a shared secret for authenticated mode. A Key is not safe for
// concurrent use.
type Key struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewKey returns the key for secret.
func NewKey(secret []byte) *Key { return &Key{mac: hmac.New(sha256.New, secret)} }

// digest is the HMAC of b's first 96 octets, truncated to HMACLen.
func (k *Key) digest(b []byte) []byte {
	k.mac.Reset()
	k.mac.Write(b[:AuthLen-HMACLen])
	return k.mac.Sum(k.sum[:0])[:HMACLen]
}

// valid says whether b's HMAC field is k's HMAC of b (in constant time).
func (k *Key) valid(b []byte) bool {
	return hmac.Equal(k.digest(b), b[AuthLen-HMACLen:AuthLen])
}

// frame appends size zero octets to b for a packet of layout l, checking
// size, and returns b and the packet.
func frame(b []byte, size int, l layout, what string) ([]byte, []byte, error) {
	if size < l.min || size > MaxLen {
		return b, nil, fmt.Errorf("%w: %s of %d octets (want %d to %d)", ErrLength, what, size, l.min, MaxLen)
	}
	start := len(b)
	b = append(b, make([]byte, size)...)
	return b, b[start:], nil
}

// check checks the length of a received packet of layout l.
func check(b []byte, l layout, what string) error {
	if len(b) < l.min || len(b) > MaxLen {
		return fmt.Errorf("%w: %s of %d octets (want %d to %d)", ErrLength, what, len(b), l.min, MaxLen)
	}
	return nil
}

func (t *Test) put(p []byte, l layout) {
	binary.BigEndian.PutUint32(p[0:], t.Seq)
	binary.BigEndian.PutUint64(p[l.ts:], uint64(t.Time))
	binary.BigEndian.PutUint16(p[l.err:], uint16(t.Err))
	binary.BigEndian.PutUint16(p[l.ssid:], t.SSID)
}

func getTest(p []byte, l layout) Test {
	return Test{Seq: binary.BigEndian.Uint32(p[0:]), Time: Timestamp(binary.BigEndian.Uint64(p[l.ts:])),
		Err: ErrorEstimate(binary.BigEndian.Uint16(p[l.err:])), SSID: binary.BigEndian.Uint16(p[l.ssid:])}
}

// Append appends t in unauthenticated mode, padded with zeros to size
// octets (BaseLen to MaxLen).
func (t *Test) Append(b []byte, size int) ([]byte, error) {
	b, p, err := frame(b, size, open, "test packet")
	if err == nil {
		t.put(p, open)
	}
	return b, err
}

// AppendAuth appends t in authenticated mode under k, padded with zeros to
// size octets (AuthLen to MaxLen).
func (t *Test) AppendAuth(b []byte, size int, k *Key) ([]byte, error) {
	b, p, err := frame(b, size, authed, "authenticated test packet")
	if err == nil {
		t.put(p, authed)
		copy(p[AuthLen-HMACLen:], k.digest(p))
	}
	return b, err
}

// ParseTest reads an unauthenticated test packet. Padding and MBZ octets
// are not checked: RFC 8762 §4.6 has a reflector ignore them.
func ParseTest(b []byte) (Test, error) {
	if err := check(b, open, "test packet"); err != nil {
		return Test{}, err
	}
	return getTest(b, open), nil
}

// ParseTestAuth reads an authenticated test packet whose HMAC one of keys
// reproduces, and returns that key (ErrHMAC when none does).
func ParseTestAuth(b []byte, keys []*Key) (Test, *Key, error) {
	if err := check(b, authed, "authenticated test packet"); err != nil {
		return Test{}, nil, err
	}
	for _, k := range keys {
		if k.valid(b) {
			return getTest(b, authed), k, nil
		}
	}
	return Test{}, nil, ErrHMAC
}

func (r *Reply) put(p []byte, l layout) {
	binary.BigEndian.PutUint32(p[0:], r.Seq)
	binary.BigEndian.PutUint64(p[l.ts:], uint64(r.Time))
	binary.BigEndian.PutUint16(p[l.err:], uint16(r.Err))
	binary.BigEndian.PutUint16(p[l.ssid:], r.SSID)
	binary.BigEndian.PutUint64(p[l.rx:], uint64(r.RxTime))
	binary.BigEndian.PutUint32(p[l.sseq:], r.SenderSeq)
	binary.BigEndian.PutUint64(p[l.sts:], uint64(r.SenderTime))
	binary.BigEndian.PutUint16(p[l.serr:], uint16(r.SenderErr))
	p[l.ttl] = r.SenderTTL
}

func getReply(p []byte, l layout) Reply {
	return Reply{Seq: binary.BigEndian.Uint32(p[0:]), Time: Timestamp(binary.BigEndian.Uint64(p[l.ts:])),
		Err: ErrorEstimate(binary.BigEndian.Uint16(p[l.err:])), SSID: binary.BigEndian.Uint16(p[l.ssid:]),
		RxTime: Timestamp(binary.BigEndian.Uint64(p[l.rx:])), SenderSeq: binary.BigEndian.Uint32(p[l.sseq:]),
		SenderTime: Timestamp(binary.BigEndian.Uint64(p[l.sts:])), SenderErr: ErrorEstimate(binary.BigEndian.Uint16(p[l.serr:])),
		SenderTTL: p[l.ttl]}
}

// Append appends r in unauthenticated mode, padded with zeros to size
// octets: the size of the test packet it answers.
func (r *Reply) Append(b []byte, size int) ([]byte, error) {
	b, p, err := frame(b, size, open, "reply")
	if err == nil {
		r.put(p, open)
	}
	return b, err
}

// AppendAuth appends r in authenticated mode under k, padded with zeros to
// size octets.
func (r *Reply) AppendAuth(b []byte, size int, k *Key) ([]byte, error) {
	b, p, err := frame(b, size, authed, "authenticated reply")
	if err == nil {
		r.put(p, authed)
		copy(p[AuthLen-HMACLen:], k.digest(p))
	}
	return b, err
}

// ParseReply reads an unauthenticated reply.
func ParseReply(b []byte) (Reply, error) {
	if err := check(b, open, "reply"); err != nil {
		return Reply{}, err
	}
	return getReply(b, open), nil
}

// ParseReplyAuth reads an authenticated reply whose HMAC k reproduces
// (ErrHMAC otherwise).
func ParseReplyAuth(b []byte, k *Key) (Reply, error) {
	if err := check(b, authed, "authenticated reply"); err != nil {
		return Reply{}, err
	}
	if !k.valid(b) {
		return Reply{}, ErrHMAC
	}
	return getReply(b, authed), nil
}
