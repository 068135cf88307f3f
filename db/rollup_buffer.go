package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"andon/plant"
)

// Rollups cost two upserts per bucket a transaction touches; with readings
// of a thousand tags in every small transaction that was most of the
// writer's time (37% of Andon's CPU under QoS 1 load, pprof). So while the
// writer is busy (readings wait behind the batch) or the batch holds only
// readings nobody reads back at once (QoS 0, and QoS 1 acknowledged after
// the commit, which keep a device's next publishes waiting for the PUBACKs,
// so the queue looks empty), the buckets are merged in memory and written
// at most rollupDefer later, or once the writer has had nothing to do for
// rollupIdle. A batch with a Write caller, who may read right after, writes
// them in the readings' own transaction, as before. Each minute bucket held in memory is listed in rollup_pending
// in its readings' transaction, so a crash loses nothing: the next Run
// rebuilds those buckets from the readings before it takes new ones.
const (
	rollupDefer = time.Second
	// rollupIdle is how long the writer waits for more work before it
	// writes what it holds.
	rollupIdle = 25 * time.Millisecond
	// maxOpenBuckets bounds the buckets held in memory (late readings
	// spread over many minutes open many); beyond it they are written.
	maxOpenBuckets = 100_000
)

// rollupBuffer holds the rollups of committed readings not yet written.
// Only the writer's goroutine uses it.
type rollupBuffer struct {
	open    [2]map[bucketKey]*agg // minute and hour buckets
	since   time.Time             // when the oldest open bucket was opened; zero when none
	pending bool                  // rollup_pending has rows
}

// rollupStage is what one transaction did to the rollups, applied to the
// buffer once that transaction commits.
type rollupStage struct {
	batch   [2]map[bucketKey]*agg
	flushed bool
	staged  bool
}

func (rb *rollupBuffer) empty() bool { return len(rb.open[0]) == 0 && len(rb.open[1]) == 0 }

// due says whether the open buckets must be written now: the writer is
// idle, they have waited long enough, or there are too many.
func (rb *rollupBuffer) due(busy bool, now time.Time) bool {
	return !busy || (!rb.since.IsZero() && now.Sub(rb.since) >= rollupDefer) || len(rb.open[0])+len(rb.open[1]) >= maxOpenBuckets
}

// stage adds a transaction's stored readings to the rollups: with flush,
// everything open and the batch's buckets are written in t; without, the
// batch's new minute buckets are listed in rollup_pending. The raw row count
// moves either way.
func (rb *rollupBuffer) stage(ctx context.Context, t *txStmts, rs []plant.Stored, flush bool) (rollupStage, error) {
	st := rollupStage{staged: true, flushed: flush}
	if len(rs) > 0 {
		st.batch = [2]map[bucketKey]*agg{aggregate(rs, Res1m.Width()), aggregate(rs, Res1h.Width())}
	}
	var added [2]int64
	if flush {
		for i, stmt := range []*sql.Stmt{t.roll1m, t.roll1h} {
			for k, a := range merged(rb.open[i], st.batch[i]) {
				var n int64
				if err := stmt.QueryRowContext(ctx, k.tag, k.bucket, a.min, a.max, a.sum, a.count, a.last, a.lastTS).Scan(&n); err != nil {
					return st, fmt.Errorf("db: write: rollup of tag %d at %d: %w", k.tag, k.bucket, err)
				}
				if n == a.count { // the row holds only what was just written: it is new
					added[i]++
				}
			}
		}
		if rb.pending {
			if _, err := t.tx.ExecContext(ctx, `DELETE FROM rollup_pending`); err != nil {
				return st, fmt.Errorf("db: write: rollups written: %w", err)
			}
		}
	} else {
		for k := range st.batch[0] {
			if _, held := rb.open[0][k]; held {
				continue
			}
			if _, err := t.pending.ExecContext(ctx, k.tag, k.bucket); err != nil {
				return st, fmt.Errorf("db: write: rollup of tag %d at %d held: %w", k.tag, k.bucket, err)
			}
		}
	}
	if len(rs) > 0 || added != [2]int64{} {
		if _, err := t.counts.ExecContext(ctx, len(rs), added[0], added[1]); err != nil {
			return st, fmt.Errorf("db: write: row counts: %w", err)
		}
	}
	return st, nil
}

// commit applies a committed transaction's stage to the buffer, and
// reports whether it wrote the rollups.
func (rb *rollupBuffer) commit(st rollupStage, now time.Time) bool {
	if !st.staged {
		return false
	}
	if st.flushed {
		rb.open = [2]map[bucketKey]*agg{}
		rb.since, rb.pending = time.Time{}, false
		return true
	}
	if len(st.batch[0]) == 0 {
		return false
	}
	for i := range rb.open {
		if rb.open[i] == nil {
			rb.open[i] = make(map[bucketKey]*agg, len(st.batch[i]))
		}
		for k, a := range st.batch[i] {
			if o, ok := rb.open[i][k]; ok {
				o.merge(a)
			} else {
				rb.open[i][k] = a
			}
		}
	}
	if rb.since.IsZero() {
		rb.since = now
	}
	rb.pending = true
	return false
}

// merged is open and batch together, leaving both as they are: a failed
// transaction must leave the buffer untouched.
func merged(open, batch map[bucketKey]*agg) map[bucketKey]*agg {
	if len(open) == 0 {
		return batch
	}
	out := make(map[bucketKey]*agg, len(open)+len(batch))
	for k, a := range open {
		c := *a
		out[k] = &c
	}
	for k, a := range batch {
		if o, ok := out[k]; ok {
			o.merge(a)
		} else {
			out[k] = a
		}
	}
	return out
}

// merge folds b into a.
func (a *agg) merge(b *agg) {
	a.min = min(a.min, b.min)
	a.max = max(a.max, b.max)
	a.sum += b.sum
	a.count += b.count
	if b.lastTS > a.lastTS {
		a.last, a.lastTS = b.last, b.lastTS
	}
}

// flushRollups writes the open buckets in a transaction of their own, when
// the writer runs out of work or before a maintenance step.
func (w *Writer) flushRollups(ctx context.Context, st *stmts) {
	if (w.roll.empty() && !w.roll.pending) || w.holdRollups {
		return
	}
	var stage rollupStage
	err := w.inTx(ctx, "write rollups", func(ctx context.Context, tx *sql.Tx) error {
		t := st.in(ctx, tx)
		defer t.close()
		var err error
		stage, err = w.roll.stage(ctx, t, nil, true)
		return err
	})
	if err == nil && w.roll.commit(stage, w.cfg.Now()) {
		w.rollFlushes.Add(1)
	}
	if err != nil {
		// The buckets stay in memory and in rollup_pending; the next batch
		// or idle moment tries again.
		w.m.writeError.Inc()
		w.log.Error("db rollups not written", "err", err)
	}
}

// recoverRollups rebuilds the buckets a crash left in rollup_pending: each
// listed minute from its readings, then each of their hours from its
// minutes, keeping the maintained row counts true.
func (w *Writer) recoverRollups(ctx context.Context) error {
	var minutes, hours int
	err := w.inTx(ctx, "recover rollups", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		minutes, hours, err = rebuildPending(ctx, tx)
		return err
	})
	if err == nil && minutes > 0 {
		w.log.Info("rollups rebuilt after an unclean stop", "minutes", minutes, "hours", hours)
	}
	return err
}

// rebuildPending rebuilds the buckets listed in rollup_pending and empties
// the list, in tx.
func rebuildPending(ctx context.Context, tx *sql.Tx) (nMinutes, nHours int, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT tag_id, bucket_ms FROM rollup_pending`)
	if err != nil {
		return 0, 0, fmt.Errorf("db: recover rollups: %w", err)
	}
	var minutes []bucketKey
	hours := map[bucketKey]bool{}
	for rows.Next() {
		var k bucketKey
		if err := rows.Scan(&k.tag, &k.bucket); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("db: recover rollups: %w", err)
		}
		minutes = append(minutes, k)
		hours[bucketKey{k.tag, bucketOf(k.bucket, Res1h.Width())}] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("db: recover rollups: %w", err)
	}
	if len(minutes) == 0 {
		return 0, 0, nil
	}
	var delta [2]int64
	// rebuild aggregates one bucket of table from the rows of from: cols are
	// from's min, max, sum, count, last and last-time columns, and at is
	// the column that places a row in the bucket.
	rebuild := func(i int, table, from string, cols [6]string, at string, k bucketKey, width int64) error {
		var before, after int64
		exists := `SELECT COUNT(*) FROM ` + table + ` WHERE tag_id = ?1 AND bucket_ms = ?2`
		if err := tx.QueryRowContext(ctx, exists, k.tag, k.bucket).Scan(&before); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tag_id = ?1 AND bucket_ms = ?2`, k.tag, k.bucket); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+`(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms)
			SELECT ?1, ?2, MIN(`+cols[0]+`), MAX(`+cols[1]+`), SUM(`+cols[2]+`), SUM(`+cols[3]+`),
				(SELECT `+cols[4]+` FROM `+from+` WHERE tag_id = ?1 AND `+at+` >= ?2 AND `+at+` < ?3
					ORDER BY `+cols[5]+` DESC LIMIT 1),
				MAX(`+cols[5]+`)
			FROM `+from+` WHERE tag_id = ?1 AND `+at+` >= ?2 AND `+at+` < ?3 HAVING COUNT(*) > 0`,
			k.tag, k.bucket, k.bucket+width); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, exists, k.tag, k.bucket).Scan(&after); err != nil {
			return err
		}
		delta[i] += after - before
		return nil
	}
	for _, k := range minutes {
		if err := rebuild(0, "rollups_1m", "readings", [6]string{"value", "value", "value", "1", "value", "ts_ms"}, "ts_ms", k, Res1m.Width()); err != nil {
			return 0, 0, fmt.Errorf("db: recover rollups: minute %d of tag %d: %w", k.bucket, k.tag, err)
		}
	}
	for k := range hours {
		if err := rebuild(1, "rollups_1h", "rollups_1m", [6]string{"min", "max", "sum", "count", "last", "last_ts_ms"}, "bucket_ms", k, Res1h.Width()); err != nil {
			return 0, 0, fmt.Errorf("db: recover rollups: hour %d of tag %d: %w", k.bucket, k.tag, err)
		}
	}
	if _, err := tx.ExecContext(ctx, addCountsSQL, 0, delta[0], delta[1]); err != nil {
		return 0, 0, fmt.Errorf("db: recover rollups: row counts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rollup_pending`); err != nil {
		return 0, 0, fmt.Errorf("db: recover rollups: %w", err)
	}
	return len(minutes), len(hours), nil
}
