package meshagent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/abing-net/abing/record"
)

// Bounds of FetchRecords: a map of 1,000 nodes holds about 64 million
// values at most; an answer beyond maxBody is refused, not truncated.
const (
	fetchTimeout = 60 * time.Second
	maxBody      = 1 << 30
)

// FetchRecords reads the published links of an agent's map (its web
// listener's /api/v1/mesh/records) newer than since (0: all) as records:
// what abing mesh compare, relays and coords read with --agent.
func FetchRecords(ctx context.Context, addr string, since time.Duration) ([]record.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: addr, Path: "/api/v1/mesh/records"}
	if since > 0 {
		u.RawQuery = url.Values{"since": {since.String()}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("agent %s: %s: %s", addr, resp.Status, b)
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxBody + 1}
	recs, err := record.Read(lr)
	if lr.N <= 0 {
		return nil, fmt.Errorf("agent %s: more than %d bytes of records", addr, maxBody)
	}
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", addr, err)
	}
	return recs, nil
}
