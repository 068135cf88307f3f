package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// BackfillConfig configures RunBackfill. Zero values take the defaults.
type BackfillConfig struct {
	Logger       *slog.Logger     // nil = discard
	Now          func() time.Time // default time.Now
	StepReadings int              // readings rolled up per step at most, about (default 20,000)
	Pause        time.Duration    // between steps, so ingest has the writer most of the time (default 20 ms)
	LogEvery     time.Duration    // progress log interval (default 10 s)
}

// BackfillProgress is where the rollup backfill stands.
type BackfillProgress struct {
	Done      bool
	StartedMS int64 // 0 if it never ran (a database that had nothing to backfill)
	DoneMS    int64 // 0 while running or if there was nothing to do
	Tags      int   // tags that had readings before the rollups existed
	TagsDone  int
	Readings  int64 // readings rolled up so far
}

// Backfill reads the backfill's progress.
func (s *Store) Backfill(ctx context.Context) (BackfillProgress, error) {
	return backfillProgress(ctx, s.r)
}

// rowQueryer is the read pool or a transaction.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func backfillProgress(ctx context.Context, q rowQueryer) (BackfillProgress, error) {
	var (
		p               BackfillProgress
		started, doneMS sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `
		SELECT b.started_ms, b.done_ms, b.readings,
			(SELECT COUNT(*) FROM tags WHERE id <= b.last_tag),
			(SELECT COUNT(*) FROM tags WHERE id < b.next_tag AND id <= b.last_tag)
		FROM rollup_backfill b WHERE b.id = 1`).Scan(&started, &doneMS, &p.Readings, &p.Tags, &p.TagsDone)
	if err != nil {
		return BackfillProgress{}, fmt.Errorf("db: backfill progress: %w", err)
	}
	p.StartedMS, p.Done, p.DoneMS = started.Int64, doneMS.Valid, doneMS.Int64
	if p.Done {
		p.TagsDone = p.Tags
	}
	return p, nil
}

// RunBackfill builds the rollups of readings stored before the rollup
// tables existed, in small steps through w (each its own transaction,
// between ingest batches), and returns when it is done or ctx ends. Its
// place is kept in the database, so after a restart it resumes. A step that
// fails is logged and retried a little later; the backfill never stops the
// server.
func RunBackfill(ctx context.Context, w *Writer, cfg BackfillConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StepReadings <= 0 {
		cfg.StepReadings = 20_000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 20 * time.Millisecond
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	log := cfg.Logger
	p, err := w.s.Backfill(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began: not a failure
		}
		return err
	}
	if p.Done {
		return nil
	}
	log.Info("rollup backfill: building 1m and 1h rollups of older readings in the background",
		"tags", p.Tags, "tags_done", p.TagsDone, "readings_done", p.Readings)
	lastLog := time.Now()
	for {
		var done bool
		err := w.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			done, err = backfillStep(ctx, tx, cfg.Now().UnixMilli(), cfg.StepReadings)
			return err
		})
		switch {
		case errors.Is(err, ErrClosed) || ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("rollup backfill step failed; retrying in a minute", "err", err)
			if !sleep(ctx, time.Minute) {
				return nil
			}
			continue
		}
		if done || time.Since(lastLog) >= cfg.LogEvery {
			lastLog = time.Now()
			if p, err = w.s.Backfill(ctx); err != nil {
				log.Warn("rollup backfill: reading progress", "err", err)
			} else if done {
				log.Info("rollup backfill finished", "tags", p.Tags, "readings", p.Readings)
			} else {
				log.Info("rollup backfill", "tags", p.Tags, "tags_done", p.TagsDone, "readings_done", p.Readings)
			}
		}
		if done {
			return nil
		}
		if !sleep(ctx, cfg.Pause) {
			return nil
		}
	}
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backfillStep rolls up the next whole hours of one tag, about maxReadings
// readings, and moves the bookmark on. Buckets are rebuilt from the
// readings (INSERT OR REPLACE), which is right whatever the writer already
// added to them, since both run on the one write connection. The row counts
// move by the difference the step made, so readings counted by the writer
// as they arrived are not counted twice. It reports whether the backfill is
// complete.
func backfillStep(ctx context.Context, tx *sql.Tx, nowMS int64, maxReadings int) (done bool, err error) {
	var (
		nextTag, nextMS, lastTag int64
		doneMS, startedMS        sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, `SELECT next_tag, next_ms, last_tag, done_ms, started_ms FROM rollup_backfill WHERE id = 1`).
		Scan(&nextTag, &nextMS, &lastTag, &doneMS, &startedMS)
	if err != nil {
		return false, fmt.Errorf("db: backfill: %w", err)
	}
	if doneMS.Valid {
		return true, nil
	}
	if !startedMS.Valid {
		if _, err := tx.ExecContext(ctx, `UPDATE rollup_backfill SET started_ms = ? WHERE id = 1`, nowMS); err != nil {
			return false, fmt.Errorf("db: backfill: %w", err)
		}
	}
	if nextTag > lastTag {
		_, err := tx.ExecContext(ctx, `UPDATE rollup_backfill SET done_ms = ? WHERE id = 1`, nowMS)
		if err != nil {
			return false, fmt.Errorf("db: backfill: %w", err)
		}
		return true, nil
	}
	var first sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT MIN(ts_ms) FROM readings WHERE tag_id = ? AND ts_ms >= ?`, nextTag, nextMS).Scan(&first)
	if err != nil {
		return false, fmt.Errorf("db: backfill: tag %d: %w", nextTag, err)
	}
	if !first.Valid {
		return false, nextBackfillTag(ctx, tx, nextTag, lastTag)
	}
	hour := Res1h.Width()
	start := bucketOf(first.Int64, hour)
	// The end is the hour holding the reading maxReadings on, so a step
	// covers whole hours (and so whole minutes) and stays small however
	// dense or sparse the tag is.
	end := int64(math.MaxInt64)
	var edge int64
	err = tx.QueryRowContext(ctx, `SELECT ts_ms FROM readings WHERE tag_id = ? AND ts_ms >= ? ORDER BY ts_ms LIMIT 1 OFFSET ?`,
		nextTag, start, maxReadings).Scan(&edge)
	switch {
	case err == nil:
		end = max(bucketOf(edge, hour), start+hour)
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("db: backfill: tag %d: %w", nextTag, err)
	}

	before, err := windowCounts(ctx, tx, nextTag, start, end)
	if err != nil {
		return false, err
	}
	b1m := bucketSQL("ts_ms", Res1m.Width())
	_, err = tx.ExecContext(ctx, `
		INSERT OR REPLACE INTO rollups_1m(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms)
		SELECT ?1, g.b, g.mn, g.mx, g.sm, g.n,
			(SELECT value FROM readings WHERE tag_id = ?1 AND ts_ms = g.lt), g.lt
		FROM (SELECT `+b1m+` AS b, MIN(value) AS mn, MAX(value) AS mx, SUM(value) AS sm, COUNT(*) AS n, MAX(ts_ms) AS lt
			FROM readings WHERE tag_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 GROUP BY b) g`, nextTag, start, end)
	if err != nil {
		return false, fmt.Errorf("db: backfill: tag %d 1m: %w", nextTag, err)
	}
	b1h := bucketSQL("bucket_ms", hour)
	_, err = tx.ExecContext(ctx, `
		INSERT OR REPLACE INTO rollups_1h(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms)
		SELECT ?1, g.b, g.mn, g.mx, g.sm, g.n,
			(SELECT last FROM rollups_1m WHERE tag_id = ?1 AND bucket_ms = `+bucketSQL("g.lt", Res1m.Width())+`), g.lt
		FROM (SELECT `+b1h+` AS b, MIN(min) AS mn, MAX(max) AS mx, SUM(sum) AS sm, SUM(count) AS n, MAX(last_ts_ms) AS lt
			FROM rollups_1m WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3 GROUP BY b) g`, nextTag, start, end)
	if err != nil {
		return false, fmt.Errorf("db: backfill: tag %d 1h: %w", nextTag, err)
	}
	after, err := windowCounts(ctx, tx, nextTag, start, end)
	if err != nil {
		return false, err
	}
	// Readings in the window are the hour buckets' counts; before the step
	// they held only what the writer had rolled up (and counted) itself.
	if _, err := tx.ExecContext(ctx, addCountsSQL, after.readings-before.readings, after.m1-before.m1, after.h1-before.h1); err != nil {
		return false, fmt.Errorf("db: backfill: row counts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rollup_backfill SET readings = readings + ? WHERE id = 1`, after.readings); err != nil {
		return false, fmt.Errorf("db: backfill: %w", err)
	}
	if end == math.MaxInt64 {
		return false, nextBackfillTag(ctx, tx, nextTag, lastTag)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rollup_backfill SET next_ms = ? WHERE id = 1`, end); err != nil {
		return false, fmt.Errorf("db: backfill: %w", err)
	}
	return false, nil
}

// nextBackfillTag moves the bookmark to the tag after tag (or past
// lastTag, which the next step records as done).
func nextBackfillTag(ctx context.Context, tx *sql.Tx, tag, lastTag int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE rollup_backfill
		SET next_tag = COALESCE((SELECT MIN(id) FROM tags WHERE id > ?1), ?2 + 1), next_ms = ?3 WHERE id = 1`,
		tag, lastTag, int64(math.MinInt64))
	if err != nil {
		return fmt.Errorf("db: backfill: next tag after %d: %w", tag, err)
	}
	return nil
}

type counts struct{ readings, m1, h1 int64 }

// windowCounts counts a tag's rollup rows in [start, end) and the readings
// its hour buckets hold: bounded by the step's size.
func windowCounts(ctx context.Context, tx *sql.Tx, tag, start, end int64) (counts, error) {
	var c counts
	err := tx.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM rollups_1m WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3),
			COUNT(*), COALESCE(SUM(count), 0)
		FROM rollups_1h WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3`, tag, start, end).
		Scan(&c.m1, &c.h1, &c.readings)
	if err != nil {
		return counts{}, fmt.Errorf("db: backfill: tag %d: counts: %w", tag, err)
	}
	return c, nil
}
