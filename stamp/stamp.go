// Package stamp is what a STAMP test packet is on the wire (RFC 8762, with
// the Session-Sender Identifier of RFC 8972), in unauthenticated mode: the
// Session-Sender's test packet and the Session-Reflector's reply, 44
// octets each before padding. Unauthenticated STAMP is on-wire compatible
// with TWAMP-Light (RFC 5357, Appendix I), so the same packets measure
// against routers that answer either.
//
// A reply is the size of the test packet it answers (RFC 8762 §4.3): a
// reflector adds no amplification. Timestamps are 64-bit NTP (32-bit
// seconds since 1900, 32-bit fraction) unless the Error Estimate's Z bit
// says PTPv2 (32-bit seconds since 1970, 32-bit nanoseconds).
package stamp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Port is STAMP's default destination port (RFC 8762 §4.1).
const Port = 862

// BaseLen is the length of an unauthenticated test packet or reply
// without padding.
const BaseLen = 44

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

// ErrLength is returned for a packet shorter than BaseLen or longer than
// MaxLen, and for a size out of those bounds.
var ErrLength = errors.New("stamp: length out of bounds")

// Append appends t, padded with zeros to size octets (BaseLen to MaxLen).
func (t *Test) Append(b []byte, size int) ([]byte, error) {
	if size < BaseLen || size > MaxLen {
		return b, fmt.Errorf("%w: test packet of %d octets", ErrLength, size)
	}
	start := len(b)
	b = append(b, make([]byte, size)...)
	p := b[start:]
	binary.BigEndian.PutUint32(p[0:], t.Seq)
	binary.BigEndian.PutUint64(p[4:], uint64(t.Time))
	binary.BigEndian.PutUint16(p[12:], uint16(t.Err))
	binary.BigEndian.PutUint16(p[14:], t.SSID)
	return b, nil
}

// ParseTest reads a test packet. Padding and MBZ octets are not checked:
// RFC 8762 §4.6 has a reflector ignore them.
func ParseTest(b []byte) (Test, error) {
	if len(b) < BaseLen || len(b) > MaxLen {
		return Test{}, fmt.Errorf("%w: test packet of %d octets", ErrLength, len(b))
	}
	return Test{Seq: binary.BigEndian.Uint32(b[0:]), Time: Timestamp(binary.BigEndian.Uint64(b[4:])),
		Err: ErrorEstimate(binary.BigEndian.Uint16(b[12:])), SSID: binary.BigEndian.Uint16(b[14:])}, nil
}

// Append appends r, padded with zeros to size octets: the size of the test
// packet it answers.
func (r *Reply) Append(b []byte, size int) ([]byte, error) {
	if size < BaseLen || size > MaxLen {
		return b, fmt.Errorf("%w: reply of %d octets", ErrLength, size)
	}
	start := len(b)
	b = append(b, make([]byte, size)...)
	p := b[start:]
	binary.BigEndian.PutUint32(p[0:], r.Seq)
	binary.BigEndian.PutUint64(p[4:], uint64(r.Time))
	binary.BigEndian.PutUint16(p[12:], uint16(r.Err))
	binary.BigEndian.PutUint16(p[14:], r.SSID)
	binary.BigEndian.PutUint64(p[16:], uint64(r.RxTime))
	binary.BigEndian.PutUint32(p[24:], r.SenderSeq)
	binary.BigEndian.PutUint64(p[28:], uint64(r.SenderTime))
	binary.BigEndian.PutUint16(p[36:], uint16(r.SenderErr))
	p[40] = r.SenderTTL
	return b, nil
}

// ParseReply reads a reply.
func ParseReply(b []byte) (Reply, error) {
	if len(b) < BaseLen || len(b) > MaxLen {
		return Reply{}, fmt.Errorf("%w: reply of %d octets", ErrLength, len(b))
	}
	return Reply{Seq: binary.BigEndian.Uint32(b[0:]), Time: Timestamp(binary.BigEndian.Uint64(b[4:])),
		Err: ErrorEstimate(binary.BigEndian.Uint16(b[12:])), SSID: binary.BigEndian.Uint16(b[14:]),
		RxTime: Timestamp(binary.BigEndian.Uint64(b[16:])), SenderSeq: binary.BigEndian.Uint32(b[24:]),
		SenderTime: Timestamp(binary.BigEndian.Uint64(b[28:])), SenderErr: ErrorEstimate(binary.BigEndian.Uint16(b[36:])),
		SenderTTL: b[40]}, nil
}
