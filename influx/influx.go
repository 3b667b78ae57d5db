// Package influx delivers measurement records to InfluxDB through
// influxdb-client-go's v2 write API (InfluxDB 2.x, or 1.8 with its v2
// compatibility endpoints: bucket "database/retention-policy", empty org).
//
// Every record becomes one point of measurement "abing" (configurable):
//
//	tags:   target, direction, node and path (when set), and the target's labels
//	fields: dbc_mbps, xtr_mbps, abw_mbps, rtt_min_ms, rtt_avg_ms, rtt_median_ms,
//	        rtt_max_ms, jitter_ms, jitter_rfc3550_ms, loss, ttl, pairs_used, confidence (absent when
//	        unknown), error (string, absent when none)
//	time:   the start of the measurement, ns
//
// Nothing is lost when InfluxDB is away: each batch is first written to a
// spool directory (one file a batch, written to a temporary name, synced
// and renamed, and the directory synced, so that a crash or a power cut
// leaves whole files only; unfinished *.tmp files are removed at start),
// and a sender goroutine
// delivers the files oldest first and deletes each only after InfluxDB
// accepted it. An outage is logged once when it starts and once when it
// ends. A point delivered twice (a crash between InfluxDB's answer and the
// delete) lands on the same series and timestamp and overwrites itself, so
// InfluxDB holds it once. A batch InfluxDB refuses for good (a 4xx answer
// about the batch itself: see refusedForGood) is moved to the spool's
// rejected/ folder, counted and logged, and newer batches keep flowing. The
// spool is bounded; when full, the oldest batch is dropped and logged.
package influx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/abing-net/abing/record"
	"github.com/abing-net/abing/redact"
)

// Config says where points go.
type Config struct {
	URL         string `yaml:"url"`         // e.g. http://127.0.0.1:8086
	Bucket      string `yaml:"bucket"`      // 2.x bucket, or 1.8 "database/retention-policy"
	Org         string `yaml:"org"`         // empty for 1.8
	Token       string `yaml:"token"`       // empty for 1.8 without auth, or "user:password"
	Measurement string `yaml:"measurement"` // "abing"
	// CreateDatabase: on InfluxDB 1.8, create the database of Bucket
	// (POST /query CREATE DATABASE) when a write says it does not exist.
	CreateDatabase bool   `yaml:"create_database"`
	Spool          string `yaml:"spool"`        // directory of undelivered batches
	SpoolMaxMB     int    `yaml:"spool_max_mb"` // 100
	// BlockedAfter: the sink reports itself unhealthy (the monitor's
	// /healthz) once nothing could be delivered for this long.
	BlockedAfter time.Duration `yaml:"unhealthy_after"` // 5m
	// ReadTimeout bounds Read, the whole answer (0: DefaultReadTimeout).
	// Not a setting of the sink: the readers (--influx) use the default.
	ReadTimeout time.Duration `yaml:"-"`
}

// Defaults are a Config's settings that have one: the measurement name,
// the spool's size and how long delivery may fail before the sink says it
// is unhealthy.
func Defaults() Config {
	return Config{Measurement: "abing", SpoolMaxMB: 100, BlockedAfter: DefaultBlockedAfter}
}

// Check fills in the Defaults of fields left empty, and checks c.
func (c *Config) Check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("influxdb url %q: want http(s)://host:port", c.URL)
	}
	if c.Bucket == "" {
		return errors.New("influxdb bucket missing (1.8: \"database/retention-policy\")")
	}
	d := Defaults()
	if c.Measurement == "" {
		c.Measurement = d.Measurement
	}
	if c.SpoolMaxMB == 0 {
		c.SpoolMaxMB = d.SpoolMaxMB
	}
	if c.SpoolMaxMB < 0 {
		return fmt.Errorf("influxdb spool_max_mb %d: must be positive", c.SpoolMaxMB)
	}
	if c.Spool == "" {
		return errors.New("influxdb spool directory missing")
	}
	if c.BlockedAfter == 0 {
		c.BlockedAfter = d.BlockedAfter
	}
	if c.BlockedAfter < 0 {
		return fmt.Errorf("influxdb unhealthy_after %v: must be positive", c.BlockedAfter)
	}
	return nil
}

// Sink delivers records to InfluxDB through a spool on disk.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	client influxdb2.Client
	write  api.WriteAPIBlocking

	mu       sync.Mutex // guards the spool's sequence and size
	seq      uint64
	rejected atomic.Uint64
	// downSince is when delivery started failing (Unix ns; 0: it works),
	// lastErr why, for Health.
	downSince atomic.Int64
	lastErr   atomic.Value
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
}

// Open starts a sink with a checked Config; undelivered batches of an
// earlier run are delivered first.
func Open(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := os.MkdirAll(cfg.Spool, 0o750); err != nil {
		return nil, fmt.Errorf("influxdb spool: %w", err)
	}
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, influxdb2.DefaultOptions().SetHTTPRequestTimeout(10))
	s := &Sink{cfg: cfg, log: log, client: client, write: client.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	// A crash between writing a batch and renaming it leaves a *.tmp:
	// never acknowledged to the monitor, so nothing to deliver.
	stale, _ := filepath.Glob(filepath.Join(cfg.Spool, "*.tmp"))
	for _, f := range stale {
		os.Remove(f)
	}
	if len(stale) > 0 {
		log.Info("influxdb: removed unfinished spool files of an earlier run", "files", len(stale))
	}
	files, err := s.spooled()
	if err != nil {
		return nil, err
	}
	if len(files) > 0 {
		fmt.Sscanf(filepath.Base(files[len(files)-1]), "%d", &s.seq)
		log.Info("influxdb: undelivered batches from an earlier run", "batches", len(files))
	}
	go s.sender()
	return s, nil
}

// Lines are the line-protocol lines of recs.
func Lines(measurement string, recs []record.Record) ([]string, error) {
	out := make([]string, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.Time.IsZero() {
			return nil, fmt.Errorf("influxdb: record of %s without a time", r.Target)
		}
		p := write.NewPointWithMeasurement(measurement).SetTime(r.Time).
			AddTag("target", r.Target).AddTag("direction", r.Direction)
		if r.Node != "" {
			p.AddTag("node", r.Node)
		}
		if r.Path != "" {
			p.AddTag("path", r.Path)
		}
		for k, v := range r.Labels {
			p.AddTag(k, v)
		}
		for _, n := range numbers {
			if v := *n.of(r); v != nil {
				p.AddField(n.name, *v)
			}
		}
		if r.PooledRuns > 0 {
			p.AddField("pooled_runs", int64(r.PooledRuns))
		}
		if r.RTT != nil {
			for _, n := range rttNumbers {
				p.AddField(n.name, *n.of(r.RTT))
			}
		}
		p.AddField("loss", r.Loss).AddField("pairs_used", int64(r.PairsUsed))
		if r.TTL != nil {
			p.AddField("ttl", int64(*r.TTL))
		}
		if r.Error != "" {
			p.AddField("error", r.Error)
		}
		out = append(out, strings.TrimSuffix(write.PointToLineProtocol(p, time.Nanosecond), "\n"))
	}
	return out, nil
}

// Write spools recs for delivery. It fails only if the spool cannot be
// Name is the sink's name in the monitor's logs and health.
func (s *Sink) Name() string { return "influxdb" }

// written.
func (s *Sink) Write(_ context.Context, recs []record.Record) error {
	lines, err := Lines(s.cfg.Measurement, recs)
	if err != nil {
		return err
	}
	return s.spool(lines)
}

// AlarmLine is an alarm as an event: one point of measurement
// MEASUREMENT_alarm ("abing_alarm") when raised, at its start, and one when
// cleared, at its end.
//
//	tags:   kind, target, direction, severity, status (firing|resolved)
//	fields: before, after (in unit), unit, summary, active (1|0),
//	        cleared (how it ended, on the resolved point),
//	        route_before, route_after (hop lists, when traced)
func AlarmLine(measurement string, a *record.Alarm) string {
	at := a.Start
	active := int64(1)
	if a.End != nil {
		at, active = *a.End, 0
	}
	p := write.NewPointWithMeasurement(measurement+"_alarm").SetTime(at).
		AddTag("kind", string(a.Kind)).AddTag("target", a.Target).AddTag("direction", a.Direction).
		AddTag("severity", a.Severity).AddTag("status", a.Status()).
		AddField("before", a.Before).AddField("after", a.After).AddField("unit", a.Unit).
		AddField("summary", a.Summary).AddField("active", active)
	if a.Cleared != "" {
		p.AddField("cleared", a.Cleared)
	}
	if a.Route != nil {
		p.AddField("route_before", a.Route.Before.String()).AddField("route_after", a.Route.After.String())
	}
	return strings.TrimSuffix(write.PointToLineProtocol(p, time.Nanosecond), "\n")
}

// WriteAlarm spools an alarm event for delivery.
func (s *Sink) WriteAlarm(_ context.Context, a *record.Alarm) error {
	return s.spool([]string{AlarmLine(s.cfg.Measurement, a)})
}

// spool writes lines as one batch file and wakes the sender. The file is
// written to a temporary name, synced, renamed, and the directory synced:
// once spool returns, the batch survives a crash or a power cut.
func (s *Sink) spool(lines []string) error {
	s.mu.Lock()
	s.seq++
	name := filepath.Join(s.cfg.Spool, fmt.Sprintf("%020d.lp", s.seq))
	s.mu.Unlock()
	if err := writeDurably(name, []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		return fmt.Errorf("influxdb spool: %w", err)
	}
	s.trim()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeDurably writes b to name through a synced temporary file and syncs
// the directory, so that a crash leaves either nothing or the whole file.
func writeDurably(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// spooled lists the spooled batches, oldest first.
func (s *Sink) spooled() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(s.cfg.Spool, "*.lp"))
	if err != nil {
		return nil, fmt.Errorf("influxdb spool: %w", err)
	}
	slices.Sort(files)
	return files, nil
}

// trim drops the oldest batches while the spool is over its size.
func (s *Sink) trim() {
	files, err := s.spooled()
	if err != nil {
		return
	}
	var total int64
	sizes := make([]int64, len(files))
	for i, f := range files {
		if st, err := os.Stat(f); err == nil {
			sizes[i] = st.Size()
			total += sizes[i]
		}
	}
	for i := 0; total > int64(s.cfg.SpoolMaxMB)<<20 && i < len(files)-1; i++ {
		os.Remove(files[i])
		total -= sizes[i]
		s.log.Error("influxdb spool full: dropped the oldest batch", "file", files[i], "spool_max_mb", s.cfg.SpoolMaxMB)
	}
}

// maxBatch bounds the lines sent in one request.
const maxBatch = 5000

// sender delivers the spool, oldest first, until Close.
func (s *Sink) sender() {
	defer close(s.done)
	backoff := time.Second
	down := false
	var downSince time.Time
	for {
		// Errors quote the URL, which may hold user:password; the token
		// is never meant to appear, but is taken out if it does.
		err := redact.Error(s.deliver(), s.cfg.URL, s.cfg.Token)
		switch {
		case err != nil && !down:
			down, downSince = true, time.Now()
			s.downSince.Store(downSince.UnixNano())
			s.log.Error("influxdb unreachable; results are spooled on disk and will be delivered", "url", redact.URL(s.cfg.URL), "err", err)
		case err == nil && down:
			down, backoff = false, time.Second
			s.downSince.Store(0)
			s.log.Info("influxdb reachable again; spool delivered", "url", redact.URL(s.cfg.URL), "outage", time.Since(downSince).Round(time.Second).String())
		}
		if err != nil {
			s.lastErr.Store(err.Error())
		}
		wait := time.Hour
		if err != nil {
			wait = backoff
			backoff = min(2*backoff, 30*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliver sends every spooled batch, in order, deleting each once
// InfluxDB accepted it.
func (s *Sink) deliver() error {
	for {
		files, err := s.spooled()
		if err != nil || len(files) == 0 {
			return err
		}
		var lines []string
		var sent []string
		for _, f := range files {
			ls, err := readBatch(f)
			if err != nil {
				return err
			}
			if ls == nil {
				continue // trimmed away meanwhile
			}
			if len(lines)+len(ls) > maxBatch && len(sent) > 0 {
				break
			}
			lines, sent = append(lines, ls...), append(sent, f)
		}
		err = s.send(lines)
		if refusedForGood(err) {
			// One batch InfluxDB will never take must not hold back
			// the newer ones: find it, and move it aside.
			if len(sent) == 1 {
				s.reject(sent[0], err)
				continue
			}
			for _, f := range sent {
				if err := s.deliverOne(f); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, f := range sent {
			os.Remove(f)
		}
	}
}

// deliverOne sends one batch file alone, moving it aside if InfluxDB
// refuses it for good.
func (s *Sink) deliverOne(f string) error {
	lines, err := readBatch(f)
	if err != nil || lines == nil {
		return err
	}
	err = s.send(lines)
	switch {
	case refusedForGood(err):
		s.reject(f, err)
		return nil
	case err != nil:
		return err
	}
	os.Remove(f)
	return nil
}

// readBatch reads the lines of a spooled batch; nil, nil when the file is
// gone (trimmed away meanwhile).
func readBatch(f string) ([]string, error) {
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("influxdb spool: %w", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// refusedForGood says whether InfluxDB refused a batch in a way that trying
// again cannot change: a 4xx answer about the batch itself (400 a line it
// cannot parse, 413 too large, 422 a field of another type than before).
// Not 401, 403 or 404 (a wrong token or a database not there yet: about
// the configuration, which a reload or an administrator fixes, and every
// batch would go), nor 408 and 429 (try later).
func refusedForGood(err error) bool {
	var he *ihttp.Error
	if !errors.As(err, &he) || he.StatusCode < 400 || he.StatusCode >= 500 {
		return false
	}
	switch he.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return true
}

// RejectedDir is the folder of the spool where batches InfluxDB refused for
// good are kept, for a person to look at.
const RejectedDir = "rejected"

// reject moves a batch InfluxDB refused for good out of the spool.
func (s *Sink) reject(f string, why error) {
	dir := filepath.Join(s.cfg.Spool, RejectedDir)
	dst := filepath.Join(dir, filepath.Base(f))
	err := os.MkdirAll(dir, 0o750)
	if err == nil {
		err = os.Rename(f, dst)
	}
	if err != nil {
		os.Remove(f) // cannot keep it: at least let the rest flow
		dst = "(removed: " + err.Error() + ")"
	}
	s.rejected.Add(1)
	s.log.Error("influxdb refused a batch for good; moved aside, newer results keep flowing", "file", dst, "err", redact.Error(why, s.cfg.URL, s.cfg.Token))
}

// DefaultBlockedAfter is how long the spool may go undelivered before
// Health says so.
const DefaultBlockedAfter = 5 * time.Minute

// Health says whether the spool is blocked: nothing delivered for
// Config.BlockedAfter, results piling up on disk.
func (s *Sink) Health() error {
	ns := s.downSince.Load()
	if ns == 0 || time.Since(time.Unix(0, ns)) < s.cfg.BlockedAfter {
		return nil
	}
	files, _ := s.spooled()
	err, _ := s.lastErr.Load().(string)
	return fmt.Errorf("influxdb: nothing delivered for %v, %d batches spooled: %s",
		time.Since(time.Unix(0, ns)).Round(time.Second), len(files), err)
}

// Rejected is the number of batches InfluxDB refused for good since Open.
func (s *Sink) Rejected() uint64 { return s.rejected.Load() }

func (s *Sink) send(lines []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.write.WriteRecord(ctx, lines...)
	if err != nil && s.cfg.CreateDatabase && strings.Contains(err.Error(), "database not found") {
		if cerr := s.createDatabase(ctx); cerr != nil {
			return fmt.Errorf("%w (and creating the database: %v)", err, cerr)
		}
		// InfluxDB 1.8 can still answer "database not found" for a moment
		// after CREATE DATABASE returned (a CI run saw it): retry for up
		// to two seconds before calling it an outage.
		for deadline := time.Now().Add(2 * time.Second); ; {
			err = s.write.WriteRecord(ctx, lines...)
			if err == nil || !strings.Contains(err.Error(), "database not found") || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return err
}

// createDatabase creates the database of the bucket on InfluxDB 1.8.
func (s *Sink) createDatabase(ctx context.Context) error {
	db, _, _ := strings.Cut(s.cfg.Bucket, "/")
	q := url.Values{"q": {fmt.Sprintf("CREATE DATABASE %q", db)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.URL, "/")+"/query", strings.NewReader(q.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+s.cfg.Token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("CREATE DATABASE %s: HTTP %s", db, resp.Status)
	}
	s.log.Info("influxdb: created database", "database", db)
	return nil
}

// Close tries to deliver what is spooled for up to flush, then stops.
// What is left stays in the spool for the next run.
func (s *Sink) Close(flush time.Duration) error {
	deadline := time.Now().Add(flush)
	for time.Now().Before(deadline) {
		if files, err := s.spooled(); err != nil || len(files) == 0 {
			break
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(s.stop)
	<-s.done
	s.client.Close()
	if files, _ := s.spooled(); len(files) > 0 {
		s.log.Warn("influxdb: batches left in the spool for the next run", "batches", len(files), "spool", s.cfg.Spool)
	}
	return nil
}
