package webapi

import (
	"bytes"
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

// Bounds of a Client's requests. Lists are decoded an element at a time
// and refused beyond maxItems elements, an answer beyond maxAnswer bytes;
// neither is truncated. What a client holds is then bounded by what it
// keeps: a list of empty objects ("[{},{},...]") no longer makes it hold
// hundreds of times its bytes. A history is at most 2 × 5,000 buckets of
// about 300 bytes; the alarms of a year of a large monitor, or its
// targets, are some tens of thousands.
const (
	clientTimeout = 30 * time.Second
	maxAnswer     = 64 << 20
	maxItems      = 100_000
	maxBuckets    = 2 * 5000
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
	out, err := getList[Target](ctx, c, "/api/v1/targets", nil, maxItems)
	if err != nil {
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
	err := c.get(ctx, "/api/v1/history", q, func(dec *json.Decoder) error {
		var raw struct {
			History
			Buckets json.RawMessage `json:"buckets"`
		}
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		h = raw.History
		if len(raw.Buckets) == 0 || string(raw.Buckets) == "null" {
			return nil
		}
		var err error
		h.Buckets, err = decodeList[Bucket](json.NewDecoder(bytes.NewReader(raw.Buckets)), maxBuckets)
		return err
	})
	if err != nil {
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
	return getList[record.Alarm](ctx, c, "/api/v1/alarms", q, maxItems)
}

// getList is the JSON list answered at path, at most max elements.
func getList[T any](ctx context.Context, c *Client, path string, q url.Values, max int) ([]T, error) {
	var out []T
	err := c.get(ctx, path, q, func(dec *json.Decoder) error {
		var err error
		out, err = decodeList[T](dec, max)
		return err
	})
	return out, err
}

// decodeList decodes a JSON list (or null) an element at a time, at most
// max of them.
func decodeList[T any](dec *json.Decoder, max int) ([]T, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	if t != json.Delim('[') {
		return nil, fmt.Errorf("%v where a list was expected", t)
	}
	var out []T
	for dec.More() {
		if len(out) == max {
			return nil, fmt.Errorf("more than %d elements", max)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	_, err = dec.Token() // ]
	return out, err
}

// get decodes the JSON answer of path with decode; an answer that is not
// 200 is an error with the server's reason.
func (c *Client) get(ctx context.Context, path string, q url.Values, decode func(*json.Decoder) error) error {
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
	if err := decode(json.NewDecoder(lr)); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("api %s%s: more than %d bytes", c, path, maxAnswer)
		}
		return fmt.Errorf("api %s%s: %w", c, path, err)
	}
	return nil
}
