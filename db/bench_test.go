package db

import (
	"context"
	"fmt"
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

// BenchmarkSeries30Days is a chart of a 1 Hz tag over ranges up to 30 days
// (2.6 million readings, written straight into SQLite with their rollups),
// at the default 2,000 points: the resolution chosen by the range, and raw
// readings for comparison. Run it with:
// go test -run '^$' -bench Series30Days -benchtime 20x ./db/
func BenchmarkSeries30Days(b *testing.B) {
	s := OpenTest(b)
	ctx := context.Background()
	end := int64(1_780_000_000_000)
	start := end - 30*86_400_000
	tx, err := s.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO assets(id, kind, name, path, created_ms) VALUES (1, 'machine', 'm', 'm', 0)`); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO tags(id, machine_id, metric, topic, text, unit, role, created_ms) VALUES (1, 1, 't', 'm/t', 0, '', '', 0)`); err != nil {
		b.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO readings(tag_id, ts_ms, value) VALUES (1, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for ts := start; ts < end; ts += 1000 {
		if _, err := ins.Exec(ts, float64(ts%86_400_000)/1e6); err != nil {
			b.Fatal(err)
		}
	}
	ins.Close()
	if _, err := tx.Exec(`UPDATE rollup_backfill SET next_tag = 1, last_tag = 1, done_ms = NULL`); err != nil {
		b.Fatal(err)
	}
	for done := false; !done; {
		if done, err = backfillStep(ctx, tx, 0, 10_000_000); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		days int64
		res  Resolution
	}{
		{"range=30d", 30, ResAuto},
		{"range=7d", 7, ResAuto},
		{"range=24h", 1, ResAuto},
		{"range=30d/res=raw", 30, ResRaw},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sr SeriesResult
			for b.Loop() {
				if sr, err = s.SeriesAt(ctx, 1, end-tc.days*86_400_000, end, 2000, tc.res); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sr.Points)), "points")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/query")
			b.Logf("%s: res %s, %d points", tc.name, sr.Res, len(sr.Points))
		})
	}
}
