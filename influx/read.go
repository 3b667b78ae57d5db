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

// Limits of Read: what a broken or hostile server can make it hold, and
// how long it may take. The answer is decoded as it arrives, a value at a
// time, so what Read holds is the records it keeps (at most
// MaxReadRecords), never the answer.
const (
	MaxReadBytes   = 2 << 30 // MaxReadRecords of about 300 bytes, and room
	MaxReadRecords = 5_000_000
	// DefaultReadTimeout bounds a Read whose Config says nothing: 5
	// million records over a slow link, not a server that trickles.
	DefaultReadTimeout = 5 * time.Minute
	maxColumns         = 1000
)

// Read returns the records of measurement cfg.Measurement (default "abing")
// at or after since, oldest first, from the InfluxQL query endpoint
// (/query), which InfluxDB 1.8 serves, and 2.x for a bucket mapped to a
// database and retention policy. It returns what a record keeps there
// (Lines): tags target, node, path, direction and labels, and the fields;
// not the address. Every record is checked as records promise (Sanitize).
// Only URL, Bucket, Token, Measurement and ReadTimeout of cfg are used.
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
	timeout := cfg.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if user, pass, ok := strings.Cut(cfg.Token, ":"); ok {
		req.SetBasicAuth(user, pass)
	} else if cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+cfg.Token)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb %s: %w", redact.URL(cfg.URL), redact.Error(err, cfg.Token))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("influxdb %s: %s: %s", redact.URL(cfg.URL), resp.Status, strings.TrimSpace(string(b)))
	}
	var recs []record.Record
	dec := json.NewDecoder(io.LimitReader(resp.Body, MaxReadBytes))
	dec.UseNumber()
	err = decodeAnswer(dec, func(cols []string, row []any) error {
		if len(recs) >= MaxReadRecords {
			return fmt.Errorf("more than %d records since %s: read a shorter window", MaxReadRecords, since.Format(time.RFC3339))
		}
		rec, err := fromRow(cols, row)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (no whole answer within %v)", err, timeout)
		}
		return nil, fmt.Errorf("influxdb %s: %w", redact.URL(cfg.URL), err)
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

// decodeAnswer walks an InfluxQL answer ({"results":[{"series":[{"columns":
// [...],"values":[[...],...]}],"error":"..."}]}) as it arrives and calls
// row for each row of values, after its series' columns. A result's error
// is returned; anything else is skipped, a token at a time.
func decodeAnswer(dec *json.Decoder, row func(cols []string, row []any) error) error {
	return object(dec, func(key string) error {
		if key != "results" {
			return skip(dec)
		}
		return array(dec, func() error {
			return object(dec, func(key string) error {
				switch key {
				case "error":
					var msg string
					if err := dec.Decode(&msg); err != nil {
						return fmt.Errorf("answer: %w", err)
					}
					return errors.New(msg)
				case "series":
					return array(dec, func() error { return series(dec, row) })
				}
				return skip(dec)
			})
		})
	})
}

// series decodes one series, its rows a value at a time.
func series(dec *json.Decoder, row func(cols []string, row []any) error) error {
	var cols []string
	return object(dec, func(key string) error {
		switch key {
		case "columns":
			return array(dec, func() error {
				var c string
				if err := dec.Decode(&c); err != nil {
					return fmt.Errorf("answer: column: %w", err)
				}
				if len(cols) == maxColumns {
					return fmt.Errorf("answer: more than %d columns", maxColumns)
				}
				cols = append(cols, c)
				return nil
			})
		case "values":
			if cols == nil {
				return errors.New("answer: values before columns")
			}
			return array(dec, func() error {
				vals := make([]any, 0, len(cols))
				err := array(dec, func() error {
					t, err := dec.Token()
					if err != nil {
						return fmt.Errorf("answer: %w", err)
					}
					if _, delim := t.(json.Delim); delim {
						return errors.New("answer: a value that is not a number, string, boolean or null")
					}
					if len(vals) == len(cols) {
						return fmt.Errorf("answer: a row of more than %d values", len(cols))
					}
					vals = append(vals, t)
					return nil
				})
				if err != nil {
					return err
				}
				return row(cols, vals)
			})
		}
		return skip(dec)
	})
}

// object reads a JSON object, calling field with each key with the
// decoder at its value (which field must consume).
func object(dec *json.Decoder, field func(key string) error) error {
	if err := expect(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		key, _ := t.(string)
		if err := field(key); err != nil {
			return err
		}
	}
	return expect(dec, '}')
}

// array reads a JSON array, calling elem with the decoder at each element.
func array(dec *json.Decoder, elem func() error) error {
	if err := expect(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	return expect(dec, ']')
}

func expect(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if t != d {
		return fmt.Errorf("answer: %v where %v was expected", t, d)
	}
	return nil
}

// skip consumes one value, token by token (nothing of it is kept).
func skip(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
