// Package store keeps measurement records in an embedded SQLite database
// (modernc.org/sqlite: pure Go, no cgo, and a file the sqlite3 shell opens).
//
// Each record is one row: indexed columns for time, target (its name),
// address and direction, and the record itself as JSON, in the names of
// `abing measure --output json`. Alarms have a table of their own: one row
// an episode, written when raised and rewritten when cleared. A target's
// results and alarms are found alike by its name or by its address. The
// database runs in WAL mode with synchronous=FULL, so a write
// that returned survives a crash of the process or of the machine, and a
// crash mid-write leaves earlier rows intact (SQLite's journal rolls the
// torn transaction back when the database is next opened).
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/abing-net/abing/record"
)

// Store is an open database.
type Store struct {
	db   *sql.DB
	path string
}

const schema = `
CREATE TABLE IF NOT EXISTS results (
	id        INTEGER PRIMARY KEY,
	time_ns   INTEGER NOT NULL,
	target    TEXT NOT NULL,             -- the target's name
	direction TEXT NOT NULL,
	record    TEXT NOT NULL,
	address   TEXT NOT NULL DEFAULT '',  -- the address measured
	-- The values a plot reads (Series), beside the JSON: reading them out
	-- of the JSON made a month of one-minute points take 0.7 s.
	path TEXT NOT NULL DEFAULT '',
	dbc REAL, abw REAL, abw_low REAL, abw_high REAL, xtr REAL, rtt REAL, loss REAL
);
CREATE INDEX IF NOT EXISTS results_target_time ON results (target, time_ns);
CREATE INDEX IF NOT EXISTS results_time ON results (time_ns);
CREATE TABLE IF NOT EXISTS alarms (
	id        INTEGER PRIMARY KEY,
	kind      TEXT NOT NULL,
	target    TEXT NOT NULL,             -- the target's name
	direction TEXT NOT NULL,
	start_ns  INTEGER NOT NULL,
	end_ns    INTEGER,
	alarm     TEXT NOT NULL,
	address   TEXT NOT NULL DEFAULT '',  -- the target's address
	UNIQUE (kind, target, direction, start_ns)
);
CREATE INDEX IF NOT EXISTS alarms_start ON alarms (start_ns);
-- The last record of each target, path and direction, and the last link
-- cost published: what an overview shows, without a scan of the results.
CREATE TABLE IF NOT EXISTS latest (
	target    TEXT NOT NULL,
	path      TEXT NOT NULL,
	direction TEXT NOT NULL,
	time_ns   INTEGER NOT NULL,
	record    TEXT NOT NULL,
	link_cost REAL,
	PRIMARY KEY (target, path, direction)
);
`

// migrate brings a database made by an earlier version up to date, in one
// transaction. Results were once keyed by the configured address (target)
// with the name beside it (a name column, or only in the JSON); now target
// is the name and address the address measured. Alarms lacked an address
// column. Each step fills what it adds from the JSON the rows hold.
func migrate(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	has := func(table, column string) (bool, error) {
		var n int
		err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n)
		return n > 0, err
	}
	steps := []struct {
		table, column string
		present       bool // run when the column is present (else when absent)
		queries       []string
	}{
		{"results", "address", false, []string{
			`ALTER TABLE results ADD COLUMN address TEXT NOT NULL DEFAULT ''`,
			`UPDATE results SET address = COALESCE(NULLIF(json_extract(record, '$.address'), ''), target),
				target = COALESCE(NULLIF(json_extract(record, '$.name'), ''), target)`,
		}},
		{"results", "name", true, []string{
			`DROP INDEX IF EXISTS results_name_time`,
			`ALTER TABLE results DROP COLUMN name`,
		}},
		{"results", "path", false, []string{
			`ALTER TABLE results ADD COLUMN path TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE results ADD COLUMN dbc REAL`, `ALTER TABLE results ADD COLUMN abw REAL`,
			`ALTER TABLE results ADD COLUMN abw_low REAL`, `ALTER TABLE results ADD COLUMN abw_high REAL`,
			`ALTER TABLE results ADD COLUMN xtr REAL`, `ALTER TABLE results ADD COLUMN rtt REAL`, `ALTER TABLE results ADD COLUMN loss REAL`,
			`UPDATE results SET path = COALESCE(json_extract(record, '$.path'), ''), dbc = json_extract(record, '$.dbc_mbps'),
				abw = json_extract(record, '$.abw_mbps'), abw_low = json_extract(record, '$.abw_low_mbps'),
				abw_high = json_extract(record, '$.abw_high_mbps'), xtr = json_extract(record, '$.xtr_mbps'),
				rtt = json_extract(record, '$.rtt_ms.avg'), loss = json_extract(record, '$.loss')`,
		}},
		{"alarms", "address", false, []string{
			`ALTER TABLE alarms ADD COLUMN address TEXT NOT NULL DEFAULT ''`,
			`UPDATE alarms SET address = COALESCE(json_extract(alarm, '$.address'), '')`,
		}},
	}
	for _, st := range steps {
		ok, err := has(st.table, st.column)
		if err != nil {
			return err
		}
		if ok != st.present {
			continue
		}
		for _, q := range st.queries {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("%s.%s: %w", st.table, st.column, err)
			}
		}
	}
	// A database from before the latest table: fill it once. Only then:
	// a reader that opens the store while a monitor writes (abing alarms,
	// abing history) must not need the write lock.
	var fill bool
	if err := tx.QueryRow(`SELECT NOT EXISTS (SELECT 1 FROM latest) AND EXISTS (SELECT 1 FROM results)`).Scan(&fill); err != nil {
		return err
	}
	if fill {
		for _, q := range []string{
			`INSERT OR IGNORE INTO latest (target, path, direction, time_ns, record)
				SELECT target, path, direction, max(time_ns), record FROM results GROUP BY target, path, direction`,
			`UPDATE latest SET link_cost = (SELECT json_extract(r.record, '$.link_cost') FROM results r
				WHERE r.target = latest.target AND r.path = latest.path AND json_extract(r.record, '$.link_cost') IS NOT NULL
				ORDER BY r.time_ns DESC LIMIT 1)`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("latest: %w", err)
			}
		}
	}
	for _, q := range []string{
		`CREATE INDEX IF NOT EXISTS results_address_time ON results (address, time_ns)`,
		// Covers Series: a plot's points come from the index alone, not
		// from rows that carry the JSON too.
		`CREATE INDEX IF NOT EXISTS results_series ON results (target, path, time_ns, direction, dbc, abw, abw_low, abw_high, xtr, rtt, loss)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// DefaultPath is where the monitor keeps its database unless told: under
// $XDG_STATE_HOME (or ~/.local/state), or /var/lib/abing for root.
func DefaultPath() string {
	if os.Geteuid() == 0 {
		return "/var/lib/abing/abing.db"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "abing", "abing.db")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "abing", "abing.db")
	}
	return "abing.db"
}

// Open opens or creates the database at path, and its directory.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: migrating: %w", path, err)
	}
	var ok string
	if err := db.QueryRow("PRAGMA quick_check").Scan(&ok); err != nil || ok != "ok" {
		db.Close()
		return nil, fmt.Errorf("store %s: integrity check: %q %v", path, ok, err)
	}
	return &Store{db: db, path: path}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Name is the store's name in the monitor's logs and health.
func (s *Store) Name() string { return "store" }

// Write stores records in one transaction: all or none.
func (s *Store) Write(ctx context.Context, recs []record.Record) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	for i := range recs {
		r := &recs[i]
		if r.Time.IsZero() {
			return fmt.Errorf("store: record of %s without a time", r.Target)
		}
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var rtt *float64
		if r.RTT != nil {
			rtt = &r.RTT.Avg
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO results (time_ns, target, address, direction, record, path, dbc, abw, abw_low, abw_high, xtr, rtt, loss)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Time.UnixNano(), r.Target, r.Address, r.Direction, string(js), r.Path, r.DBC, r.ABW, r.ABWLow, r.ABWHigh, r.XTR, rtt, r.Loss); err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO latest (target, path, direction, time_ns, record, link_cost) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (target, path, direction) DO UPDATE SET
				time_ns = max(time_ns, excluded.time_ns),
				record = CASE WHEN excluded.time_ns >= time_ns THEN excluded.record ELSE record END,
				link_cost = COALESCE(CASE WHEN excluded.time_ns >= time_ns THEN excluded.link_cost END, link_cost)`,
			r.Target, r.Path, r.Direction, r.Time.UnixNano(), string(js), r.LinkCost); err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil
}

// Filter selects records: Target "" means all; zero Since means all time.
type Filter struct {
	Target string // a target's name or address (either finds it)
	Since  time.Time
}

// Query returns the matching records, oldest first, to fn; it stops at the
// first error fn returns.
func (s *Store) Query(ctx context.Context, f Filter, fn func(*record.Record) error) error {
	q, args := "SELECT record FROM results WHERE time_ns >= ?", []any{f.sinceNs()}
	if f.Target != "" {
		q += " AND (target = ? OR address = ?)"
		args = append(args, f.Target, f.Target)
	}
	return each(ctx, s, "row", q+" ORDER BY time_ns, id", args, fn)
}

// sinceNs is Since in ns, or the earliest time there is when it is zero.
func (f Filter) sinceNs() int64 {
	if f.Since.IsZero() {
		return -1 << 63
	}
	return f.Since.UnixNano()
}

// each runs a query whose rows are one JSON column and hands each row,
// decoded into a T, to fn; it stops at the first error fn returns. what
// names a row in errors.
func each[T any](ctx context.Context, s *Store, what, q string, args []any, fn func(*T) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var js string
		if err := rows.Scan(&js); err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
		var v T
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			return fmt.Errorf("store %s: %s %q: %w", s.path, what, js, err)
		}
		if err := fn(&v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Prune deletes records older than before, and alarms that ended before
// it, and returns how many records.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM results WHERE time_ns < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", s.path, err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM alarms WHERE end_ns < ?", before.UnixNano()); err != nil {
		return 0, fmt.Errorf("store %s: %w", s.path, err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM latest WHERE time_ns < ?", before.UnixNano()); err != nil {
		return 0, fmt.Errorf("store %s: %w", s.path, err)
	}
	return res.RowsAffected()
}

// WriteAlarm stores an alarm, or updates the stored one of the same
// episode (kind, target, direction, start).
func (s *Store) WriteAlarm(ctx context.Context, a *record.Alarm) error {
	js, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var end *int64
	if a.End != nil {
		e := a.End.UnixNano()
		end = &e
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO alarms (kind, target, address, direction, start_ns, end_ns, alarm) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, target, direction, start_ns) DO UPDATE SET end_ns = excluded.end_ns, alarm = excluded.alarm`,
		string(a.Kind), a.Target, a.Address, a.Direction, a.Start.UnixNano(), end, string(js))
	if err != nil {
		return fmt.Errorf("store %s: alarm: %w", s.path, err)
	}
	return nil
}

// Alarms returns, oldest first, the alarms of f.Target (all if empty; its
// name or its address) that were active at some time since f.Since: those
// still active, and those that ended after it.
func (s *Store) Alarms(ctx context.Context, f Filter, fn func(*record.Alarm) error) error {
	q, args := "SELECT alarm FROM alarms WHERE (end_ns IS NULL OR end_ns >= ?)", []any{f.sinceNs()}
	if f.Target != "" {
		q += " AND (target = ? OR address = ?)"
		args = append(args, f.Target, f.Target)
	}
	return each(ctx, s, "alarm", q+" ORDER BY start_ns, id", args, fn)
}

// Latest returns the last record of each target, path and direction, and
// the last link cost published for each target's path (by record.Key).
func (s *Store) Latest(ctx context.Context) ([]record.Record, map[string]float64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT record, link_cost FROM latest ORDER BY target, path, direction`)
	if err != nil {
		return nil, nil, fmt.Errorf("store %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []record.Record
	costs := map[string]float64{}
	for rows.Next() {
		var js string
		var cost sql.NullFloat64
		if err := rows.Scan(&js, &cost); err != nil {
			return nil, nil, fmt.Errorf("store %s: %w", s.path, err)
		}
		var r record.Record
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, nil, fmt.Errorf("store %s: latest %q: %w", s.path, js, err)
		}
		if cost.Valid {
			costs[r.Key()] = cost.Float64
		}
		out = append(out, r)
	}
	return out, costs, rows.Err()
}

// Point is one run's values of one direction as a plot wants them; an
// absent value is NaN.
type Point struct {
	Time                           time.Time
	Direction                      string
	DBC, ABW, ABWLow, ABWHigh, XTR float64 // Mbit/s
	RTT, Loss                      float64 // ms (mean), fraction
}

// SeriesFilter chooses one target's path.
type SeriesFilter struct {
	Target string // its name
	Path   string // "" for a target without paths
	Since  time.Time
}

// Series returns the points of one target's path since f.Since, oldest
// first, to fn. It reads the numbers out of the stored JSON inside SQLite
// rather than decoding each record, so that a month of one-minute results
// (86,400 points) comes back fast enough for a plot.
func (s *Store) Series(ctx context.Context, f SeriesFilter, fn func(Point) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT time_ns, direction, dbc, abw, abw_low, abw_high, xtr, rtt, loss
		FROM results WHERE target = ? AND path = ? AND time_ns >= ? ORDER BY time_ns`, f.Target, f.Path, Filter{Since: f.Since}.sinceNs())
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	defer rows.Close()
	// Scanned into interfaces, which modernc fills with its own values
	// (float64 or nil) without database/sql's conversions: a fifth less
	// time a row.
	var ns int64
	var dir string
	var v [7]any
	dst := []any{&ns, &dir, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
		p := Point{Time: time.Unix(0, ns).UTC(), Direction: dir}
		for i, out := range []*float64{&p.DBC, &p.ABW, &p.ABWLow, &p.ABWHigh, &p.XTR, &p.RTT, &p.Loss} {
			switch x := v[i].(type) {
			case float64:
				*out = x
			case int64: // a whole number stored by SQLite as an integer
				*out = float64(x)
			default:
				*out = math.NaN()
			}
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}
