package db

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"andon/plant"
)

// wantRollups computes every bucket of a resolution from the readings with
// SQL, the reference the rollup tables must match.
func wantRollups(t *testing.T, s *Store, res Resolution) map[bucketKey]agg {
	t.Helper()
	b := bucketSQL("ts_ms", res.Width())
	rows, err := s.r.Query(`
		SELECT g.tag_id, g.b, g.mn, g.mx, g.sm, g.n,
			(SELECT value FROM readings r WHERE r.tag_id = g.tag_id AND r.ts_ms = g.lt), g.lt
		FROM (SELECT tag_id, ` + b + ` AS b, MIN(value) AS mn, MAX(value) AS mx, SUM(value) AS sm,
			COUNT(*) AS n, MAX(ts_ms) AS lt FROM readings GROUP BY tag_id, b) g`)
	if err != nil {
		t.Fatal(err)
	}
	return scanAggs(t, rows)
}

func gotRollups(t *testing.T, s *Store, res Resolution) map[bucketKey]agg {
	t.Helper()
	rows, err := s.r.Query(`SELECT tag_id, bucket_ms, min, max, sum, count, last, last_ts_ms FROM ` + res.table())
	if err != nil {
		t.Fatal(err)
	}
	return scanAggs(t, rows)
}

func scanAggs(t *testing.T, rows *sql.Rows) map[bucketKey]agg {
	t.Helper()
	defer rows.Close()
	out := make(map[bucketKey]agg)
	for rows.Next() {
		var k bucketKey
		var a agg
		if err := rows.Scan(&k.tag, &k.bucket, &a.min, &a.max, &a.sum, &a.count, &a.last, &a.lastTS); err != nil {
			t.Fatal(err)
		}
		out[k] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRollups compares both rollup tables, bucket by bucket, with SQL over
// the readings, and the maintained row counts with COUNT(*).
func checkRollups(t *testing.T, s *Store) {
	t.Helper()
	for _, res := range []Resolution{Res1m, Res1h} {
		want, got := wantRollups(t, s, res), gotRollups(t, s, res)
		if len(want) == 0 {
			t.Fatalf("%s: no readings to compare", res)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d buckets, want %d", res, len(got), len(want))
		}
		bad := 0
		for k, w := range want {
			g, ok := got[k]
			// Sums are added in a different order (per batch, then per
			// bucket), so they may differ in the last bits.
			if !ok || g.min != w.min || g.max != w.max || g.count != w.count || g.last != w.last ||
				g.lastTS != w.lastTS || math.Abs(g.sum-w.sum) > 1e-9*max(1, math.Abs(w.sum)) {
				if bad++; bad <= 5 {
					t.Errorf("%s tag %d bucket %d: got %+v (present %v), want %+v", res, k.tag, k.bucket, g, ok, w)
				}
			}
		}
	}
	for _, res := range Resolutions {
		var maintained int64
		if err := s.r.QueryRow(`SELECT rows FROM storage_counts WHERE resolution = ?`, string(res)).Scan(&maintained); err != nil {
			t.Fatal(err)
		}
		if n := int64(countRows(t, s, res.table())); maintained != n {
			t.Errorf("storage_counts[%s] = %d, want COUNT(*) %d", res, maintained, n)
		}
	}
}

// randomReadings makes readings of a few tags over a few hours, in random
// order, with redeliveries (same tag and time, another value) mixed in.
func randomReadings(rng *rand.Rand, n int, base int64) []plant.Reading {
	var rs []plant.Reading
	for range n {
		ts := base + rng.Int64N(5*3_600_000) - 600_000 // some before base: late readings
		switch m := rng.IntN(4); m {
		case 3:
			rs = append(rs, word(press3, "state", ts, []string{"running", "idle", "down"}[rng.IntN(3)]))
		default:
			rs = append(rs, reading(press3, fmt.Sprintf("m%d", m), ts, math.Round(rng.NormFloat64()*1000)/10))
		}
		if rng.IntN(10) == 0 {
			dup := rs[len(rs)-1]
			dup.Value += 1000 // a redelivery must not count, whatever it carries
			rs = append(rs, dup)
		}
	}
	rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	return rs
}

func TestRollupsMatchReadings(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{MaxBatch: 97})
	runWriter(t, w)
	rng := rand.New(rand.NewPCG(1, 2))
	base := int64(1_780_000_000_000) // not on an hour: buckets straddle batches
	rs := randomReadings(rng, 5000, base)
	// Batches of random sizes, so buckets are built from many batches and
	// late readings land in buckets already written.
	for len(rs) > 0 {
		n := min(len(rs), 1+rng.IntN(300))
		if err := w.Write(ctx, rs[:n]); err != nil {
			t.Fatal(err)
		}
		rs = rs[n:]
	}
	// Readings before 1970 floor into the bucket below, in Go and in SQL.
	if err := w.Write(ctx, []plant.Reading{reading(press3, "m0", -1, 5), reading(press3, "m0", -60_001, 6)}); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, s)
}

func TestBucketOf(t *testing.T) {
	for _, tc := range []struct{ ts, width, want int64 }{
		{0, 60_000, 0}, {59_999, 60_000, 0}, {60_000, 60_000, 60_000}, {-1, 60_000, -60_000}, {-60_000, 60_000, -60_000},
		{3_600_000*5 + 7, 3_600_000, 3_600_000 * 5},
	} {
		if got := bucketOf(tc.ts, tc.width); got != tc.want {
			t.Errorf("bucketOf(%d, %d) = %d, want %d", tc.ts, tc.width, got, tc.want)
		}
	}
}

// writeConcurrently queues rs from 8 goroutines in chunks of random sizes,
// as QoS 1 devices do (Enqueue, acknowledged after the commit), and waits
// for every commit.
func writeConcurrently(t *testing.T, w *Writer, rs []plant.Reading) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	per := (len(rs) + 7) / 8
	for g := range 8 {
		part := rs[min(g*per, len(rs)):min((g+1)*per, len(rs))]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for len(part) > 0 {
				n := min(len(part), 1+rng.IntN(50))
				done := make(chan error, 1)
				if err := w.Enqueue(context.Background(), part[:n], func(err error) { done <- err }); err != nil {
					errs <- err
					return
				}
				if err := <-done; err != nil {
					errs <- err
					return
				}
				part = part[n:]
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestRollupsHeldWhileStreaming: readings queued as devices queue them have
// their rollups held in memory across transactions and written less often,
// once the writer is idle, and the tables end up exactly what the readings
// say.
func TestRollupsHeldWhileStreaming(t *testing.T) {
	s := OpenTest(t)
	w := NewWriter(s, WriterConfig{MaxBatch: 97})
	runWriter(t, w)
	rs := randomReadings(rand.New(rand.NewPCG(3, 4)), 8000, 1_780_000_000_000)
	writeConcurrently(t, w, rs)
	deadline := time.Now().Add(waitTimeout)
	for countRows(t, s, "rollup_pending") > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if commits, flushes := w.commits.Load(), w.rollFlushes.Load(); flushes == 0 || flushes >= commits/2 {
		t.Errorf("%d rollup writes for %d commits: want some, and far fewer", flushes, commits)
	}
	checkRollups(t, s)
	if n := countRows(t, s, "rollup_pending"); n != 0 {
		t.Errorf("%d rows left in rollup_pending after the rollups were written", n)
	}
}

// TestWriteSeesHeldRollups: a Write's caller may read the rollups as soon as
// it returns, so its transaction writes everything held.
func TestWriteSeesHeldRollups(t *testing.T) {
	s := OpenTest(t)
	w := NewWriter(s, WriterConfig{MaxBatch: 97})
	w.holdRollups = true // no idle write: only the Write's batch writes them
	runWriter(t, w)
	base := int64(1_780_000_000_000)
	writeConcurrently(t, w, randomReadings(rand.New(rand.NewPCG(8, 1)), 2000, base))
	if countRows(t, s, "rollup_pending") == 0 {
		t.Fatal("nothing held: the test proves nothing")
	}
	if err := w.Write(context.Background(), []plant.Reading{reading(press3, "m1", base+7, 3)}); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, s)
	if n := countRows(t, s, "rollup_pending"); n != 0 {
		t.Errorf("%d rows left in rollup_pending after a Write", n)
	}
}

// TestRollupsRecoveredAfterCrash: rollups held in memory when the process
// dies are rebuilt from the readings by the next writer, before it takes
// new readings.
func TestRollupsRecoveredAfterCrash(t *testing.T) {
	s := OpenTest(t)
	base := int64(1_780_000_000_000)
	// Some rollups are written first, so recovery must merge with rows
	// that exist as well as create missing ones.
	w1 := NewWriter(s, WriterConfig{})
	stop1 := runWriter(t, w1)
	if err := w1.Write(context.Background(), randomReadings(rand.New(rand.NewPCG(7, 7)), 500, base)); err != nil {
		t.Fatal(err)
	}
	if err := stop1(); err != nil {
		t.Fatal(err)
	}

	w := NewWriter(s, WriterConfig{MaxBatch: 97})
	w.holdRollups = true // never written: as if the process died
	stop := runWriter(t, w)
	writeConcurrently(t, w, randomReadings(rand.New(rand.NewPCG(5, 6)), 4000, base))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "rollup_pending"); n == 0 {
		t.Fatal("nothing in rollup_pending: the test did not hold any rollups")
	}
	if want, got := wantRollups(t, s, Res1m), gotRollups(t, s, Res1m); len(got) >= len(want) {
		t.Fatalf("%d of %d minute buckets written before the crash: the test held nothing back", len(got), len(want))
	}

	w3 := NewWriter(s, WriterConfig{})
	runWriter(t, w3)
	if err := w3.Write(context.Background(), []plant.Reading{reading(press3, "m0", base+1, 1)}); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, s)
	if n := countRows(t, s, "rollup_pending"); n != 0 {
		t.Errorf("%d rows left in rollup_pending after recovery", n)
	}
}
