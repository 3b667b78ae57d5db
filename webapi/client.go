package webapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/abing-net/abing/record"
)

// Bounds of a Client's requests: an answer beyond maxAnswer is refused,
// not truncated (30 days of 5,000 buckets is about 3 MB; the alarms of a
// year of a large monitor some tens).
const (
	clientTimeout = 30 * time.Second
	maxAnswer     = 256 << 20
)

// Client reads the API of a monitor or a mesh agent: what abing history
// and abing alarms read with --api.
type Client struct {
	base url.URL
	http *http.Client
}

// NewClient is a client of the API at addr: HOST:PORT (http), or a URL
// with its scheme (http or https) and an optional path prefix, as a
// reverse proxy may add.
func NewClient(addr string) (*Client, error) {
	s := addr
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("api %q: want HOST:PORT or http(s)://HOST:PORT[/PREFIX], as the monitor's web listener", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: *u, http: &http.Client{Timeout: clientTimeout}}, nil
}

func (c *Client) String() string { return c.base.String() }

// Targets is /api/v1/targets: every target and path, its last records and
// active alarms.
func (c *Client) Targets(ctx context.Context) ([]Target, error) {
	var out []Target
	if err := c.get(ctx, "/api/v1/targets", nil, &out); err != nil {
		return nil, err
	}
	for i := range out {
		for _, r := range []*record.Record{out[i].Forward, out[i].Reverse} {
			if r != nil {
				r.Sanitize()
			}
		}
	}
	return out, nil
}

// History is /api/v1/history: one path's series over since (0: the API's
// default), in points buckets (0: its default).
func (c *Client) History(ctx context.Context, target, path string, since time.Duration, points int) (*History, error) {
	q := url.Values{"target": {target}}
	if path != "" {
		q.Set("path", path)
	}
	if since > 0 {
		q.Set("since", since.String())
	}
	if points > 0 {
		q.Set("points", strconv.Itoa(points))
	}
	var h History
	if err := c.get(ctx, "/api/v1/history", q, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Alarms is /api/v1/alarms: the alarms of target ("": all) active at some
// time within since (0: the API's default).
func (c *Client) Alarms(ctx context.Context, target string, since time.Duration) ([]record.Alarm, error) {
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	if since > 0 {
		q.Set("since", since.String())
	}
	var out []record.Alarm
	if err := c.get(ctx, "/api/v1/alarms", q, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// get decodes the JSON answer of path into v; an answer that is not 200
// is an error with the server's reason.
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	u := c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("api %s: %w", c, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: %w", c, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		reason := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
		if resp.StatusCode == http.StatusNotFound {
			reason = "no API there (the API is served where the store is on: not with store: {disabled: true})"
		}
		return fmt.Errorf("api %s%s: %s: %s", c, path, resp.Status, reason)
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxAnswer + 1}
	if err := json.NewDecoder(lr).Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("api %s%s: more than %d bytes", c, path, maxAnswer)
		}
		return fmt.Errorf("api %s%s: %w", c, path, err)
	}
	return nil
}
