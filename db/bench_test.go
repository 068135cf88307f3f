package db

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"andon/plant"
)

// BenchmarkWriter measures readings per second through Write with several
// goroutines, each waiting for its commit as a QoS 1 publisher does, with
// the rollups kept up to date and without them. Run it with:
// go test -run '^$' -bench Writer ./db/
func BenchmarkWriter(b *testing.B) {
	for _, tc := range []struct {
		perWrite, goroutines int
		rollups              bool
	}{
		{perWrite: 1, goroutines: 8, rollups: true},
		{perWrite: 1, goroutines: 8},
		{perWrite: 1, goroutines: 64, rollups: true},
		{perWrite: 1, goroutines: 64},
		{perWrite: 100, goroutines: 8, rollups: true},
		{perWrite: 100, goroutines: 8},
	} {
		b.Run(fmt.Sprintf("readings=%d/goroutines=%d/rollups=%v", tc.perWrite, tc.goroutines, tc.rollups), func(b *testing.B) {
			s := OpenTest(b)
			w := NewWriter(s, WriterConfig{})
			w.noRollups = !tc.rollups
			runWriter(b, w)
			var next atomic.Int64 // gives every reading its own timestamp
			var machine atomic.Int64
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, tc.goroutines/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				p := plant.Path{Line: "bench", Machine: fmt.Sprintf("m%d", machine.Add(1))}
				rs := make([]plant.Reading, tc.perWrite)
				for pb.Next() {
					for i := range rs {
						rs[i] = reading(p, fmt.Sprintf("metric-%d", i%10), next.Add(1), float64(i))
					}
					if err := w.Write(context.Background(), rs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			sec := b.Elapsed().Seconds()
			if sec > 0 {
				b.ReportMetric(float64(b.N*tc.perWrite)/sec, "readings/s")
				b.ReportMetric(float64(b.N*tc.perWrite)/float64(max(1, w.commits.Load())), "readings/commit")
			}
		})
	}
}

// benchQuick says to run benchmarks on tiny inputs: `make test` runs every
// benchmark once with ANDON_BENCH_QUICK=1 so that they keep compiling and
// working without costing minutes.
func benchQuick() bool { return os.Getenv("ANDON_BENCH_QUICK") == "1" }

// benchValue is the 1 Hz bench tag's reading at ts: a daily wave with a
// little deterministic noise, so that every minute and hour has a distinct
// min and max as a real signal would.
func benchValue(ts int64) float64 {
	sec := ts / 1000
	return 50 + 20*math.Sin(2*math.Pi*float64(sec%86_400)/86_400) + float64(uint32(sec*2_654_435_761)%1000)/1000
}

// BenchmarkSeriesRanges is a chart of one 1 Hz tag over ranges up to a
// year at the default 2,000 points, with the resolution chosen by the range,
// and a day of raw readings for comparison. Run it with:
// go test -run '^$' -bench SeriesRanges -count 3 ./db/
//
// The data go straight into SQLite: raw readings for the last 30 days (the
// default raw retention is 90 days, but 30 already means 2.6 million rows,
// and no range here reads raw readings older than a day) and minute and
// hour rollups for the whole year, computed in Go as the writer would have.
func BenchmarkSeriesRanges(b *testing.B) {
	rawDays, rollupDays := int64(30), int64(365)
	if benchQuick() {
		rawDays, rollupDays = 2, 30
	}
	s := OpenTest(b)
	ctx := context.Background()
	end := bucketOf(1_780_000_000_000, Res1h.Width())
	seedSeriesBench(b, s, end, rawDays, rollupDays)

	for _, tc := range []struct {
		name string
		span int64 // ms
		res  Resolution
	}{
		{"range=1h", 3_600_000, ResAuto},
		{"range=24h", 86_400_000, ResAuto},
		{"range=30d", 30 * 86_400_000, ResAuto},
		{"range=1y", 365 * 86_400_000, ResAuto},
		{"range=24h/res=raw", 86_400_000, ResRaw},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sr SeriesResult
			var err error
			for b.Loop() {
				if sr, err = s.SeriesAt(ctx, 1, end-tc.span, end, 2000, tc.res); err != nil {
					b.Fatal(err)
				}
			}
			if len(sr.Points) == 0 {
				b.Fatal("no points")
			}
			b.ReportMetric(float64(len(sr.Points)), "points")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/query")
			b.Logf("%s: res %s, bucket %d ms, %d points", tc.name, sr.Res, sr.BucketMS, len(sr.Points))
		})
	}
}

// seedSeriesBench writes tag 1 of machine 1: a reading a second for the
// rawDays before end, and its minute and hour rollups for the rollupDays
// before end. Prepared one-row inserts in one transaction are the fastest
// plain way in (see DESIGN.md, "Measuring").
func seedSeriesBench(b *testing.B, s *Store, end, rawDays, rollupDays int64) {
	b.Helper()
	tx, err := s.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) {
		if _, err := tx.Exec(q, args...); err != nil {
			b.Fatal(err)
		}
	}
	exec(`INSERT INTO assets(id, kind, name, path, created_ms) VALUES (1, 'machine', 'm', 'm', 0)`)
	exec(`INSERT INTO tags(id, machine_id, metric, topic, text, unit, role, created_ms) VALUES (1, 1, 't', 'm/t', 0, '', '', 0)`)
	ins, err := tx.Prepare(`INSERT INTO readings(tag_id, ts_ms, value) VALUES (1, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for ts := end - rawDays*86_400_000; ts < end; ts += 1000 {
		if _, err := ins.Exec(ts, benchValue(ts)); err != nil {
			b.Fatal(err)
		}
	}
	ins.Close()
	for _, res := range []Resolution{Res1m, Res1h} {
		ins, err := tx.Prepare(`INSERT INTO ` + res.table() + `(tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		width := res.Width()
		for bucket := end - rollupDays*86_400_000; bucket < end; bucket += width {
			a := agg{min: math.Inf(1), max: math.Inf(-1)}
			for ts := bucket; ts < bucket+width; ts += 1000 {
				v := benchValue(ts)
				a.min, a.max, a.sum, a.count, a.last, a.lastTS = min(a.min, v), max(a.max, v), a.sum+v, a.count+1, v, ts
			}
			if _, err := ins.Exec(bucket, a.min, a.max, a.sum, a.count, a.last, a.lastTS); err != nil {
				b.Fatal(err)
			}
		}
		ins.Close()
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
