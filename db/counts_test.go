package db

import (
	"context"
	"testing"
)

func TestCounts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.s
	type pt struct {
		ts int64
		v  float64
	}
	addTag := func(machine int64, metric, role string, text bool, pts ...pt) {
		t.Helper()
		res, err := s.w.Exec(`INSERT INTO tags(machine_id, metric, topic, role, text, created_ms) VALUES (?, ?, ?, ?, ?, 1)`,
			machine, metric, metric, role, text)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		for _, p := range pts {
			if _, err := s.w.Exec(`INSERT INTO readings(tag_id, ts_ms, value) VALUES (?, ?, ?)`, id, p.ts, p.v); err != nil {
				t.Fatal(err)
			}
		}
	}
	// m1 counts good and scrap. The good counter is reset to 0 at 400 (it
	// read 130 before, far from any wrap), so from 0 to 1000:
	//   baseline 100 (at -50) → 110 → 130, reset → 5 → 25: 10 + 20 + 5 + 20 = 55
	// scrap: baseline 3 → 4 → 7: 4.
	addTag(f.m1, "good", "good", false, pt{-50, 100}, pt{100, 110}, pt{300, 130}, pt{400, 5}, pt{900, 25}, pt{1000, 40})
	addTag(f.m1, "scrap", "scrap", false, pt{-10, 3}, pt{200, 4}, pt{800, 7})
	// A text tag with a counter's role is not a counter.
	addTag(f.m1, "good_parts", "good", true, pt{500, 99999})
	// m2 has only a total and a scrap counter: good = total − scrap.
	//   total: 1000 → 1060 = 60; scrap: 0 → 10 = 10; good = 50.
	addTag(f.m2, "count", "total", false, pt{-1, 1000}, pt{500, 1060})
	addTag(f.m2, "scrap", "scrap", false, pt{-1, 0}, pt{500, 10})
	// m3 has a total counter that wrapped at 2^16: 65530 → 4 is 6 + 4 = 10.
	// Its scrap counter says more than the total (a device error): good
	// stays at 0, never negative.
	addTag(f.m3, "total", "total", false, pt{0, 65530}, pt{100, 4})
	addTag(f.m3, "scrap", "scrap", false, pt{0, 0}, pt{100, 12})

	tests := []struct {
		name        string
		machine     int64
		from, to    int64
		good, scrap float64
	}{
		{"reset", f.m1, 0, 1000, 55, 4},
		{"first half", f.m1, 0, 400, 30, 1},
		{"second half adds up", f.m1, 400, 1000, 25, 3},
		{"reading at to belongs to the next period", f.m1, 1000, 2000, 15, 0},
		{"no readings in the period", f.m1, 2000, 3000, 0, 0},
		{"total only", f.m2, 0, 1000, 50, 10},
		{"wrap, scrap above total", f.m3, 0, 1000, 0, 12},
		{"no counters", 99999, 0, 1000, 0, 0},
		{"open end", f.m1, 400, 0, 40, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, scrap, err := s.Counts(ctx, tt.machine, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if good != tt.good || scrap != tt.scrap {
				t.Errorf("Counts = (%v, %v), want (%v, %v)", good, scrap, tt.good, tt.scrap)
			}
		})
	}
}

func TestCountsGoodAndTotal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.s
	for _, tag := range []struct {
		metric string
		a, b   float64
	}{{"good", 10, 18}, {"total", 100, 110}} {
		res, err := s.w.Exec(`INSERT INTO tags(machine_id, metric, topic, role, created_ms) VALUES (?, ?, ?, ?, 1)`,
			f.m1, tag.metric, tag.metric, tag.metric)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := s.w.Exec(`INSERT INTO readings(tag_id, ts_ms, value) VALUES (?, 0, ?), (?, 10, ?)`, id, tag.a, id, tag.b); err != nil {
			t.Fatal(err)
		}
	}
	// Without a scrap counter, scrap = total − good = 10 − 8.
	good, scrap, err := s.Counts(ctx, f.m1, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if good != 8 || scrap != 2 {
		t.Errorf("Counts = (%v, %v), want (8, 2)", good, scrap)
	}
}
