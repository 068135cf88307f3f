package plant

import (
	"math"
	"testing"
)

func TestCountIncrease(t *testing.T) {
	pts := func(vs ...float64) []Point {
		out := make([]Point, len(vs))
		for i, v := range vs {
			out[i] = Point{TS: int64(i+1) * 1000, Value: v}
		}
		return out
	}
	at := func(v float64) *Point { return &Point{TS: 0, Value: v} }
	tests := []struct {
		name   string
		before *Point
		pts    []Point
		mode   CounterMode
		want   float64
	}{
		{"no readings", nil, nil, Monotonic, 0},
		{"only before", at(10), nil, Monotonic, 0},
		// 100 → 110 → 125: 10 + 15.
		{"steady count from before", at(100), pts(110, 125), Monotonic, 25},
		// Without before the first point is the baseline: 125 − 110.
		{"no reading before the period", nil, pts(110, 125), Monotonic, 15},
		// 100 → 120 (+20), drop to 5 is a reset counting from 0 (+5), → 8 (+3).
		{"reset", at(100), pts(120, 5, 8), Monotonic, 28},
		// 65530 → 65535 (+5), → 3 wraps at 2^16: 1 to reach 65536 ≡ 0, then 3 (+4).
		{"wrap at 65535", at(65530), pts(65535, 3), Monotonic, 9},
		// 4294967290 → 6: 2^32 − 4294967290 = 6, then 6 (+12).
		{"wrap at 2^32", at(4294967290), pts(6), Monotonic, 12},
		// 60000 is 8.4 % below 2^16: a reset, not a wrap, so 10 counts from 0.
		{"drop far from a wrap is a reset", at(60000), pts(10), Monotonic, 10},
		// NaN and the negative reading are skipped: 10 → 12 → 15.
		{"NaN and negative readings ignored", at(10), pts(math.NaN(), 12, -4, 15), Monotonic, 5},
		{"NaN before is no baseline", at(math.NaN()), pts(7, 9), Monotonic, 2},
		{"repeated values make nothing", at(50), pts(50, 50, 50), Monotonic, 0},
		// 1 + 1 + 2; the reading before the period is outside it.
		{"increments", at(5), pts(1, 1, 2), Increments, 4},
		{"negative increments and NaN ignored", nil, pts(1, -3, math.NaN(), 2), Increments, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountIncrease(tt.before, tt.pts, tt.mode); got != tt.want {
				t.Errorf("CountIncrease = %v, want %v", got, tt.want)
			}
		})
	}
}
