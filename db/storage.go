package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Storage is what the storage page and /metrics show about the database.
type Storage struct {
	FileBytes int64 // the database file
	WALBytes  int64 // its write-ahead log
	UsedBytes int64 // pages holding data
	FreeBytes int64 // freed pages SQLite reuses before the file grows
	Levels    []StorageLevel
	MaxBytes  int64 // the size cap, 0 for none
	Backfill  BackfillProgress
}

// StorageLevel is one resolution's share.
type StorageLevel struct {
	Res      Resolution
	Rows     int64         // maintained as rows are written and deleted
	OldestMS int64         // the oldest row's time; meaningful only with Rows > 0
	Keep     time.Duration // retention, 0: forever
}

// Storage reports the database's size, rows and oldest data per resolution,
// retention and backfill progress. It counts nothing: row counts are
// maintained by the writes themselves, the oldest time is one index seek per
// tag, and sizes come from the file and SQLite's page counts, so it is cheap
// enough for every page load and scrape.
func (s *Store) Storage(ctx context.Context) (Storage, error) {
	var st Storage
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		st.WALBytes = fi.Size()
	}
	var pages, free, size int64
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM pragma_freelist_count),
		(SELECT page_size FROM pragma_page_size)`).Scan(&pages, &free, &size)
	if err != nil {
		return Storage{}, fmt.Errorf("db: storage: pages: %w", err)
	}
	st.UsedBytes, st.FreeBytes = (pages-free)*size, free*size

	keep := map[string]int64{}
	rows, err := s.r.QueryContext(ctx, `SELECT key, value FROM settings WHERE key IN (?, ?, ?, ?)`,
		keyKeepRaw, keyKeepMinute, keyKeepHour, keyMaxBytes)
	if err != nil {
		return Storage{}, fmt.Errorf("db: storage: retention: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return Storage{}, fmt.Errorf("db: storage: retention: %w", err)
		}
		keep[k], _ = strconv.ParseInt(v, 10, 64)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Storage{}, fmt.Errorf("db: storage: retention: %w", err)
	}
	st.MaxBytes = keep[keyMaxBytes]
	keys := map[Resolution]string{ResRaw: keyKeepRaw, Res1m: keyKeepMinute, Res1h: keyKeepHour}
	for _, res := range Resolutions {
		l := StorageLevel{Res: res, Keep: time.Duration(keep[keys[res]]) * time.Millisecond}
		if err := s.r.QueryRowContext(ctx, `SELECT rows FROM storage_counts WHERE resolution = ?`, string(res)).Scan(&l.Rows); err != nil {
			return Storage{}, fmt.Errorf("db: storage: rows of %s: %w", res, err)
		}
		if l.OldestMS, _, err = s.oldest(ctx, res); err != nil {
			return Storage{}, err
		}
		st.Levels = append(st.Levels, l)
	}
	if st.Backfill, err = s.Backfill(ctx); err != nil {
		return Storage{}, err
	}
	return st, nil
}

// oldest is the time of res's oldest row: the smallest of each tag's first
// row, one primary-key seek per tag rather than a scan of the table.
func (s *Store) oldest(ctx context.Context, res Resolution) (int64, bool, error) {
	col := "bucket_ms"
	if res == ResRaw {
		col = "ts_ms"
	}
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MIN((SELECT MIN(`+col+`) FROM `+res.table()+` x WHERE x.tag_id = t.id)) FROM tags t`).Scan(&v)
	if err != nil {
		return 0, false, fmt.Errorf("db: storage: oldest %s: %w", res, err)
	}
	return v.Int64, v.Valid, nil
}

// usedBytes is the size of the pages holding data: what a size cap limits.
// Freed pages are reused before the file grows, so this, not the file's
// size, is what deleting brings down.
func (s *Store) usedBytes(ctx context.Context) (int64, error) {
	var used int64
	err := s.r.QueryRowContext(ctx, `SELECT ((SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count))
		* (SELECT page_size FROM pragma_page_size)`).Scan(&used)
	if err != nil {
		return 0, fmt.Errorf("db: storage: used bytes: %w", err)
	}
	return used, nil
}

// storageMaxAge is how long a scrape reuses the storage figures of the one
// before: finding each resolution's oldest row seeks every tag's first row
// (three thousand seeks for a thousand tags), which a monitor scraping
// /metrics every second, or a load test polling it, must not pay each time.
// The figures move by retention steps and growth, slowly next to this.
const storageMaxAge = 5 * time.Second

// StorageCollector exports Storage as Prometheus gauges at every scrape.
type StorageCollector struct {
	s                                      *Store
	size, used, free, rows, oldest, filled *prometheus.Desc
	backfill, keep, maxBytes               *prometheus.Desc

	mu   sync.Mutex
	last Storage
	at   time.Time
}

// storage returns figures at most storageMaxAge old.
func (c *StorageCollector) storage(ctx context.Context) (Storage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < storageMaxAge {
		return c.last, nil
	}
	st, err := c.s.Storage(ctx)
	if err != nil {
		return st, err
	}
	c.last, c.at = st, time.Now()
	return st, nil
}

// NewStorageCollector makes the collector; register it with the registry
// that /metrics serves.
func NewStorageCollector(s *Store) *StorageCollector {
	res := []string{"resolution"}
	return &StorageCollector{
		s:        s,
		size:     prometheus.NewDesc("andon_db_file_bytes", "Size of the database file and its write-ahead log.", []string{"file"}, nil),
		used:     prometheus.NewDesc("andon_db_used_bytes", "Bytes of database pages holding data.", nil, nil),
		free:     prometheus.NewDesc("andon_db_free_bytes", "Bytes of freed database pages, reused before the file grows.", nil, nil),
		rows:     prometheus.NewDesc("andon_db_rows", "Rows of history per resolution (maintained, not counted).", res, nil),
		oldest:   prometheus.NewDesc("andon_db_oldest_timestamp_seconds", "Time of the oldest row per resolution.", res, nil),
		keep:     prometheus.NewDesc("andon_db_retention_seconds", "How long each resolution is kept (0: forever).", res, nil),
		maxBytes: prometheus.NewDesc("andon_db_max_bytes", "The database size cap (0: none).", nil, nil),
		backfill: prometheus.NewDesc("andon_rollup_backfill_done", "1 when the rollups of readings older than the rollup tables are built.", nil, nil),
		filled:   prometheus.NewDesc("andon_rollup_backfill_readings", "Readings the rollup backfill has rolled up.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StorageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.used, c.free, c.rows, c.oldest, c.keep, c.maxBytes, c.backfill, c.filled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed read exports nothing
// rather than zeros that would look like an empty database.
func (c *StorageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.storage(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.s.log.Warn("metrics: storage", "err", err)
		}
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.size, float64(st.FileBytes), "db")
	gauge(c.size, float64(st.WALBytes), "wal")
	gauge(c.used, float64(st.UsedBytes))
	gauge(c.free, float64(st.FreeBytes))
	gauge(c.maxBytes, float64(st.MaxBytes))
	for _, l := range st.Levels {
		gauge(c.rows, float64(l.Rows), string(l.Res))
		gauge(c.keep, l.Keep.Seconds(), string(l.Res))
		if l.Rows > 0 {
			gauge(c.oldest, float64(l.OldestMS)/1000, string(l.Res))
		}
	}
	done := 0.0
	if st.Backfill.Done {
		done = 1
	}
	gauge(c.backfill, done)
	gauge(c.filled, float64(st.Backfill.Readings))
}
