package db

import (
	"context"
	"testing"
	"time"

	"andon/plant"
)

// writeEvery writes one reading every step ms for each of metrics tags
// over the days before end.
func writeEvery(t *testing.T, w *Writer, step int64, metrics int, days int, end int64) {
	t.Helper()
	var rs []plant.Reading
	for ts := end - int64(days)*86_400_000; ts < end; ts += step {
		for m := range metrics {
			rs = append(rs, reading(press3, "m"+string(rune('a'+m)), ts, float64(ts%7919)))
		}
	}
	if err := w.Write(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

func countWhere(t *testing.T, s *Store, res Resolution, cond string, args ...any) int64 {
	t.Helper()
	col := "bucket_ms"
	if res == ResRaw {
		col = "ts_ms"
	}
	var n int64
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM `+res.table()+` WHERE `+col+` `+cond, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func checkCounts(t *testing.T, s *Store) {
	t.Helper()
	st, err := s.Storage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Levels {
		if n := int64(countRows(t, s, l.Res.table())); l.Rows != n {
			t.Errorf("Storage rows of %s = %d, want COUNT(*) %d", l.Res, l.Rows, n)
		}
	}
}

func TestRetentionDeletesPastItsAge(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	writeEvery(t, w, 300_000, 2, 10, now.UnixMilli())

	r, err := NewRetention(ctx, w, RetentionConfig{
		Raw: 2 * time.Hour, Minute: 24 * time.Hour, Hour: 7 * 24 * time.Hour,
		StepRows: 700, Pause: time.Microsecond, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cuts fall on whole hours: 10:30 minus 2 h is cut at 08:00.
	cut := map[Resolution]int64{
		ResRaw: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC).UnixMilli(),
		Res1m:  time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMilli(),
		Res1h:  time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC).UnixMilli(),
	}
	wantGone, wantKept := map[Resolution]int64{}, map[Resolution]int64{}
	for res, c := range cut {
		wantGone[res], wantKept[res] = countWhere(t, s, res, "< ?", c), countWhere(t, s, res, ">= ?", c)
		if wantGone[res] == 0 || wantKept[res] == 0 {
			t.Fatalf("%s: %d old and %d new rows: the test needs both", res, wantGone[res], wantKept[res])
		}
	}
	d, err := r.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for res, c := range cut {
		if d[res] != wantGone[res] {
			t.Errorf("%s: deleted %d, want %d", res, d[res], wantGone[res])
		}
		if n := countWhere(t, s, res, "< ?", c); n != 0 {
			t.Errorf("%s: %d rows older than the cut are left", res, n)
		}
		if n := countWhere(t, s, res, ">= ?", c); n != wantKept[res] {
			t.Errorf("%s: %d rows kept, want %d", res, n, wantKept[res])
		}
	}
	checkCounts(t, s)
	// Nothing more to do in the same instant.
	if d, err := r.Round(ctx); err != nil || d[ResRaw]+d[Res1m]+d[Res1h] != 0 {
		t.Errorf("second round deleted %v, %v; want nothing", d, err)
	}
}

func TestRetentionWaitsForTheBackfill(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	writeEvery(t, w, 60_000, 1, 1, now.UnixMilli())
	forgetRollups(t, s)
	r, err := NewRetention(ctx, w, RetentionConfig{Raw: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := r.Round(ctx); err != nil || d[ResRaw] != 0 {
		t.Fatalf("round during the backfill deleted %v, %v; want nothing", d, err)
	}
	if err := RunBackfill(ctx, w, BackfillConfig{}); err != nil {
		t.Fatal(err)
	}
	if d, err := r.Round(ctx); err != nil || d[ResRaw] == 0 {
		t.Fatalf("round after the backfill deleted %v, %v; want old raw readings", d, err)
	}
	checkCounts(t, s)
}

func TestRetentionSizeCap(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	writeEvery(t, w, 10_000, 2, 5, now.UnixMilli()) // 86,400 readings
	used, err := s.usedBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldRaw, _, _ := s.oldest(ctx, ResRaw)
	raw, m1, h1 := int64(countRows(t, s, "readings")), int64(countRows(t, s, "rollups_1m")), int64(countRows(t, s, "rollups_1h"))

	t.Run("half", func(t *testing.T) {
		r, err := NewRetention(ctx, w, RetentionConfig{MaxBytes: used / 2, Pause: time.Microsecond, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		d, err := r.Round(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := s.usedBytes(ctx)
		if after > used/2 {
			t.Errorf("used %d bytes after the round, cap %d", after, used/2)
		}
		// Only the oldest raw readings went: what is left is every reading
		// from the new oldest on, and the rollups are whole.
		newRaw, _, _ := s.oldest(ctx, ResRaw)
		if d[ResRaw] == 0 || d[Res1m] != 0 || d[Res1h] != 0 || newRaw <= oldRaw {
			t.Errorf("deleted %v, oldest raw %d -> %d; want only the oldest raw readings", d, oldRaw, newRaw)
		}
		if n := countWhere(t, s, ResRaw, ">= ?", newRaw); n != raw-d[ResRaw] {
			t.Errorf("%d readings from %d on, want %d", n, newRaw, raw-d[ResRaw])
		}
		if int64(countRows(t, s, "rollups_1m")) != m1 || int64(countRows(t, s, "rollups_1h")) != h1 {
			t.Errorf("rollups changed under a cap that raw readings could meet")
		}
		checkCounts(t, s)
	})
	t.Run("tiny", func(t *testing.T) {
		r, err := NewRetention(ctx, w, RetentionConfig{MaxBytes: 1, Pause: time.Microsecond, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Round(ctx); err != nil {
			t.Fatal(err)
		}
		// Raw first, then minute rollups; hour rollups always stay.
		if n, m, h := countRows(t, s, "readings"), countRows(t, s, "rollups_1m"), int64(countRows(t, s, "rollups_1h")); n != 0 || m != 0 || h != h1 {
			t.Errorf("rows left: raw %d, 1m %d, 1h %d; want 0, 0, %d", n, m, h, h1)
		}
		checkCounts(t, s)
	})
}
