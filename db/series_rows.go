package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"andon/plant"
)

// eachRow runs query on a read connection and calls fn with every row's
// values as the driver gives them (int64, float64, string, []byte or nil).
// It skips database/sql's per-row locking and conversions, which cost more
// than SQLite's own work on the tens of thousands of rows a chart reads:
// 43,200 minute rows took 21 ms through rows.Scan and 13.6 ms here. args
// must be driver values already (int64 here). fn must not keep dest.
func (s *Store) eachRow(ctx context.Context, query string, args []driver.Value, fn func(dest []driver.Value) error) error {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot run queries", dc)
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := q.QueryContext(ctx, query, named)
		if err != nil {
			return err
		}
		dest := make([]driver.Value, len(rows.Columns()))
		for err == nil {
			if err = rows.Next(dest); err == nil {
				err = fn(dest)
			}
		}
		if err == io.EOF {
			err = nil
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// driverInt and driverFloat read a column eachRow passed on. The series
// columns are NOT NULL INTEGER and REAL, which SQLite returns as int64 and
// float64 (a REAL column gives back a float even when it stored an integral
// value as an integer), so anything else means a damaged row.
func driverInt(v driver.Value) (int64, error) {
	if n, ok := v.(int64); ok {
		return n, nil
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

func driverFloat(v driver.Value) (float64, error) {
	switch f := v.(type) {
	case float64:
		return f, nil
	case int64:
		return float64(f), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// seriesBuilder turns a level's rows, in time order, into a chart's points
// in one pass: the rows themselves while they fit in maxPoints, and at the
// same time their min/max envelope in buckets of width from fromMS, which
// becomes the answer once they do not fit. Building both as the rows go by
// spares a second read of every row and SQLite's sort of them by bucket,
// which the envelope's GROUP BY in SQL cost.
type seriesBuilder struct {
	fromMS, width int64
	maxPoints     int // <= 0: no limit, no envelope

	pts    []plant.Point // the rows as points, while fits
	fits   bool
	env    []plant.Point // two points per non-empty bucket: its min, then its max
	bucket int64         // index of env's last bucket
}

func newSeriesBuilder(fromMS, width int64, maxPoints int) *seriesBuilder {
	b := &seriesBuilder{fromMS: fromMS, width: width, maxPoints: maxPoints, fits: true, bucket: -1}
	if maxPoints > 0 {
		b.pts, b.env = make([]plant.Point, 0, maxPoints+2), make([]plant.Point, 0, maxPoints+2)
	}
	return b
}

// add takes the next row: its time (a rollup's bucket start, which may lie
// before fromMS) and its min and max (for a reading, its value twice).
func (b *seriesBuilder) add(ts int64, mn, mx float64) {
	// A rollup bucket that starts before the range is drawn at the range's
	// start, so that no point falls outside it.
	ts = max(ts, b.fromMS)
	if b.fits {
		// A rollup row alone is drawn as its min and max, so that a chart
		// of rollups shows the same spikes as the envelope.
		if mn == mx {
			b.pts = append(b.pts, plant.Point{TS: ts, Value: mn})
		} else {
			b.pts = append(b.pts, plant.Point{TS: ts, Value: mn}, plant.Point{TS: ts + 1, Value: mx})
		}
		if b.maxPoints > 0 && len(b.pts) > b.maxPoints {
			b.fits, b.pts = false, nil
		}
	}
	if b.maxPoints <= 0 {
		return
	}
	// Rows come in time order, so a bucket's rows are consecutive and its
	// first row gives its time.
	if i := (ts - b.fromMS) / b.width; i != b.bucket {
		b.bucket = i
		b.env = append(b.env, plant.Point{TS: ts, Value: mn}, plant.Point{TS: ts + 1, Value: mx})
		return
	}
	e := b.env[len(b.env)-2:]
	e[0].Value, e[1].Value = min(e[0].Value, mn), max(e[1].Value, mx)
}

// result is the chart's points and, for an envelope, its bucket width.
func (b *seriesBuilder) result() ([]plant.Point, int64) {
	if b.fits {
		return b.pts, 0
	}
	return b.env, b.width
}
