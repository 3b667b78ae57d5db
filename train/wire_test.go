package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Type: TypeProbe, Flags: FlagPaced, Session: 1<<63 + 5, Train: 7, Pos: 1, Len: 2, Seq: 99, ReplyGap: 120000, SentNs: 1e18},
		{Type: TypeReply, Session: 1, Train: 0, Pos: 9, Len: 10, Seq: 1, SentNs: -1},
		{Type: TypeReportRequest, Session: 2, Train: 3, Len: 1},
		{Type: TypeReport, Session: 2, Train: 3, Len: 1},
	} {
		b := make([]byte, 200)
		PutHeader(b, &h)
		got, err := ParseHeader(b)
		if err != nil || got != h {
			t.Errorf("%v: got %+v, %v", h.Type, got, err)
		}
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	b := make([]byte, 1472)
	PutHeader(b, &Header{Type: TypeReply, Len: 2})
	r := ReplyBody{RxNs: 1234567890123, TTL: 61, RxSource: 2, Arrived: 2}
	PutReplyBody(b, &r)
	if got, err := ParseReplyBody(b); err != nil || got != r {
		t.Errorf("reply body: %+v %v", got, err)
	}
	c := ClientBlock{Cookie: Cookie{Time: 1700000000, MAC: [12]byte{1, 2, 3}}, KeyName: [16]byte{'k'}, MAC: [16]byte{9}}
	PutClientBlock(b, &c)
	if got, err := ParseClientBlock(b); err != nil || got != c {
		t.Errorf("client block: %+v %v", got, err)
	}
	PutCookie(b, c.Cookie)
	if got, err := ParseCookie(b); err != nil || got != c.Cookie {
		t.Errorf("cookie: %+v %v", got, err)
	}
	PutRefused(b, RefusedBody{Reason: RefusedRate, RetryAfter: 1000})
	if got, err := ParseRefused(b); err != nil || got != (RefusedBody{RefusedRate, 1000}) {
		t.Errorf("refused: %+v %v", got, err)
	}
	PutReportRequest(b, ReportRequest{FirstTrain: 16, Trains: 8})
	if got, err := ParseReportRequest(b); err != nil || got != (ReportRequest{16, 8}) {
		t.Errorf("report request: %+v %v", got, err)
	}
	stamps := make([]TxStamp, 200)
	for i := range stamps {
		stamps[i] = TxStamp{Train: uint32(i / 10), Pos: uint16(i % 10), TxNs: int64(i) * 1000}
	}
	n := PutReport(b, 2, stamps)
	if n != ReportCapacity(len(b)) || n != (1472-48)/16 {
		t.Fatalf("report holds %d, capacity %d", n, ReportCapacity(len(b)))
	}
	src, got, err := ParseReport(b, nil)
	if err != nil || src != 2 || len(got) != n {
		t.Fatalf("report: src %d, %d entries, %v", src, len(got), err)
	}
	for i := range got {
		if got[i] != stamps[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], stamps[i])
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := make([]byte, 100)
	PutHeader(good, &Header{Type: TypeReply, Len: 2, Pos: 1})
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"short", good[:HeaderLen-1], ErrShort},
		{"magic", mod(func(b []byte) { b[0] = 'X' }), ErrMagic},
		{"version", mod(func(b []byte) { b[4] = 1 }), ErrVersion},
		{"type", mod(func(b []byte) { b[5] = 77 }), ErrType},
		{"pos beyond len", mod(func(b []byte) { b[21] = 5 }), ErrTrain},
		{"zero len", mod(func(b []byte) { b[23] = 0 }), ErrTrain},
		{"reply without body", good[:HeaderLen+ReplyBodyLen-1], ErrBody},
		{"probe without client block", mod(func(b []byte) { b[5] = byte(TypeProbe) })[:SenderBody-1], ErrBody},
		{"small hello", mod(func(b []byte) { b[5] = byte(TypeHello) })[:HelloMin-1], ErrBody},
		{"report request without body", mod(func(b []byte) { b[5] = byte(TypeReportRequest) })[:SenderBody+7], ErrBody},
		{"cookie without body", mod(func(b []byte) { b[5] = byte(TypeCookie) })[:HeaderLen+CookieLen-1], ErrBody},
		{"refusal without body", mod(func(b []byte) { b[5] = byte(TypeRefused) })[:RefusedLen-1], ErrBody},
	} {
		if _, err := ParseHeader(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A report that claims more entries than its datagram holds.
	b := make([]byte, HeaderLen+8+16)
	PutHeader(b, &Header{Type: TypeReport, Len: 1})
	b[HeaderLen+2], b[HeaderLen+3] = 0xff, 0xff
	if _, _, err := ParseReport(b, nil); !errors.Is(err, ErrReportLen) {
		t.Errorf("oversized count: %v", err)
	}
}

// Every prefix of a valid datagram and random garbage must parse or fail
// cleanly.
func TestTruncatedAndGarbage(t *testing.T) {
	b := make([]byte, 1472)
	PutHeader(b, &Header{Type: TypeReport, Len: 1})
	PutReport(b, 2, make([]TxStamp, 80))
	for n := range len(b) {
		parseAll(b[:n])
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		g := make([]byte, r.IntN(200))
		for i := range g {
			g[i] = byte(r.Uint32())
		}
		if len(g) > 6 && r.IntN(2) == 0 {
			copy(g, Magic)
			g[4] = Version
			g[5] = byte(1 + r.IntN(8))
		}
		parseAll(g)
	}
}

func parseAll(b []byte) {
	h, err := ParseHeader(b)
	if err != nil {
		return
	}
	if h.Type.FromSender() {
		if _, err := ParseClientBlock(b); err != nil {
			panic("client block of a parsed sender message: " + err.Error())
		}
	}
	switch h.Type {
	case TypeCookie:
		if _, err := ParseCookie(b); err != nil {
			panic("cookie body of a parsed cookie: " + err.Error())
		}
	case TypeRefused:
		if _, err := ParseRefused(b); err != nil {
			panic("refusal body of a parsed refusal: " + err.Error())
		}
	case TypeReply:
		if _, err := ParseReplyBody(b); err != nil {
			panic("reply body of a parsed reply: " + err.Error())
		}
	case TypeReportRequest:
		if _, err := ParseReportRequest(b); err != nil {
			panic("body of a parsed report request: " + err.Error())
		}
	case TypeReport:
		ParseReport(b, nil)
	}
}

func FuzzParse(f *testing.F) {
	b := make([]byte, 120)
	PutHeader(b, &Header{Type: TypeReport, Len: 1})
	PutReport(b, 2, []TxStamp{{1, 2, 3}})
	f.Add(b)
	f.Add([]byte("ABWE\x02\x02"))
	h := make([]byte, HelloMin)
	PutHeader(h, &Header{Type: TypeHello, Len: 1})
	f.Add(h)
	f.Fuzz(func(t *testing.T, b []byte) { parseAll(b) })
}

// A budget survives the trip in the units the wire has (kbit/s, µs, per
// mille), saturates instead of wrapping, and a cookie without one says so.
func TestBudgetRoundTrip(t *testing.T) {
	b := make([]byte, HeaderLen+CookieLen+BudgetLen)
	u := Budget{Rate: 10e6, Burst: 1 << 20, PPS: 5000, PacketBurst: 2000, MaxTrainLen: 1024, PacedShare: 0.1, MaxReplySpan: 100e6, PacedNow: 37 * time.Millisecond}
	PutBudget(b, u)
	if got, ok := ParseBudget(b); !ok || got != u {
		t.Errorf("budget %+v, want %+v", got, u)
	}
	PutBudget(b, Budget{Rate: 1e18, Burst: -5, MaxTrainLen: 1 << 20, PacedShare: 7})
	got, _ := ParseBudget(b)
	if got.Rate != float64(math.MaxUint32)*1e3 || got.Burst != 0 || got.MaxTrainLen != math.MaxUint16 || got.PacedShare != 1 {
		t.Errorf("saturated budget %+v", got)
	}
	if _, ok := ParseBudget(b[:HeaderLen+CookieLen]); ok {
		t.Error("a short cookie parsed as having a budget")
	}
	// Pacing time left: an empty bucket is stated as 1 µs (0 is "not
	// stated", what an older reflector sends); more than the field holds
	// saturates.
	for _, c := range []struct{ put, want time.Duration }{
		{0, 0}, {time.Nanosecond, time.Microsecond}, {-time.Second, 0}, {1 << 62, math.MaxUint32 * time.Microsecond},
	} {
		PutBudget(b, Budget{PacedNow: c.put})
		if got, _ := ParseBudget(b); got.PacedNow != c.want {
			t.Errorf("pacing time left %v: read %v, want %v", c.put, got.PacedNow, c.want)
		}
	}
}

// A full pacing bucket is a second's share, or one longest reply train
// when that is longer.
func TestPacedBucket(t *testing.T) {
	for _, c := range []struct {
		share float64
		span  time.Duration
		want  time.Duration
	}{
		{0.1, 100 * time.Millisecond, 100 * time.Millisecond},
		{0.5, 100 * time.Millisecond, 500 * time.Millisecond},
		{0.05, 100 * time.Millisecond, 100 * time.Millisecond},
		{0.05, 0, 50 * time.Millisecond},
		{0, 0, 0},
	} {
		if got := (Budget{PacedShare: c.share, MaxReplySpan: int64(c.span)}).PacedBucket(); got != c.want {
			t.Errorf("share %g, longest train %v: bucket %v, want %v", c.share, c.span, got, c.want)
		}
	}
}
