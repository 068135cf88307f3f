package plant

import "math"

// CounterMode says how a part counter's readings are to be read.
type CounterMode int

const (
	// Monotonic counters report the running total (a PLC's part counter).
	Monotonic CounterMode = iota
	// Increments counters report the parts made since the last reading
	// (one message per part, or per batch).
	Increments
)

// wrapTolerance is how close (as a fraction of the wrap value) the last value
// before a drop must be to a power of two for the drop to count as a wrap
// rather than a reset.
const wrapTolerance = 0.01

// Counters overflow at the size of their register: 16 or 32 bit unsigned.
const (
	wrap16 = 1 << 16
	wrap32 = 1 << 32
)

// CountIncrease is what a part counter's readings say was made after before
// (the last reading at or before the period's start; nil if none) up to the
// last point of pts, which are in time order.
//
// Monotonic: the increase from one reading to the next. A drop is a reset, and
// the new value counts from 0, unless the old value was within 1 % below a
// power-of-two wrap (2^16, 2^32): then the counter wrapped, and what it made is
// the rest up to the wrap plus the new value. Without before, the first point
// is the baseline: what the counter said before the period is not known, so it
// is not counted. Negative readings and NaN are ignored.
//
// Increments: the sum of the points (before is outside the period). Negative
// increments and NaN are ignored.
func CountIncrease(before *Point, pts []Point, mode CounterMode) float64 {
	var sum float64
	if mode == Increments {
		for _, p := range pts {
			if p.Value > 0 && !math.IsInf(p.Value, 0) {
				sum += p.Value
			}
		}
		return sum
	}
	prev, has := 0.0, false
	if before != nil && usable(before.Value) {
		prev, has = before.Value, true
	}
	for _, p := range pts {
		if !usable(p.Value) {
			continue
		}
		if has {
			sum += counterStep(prev, p.Value)
		}
		prev, has = p.Value, true
	}
	return sum
}

// counterStep is what a monotonic counter made from reading prev to reading v.
func counterStep(prev, v float64) float64 {
	if v >= prev {
		return v - prev
	}
	for _, w := range [...]float64{wrap16, wrap32} {
		if prev <= w && prev >= w*(1-wrapTolerance) {
			return w - prev + v
		}
	}
	return v // a reset: counting starts again from 0
}

// usable says whether a monotonic counter reading can be used at all.
func usable(v float64) bool {
	return v >= 0 && !math.IsNaN(v) && !math.IsInf(v, 0)
}
