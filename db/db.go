// Package db stores Andon's readings, asset tree and tags in one SQLite file.
//
// One Writer goroutine owns the single write connection and commits readings
// in batches (group commit); queries run on a separate read-only pool so that
// dashboards never wait behind ingestion.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	// The pure Go SQLite driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrClosed is returned by a Writer that no longer accepts readings because
// its Run has returned (or is shutting down).
var ErrClosed = errors.New("db: writer closed")

// readPoolSize is the number of read connections. Reads in WAL mode do not
// block the writer, so a few are enough for the dashboard and exports.
const readPoolSize = 4

// Options configure Open.
type Options struct {
	Synchronous string       // "NORMAL" (default) or "FULL"
	Logger      *slog.Logger // nil = discard
}

// Store is the SQLite database: a single-connection writer pool, used only by
// the Writer and migrations, and a read-only pool for queries.
type Store struct {
	w    *sql.DB // one connection, BEGIN IMMEDIATE
	r    *sql.DB // query_only pool
	path string
	log  *slog.Logger
}

// Open opens (creating if needed) the database at path, with its parent
// directory, and applies any migrations not yet applied.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	syncMode := strings.ToUpper(strings.TrimSpace(opt.Synchronous))
	switch syncMode {
	case "":
		syncMode = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, fmt.Errorf("db: open %s: synchronous must be NORMAL or FULL, not %q", path, opt.Synchronous)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}

	// The writer sets journal_mode(WAL), which is persistent in the file, so
	// it is opened and migrated before the read pool connects. A new file
	// gets 8 KiB pages, which must be set before WAL mode: readings arrive
	// for a thousand tags at once and land mid-table, leaving pages partly
	// empty, and larger pages waste less of themselves (measured with
	// BenchmarkStorage: 26.2 bytes a reading with 4 KiB pages, 25.8 with
	// 8 KiB). An existing file keeps its page size. The driver runs the
	// _pragma list sorted by name, so WAL mode comes from its own key, which
	// it applies after the list.
	w, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_journal_mode": {"WAL"},
		"_pragma": {
			"busy_timeout(5000)",
			"page_size(8192)",
			"synchronous(" + syncMode + ")",
			"foreign_keys(ON)",
			"temp_store(MEMORY)",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, path: abs, log: logger}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := s.seedReasons(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			"busy_timeout(5000)",
			"query_only(1)",
			"temp_store(MEMORY)",
		},
	}))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readPoolSize)
	r.SetMaxIdleConns(readPoolSize)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	s.r = r
	return s, nil
}

// dsn builds a SQLite URI for an absolute path. The path is escaped as a URL
// path so that '?', '#' or '%' in a directory name cannot be taken for
// parameters.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Close closes both pools. The Writer must have returned from Run first.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("db: close readers: %w", err))
		}
	}
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("db: close writer: %w", err))
	}
	return errors.Join(errs...)
}

// Ping checks that both pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("db: ping readers: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("db: ping writer: %w", err)
	}
	return nil
}

// Path is the absolute path of the database file.
func (s *Store) Path() string { return s.path }

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in order. Their names start
// with a four-digit number; the numbers must run 1, 2, 3 ... without gaps,
// because PRAGMA user_version records how many have been applied.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	sort.Strings(names)
	ms := make([]migration, 0, len(names))
	for i, name := range names {
		base := filepath.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migrations: %s: want a name starting %04d_", base, i+1)
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", base, err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms, nil
}

// migrate applies, forward only, every migration newer than the file's
// user_version, each in its own immediate transaction together with the
// user_version bump, so a crash leaves either all or none of a migration.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var current int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read user_version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("migrate: schema version %d is newer than this binary knows (%d)", current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := s.apply(ctx, m); err != nil {
			return err
		}
		s.log.Info("db migration applied", "version", m.version, "name", m.name)
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", m.name, err)
	}
	defer tx.Rollback()
	// Another process may have migrated between our read and our immediate
	// transaction; re-check under the write lock so nothing runs twice.
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("migrate %s: read user_version: %w", m.name, err)
	}
	if current >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, err)
	}
	// PRAGMA takes no bound parameters; the version is an integer we made.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
		return fmt.Errorf("migrate %s: set user_version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", m.name, err)
	}
	return nil
}
