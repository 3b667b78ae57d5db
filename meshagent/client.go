package meshagent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/abing-net/abing/record"
)

// Bounds of FetchRecords. A page is at most RecordsPage records (more is
// an error) of about 300 bytes each; maxPageBody leaves room for four
// times that. maxRecords bounds what it keeps: a map of 500 nodes that
// each measure 64 peers, with every link's 64 values, holds about 2
// million.
const (
	fetchTimeout = 60 * time.Second
	maxPageBody  = RecordsPage * 1200
	maxRecords   = 4_000_000
)

// FetchRecords reads the published links of an agent's map (its web
// listener's /api/v1/mesh/records, page by page) newer than since (0: all)
// as records: what abing mesh compare, relays and coords read with --agent.
// More than maxRecords is an error that says to narrow the window.
func FetchRecords(ctx context.Context, addr string, since time.Duration) ([]record.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	client := &http.Client{Timeout: fetchTimeout}
	var out []record.Record
	after := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(RecordsPage)}}
		if since > 0 {
			q.Set("since", since.String())
		}
		if after != "" {
			q.Set("after", after)
		}
		u := url.URL{Scheme: "http", Host: addr, Path: "/api/v1/mesh/records", RawQuery: q.Encode()}
		page, next, err := fetchPage(ctx, client, u.String())
		if err != nil {
			return nil, fmt.Errorf("agent %s: %w", addr, err)
		}
		if len(out)+len(page) > maxRecords {
			return nil, fmt.Errorf("agent %s: more than %d records: ask for fewer (--since)", addr, maxRecords)
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		if next == after || len(page) == 0 {
			return nil, fmt.Errorf("agent %s: its next page starts where this one did", addr)
		}
		after = next
	}
}

// fetchPage reads one page of records and the cursor of the next ("" for
// the last).
func fetchPage(ctx context.Context, client *http.Client, u string) ([]record.Record, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxPageBody + 1}
	recs, err := record.ReadJSONLinesMax(lr, RecordsPage)
	if lr.N <= 0 {
		return nil, "", fmt.Errorf("a page of more than %d bytes", maxPageBody)
	}
	if err != nil {
		return nil, "", err
	}
	return recs, resp.Header.Get(RecordsNext), nil
}
