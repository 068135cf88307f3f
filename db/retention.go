package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Default retention: raw readings 90 days, minute rollups two years, hour
// rollups forever.
const (
	DefaultKeepRaw    = 90 * 24 * time.Hour
	DefaultKeepMinute = 2 * 365 * 24 * time.Hour
	DefaultKeepHour   = time.Duration(0)
)

// RetentionConfig says how long each resolution is kept and how large the
// database may grow. Zero durations keep forever; zero MaxBytes sets no cap.
type RetentionConfig struct {
	Raw, Minute, Hour time.Duration
	MaxBytes          int64

	Every    time.Duration    // between rounds (default 1 min)
	StepRows int              // rows deleted per step at most (default 5,000)
	Pause    time.Duration    // between steps (default 10 ms)
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // nil = discard
}

// Keep is how long res is kept (0: forever).
func (c RetentionConfig) Keep(res Resolution) time.Duration {
	switch res {
	case ResRaw:
		return c.Raw
	case Res1m:
		return c.Minute
	case Res1h:
		return c.Hour
	}
	return 0
}

// Retention deletes history past its retention, and the oldest raw readings
// then minute rollups while the database is over its size cap, in bounded
// steps through the writer so that ingest and pages never wait long.
type Retention struct {
	w      *Writer
	cfg    RetentionConfig
	log    *slog.Logger
	capped bool // the size cap could not be met: warned once
}

// Deleted counts the rows a round deleted per resolution.
type Deleted map[Resolution]int64

// Settings keys under which the retention in force is recorded for the
// storage page.
const (
	keyKeepRaw    = "retention_raw_ms"
	keyKeepMinute = "retention_1m_ms"
	keyKeepHour   = "retention_1h_ms"
	keyMaxBytes   = "retention_max_bytes"
)

// NewRetention records cfg in the database (for the storage page) and
// returns the retention that enforces it through w.
func NewRetention(ctx context.Context, w *Writer, cfg RetentionConfig) (*Retention, error) {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.StepRows <= 0 {
		cfg.StepRows = 5000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 10 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for k, v := range map[string]int64{
		keyKeepRaw: cfg.Raw.Milliseconds(), keyKeepMinute: cfg.Minute.Milliseconds(),
		keyKeepHour: cfg.Hour.Milliseconds(), keyMaxBytes: cfg.MaxBytes,
	} {
		_, err := w.s.w.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES (?1, ?2)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value`, k, strconv.FormatInt(v, 10))
		if err != nil {
			return nil, fmt.Errorf("db: retention: save %s: %w", k, err)
		}
	}
	return &Retention{w: w, cfg: cfg, log: cfg.Logger}, nil
}

// Run runs a round every cfg.Every until ctx ends. Failures are logged and
// the next round tries again.
func (r *Retention) Run(ctx context.Context) error {
	for {
		d, err := r.Round(ctx)
		switch {
		case errors.Is(err, ErrClosed) || ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Error("retention round failed", "err", err)
		case d[ResRaw]+d[Res1m]+d[Res1h] > 0:
			r.log.Info("retention: deleted old history", "raw", d[ResRaw], "rollups_1m", d[Res1m], "rollups_1h", d[Res1h])
		}
		if !sleep(ctx, r.cfg.Every) {
			return nil
		}
	}
}

// Round deletes everything past its retention, then, while the database is
// over its cap, the oldest hour of raw readings (then of minute rollups) at
// a time. It waits for the rollup backfill: raw readings not yet rolled up
// must not go.
func (r *Retention) Round(ctx context.Context) (Deleted, error) {
	d := Deleted{}
	p, err := r.w.s.Backfill(ctx)
	if err != nil || !p.Done {
		return d, err
	}
	now := r.cfg.Now().UnixMilli()
	for _, res := range Resolutions {
		keep := r.cfg.Keep(res)
		if keep <= 0 {
			continue
		}
		// Whole hours, so a cut never leaves a minute or hour bucket whose
		// readings are partly gone.
		n, err := r.deleteBefore(ctx, res, bucketOf(now-keep.Milliseconds(), Res1h.Width()))
		d[res] += n
		if err != nil {
			return d, err
		}
	}
	if r.cfg.MaxBytes <= 0 {
		return d, nil
	}
	for {
		used, err := r.w.s.usedBytes(ctx)
		if err != nil {
			return d, err
		}
		if used <= r.cfg.MaxBytes {
			r.capped = false
			return d, nil
		}
		// The size cap takes the oldest raw readings first, then minute
		// rollups; hour rollups are small and stay.
		var res Resolution
		var oldest int64
		for _, c := range []Resolution{ResRaw, Res1m} {
			o, ok, err := r.w.s.oldest(ctx, c)
			if err != nil {
				return d, err
			}
			if ok {
				res, oldest = c, o
				break
			}
		}
		if res == "" {
			if !r.capped {
				r.log.Warn("retention: the database is over its size cap with only hour rollups left",
					"used_bytes", used, "max_bytes", r.cfg.MaxBytes)
				r.capped = true
			}
			return d, nil
		}
		// Take a share of the span from the oldest row to now as large as
		// the share of bytes over the cap (at least an hour), so a far
		// overshoot takes a few rounds rather than one per hour of history.
		span := max(Res1h.Width(), int64(float64(now-oldest)*float64(used-r.cfg.MaxBytes)/float64(used)))
		n, err := r.deleteBefore(ctx, res, bucketOf(oldest+span, Res1h.Width())+Res1h.Width())
		d[res] += n
		if err != nil {
			return d, err
		}
	}
}

// deleteBefore deletes res's rows older than cutoff, tag by tag, at most
// StepRows per step, and returns how many went.
func (r *Retention) deleteBefore(ctx context.Context, res Resolution, cutoff int64) (int64, error) {
	var total int64
	tag := int64(0)
	for {
		var n int64
		var more bool
		err := r.w.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			n, tag, more, err = deleteStep(ctx, tx, res, cutoff, tag, r.cfg.StepRows)
			return err
		})
		total += n
		if err != nil || !more {
			return total, err
		}
		if !sleep(ctx, r.cfg.Pause) {
			return total, ctx.Err()
		}
	}
}

// deleteStep deletes up to budget rows of res older than cutoff, starting at
// tag fromTag; it returns the tag to go on from and whether any are left to
// look at. Each tag's old rows are one range of its primary key, so every
// delete is a bounded range delete; no statement scans other tags' rows.
func deleteStep(ctx context.Context, tx *sql.Tx, res Resolution, cutoff, fromTag int64, budget int) (deleted, next int64, more bool, err error) {
	table, col := res.table(), "bucket_ms"
	if res == ResRaw {
		col = "ts_ms"
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM tags WHERE id >= ? ORDER BY id LIMIT 500`, fromTag)
	if err != nil {
		return 0, 0, false, fmt.Errorf("db: retention: tags: %w", err)
	}
	var tags []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, 0, false, fmt.Errorf("db: retention: tags: %w", err)
		}
		tags = append(tags, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("db: retention: tags: %w", err)
	}
	for _, tag := range tags {
		left := int64(budget) - deleted
		end := cutoff
		// If more than the budget is old, stop at the row just past it.
		var edge int64
		err := tx.QueryRowContext(ctx, `SELECT `+col+` FROM `+table+` WHERE tag_id = ? AND `+col+` < ? ORDER BY `+col+` LIMIT 1 OFFSET ?`,
			tag, cutoff, left).Scan(&edge)
		full := err == nil
		switch {
		case full:
			end = edge
		case !errors.Is(err, sql.ErrNoRows):
			return deleted, tag, false, fmt.Errorf("db: retention: %s of tag %d: %w", res, tag, err)
		}
		resDel, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tag_id = ? AND `+col+` < ?`, tag, end)
		if err != nil {
			return deleted, tag, false, fmt.Errorf("db: retention: %s of tag %d: %w", res, tag, err)
		}
		n, err := resDel.RowsAffected()
		if err != nil {
			return deleted, tag, false, fmt.Errorf("db: retention: %s of tag %d: %w", res, tag, err)
		}
		deleted += n
		if full {
			return deleted, tag, true, subCounts(ctx, tx, res, deleted)
		}
	}
	if err := subCounts(ctx, tx, res, deleted); err != nil {
		return deleted, 0, false, err
	}
	if len(tags) < 500 {
		return deleted, 0, false, nil
	}
	return deleted, tags[len(tags)-1] + 1, true, nil
}

func subCounts(ctx context.Context, tx *sql.Tx, res Resolution, n int64) error {
	if n == 0 {
		return nil
	}
	var d [3]int64
	for i, r := range Resolutions {
		if r == res {
			d[i] = -n
		}
	}
	if _, err := tx.ExecContext(ctx, addCountsSQL, d[0], d[1], d[2]); err != nil {
		return fmt.Errorf("db: retention: row counts: %w", err)
	}
	return nil
}
