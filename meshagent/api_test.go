package meshagent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abing-net/abing/internal/web"
	"github.com/abing-net/abing/record"
)

// apiAgent is a test agent whose map holds nodes a, b and c, each linked to
// the two others, with values published values per link a second apart;
// its API is served by the daemons' web listener. It returns the agent and
// the listener's address.
func apiAgent(t *testing.T, values int) (*Agent, string) {
	t.Helper()
	a := newTestAgent(t)
	for _, n := range []string{"b", "c"} {
		a.view.setMember(n, member{alive: true})
	}
	start := time.Now().Add(-time.Duration(values) * time.Second)
	for i := range values {
		now := start.Add(time.Duration(i) * time.Second)
		for _, n := range []string{"a", "b", "c"} {
			var links []Link
			for _, p := range []string{"a", "b", "c"} {
				if p != n {
					links = append(links, Link{Peer: p, RTT: float64(10 + i%7), Cost: 100})
				}
			}
			a.view.Apply(&Part{Node: n, Path: "direct", Coord: coord(0, 0), Links: links}, now)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := web.Serve(l, web.Options{Handlers: a.Handlers(), Config: web.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return a, l.Addr().String()
}

// Records come in pages of at most limit, each naming where the next
// starts; followed to the end they are exactly the map's records, in
// order, once each. FetchRecords reads them all.
func TestRecordsPaging(t *testing.T) {
	a, addr := apiAgent(t, 50) // 6 links × 50 values, of which runs of equal RTTs collapse: 6 × 50
	want := a.view.Records(time.Time{})
	if len(want) < 250 {
		t.Fatalf("the map holds %d records, want at least 250 for three pages", len(want))
	}
	var got []record.Record
	pages := 0
	for after := ""; ; pages++ {
		u := "http://" + addr + "/api/v1/mesh/records?limit=100"
		if after != "" {
			u += "&after=" + after
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := record.ReadJSONLines(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages, resp.StatusCode, err)
		}
		if len(recs) > 100 {
			t.Fatalf("page %d holds %d records, limit 100", pages, len(recs))
		}
		got = append(got, recs...)
		if after = resp.Header.Get(RecordsNext); after == "" {
			break
		}
		if pages > 10 {
			t.Fatal("more than 10 pages")
		}
	}
	if pages != (len(want)-1)/100 {
		t.Errorf("%d records in %d pages after the first, want %d", len(want), pages, (len(want)-1)/100)
	}
	if !sameRecords(got, want) {
		t.Errorf("pages gave %d records, the map holds %d (or not the same, or not in order)", len(got), len(want))
	}
	fetched, err := FetchRecords(context.Background(), addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecords(fetched, want) {
		t.Errorf("FetchRecords: %d records, the map holds %d", len(fetched), len(want))
	}
	for _, q := range []string{"limit=0", "limit=100001", "limit=x", "after=%2A%2A", "after=" + strings.Repeat("A", 5000), "since=-1s"} {
		resp, err := http.Get("http://" + addr + "/api/v1/mesh/records?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400", q, resp.StatusCode, b)
		}
	}
}

func sameRecords(a, b []record.Record) bool {
	return slices.EqualFunc(a, b, func(x, y record.Record) bool {
		return x.Time.Equal(y.Time) && x.Node == y.Node && x.Target == y.Target && x.Path == y.Path && x.RTT.Avg == y.RTT.Avg
	})
}

// A client that sends more records in a page than it asked for, or more
// bytes, is refused before it holds more than a page.
func TestFetchRecordsBounds(t *testing.T) {
	line := `{"time":"2026-12-06T10:00:00Z","target":"b","node":"a","path":"direct","direction":"forward"}` + "\n"
	for _, tc := range []struct {
		name string
		body func(w io.Writer)
		want string
	}{
		{"too many records", func(w io.Writer) { io.WriteString(w, strings.Repeat(line, RecordsPage+1)) }, "more than 100000 records"},
		{"too many bytes", func(w io.Writer) {
			pad := `{"time":"2026-12-06T10:00:00Z","target":"` + strings.Repeat("x", 900_000) + `"}` + "\n"
			for range maxPageBody/len(pad) + 2 {
				io.WriteString(w, pad)
			}
		}, "bytes"},
		{"a loop of pages", func(w io.Writer) { io.WriteString(w, line) }, "where this one did"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.name == "a loop of pages" {
					w.Header().Set(RecordsNext, "same")
				}
				tc.body(w)
			})}
			go srv.Serve(l)
			defer srv.Close()
			_, err = FetchRecords(context.Background(), l.Addr().String(), 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// /api/v1/mesh is computed once per change of the map, and at most once
// every MeshAnswerAge while it keeps changing; requests in between share
// the answer.
func TestMeshAnswerCached(t *testing.T) {
	a, addr := apiAgent(t, 3)
	now := time.Now()
	first, err := a.meshJSON(now)
	if err != nil {
		t.Fatal(err)
	}
	same := func(x, y []byte) bool { return len(x) > 0 && &x[0] == &y[0] }
	if again, _ := a.meshJSON(now.Add(time.Hour)); !same(first, again) {
		t.Error("computed again though the map did not change")
	}
	a.view.Apply(&Part{Node: "b", Path: "direct", Coord: coord(0.001, 0), Links: []Link{{Peer: "a", RTT: 99, Cost: 100}}}, now)
	if soon, _ := a.meshJSON(now.Add(MeshAnswerAge / 2)); !same(first, soon) {
		t.Error("computed again within MeshAnswerAge")
	}
	later, _ := a.meshJSON(now.Add(MeshAnswerAge))
	if same(first, later) || !bytes.Contains(later, []byte(`"r":99`)) {
		t.Errorf("not computed again after MeshAnswerAge with the map changed: %s", later)
	}
	resp, err := http.Get("http://" + addr + "/api/v1/mesh")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"node":"a"`)) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/api/v1/mesh: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

// BenchmarkMeshAnswer is /api/v1/mesh of a full mesh of n nodes, one value
// per link, computed afresh each time (the map changes between requests).
func BenchmarkMeshAnswer(b *testing.B) {
	for _, n := range []int{100, 300} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			a := newTestAgent(b)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("n%03d", i)
				a.view.setMember(names[i], member{alive: true})
			}
			now := time.Now()
			for i, node := range names {
				links := make([]Link, 0, n)
				for j, p := range names {
					if p != node {
						links = append(links, Link{Peer: p, RTT: float64(5 + (i*j)%50), Cost: 100})
					}
				}
				a.view.Apply(&Part{Node: node, Path: "direct", Coord: coord(0, 0), Links: links}, now)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a.answer.body = nil // as if the map had changed
				if _, err := a.meshJSON(now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
