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
	address   TEXT NOT NULL DEFAULT ''   -- the address measured
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
	if _, err := tx.Exec(`CREATE INDEX IF NOT EXISTS results_address_time ON results (address, time_ns)`); err != nil {
		return err
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
		if _, err := tx.ExecContext(ctx, "INSERT INTO results (time_ns, target, address, direction, record) VALUES (?, ?, ?, ?, ?)",
			r.Time.UnixNano(), r.Target, r.Address, r.Direction, string(js)); err != nil {
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
