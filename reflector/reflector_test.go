package reflector

import (
	"context"
	"testing"
	"time"

	"github.com/abing-net/abing/dispersion"
	"github.com/abing-net/abing/train"
)

func start(t *testing.T, cfg Config) (*Server, *dispersion.Conn, *dispersion.Peer) {
	t.Helper()
	conn, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(conn, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	client, err := dispersion.Listen("udp4", "127.0.0.1:0", dispersion.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		conn.Close()
		client.Close()
	})
	return srv, client, client.Peer(conn.LocalAddr())
}

func probe(train_, pos, n, size int) []byte {
	b := make([]byte, size)
	train.PutHeader(b, &train.Header{Type: train.TypeProbe, Session: 42, Train: uint32(train_), Pos: uint16(pos), Len: uint16(n), Seq: uint32(pos)})
	return b
}

// replies reads data until quiet for 200 ms.
func replies(t *testing.T, c *dispersion.Conn) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 9000)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		ev, err := c.Recv(buf)
		if err != nil {
			return out
		}
		if ev.Kind == dispersion.Data {
			out = append(out, append([]byte(nil), buf[:ev.N]...))
		}
	}
}

func TestReplyNeverLarger(t *testing.T) {
	srv, client, peer := start(t, Config{TrainTimeout: 30 * time.Millisecond})
	// A train of 3 with sizes 100, 300, 200; then a train of 4 of which
	// one packet never comes.
	peer.WriteBatch([][]byte{probe(0, 0, 3, 100), probe(0, 1, 3, 300), probe(0, 2, 3, 200)})
	peer.WriteBatch([][]byte{probe(1, 0, 4, 500), probe(1, 1, 4, 500), probe(1, 3, 4, 500)})
	got := replies(t, client)
	if len(got) != 6 {
		t.Fatalf("%d replies, want 6 (3 + the 3 of 4 that arrived)", len(got))
	}
	want := []int{100, 300, 200, 500, 500, 500}
	for i, b := range got {
		h, err := train.ParseHeader(b)
		if err != nil || h.Type != train.TypeReply || len(b) != want[i] {
			t.Errorf("reply %d: %d bytes (want %d), %+v %v", i, len(b), want[i], h, err)
		}
		r, _ := train.ParseReplyBody(b)
		if r.RxNs == 0 || r.TTL != 64 || dispersion.Source(r.RxSource) == dispersion.SourceNone {
			t.Errorf("reply %d body %+v", i, r)
		}
		if h.Train == 1 && r.Arrived != 3 {
			t.Errorf("incomplete train reports %d arrived, want 3", r.Arrived)
		}
	}
	st := srv.Stats()
	if st.Trains != 2 || st.TrainTimeouts != 1 || st.Replies != 6 {
		t.Errorf("stats %+v", st)
	}

	// The report is no larger than its request and lists every reply.
	req := make([]byte, train.HeaderLen+8+6*16)
	train.PutHeader(req, &train.Header{Type: train.TypeReportRequest, Session: 42, Len: 1})
	train.PutReportRequest(req, train.ReportRequest{FirstTrain: 0, Trains: 2})
	peer.Write(req)
	got = replies(t, client)
	if len(got) != 1 || len(got[0]) > len(req) {
		t.Fatalf("report: %d datagrams, first %d bytes for a %d-byte request", len(got), len(got[0]), len(req))
	}
	_, stamps, err := train.ParseReport(got[0], nil)
	if err != nil || len(stamps) != 6 {
		t.Fatalf("report: %d stamps, %v", len(stamps), err)
	}
	for _, s := range stamps {
		if s.TxNs == 0 {
			t.Errorf("stamp %+v has no transmit time", s)
		}
	}
}

func TestMalformedCounted(t *testing.T) {
	srv, client, peer := start(t, Config{})
	bad := [][]byte{[]byte("hello"), make([]byte, 100), probe(0, 5, 2, 100), probe(0, 0, 2, train.HeaderLen+4)}
	reply := make([]byte, 100)
	train.PutHeader(reply, &train.Header{Type: train.TypeReply, Len: 1})
	bad = append(bad, reply)
	for _, b := range bad {
		peer.Write(b)
	}
	if got := replies(t, client); len(got) != 0 {
		t.Errorf("%d replies to garbage", len(got))
	}
	if st := srv.Stats(); st.Malformed != uint64(len(bad)) || st.Received != uint64(len(bad)) {
		t.Errorf("malformed %d of %d received, want %d", st.Malformed, st.Received, len(bad))
	}
}

func TestSourceBudget(t *testing.T) {
	// Budget of 3000 bytes and no refill to speak of: the second train of
	// 2×1000 bytes fits, the third does not.
	srv, client, peer := start(t, Config{SourceRate: 8, SourceBurst: 3000})
	for i := range 3 {
		peer.WriteBatch([][]byte{probe(i, 0, 2, 1000), probe(i, 1, 2, 1000)})
		time.Sleep(10 * time.Millisecond)
	}
	if got := replies(t, client); len(got) != 2 {
		t.Errorf("%d replies, want 2 (one train)", len(got))
	}
	if st := srv.Stats(); st.RateLimited != 2 {
		t.Errorf("rate limited %d trains, want 2", st.RateLimited)
	}
}
