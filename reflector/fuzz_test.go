package reflector

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

// FuzzHandle feeds datagrams straight into the reflector's receive path
// (every check, session and train assembly) and checks the amplification
// rule on whatever it queues: no message larger than the datagram that
// caused it. With cookie set, the fuzzer's datagram gets a valid cookie for
// its session, so that the paths behind the handshake are reached too.
func FuzzHandle(f *testing.F) {
	hello := make([]byte, train.HelloMin)
	train.PutHeader(hello, &train.Header{Type: train.TypeHello, Session: 1, Len: 1, Seq: 1})
	f.Add(hello, false)
	for _, n := range []uint16{2, 1024, 65535} {
		p := make([]byte, 200)
		train.PutHeader(p, &train.Header{Type: train.TypeProbe, Session: 1, Len: n, Seq: 2})
		f.Add(p, true)
	}
	r := make([]byte, train.SenderBody+8+64)
	train.PutHeader(r, &train.Header{Type: train.TypeReportRequest, Session: 1, Len: 1, Seq: 3})
	train.PutReportRequest(r, train.ReportRequest{FirstTrain: 0, Trains: 4})
	f.Add(r, true)
	f.Add([]byte("ABWE\x02\x01"), false)

	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	s, err := New(conn, Config{})
	if err != nil {
		f.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, b []byte, cookie bool) {
		now := time.Now()
		if cookie && len(b) >= train.SenderBody {
			c := s.jar.Issue(now, src, binary.BigEndian.Uint64(b[8:16]))
			binary.BigEndian.PutUint32(b[train.HeaderLen:], c.Time)
			copy(b[train.HeaderLen+4:], c.MAC[:])
		}
		if len(b) > MaxDatagram {
			return // dropped before handle, by the receive loop
		}
		s.handle(b, dispersion.Event{Kind: dispersion.Data, N: len(b), From: src, Ns: now.UnixNano(), TTL: 64}, now)
		s.flushExpired(now.Add(time.Hour)) // answer every train still pending
		for {
			select {
			case j := <-s.jobs:
				switch {
				case j.msg != nil && len(j.msg) > len(b):
					t.Fatalf("%d-byte message for a %d-byte datagram", len(j.msg), len(b))
				case j.report != nil && j.reqLen != len(b):
					t.Fatalf("report of %d bytes for a %d-byte request", j.reqLen, len(b))
				case j.t != nil:
					for _, sl := range j.t.slots {
						if int(sl.size) > MaxDatagram {
							t.Fatalf("reply of %d bytes", sl.size)
						}
					}
				}
				continue
			default:
			}
			break
		}
	})
}
