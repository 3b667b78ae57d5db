// Package source reads stored records and alarms from wherever abing keeps
// them: the embedded store (--db), a monitor's or mesh agent's API (--api),
// a mesh agent's map (--agent), a shared InfluxDB (--influx) or a file of
// records (--input). Flags binds the one set of flags that every reading
// command shares and opens the source they name; each command offers the
// kinds that make sense for it.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/abing-net/abing/influx"
	"github.com/abing-net/abing/meshagent"
	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/store"
	"github.com/abing-net/abing/webapi"
)

// Source is a place records and alarms are read from.
type Source interface {
	// Records calls each for every record that f matches, oldest first
	// where the source keeps an order; it stops at each's first error.
	Records(ctx context.Context, f Filter, each func(*record.Record) error) error
	// Alarms calls each for every alarm active at some time within f.
	Alarms(ctx context.Context, f Filter, each func(*record.Alarm) error) error
	Close() error
}

// Filter says what to read: one target's (by name, address or
// name/path; "" is every target's), newer than Since (0: all).
type Filter struct {
	Target string
	Since  time.Duration
}

// since is the time Since reaches back to; zero for all.
func (f Filter) since() time.Time {
	if f.Since <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-f.Since)
}

// match says whether r is one f wants, for the sources that cannot filter
// themselves.
func (f Filter) match(r *record.Record, since time.Time) bool {
	if r.Time.Before(since) {
		return false
	}
	return f.Target == "" || r.Target == f.Target || r.Address == f.Target || r.Key() == f.Target
}

// Kind is a kind of source, as its flag names it.
type Kind int

// The kinds of source.
const (
	DB     Kind = iota // --db: the embedded store (always offered)
	API                // --api: a monitor's or agent's JSON API
	Agent              // --agent: a mesh agent's records of its map
	Influx             // --influx and --bucket: a shared InfluxDB
	Input              // --input: a file of records (abing history --output csv or json)
)

// Flags are the flags of a reading command.
type Flags struct {
	DB, API, Agent, Influx, Bucket, Input string
	Since                                 time.Duration
	fs                                    *pflag.FlagSet
}

// Bind adds --db, --since (with its default) and the flags of the kinds
// given to fs.
func (f *Flags) Bind(fs *pflag.FlagSet, since time.Duration, kinds ...Kind) {
	f.fs = fs
	fs.StringVar(&f.DB, "db", store.DefaultPath(), "embedded database to read")
	fs.DurationVar(&f.Since, "since", since, "only what is newer than this (0: all)")
	for _, k := range kinds {
		switch k {
		case API:
			fs.StringVar(&f.API, "api", "", "read a monitor's or agent's API instead (HOST:PORT of its web listener, or a URL)")
		case Agent:
			fs.StringVar(&f.Agent, "agent", "", "read the full map of a mesh agent instead: its web listener, e.g. 127.0.0.1:9817")
		case Influx:
			fs.StringVar(&f.Influx, "influx", "", "read the records from this InfluxDB instead (every node's monitor writing there); token or user:password in $ABING_INFLUX_TOKEN")
			fs.StringVar(&f.Bucket, "bucket", "abing/autogen", "with --influx: the bucket (1.8: database/retention-policy)")
		case Input:
			fs.StringVar(&f.Input, "input", "", "records to read instead of the database: abing history --output csv or json")
		}
	}
}

// Filter is the filter of a command's optional TARGET and --since.
func (f *Flags) Filter(args []string) (Filter, error) {
	if f.Since < 0 {
		return Filter{}, fmt.Errorf("--since %v: must not be negative", f.Since)
	}
	out := Filter{Since: f.Since}
	if len(args) > 0 {
		out.Target = args[0]
	}
	return out, nil
}

// named is the flag of each source given other than --db.
func (f *Flags) named() []string {
	var out []string
	for _, n := range []struct {
		flag, v string
	}{{"--api", f.API}, {"--agent", f.Agent}, {"--influx", f.Influx}, {"--input", f.Input}} {
		if n.v != "" {
			out = append(out, n.flag)
		}
	}
	return out
}

// Open opens the one source the flags name: the store unless another is
// given. Two, or --db with another, is an error.
func (f *Flags) Open() (Source, error) {
	named := f.named()
	if len(named) > 1 {
		return nil, fmt.Errorf("%s: give one source", named)
	}
	if len(named) == 1 && f.fs != nil && f.fs.Changed("db") {
		return nil, fmt.Errorf("--db and %s: give one or the other", named[0])
	}
	switch {
	case f.API != "":
		c, err := f.Client()
		if err != nil {
			return nil, err
		}
		return apiSource{c: c}, nil
	case f.Agent != "":
		c, err := webapi.NewClient(f.Agent)
		if err != nil {
			return nil, err
		}
		return agentSource{addr: f.Agent, api: apiSource{c: c}}, nil
	case f.Influx != "":
		return influxSource{cfg: influx.Config{URL: f.Influx, Bucket: f.Bucket, Token: os.Getenv("ABING_INFLUX_TOKEN")}}, nil
	case f.Input != "":
		return fileSource{path: f.Input}, nil
	}
	s, err := store.Open(f.DB)
	if err != nil {
		return nil, err
	}
	return storeSource{s}, nil
}

// Client is the client of --api, for what only the API answers (the last
// results of every path, a path's downsampled history).
func (f *Flags) Client() (*webapi.Client, error) {
	if f.fs != nil && f.fs.Changed("db") {
		return nil, errors.New("--db and --api: give one or the other")
	}
	if f.Since > webapi.MaxSince {
		return nil, fmt.Errorf("--since %v: the API answers at most %v", f.Since, webapi.MaxSince)
	}
	return webapi.NewClient(f.API)
}

// ErrNotKept says that a source does not keep what was asked of it.
var ErrNotKept = errors.New("not kept there")

type storeSource struct{ s *store.Store }

func (s storeSource) Records(ctx context.Context, f Filter, each func(*record.Record) error) error {
	return s.s.Query(ctx, store.Filter{Target: f.Target, Since: f.since()}, each)
}

func (s storeSource) Alarms(ctx context.Context, f Filter, each func(*record.Alarm) error) error {
	return s.s.Alarms(ctx, store.Filter{Target: f.Target, Since: f.since()}, each)
}

func (s storeSource) Close() error { return s.s.Close() }

type apiSource struct{ c *webapi.Client }

func (s apiSource) Records(context.Context, Filter, func(*record.Record) error) error {
	return fmt.Errorf("records from %s: %w: a monitor's API serves the last results and downsampled history (abing history --api), a mesh agent's its records (--agent)", s.c, ErrNotKept)
}

func (s apiSource) Alarms(ctx context.Context, f Filter, each func(*record.Alarm) error) error {
	since := f.Since
	if since <= 0 {
		since = webapi.MaxSince // the API's longest window
	}
	as, err := s.c.Alarms(ctx, f.Target, since)
	if err != nil {
		return err
	}
	for i := range as {
		if err := each(&as[i]); err != nil {
			return err
		}
	}
	return nil
}

func (apiSource) Close() error { return nil }

// agentSource: the records of a mesh agent's map, and its alarms through
// the API on the same listener.
type agentSource struct {
	addr string
	api  apiSource
}

func (s agentSource) Records(ctx context.Context, f Filter, each func(*record.Record) error) error {
	recs, err := meshagent.FetchRecords(ctx, s.addr, f.Since)
	if err != nil {
		return err
	}
	return filtered(recs, f, each)
}

func (s agentSource) Alarms(ctx context.Context, f Filter, each func(*record.Alarm) error) error {
	return s.api.Alarms(ctx, f, each)
}

func (agentSource) Close() error { return nil }

type influxSource struct{ cfg influx.Config }

func (s influxSource) Records(ctx context.Context, f Filter, each func(*record.Record) error) error {
	recs, err := influx.Read(ctx, s.cfg, f.since())
	if err != nil {
		return err
	}
	return filtered(recs, f, each)
}

func (s influxSource) Alarms(context.Context, Filter, func(*record.Alarm) error) error {
	return fmt.Errorf("alarms from InfluxDB: %w (read them with --db or --api)", ErrNotKept)
}

func (influxSource) Close() error { return nil }

type fileSource struct{ path string }

func (s fileSource) Records(_ context.Context, f Filter, each func(*record.Record) error) error {
	file, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer file.Close()
	recs, err := record.Read(file)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return filtered(recs, f, each)
}

func (s fileSource) Alarms(context.Context, Filter, func(*record.Alarm) error) error {
	return fmt.Errorf("alarms from %s: %w: a file of records holds none", s.path, ErrNotKept)
}

func (fileSource) Close() error { return nil }

// filtered hands each the records f matches.
func filtered(recs []record.Record, f Filter, each func(*record.Record) error) error {
	since := f.since()
	for i := range recs {
		if f.match(&recs[i], since) {
			if err := each(&recs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// All reads every record f matches from src.
func All(ctx context.Context, src Source, f Filter) ([]record.Record, error) {
	var out []record.Record
	err := src.Records(ctx, f, func(r *record.Record) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}
