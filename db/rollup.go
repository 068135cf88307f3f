package db

import (
	"fmt"

	"andon/plant"
)

// Resolution names a level of history: the readings themselves or one of
// the rollup tables.
type Resolution string

const (
	ResAuto Resolution = ""    // let the query choose
	ResRaw  Resolution = "raw" // readings
	Res1m   Resolution = "1m"  // rollups_1m
	Res1h   Resolution = "1h"  // rollups_1h
)

// Resolutions lists the stored resolutions, finest first.
var Resolutions = []Resolution{ResRaw, Res1m, Res1h}

// ParseResolution accepts "", "auto", "raw", "1m" and "1h".
func ParseResolution(s string) (Resolution, error) {
	switch s {
	case "", "auto":
		return ResAuto, nil
	case "raw", "1m", "1h":
		return Resolution(s), nil
	}
	return "", fmt.Errorf("db: resolution %q: want raw, 1m or 1h", s)
}

// Width is a rollup's bucket width in milliseconds (0 for raw).
func (r Resolution) Width() int64 {
	switch r {
	case Res1m:
		return 60_000
	case Res1h:
		return 3_600_000
	}
	return 0
}

// table is the SQL table of a resolution; the names are constants, never
// user input.
func (r Resolution) table() string {
	switch r {
	case Res1m:
		return "rollups_1m"
	case Res1h:
		return "rollups_1h"
	}
	return "readings"
}

// bucketOf is the start of the bucket of width holding ts: a floor, so
// readings before 1970 land in the bucket below them too.
func bucketOf(ts, width int64) int64 {
	m := ts % width
	if m < 0 {
		m += width
	}
	return ts - m
}

// bucketSQL is bucketOf in SQL for the column col; % in SQLite truncates
// towards zero like Go's, hence the same correction.
func bucketSQL(col string, width int64) string {
	w := fmt.Sprint(width)
	return "(" + col + " - ((" + col + " % " + w + ") + " + w + ") % " + w + ")"
}

// agg is one bucket's share of a batch.
type agg struct {
	min, max, sum float64
	count         int64
	last          float64
	lastTS        int64
}

type bucketKey struct{ tag, bucket int64 }

// aggregate folds a batch's inserted rows into buckets of width. Only rows
// really inserted are passed in (redeliveries were ignored by the primary
// key), so nothing is counted twice.
func aggregate(rs []plant.Stored, width int64) map[bucketKey]*agg {
	out := make(map[bucketKey]*agg)
	for _, r := range rs {
		k := bucketKey{r.TagID, bucketOf(r.TS, width)}
		a, ok := out[k]
		if !ok {
			out[k] = &agg{min: r.Value, max: r.Value, sum: r.Value, count: 1, last: r.Value, lastTS: r.TS}
			continue
		}
		a.min = min(a.min, r.Value)
		a.max = max(a.max, r.Value)
		a.sum += r.Value
		a.count++
		if r.TS > a.lastTS {
			a.last, a.lastTS = r.Value, r.TS
		}
	}
	return out
}

// upsertRollupSQL merges a batch's bucket into a rollup table. last moves
// only to a newer reading, so late and out-of-order readings fix their
// bucket without disturbing it. RETURNING count tells a new bucket (its
// count is the batch's) from an updated one, for the row counts.
func upsertRollupSQL(table string) string {
	return `INSERT INTO ` + table + `(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
		ON CONFLICT(tag_id, bucket_ms) DO UPDATE SET
			min = MIN(min, excluded.min),
			max = MAX(max, excluded.max),
			sum = sum + excluded.sum,
			count = count + excluded.count,
			last = CASE WHEN excluded.last_ts_ms > last_ts_ms THEN excluded.last ELSE last END,
			last_ts_ms = MAX(last_ts_ms, excluded.last_ts_ms)
		RETURNING count`
}

// addCountsSQL moves the maintained row counts by deltas (raw, 1m, 1h).
const addCountsSQL = `UPDATE storage_counts SET rows = rows + CASE resolution
	WHEN 'raw' THEN ?1 WHEN '1m' THEN ?2 WHEN '1h' THEN ?3 ELSE 0 END`
