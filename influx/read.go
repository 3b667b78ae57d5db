package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/redact"
)

// Limits of Read: what a broken or hostile server can make it hold.
const (
	MaxReadBytes   = 1 << 30
	MaxReadRecords = 5_000_000
)

// Read returns the records of measurement cfg.Measurement (default "abing")
// at or after since, oldest first, from the InfluxQL query endpoint
// (/query), which InfluxDB 1.8 serves, and 2.x for a bucket mapped to a
// database and retention policy. It returns what a record keeps there
// (Lines): tags target, node, path, direction and labels, and the fields;
// not the address. Every record is checked as records promise (Sanitize).
// Only URL, Bucket, Token and Measurement of cfg are used.
func Read(ctx context.Context, cfg Config, since time.Time) ([]record.Record, error) {
	if cfg.Measurement == "" {
		cfg.Measurement = "abing"
	}
	db, rp, _ := strings.Cut(cfg.Bucket, "/")
	if db == "" {
		return nil, errors.New("influxdb bucket missing (1.8: \"database/retention-policy\")")
	}
	from := fmt.Sprintf("%s.%s", quoteIdent(db), quoteIdent(cfg.Measurement))
	if rp != "" {
		from = fmt.Sprintf("%s.%s.%s", quoteIdent(db), quoteIdent(rp), quoteIdent(cfg.Measurement))
	}
	q := "SELECT * FROM " + from
	if !since.IsZero() { // the zero time has no UnixNano
		q += fmt.Sprintf(" WHERE time >= %d", since.UnixNano())
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/") + "/query")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("influxdb url %q: want http(s)://host:port", redact.URL(cfg.URL))
	}
	u.RawQuery = url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if user, pass, ok := strings.Cut(cfg.Token, ":"); ok {
		req.SetBasicAuth(user, pass)
	} else if cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb %s: %w", redact.URL(cfg.URL), redact.Error(err, cfg.Token))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("influxdb %s: %s: %s", redact.URL(cfg.URL), resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Results []struct {
			Series []struct {
				Columns []string
				Values  [][]any
			}
			Error string
		}
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, MaxReadBytes))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("influxdb %s: answer: %w", redact.URL(cfg.URL), err)
	}
	var recs []record.Record
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb %s: %s", redact.URL(cfg.URL), r.Error)
		}
		for _, s := range r.Series {
			for _, row := range s.Values {
				if len(recs) >= MaxReadRecords {
					return nil, fmt.Errorf("influxdb %s: more than %d records since %s: read a shorter window", redact.URL(cfg.URL), MaxReadRecords, since.Format(time.RFC3339))
				}
				rec, err := fromRow(s.Columns, row)
				if err != nil {
					return nil, fmt.Errorf("influxdb %s: %w", redact.URL(cfg.URL), err)
				}
				recs = append(recs, rec)
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b record.Record) int { return a.Time.Compare(b.Time) })
	return recs, nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// fromRow makes a record of one row of SELECT *: tags and string fields as
// strings, numbers as json.Number, absent values as null.
func fromRow(cols []string, row []any) (record.Record, error) {
	if len(row) != len(cols) {
		return record.Record{}, fmt.Errorf("row of %d values for %d columns", len(row), len(cols))
	}
	var rec record.Record
	var rtt record.RTT
	hasRTT := false
	for i, c := range cols {
		v := row[i]
		if v == nil {
			continue
		}
		if n, ok := v.(json.Number); ok {
			if c == "time" {
				ns, err := n.Int64()
				if err != nil {
					return rec, fmt.Errorf("time %q: %w", n, err)
				}
				rec.Time = time.Unix(0, ns).UTC()
				continue
			}
			f, err := n.Float64()
			if err != nil {
				return rec, fmt.Errorf("%s %q: %w", c, n, err)
			}
			if setNumber(&rec, &rtt, &hasRTT, c, f) {
				continue
			}
			switch c {
			case "pooled_runs":
				rec.PooledRuns = int(min(f, 1e6))
			case "loss":
				rec.Loss = f
			case "pairs_used":
				rec.PairsUsed = int(min(f, 1e6))
			case "ttl":
				ttl := int(min(f, 255))
				rec.TTL = &ttl
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			continue
		}
		switch c {
		case "target":
			rec.Target = s
		case "node":
			rec.Node = s
		case "path":
			rec.Path = s
		case "direction":
			rec.Direction = s
		case "error":
			rec.Error = s
		case "time":
			return rec, fmt.Errorf("time %q: want epoch nanoseconds", s)
		default:
			if rec.Labels == nil {
				rec.Labels = map[string]string{}
			}
			rec.Labels[c] = s
		}
	}
	if rec.Time.IsZero() || rec.Target == "" || (rec.Direction != "forward" && rec.Direction != "reverse") {
		return rec, fmt.Errorf("a point without time, target or direction (%v)", row)
	}
	if hasRTT {
		rec.RTT = &rtt
	}
	rec.Sanitize()
	return rec, nil
}

// setNumber sets the number of column c from the lists Lines writes by, and
// says whether c is one of them.
func setNumber(rec *record.Record, rtt *record.RTT, hasRTT *bool, c string, f float64) bool {
	for _, n := range numbers {
		if n.name == c {
			*n.of(rec) = &f
			return true
		}
	}
	for _, n := range rttNumbers {
		if n.name == c {
			*n.of(rtt), *hasRTT = f, true
			return true
		}
	}
	return false
}
