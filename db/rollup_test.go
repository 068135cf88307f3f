package db

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

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
