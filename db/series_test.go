package db

import (
	"context"
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
