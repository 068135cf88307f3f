package db

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"andon/plant"
)

func TestSeriesAtPicksTheResolution(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	// 20 days of a reading a minute, flat 10, with one spike to 1000 and
	// one dip to -50 that every resolution must show.
	end := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli()
	start := end - 20*86_400_000
	spike, dip := end-5*86_400_000+17*60_000, end-86_400_000/2+3*60_000
	var rs []plant.Reading
	for ts := start; ts < end; ts += 60_000 {
		v := 10.0
		switch ts {
		case spike:
			v = 1000
		case dip:
			v = -50
		}
		rs = append(rs, reading(press3, "temp", ts, v))
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	id := int64(1)
	tests := []struct {
		name      string
		from, to  int64
		max       int
		res       Resolution
		wantRes   Resolution
		envelope  bool
		wantSpike bool
	}{
		{"an hour is raw", spike - 1_800_000, spike + 1_800_000, 2000, ResAuto, ResRaw, false, true},
		{"a day is minutes", spike - 43_200_000, spike + 43_200_000, 2000, ResAuto, Res1m, false, true},
		{"a week is minutes, bucketed", end - 7*86_400_000, end, 2000, ResAuto, Res1m, true, true},
		{"20 days in 200 points is hours", start, end, 200, ResAuto, Res1h, true, true},
		{"unlimited is raw", spike - 600_000, spike + 600_000, 0, ResAuto, ResRaw, false, true},
		{"asked for raw", end - 3*86_400_000, end, 2000, ResRaw, ResRaw, true, false},
		{"asked for hours", spike - 3_600_000, spike + 3_600_000, 2000, Res1h, Res1h, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr, err := s.SeriesAt(ctx, id, tt.from, tt.to, tt.max, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if sr.Res != tt.wantRes || (sr.BucketMS > 0) != tt.envelope {
				t.Errorf("res %s bucket %d ms, want %s envelope %v", sr.Res, sr.BucketMS, tt.wantRes, tt.envelope)
			}
			if len(sr.Points) == 0 || (tt.max > 0 && len(sr.Points) > tt.max) {
				t.Errorf("%d points, want 1 to %d", len(sr.Points), tt.max)
			}
			hi, lo := -1e9, 1e9
			for i, p := range sr.Points {
				if p.TS < tt.from || p.TS > tt.to+1 || (i > 0 && p.TS <= sr.Points[i-1].TS) {
					t.Fatalf("point %d at %d: outside [%d, %d] or out of order", i, p.TS, tt.from, tt.to)
				}
				hi, lo = max(hi, p.Value), min(lo, p.Value)
			}
			if got := hi == 1000; got != tt.wantSpike {
				t.Errorf("max %v: spike shown %v, want %v", hi, got, tt.wantSpike)
			}
			if inRange := tt.from <= dip && dip <= tt.to; inRange && lo != -50 {
				t.Errorf("min %v: the dip is lost", lo)
			}
		})
	}

	// Retention took the raw readings of the spike's day: an hour's chart
	// then comes from the minute rollups and still shows it.
	if _, err := s.w.Exec(`DELETE FROM readings WHERE ts_ms < ?`, spike+86_400_000); err != nil {
		t.Fatal(err)
	}
	sr, err := s.SeriesAt(ctx, id, spike-1_800_000, spike+1_800_000, 2000, ResAuto)
	if err != nil || sr.Res != Res1m || len(sr.Points) == 0 {
		t.Fatalf("after raw retention: res %s, %d points, %v; want 1m", sr.Res, len(sr.Points), err)
	}
	if _, err := s.SeriesAt(ctx, 99, 0, 1, 10, ResAuto); err == nil {
		t.Error("unknown tag: want an error")
	}
}

// seriesBySQL is the chart as SeriesAt drew it before it bucketed in Go:
// the rows as points when they fit, else a GROUP BY in SQL. It is kept here
// as the specification the one-pass version must match point for point.
func seriesBySQL(t *testing.T, s *Store, tagID, fromMS, toMS int64, maxPoints int, res Resolution) []plant.Point {
	t.Helper()
	buckets := int64(max(maxPoints/2, 1))
	width := max((toMS-fromMS+1+buckets-1)/buckets, 1)
	col, minCol, maxCol, lastCol, lo := "bucket_ms", "min", "max", "last_ts_ms", bucketOf(fromMS, max(res.Width(), 1))
	if res == ResRaw {
		col, minCol, maxCol, lastCol, lo = "ts_ms", "value", "value", "ts_ms", fromMS
	}
	query := func(q string, args ...any) [][3]float64 {
		rows, err := s.r.Query(q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][3]float64
		for rows.Next() {
			var ts int64
			var mn, mx float64
			if err := rows.Scan(&ts, &mn, &mx); err != nil {
				t.Fatal(err)
			}
			out = append(out, [3]float64{float64(ts), mn, mx})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var pts []plant.Point
	for _, r := range query(`SELECT MAX(`+col+`, ?2), `+minCol+`, `+maxCol+` FROM `+res.table()+`
		WHERE tag_id = ?1 AND `+col+` BETWEEN ?3 AND ?4 AND `+lastCol+` >= ?2 ORDER BY `+col, tagID, fromMS, lo, toMS) {
		ts := int64(r[0])
		if r[1] == r[2] {
			pts = append(pts, plant.Point{TS: ts, Value: r[1]})
		} else {
			pts = append(pts, plant.Point{TS: ts, Value: r[1]}, plant.Point{TS: ts + 1, Value: r[2]})
		}
	}
	if maxPoints <= 0 || len(pts) <= maxPoints {
		return pts
	}
	pts = nil
	for _, r := range query(`SELECT MAX(MIN(`+col+`), ?2), MIN(`+minCol+`), MAX(`+maxCol+`) FROM `+res.table()+`
		WHERE tag_id = ?1 AND `+col+` BETWEEN ?3 AND ?4 AND `+lastCol+` >= ?2
		GROUP BY (MAX(`+col+`, ?2) - ?2) / ?5 ORDER BY 1`, tagID, fromMS, lo, toMS, width) {
		pts = append(pts, plant.Point{TS: int64(r[0]), Value: r[1]}, plant.Point{TS: int64(r[0]) + 1, Value: r[2]})
	}
	return pts
}

func TestSeriesAtMatchesTheSQLEnvelope(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	// Three days of readings about every 7 s, at jittered times and with
	// values that jump around, so that buckets hold uneven numbers of rows
	// and minutes end at odd times.
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli()
	end := start + 3*86_400_000
	var rs []plant.Reading
	for i, ts := int64(0), start; ts < end; i, ts = i+1, ts+7000 {
		jitter := (i * 7919) % 997
		rs = append(rs, reading(press3, "temp", ts+jitter, float64((i*104_729)%2003)/7-100))
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// A range that starts just before a minute's end, after the minute's
	// last reading: that minute's rollup must stay out of the chart.
	var edge int64
	if err := s.r.QueryRow(`SELECT bucket_ms + 59_999 FROM rollups_1m WHERE tag_id = 1 AND last_ts_ms < bucket_ms + 59_999
		AND bucket_ms > ? ORDER BY bucket_ms LIMIT 1`, start+86_400_000).Scan(&edge); err != nil {
		t.Fatalf("no minute that ends early: %v", err)
	}
	ranges := []struct {
		name     string
		from, to int64
	}{
		{"all", start, end},
		{"mid-minute", start + 86_400_000 + 12_345, start + 2*86_400_000 - 54_321},
		{"after a minute's last reading", edge, edge + 6*3_600_000},
		{"mid-hour, a day", start + 1_800_000 + 17, start + 86_400_000 + 1_799_983},
		{"before the data", start - 86_400_000, start + 3_600_000},
		{"an hour", start + 5*3_600_000 + 999, start + 6*3_600_000},
	}
	for _, rg := range ranges {
		for _, res := range Resolutions {
			for _, maxPoints := range []int{0, 1, 2, 100, 2000, 100_000} {
				t.Run(fmt.Sprintf("%s/%s/max=%d", rg.name, res, maxPoints), func(t *testing.T) {
					sr, err := s.SeriesAt(ctx, 1, rg.from, rg.to, maxPoints, res)
					if err != nil {
						t.Fatal(err)
					}
					want := seriesBySQL(t, s, 1, rg.from, rg.to, maxPoints, res)
					if !slices.Equal(sr.Points, want) {
						t.Fatalf("%d points, want %d as the SQL envelope has them\n got %v\nwant %v",
							len(sr.Points), len(want), head(sr.Points), head(want))
					}
					if envelope := maxPoints > 0 && sr.BucketMS > 0; envelope && len(sr.Points) > maxPoints && maxPoints > 1 {
						t.Errorf("%d points, want at most %d", len(sr.Points), maxPoints)
					}
				})
			}
		}
	}
}

func head(pts []plant.Point) []plant.Point { return pts[:min(len(pts), 6)] }

// A level with more than maxSeriesRows rows in the range is passed over for
// the next coarser one, judged by the readings that level counted.
func TestSeriesAtPassesOverDenseLevels(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	end := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli()
	spike := end - 3_600_000 + 123_400
	var rs []plant.Reading
	// Tag 1, "fast": 10 Hz for two hours, 72,000 readings, with one spike.
	for ts := end - 2*3_600_000; ts < end; ts += 100 {
		v := 1.0
		if ts == spike {
			v = 99
		}
		rs = append(rs, reading(press3, "fast", ts, v))
	}
	// Tag 2, "minutely": a reading a minute for 40 days, 57,600 rows in
	// the minute rollups. Tag 3, "sparse": one every 5 minutes, 11,520.
	for ts := end - 40*86_400_000; ts < end; ts += 60_000 {
		rs = append(rs, reading(press3, "minutely", ts, float64(ts%7)))
		if ts%300_000 == 0 {
			rs = append(rs, reading(press3, "sparse", ts, float64(ts%11)))
		}
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tag       int64
		from      int64
		maxPoints int
		want      Resolution
	}{
		// 2 h in 1,000 buckets of 7.2 s would be raw, but that is 72,000 rows.
		{"10 Hz for 2 h", 1, end - 2*3_600_000, 2000, Res1m},
		{"10 Hz for 1 h", 1, end - 3_600_000, 2000, ResRaw},
		// 40 days in 5,000 buckets of 11.5 min would be minutes.
		{"a minute's readings for 40 days", 2, end - 40*86_400_000, 10_000, Res1h},
		{"sparse for 40 days", 3, end - 40*86_400_000, 10_000, Res1m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr, err := s.SeriesAt(ctx, tt.tag, tt.from, end, tt.maxPoints, ResAuto)
			if err != nil {
				t.Fatal(err)
			}
			if sr.Res != tt.want || len(sr.Points) == 0 || len(sr.Points) > tt.maxPoints {
				t.Errorf("res %s, %d points; want %s, 1 to %d points", sr.Res, len(sr.Points), tt.want, tt.maxPoints)
			}
			if tt.tag == 1 && !slices.ContainsFunc(sr.Points, func(p plant.Point) bool { return p.Value == 99 }) {
				t.Error("the spike is lost")
			}
		})
	}

	// The minutes are judged by the readings the hour rollups counted: with
	// those gone there is no sign of too many rows, and the minutes are read
	// rather than nothing.
	if _, err := s.w.Exec(`DELETE FROM rollups_1h WHERE tag_id = 2`); err != nil {
		t.Fatal(err)
	}
	sr, err := s.SeriesAt(ctx, 2, end-40*86_400_000, end, 10_000, ResAuto)
	if err != nil || sr.Res != Res1m || len(sr.Points) == 0 {
		t.Errorf("without hours: res %s, %d points, %v; want 1m", sr.Res, len(sr.Points), err)
	}
}
