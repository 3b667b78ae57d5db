// Package train is what an abing probe train is on the wire and how it
// leaves the host: the wire format, below, which is abing's protocol
// reference, and Send (pace.go), which hands a train to the kernel back to
// back or paced.
//
// # The wire format
//
// Every abing datagram starts with a fixed 40-byte header, big-endian:
//
//	offset size field
//	0      4    magic "ABWE"
//	4      1    version (2)
//	5      1    message type (see Type)
//	6      2    flags (see Flag*)
//	8      8    session id, chosen at random by the sender
//	16     4    train index within the session
//	20     2    position of this packet in its train (0-based)
//	22     2    train length (packets)
//	24     4    sequence number within the session
//	28     4    reply gap in nanoseconds: how the reflector spaces its
//	            reply train (0 = back to back)
//	32     8    sender timestamp (ns since the Unix epoch, user space, when
//	            the packet was built)
//
// Every message from a sender (hello, probe, report request) then carries a
// 48-byte client block:
//
//	40 4   cookie time (reflector clock, Unix seconds; 0 in a hello)
//	44 12  cookie MAC, as the reflector issued it
//	56 16  key name, zero padded (all zero: unsigned)
//	72 16  HMAC-SHA-256 of the whole datagram with these 16 bytes zeroed,
//	       truncated to 128 bits (zero when unsigned)
//
// followed by a body that depends on the type, and zero padding up to the
// requested datagram size. Sizes in abing are IP-layer sizes (IP and UDP
// headers included), so a 1500-byte probe carries 1472 bytes of UDP payload
// over IPv4 and 1452 over IPv6.
//
// Bodies (offsets are from the start of the datagram):
//
//	TypeHello (sender → reflector): none; padded to at least HelloMin.
//	TypeCookie (reflector → sender), 16 bytes, or 48 with the budget the
//	reflector admits from the sender's address (0 = not stated), sent
//	when the hello was large enough for it:
//	  40 4  cookie time
//	  44 12 cookie MAC
//	  56 4  rate, kbit/s
//	  60 4  burst, bytes
//	  64 4  packets per second
//	  68 4  packet burst
//	  72 2  longest train, packets
//	  74 2  share of time the reflector may spend pacing this sender's
//	        replies, per mille
//	  76 4  longest paced reply train, µs
//	  80 4  pacing time this sender has left now, µs (at least 1 when
//	        stated; a reflector that leaves it zero states none)
//	  84 4  reserved, zero
//	TypeProbe (sender → reflector): none.
//	TypeClose (sender → reflector): none; the sender is done with the
//	  session, which the reflector may forget (no answer).
//	TypeReply (reflector → sender), 16 bytes:
//	  40 8  reflector receive timestamp of the request packet at this position
//	  48 1  TTL / hop limit the reflector saw on that packet (0 = unknown)
//	  49 1  reflector receive timestamp source (see Source in package dispersion)
//	  50 2  packets of the request train that reached the reflector
//	  52 4  reserved, zero
//	TypeReportRequest (sender → reflector), 8 bytes:
//	  88 4  first train index wanted
//	  92 4  number of trains wanted
//	TypeReport (reflector → sender): 8-byte preamble, then 16-byte entries
//	  40 1  reflector transmit timestamp source
//	  41 1  reserved
//	  42 2  number of entries that follow
//	  44 4  reserved
//	  48+16k: train index (4), position (2), reserved (2), transmit time (8)
//	  of the reflector's reply packets.
//	TypeRefused (reflector → sender), 8 bytes:
//	  40 1  reason (see Refusal)
//	  41 3  reserved
//	  44 4  milliseconds after which the sender may try again
//
// A reflector answers a hello with a cookie, and answers probes and report
// requests only when they carry a valid cookie for their source address, port
// and session: a forged source address never sees the cookie, so it cannot
// turn the reflector against a third party. No reflector message is larger
// than the request that caused it (a cookie is 56 bytes, a refusal 48, any
// request at least 88).
//
// A packet that does not parse is dropped and counted by its receiver: Parse
// never panics, whatever the bytes.
package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultPort is the UDP port reflectors listen on unless told otherwise.
const DefaultPort = 8176

// Magic opens every abing datagram.
const Magic = "ABWE"

// Version is the wire format version this package speaks.
const Version = 2

// HeaderLen is the length of the fixed header in bytes.
const HeaderLen = 40

// Datagram overhead at the IP layer: IP header plus UDP header.
const (
	OverheadIPv4 = 20 + 8
	OverheadIPv6 = 40 + 8
)

// Type is a message type.
type Type uint8

// Message types.
const (
	TypeProbe         Type = 1
	TypeReply         Type = 2
	TypeReportRequest Type = 3
	TypeReport        Type = 4
	TypeHello         Type = 5
	TypeCookie        Type = 6
	TypeRefused       Type = 7
	TypeClose         Type = 8
)

// FromSender says whether messages of type t go from a sender to a
// reflector, and so carry a client block.
func (t Type) FromSender() bool {
	return t == TypeHello || t == TypeProbe || t == TypeReportRequest || t == TypeClose
}

func (t Type) String() string {
	switch t {
	case TypeProbe:
		return "probe"
	case TypeReply:
		return "reply"
	case TypeReportRequest:
		return "report-request"
	case TypeReport:
		return "report"
	case TypeHello:
		return "hello"
	case TypeCookie:
		return "cookie"
	case TypeRefused:
		return "refused"
	case TypeClose:
		return "close"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Flags carried in the header.
const (
	// FlagPaced marks a train whose packets were spaced on purpose (the
	// cross-traffic phase) rather than sent back to back.
	FlagPaced uint16 = 1 << 0
	// FlagSigned marks a reflector's message signed with the session's
	// key: its last bytes are the key name and the MAC (auth.TrailerLen).
	FlagSigned uint16 = 1 << 1
)

// Client block layout.
const (
	ClientBlockLen = 48
	CookieLen      = 16 // time (4) + MAC (12)
	CookieMACLen   = 12
	KeyNameLen     = 16
	MACLen         = 16
	// MACOffset is where a signature sits in a sender's datagram.
	MACOffset = HeaderLen + CookieLen + KeyNameLen
	// SenderBody is where the body of a sender's message starts.
	SenderBody = HeaderLen + ClientBlockLen
	// HelloMin is the smallest hello a reflector answers: no smaller than
	// any request, so that a cookie is always smaller than its hello.
	HelloMin = SenderBody
)

// Cookie is a reflector's proof that a sender can receive at its source
// address: the reflector computes MAC from Time, the source address and
// port, and the session, under a secret only it knows.
type Cookie struct {
	Time uint32 // reflector clock, Unix seconds
	MAC  [CookieMACLen]byte
}

// Budget is what a reflector admits from one source address, stated in
// its cookie so that a sender can plan a run that fits. Zero fields were not
// stated.
type Budget struct {
	Rate         float64 // bit/s received
	Burst        int     // bytes
	PPS          float64 // packets per second
	PacketBurst  int     // packets
	MaxTrainLen  int     // packets
	PacedShare   float64 // fraction of time its writer may pace this source's replies
	MaxReplySpan int64   // ns: longest paced reply train
	// PacedNow is the pacing time this source has left now (what its
	// bucket holds: a run that follows another soon finds less than a
	// full bucket), at least 1 µs when stated.
	PacedNow time.Duration
}

// PacedBucket is the most pacing time the source can have saved (what
// PacedNow is at most): a second's worth of its share, or one longest
// paced reply train when that is longer, so that one such train always
// fits a full bucket.
func (u Budget) PacedBucket() time.Duration {
	return time.Duration(max(u.PacedShare*float64(time.Second), float64(u.MaxReplySpan)))
}

// BudgetLen is the encoded length of a Budget, after the cookie.
const BudgetLen = 32

// PutBudget encodes u after the cookie of a TypeCookie datagram b, which
// must be at least HeaderLen+CookieLen+BudgetLen long.
func PutBudget(b []byte, u Budget) {
	p := b[HeaderLen+CookieLen : HeaderLen+CookieLen+BudgetLen]
	clear(p)
	sat := func(v float64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }
	binary.BigEndian.PutUint32(p[0:], sat(u.Rate/1e3))
	binary.BigEndian.PutUint32(p[4:], sat(float64(u.Burst)))
	binary.BigEndian.PutUint32(p[8:], sat(u.PPS))
	binary.BigEndian.PutUint32(p[12:], sat(float64(u.PacketBurst)))
	binary.BigEndian.PutUint16(p[16:], uint16(min(max(u.MaxTrainLen, 0), math.MaxUint16)))
	binary.BigEndian.PutUint16(p[18:], uint16(min(max(u.PacedShare*1000, 0), 1000)))
	binary.BigEndian.PutUint32(p[20:], sat(float64(u.MaxReplySpan/1e3)))
	if u.PacedNow > 0 {
		binary.BigEndian.PutUint32(p[24:], max(1, sat(float64(u.PacedNow/time.Microsecond))))
	}
}

// ParseBudget decodes the budget of a TypeCookie datagram b (its signature
// trailer, if any, cut off); ok is false when b carries none.
func ParseBudget(b []byte) (u Budget, ok bool) {
	if len(b) < HeaderLen+CookieLen+BudgetLen {
		return u, false
	}
	p := b[HeaderLen+CookieLen:]
	u.Rate = float64(binary.BigEndian.Uint32(p[0:])) * 1e3
	u.Burst = int(binary.BigEndian.Uint32(p[4:]))
	u.PPS = float64(binary.BigEndian.Uint32(p[8:]))
	u.PacketBurst = int(binary.BigEndian.Uint32(p[12:]))
	u.MaxTrainLen = int(binary.BigEndian.Uint16(p[16:]))
	u.PacedShare = float64(min(binary.BigEndian.Uint16(p[18:]), 1000)) / 1000
	u.MaxReplySpan = int64(binary.BigEndian.Uint32(p[20:])) * 1e3
	u.PacedNow = time.Duration(binary.BigEndian.Uint32(p[24:])) * time.Microsecond
	return u, true
}

// ClientBlock is what every sender message carries after the header.
type ClientBlock struct {
	Cookie  Cookie
	KeyName [KeyNameLen]byte
	MAC     [MACLen]byte
}

// Refusal says why a reflector refused a sender.
type Refusal uint8

// Refusal reasons.
const (
	RefusedRate     Refusal = 1 // over the reflector's rate budget
	RefusedCookie   Refusal = 2 // no valid cookie: say hello again
	RefusedSessions Refusal = 3 // the reflector has too many sessions
	RefusedTrain    Refusal = 4 // train longer or larger than the reflector accepts
)

func (r Refusal) String() string {
	switch r {
	case RefusedRate:
		return "over the reflector's rate budget"
	case RefusedCookie:
		return "no valid cookie (the handshake expired or the source address changed)"
	case RefusedSessions:
		return "the reflector has too many sessions"
	case RefusedTrain:
		return "train too long or too large for the reflector"
	}
	return fmt.Sprintf("refusal(%d)", uint8(r))
}

// RefusedBody is the body of a TypeRefused datagram.
type RefusedBody struct {
	Reason     Refusal
	RetryAfter uint32 // ms
}

// RefusedLen is the length of a refusal datagram.
const RefusedLen = HeaderLen + 8

// Header is the fixed part of every datagram.
type Header struct {
	Type     Type
	Flags    uint16
	Session  uint64
	Train    uint32
	Pos      uint16
	Len      uint16
	Seq      uint32
	ReplyGap uint32 // ns
	SentNs   int64
}

// ReplyBody is the body of a TypeReply datagram.
type ReplyBody struct {
	RxNs     int64 // reflector receive time of the request packet
	TTL      uint8
	RxSource uint8
	Arrived  uint16 // request packets of this train that arrived
}

// ReplyBodyLen is the encoded length of ReplyBody.
const ReplyBodyLen = 16

// ReportRequest is the body of a TypeReportRequest datagram.
type ReportRequest struct {
	FirstTrain uint32
	Trains     uint32
}

// ReportRequestLen is the encoded length of ReportRequest.
const ReportRequestLen = 8

// TxStamp is one entry of a report: when the reflector sent one reply packet.
type TxStamp struct {
	Train uint32
	Pos   uint16
	TxNs  int64
}

// Report preamble and entry sizes.
const (
	reportPreambleLen = 8
	ReportEntryLen    = 16
)

// Errors returned by Parse. They are values so that receivers can count
// drops by cause.
var (
	ErrShort     = errors.New("datagram shorter than the abing header")
	ErrMagic     = errors.New("bad magic")
	ErrVersion   = errors.New("unsupported version")
	ErrType      = errors.New("unknown message type")
	ErrTrain     = errors.New("position outside train")
	ErrBody      = errors.New("body truncated")
	ErrReportLen = errors.New("report entry count exceeds datagram")
)

// PutHeader encodes h into b[:HeaderLen]. b must be at least HeaderLen long.
func PutHeader(b []byte, h *Header) {
	copy(b[0:4], Magic)
	b[4] = Version
	b[5] = byte(h.Type)
	binary.BigEndian.PutUint16(b[6:], h.Flags)
	binary.BigEndian.PutUint64(b[8:], h.Session)
	binary.BigEndian.PutUint32(b[16:], h.Train)
	binary.BigEndian.PutUint16(b[20:], h.Pos)
	binary.BigEndian.PutUint16(b[22:], h.Len)
	binary.BigEndian.PutUint32(b[24:], h.Seq)
	binary.BigEndian.PutUint32(b[28:], h.ReplyGap)
	binary.BigEndian.PutUint64(b[32:], uint64(h.SentNs))
}

// ParseHeader decodes and validates the header of datagram b.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, ErrShort
	}
	if string(b[0:4]) != Magic {
		return h, ErrMagic
	}
	if b[4] != Version {
		return h, fmt.Errorf("%w %d", ErrVersion, b[4])
	}
	h.Type = Type(b[5])
	h.Flags = binary.BigEndian.Uint16(b[6:])
	h.Session = binary.BigEndian.Uint64(b[8:])
	h.Train = binary.BigEndian.Uint32(b[16:])
	h.Pos = binary.BigEndian.Uint16(b[20:])
	h.Len = binary.BigEndian.Uint16(b[22:])
	h.Seq = binary.BigEndian.Uint32(b[24:])
	h.ReplyGap = binary.BigEndian.Uint32(b[28:])
	h.SentNs = int64(binary.BigEndian.Uint64(b[32:]))
	switch h.Type {
	case TypeProbe, TypeReply:
		if h.Len == 0 || h.Pos >= h.Len {
			return h, ErrTrain
		}
	case TypeHello, TypeReportRequest, TypeReport, TypeCookie, TypeRefused, TypeClose:
	default:
		return h, ErrType
	}
	if len(b) < minLen(h.Type) {
		return h, ErrBody
	}
	return h, nil
}

// minLen is the shortest valid datagram of type t.
func minLen(t Type) int {
	switch t {
	case TypeHello:
		return HelloMin
	case TypeProbe, TypeClose:
		return SenderBody
	case TypeReportRequest:
		return SenderBody + ReportRequestLen
	case TypeReply:
		return HeaderLen + ReplyBodyLen
	case TypeReport:
		return HeaderLen + reportPreambleLen
	case TypeCookie:
		return HeaderLen + CookieLen
	case TypeRefused:
		return RefusedLen
	}
	return HeaderLen
}

// PutClientBlock encodes c after the header of a sender's datagram b.
func PutClientBlock(b []byte, c *ClientBlock) {
	p := b[HeaderLen:SenderBody]
	putCookie(p, c.Cookie)
	copy(p[CookieLen:], c.KeyName[:])
	copy(p[CookieLen+KeyNameLen:], c.MAC[:])
}

// ParseClientBlock decodes the client block of a sender's datagram.
func ParseClientBlock(b []byte) (ClientBlock, error) {
	var c ClientBlock
	if len(b) < SenderBody {
		return c, ErrBody
	}
	p := b[HeaderLen:SenderBody]
	c.Cookie = parseCookie(p)
	copy(c.KeyName[:], p[CookieLen:])
	copy(c.MAC[:], p[CookieLen+KeyNameLen:])
	return c, nil
}

func putCookie(p []byte, c Cookie) {
	binary.BigEndian.PutUint32(p, c.Time)
	copy(p[4:CookieLen], c.MAC[:])
}

func parseCookie(p []byte) Cookie {
	c := Cookie{Time: binary.BigEndian.Uint32(p)}
	copy(c.MAC[:], p[4:CookieLen])
	return c
}

// PutCookie encodes the body of a TypeCookie datagram.
func PutCookie(b []byte, c Cookie) { putCookie(b[HeaderLen:], c) }

// ParseCookie decodes the body of a TypeCookie datagram.
func ParseCookie(b []byte) (Cookie, error) {
	if len(b) < HeaderLen+CookieLen {
		return Cookie{}, ErrBody
	}
	return parseCookie(b[HeaderLen:]), nil
}

// PutRefused encodes the body of a TypeRefused datagram.
func PutRefused(b []byte, r RefusedBody) {
	p := b[HeaderLen:RefusedLen]
	p[0] = byte(r.Reason)
	clear(p[1:4])
	binary.BigEndian.PutUint32(p[4:], r.RetryAfter)
}

// ParseRefused decodes the body of a TypeRefused datagram.
func ParseRefused(b []byte) (RefusedBody, error) {
	if len(b) < RefusedLen {
		return RefusedBody{}, ErrBody
	}
	p := b[HeaderLen:]
	return RefusedBody{Reason: Refusal(p[0]), RetryAfter: binary.BigEndian.Uint32(p[4:])}, nil
}

// PutReplyBody encodes r after the header of b.
func PutReplyBody(b []byte, r *ReplyBody) {
	p := b[HeaderLen:]
	binary.BigEndian.PutUint64(p[0:], uint64(r.RxNs))
	p[8] = r.TTL
	p[9] = r.RxSource
	binary.BigEndian.PutUint16(p[10:], r.Arrived)
	clear(p[12:16])
}

// ParseReplyBody decodes the body of a TypeReply datagram whose header
// already parsed.
func ParseReplyBody(b []byte) (ReplyBody, error) {
	if len(b) < HeaderLen+ReplyBodyLen {
		return ReplyBody{}, ErrBody
	}
	p := b[HeaderLen:]
	return ReplyBody{
		RxNs:     int64(binary.BigEndian.Uint64(p[0:])),
		TTL:      p[8],
		RxSource: p[9],
		Arrived:  binary.BigEndian.Uint16(p[10:]),
	}, nil
}

// PutReportRequest encodes r after the client block of b.
func PutReportRequest(b []byte, r ReportRequest) {
	p := b[SenderBody:]
	binary.BigEndian.PutUint32(p[0:], r.FirstTrain)
	binary.BigEndian.PutUint32(p[4:], r.Trains)
}

// ParseReportRequest decodes the body of a TypeReportRequest datagram.
func ParseReportRequest(b []byte) (ReportRequest, error) {
	if len(b) < SenderBody+ReportRequestLen {
		return ReportRequest{}, ErrBody
	}
	p := b[SenderBody:]
	return ReportRequest{
		FirstTrain: binary.BigEndian.Uint32(p[0:]),
		Trains:     binary.BigEndian.Uint32(p[4:]),
	}, nil
}

// ReportCapacity is how many TxStamp entries fit in a report datagram of
// payload length n (UDP payload bytes).
func ReportCapacity(n int) int {
	c := (n - HeaderLen - reportPreambleLen) / ReportEntryLen
	return max(c, 0)
}

// PutReport encodes a report after the header of b. It writes as many
// entries as fit and returns how many it wrote.
func PutReport(b []byte, source uint8, stamps []TxStamp) int {
	n := min(len(stamps), ReportCapacity(len(b)), 0xffff)
	p := b[HeaderLen:]
	p[0] = source
	p[1] = 0
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	clear(p[4:8])
	e := p[reportPreambleLen:]
	for i := range n {
		s := stamps[i]
		binary.BigEndian.PutUint32(e[0:], s.Train)
		binary.BigEndian.PutUint16(e[4:], s.Pos)
		clear(e[6:8])
		binary.BigEndian.PutUint64(e[8:], uint64(s.TxNs))
		e = e[ReportEntryLen:]
	}
	return n
}

// ParseReport decodes the body of a TypeReport datagram, appending its
// entries to dst. The entry count is checked against the datagram length
// before anything is allocated.
func ParseReport(b []byte, dst []TxStamp) (source uint8, out []TxStamp, err error) {
	if len(b) < HeaderLen+reportPreambleLen {
		return 0, dst, ErrBody
	}
	p := b[HeaderLen:]
	source = p[0]
	n := int(binary.BigEndian.Uint16(p[2:]))
	if n > ReportCapacity(len(b)) {
		return 0, dst, ErrReportLen
	}
	e := p[reportPreambleLen:]
	for range n {
		dst = append(dst, TxStamp{
			Train: binary.BigEndian.Uint32(e[0:]),
			Pos:   binary.BigEndian.Uint16(e[4:]),
			TxNs:  int64(binary.BigEndian.Uint64(e[8:])),
		})
		e = e[ReportEntryLen:]
	}
	return source, dst, nil
}
