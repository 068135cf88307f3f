package plant

import (
	"cmp"
	"math"
	"slices"
)

// KPIInput is everything ComputeKPI needs about one machine in one period.
// The caller (the store or the live engine) gathers it; ComputeKPI does no I/O
// and reads no clock, so every figure can be worked by hand in a test.
type KPIInput struct {
	From, To   int64      // the period; To = now for "this shift so far"
	Runs       []ShiftRun // from Calendar.Runs(From, To); ignored when NoCalendar
	NoCalendar bool       // no shifts configured: the whole period is scheduled (a 24/7 plant)
	Spans      []Span     // the machine's state spans overlapping the period (an open span, End == 0, ends at To)
	Stops      []Stop     // the machine's stops overlapping the period (Planned decides planned or unplanned)
	Good       float64    // good parts made in the period (counter resets are handled before this)
	Scrap      float64    // scrap parts made in the period
	Config     MachineConfig
	Settings   Settings // MicroStopMS; zero means the default 2 min
}

// The reasons a KPI is n/a, in words a plant manager understands.
const (
	whyNoPlanned   = "no planned production time"
	whyAllOffline  = "offline for all planned production time"
	whyNoIdeal     = "no ideal cycle time set"
	whySomeNoIdeal = "no ideal cycle time set for some machines"
	whyNoRun       = "no run time"
	whyNoParts     = "no parts made"
	whyNoStops     = "no unplanned stops"
	whyOutOfRange  = "values out of range"
	whyNoCosts     = "no costs set for this machine"
	whySomeNoCosts = "no costs set for some machines"
	whyNoCostsAll  = "no costs set for these machines"
	whyNoLostUnits = "no ideal cycle time set: lost units not counted"
	whySomeNoLost  = "no ideal cycle time set for some machines: their lost units not counted"
)

// uncodedReason names the Pareto row of stops nobody has given a reason yet.
const uncodedReason = "Not coded yet"

const (
	msPerHour      = 3_600_000.0
	msPerSecond    = 1000.0
	defaultMicroMS = 2 * 60_000
)

// ComputeKPI works out what one machine did in a period. The definitions,
// which follow the shared design's "KPIs" section:
//
//   - Scheduled time is the shift run time within the period, breaks included;
//     with NoCalendar the whole period.
//   - Planned stop time is the breaks within runs plus the stops whose Planned
//     is true, within scheduled time. They are united before they are
//     measured, so a planned stop during a break is not counted twice.
//   - Planned production time (PlannedMS) = scheduled − planned stop time.
//   - Offline time is the planned production time no span of a known state
//     covers: Offline spans and gaps without any span (before a machine's
//     first reading). Unknown time, its own bucket, neither run nor down.
//   - Unplanned stop time is the stops with Planned false, within planned
//     production time and outside offline time. A stop whose whole duration
//     (End, or To while ongoing, minus Start) is under the micro-stop threshold
//     is a micro-stop: counted in MicroStops and MicroStopMS and left inside run
//     time, as a performance loss. Deciding by the whole duration, not the part
//     within the period, keeps a 10-minute stop crossing a shift change from
//     becoming two micro-stops.
//   - DownMS is the unplanned stop time of the other stops, and Stops their
//     number. A stop overlapping several periods counts once in each of them,
//     so the Stops of two shifts can add up to one more than the day's.
//   - RunMS = PlannedMS − DownMS − OfflineMS.
//   - Availability = RunMS / (PlannedMS − OfflineMS).
//   - Performance = IdealCycleS × Total / RunMS (in seconds); over 1 it is kept
//     and flagged in PerformanceHigh, because the ideal cycle time is wrong.
//   - Quality = Good / Total, Total = Good + Scrap.
//   - OEE = Availability × Performance × Quality, which equals
//     IdealCycleS × Good / (PlannedMS − OfflineMS).
//   - MTBF = RunMS / Stops; MTTR = DownMS / Stops.
//   - Cost is the cost of the unplanned stop time, micro-stops included:
//     hours × CostPerHour + lost units × MarginPerUnit, lost units = seconds /
//     IdealCycleS. It uses the same time DownMS and MicroStopMS count, not the
//     stops' whole length within the period: a machine left idle over a weekend
//     without shifts pays no wages and loses no parts. Planned stops cost
//     nothing.
//
// Bad input gives a defined result, never a panic, NaN or infinity: a period
// with To <= From is empty, spans and stops ending before they start are
// ignored, overlapping spans and stops are united, negative or non-finite
// counts and settings count as zero (not set).
func ComputeKPI(in KPIInput) KPI {
	k := KPI{From: in.From, To: in.To}
	k.Good, k.Scrap = nonNeg(in.Good), nonNeg(in.Scrap)
	k.Total = k.Good + k.Scrap
	cfg := cleanConfig(in.Config)
	microMS := in.Settings.MicroStopMS
	if microMS <= 0 {
		microMS = defaultMicroMS
	}

	var scheduled, breaks []Interval
	if in.To > in.From {
		period := []Interval{{in.From, in.To}}
		if in.NoCalendar {
			scheduled = period
		} else {
			runs := make([]Interval, 0, len(in.Runs))
			for _, r := range in.Runs {
				runs = append(runs, Interval{r.Start, r.End})
				breaks = append(breaks, r.Breaks...)
			}
			scheduled = ivIntersect(ivUnion(runs), period)
			breaks = ivIntersect(ivUnion(breaks), scheduled)
		}
	}

	var planned []Interval
	for _, s := range in.Stops {
		if s.Planned {
			planned = append(planned, Interval{s.Start, s.EndOr(in.To)})
		}
	}
	plannedStops := ivUnion(append(breaks, ivIntersect(ivUnion(planned), scheduled)...))
	production := ivSubtract(scheduled, plannedStops)

	// Offline is every moment no span vouches for: Offline spans, and the
	// gaps no span covers (before a machine's first reading, or before Andon
	// ran). Unknown time must never pass for run time.
	var known []Interval
	for _, s := range in.Spans {
		if s.State != Offline {
			known = append(known, Interval{s.Start, s.EndOr(in.To)})
		}
	}
	offline := ivSubtract(production, ivUnion(known))
	online := ivSubtract(production, offline)

	var down, micro []Interval
	for _, s := range in.Stops {
		if s.Planned {
			continue
		}
		whole := Interval{s.Start, s.EndOr(in.To)}
		if whole.Len() == 0 {
			continue
		}
		part := ivIntersect([]Interval{whole}, online)
		if len(part) == 0 {
			continue
		}
		if whole.Len() < microMS {
			k.MicroStops++
			micro = append(micro, part...)
		} else {
			k.Stops++
			down = append(down, part...)
		}
	}
	down = ivUnion(down)
	// A micro-stop overlapping a longer stop (bad data) is already down time.
	micro = ivSubtract(ivUnion(micro), down)

	k.ScheduledMS = ivTotal(scheduled)
	k.PlannedStopMS = ivTotal(plannedStops)
	k.PlannedMS = ivTotal(production)
	k.OfflineMS = ivTotal(offline)
	k.DownMS = ivTotal(down)
	k.MicroStopMS = ivTotal(micro)
	// Down and offline are disjoint parts of production, so this is never
	// negative; max keeps it so should that ever change.
	k.RunMS = max(0, k.PlannedMS-k.DownMS-k.OfflineMS)

	k.Availability = availability(k.RunMS, k.PlannedMS, k.OfflineMS)
	k.Performance = performance(cfg.IdealCycleS*k.Total, cfg.IdealCycleS > 0, k.RunMS, whyNoIdeal)
	k.PerformanceHigh = k.Performance.OK && k.Performance.Value > 1
	k.Quality = quality(k.Good, k.Total)
	k.OEE = oee(k.Availability, k.Performance, k.Quality)
	k.MTBF, k.MTTR = mtbf(k.RunMS, k.DownMS, k.Stops)

	k.Cost, k.LostUnits, k.CostOK, k.CostWhy = costOf(k.DownMS+k.MicroStopMS, cfg)
	return k
}

// SumKPI adds up the KPIs of several machines (a line, the plant) for one
// period. Times, counts and costs are summed; the ratios are worked from the
// sums, not averaged, so a machine planned for longer weighs more:
//
//   - Availability = ΣRun / Σ(Planned − Offline)
//   - Performance = Σ(IdealCycleS_i × Total_i) / ΣRun; idealTotals[i] is
//     machine i's IdealCycleS × Total, passed in because a KPI does not keep its
//     machine's ideal cycle time. If a machine that ran has no ideal cycle time,
//     the sum would understate performance, so it is n/a instead.
//   - Quality = ΣGood / ΣTotal; OEE = A × P × Q
//   - MTBF = ΣRun / ΣStops; MTTR = ΣDown / ΣStops
//
// A missing idealTotals entry counts as zero.
func SumKPI(from, to int64, ks []KPI, idealTotals []float64) KPI {
	s := KPI{From: from, To: to}
	var ideal float64
	missingIdeal, missingLost := false, false
	costOK, costMissing := 0, 0
	for i, k := range ks {
		s.ScheduledMS += k.ScheduledMS
		s.PlannedStopMS += k.PlannedStopMS
		s.PlannedMS += k.PlannedMS
		s.OfflineMS += k.OfflineMS
		s.DownMS += k.DownMS
		s.MicroStopMS += k.MicroStopMS
		s.RunMS += k.RunMS
		s.Stops += k.Stops
		s.MicroStops += k.MicroStops
		s.Good += nonNeg(k.Good)
		s.Scrap += nonNeg(k.Scrap)
		s.Cost += nonNeg(k.Cost)
		s.LostUnits += nonNeg(k.LostUnits)
		if i < len(idealTotals) {
			ideal += nonNeg(idealTotals[i])
		}
		if k.RunMS > 0 && !k.Performance.OK && k.Performance.Why == whyNoIdeal {
			missingIdeal = true
		}
		if k.CostOK {
			costOK++
			if k.CostWhy != "" {
				missingLost = true
			}
		} else {
			costMissing++
		}
	}
	s.Total = s.Good + s.Scrap

	s.Availability = availability(s.RunMS, s.PlannedMS, s.OfflineMS)
	switch {
	case missingIdeal:
		s.Performance = Ratio{Why: whySomeNoIdeal}
	default:
		s.Performance = performance(ideal, ideal > 0 || s.Total == 0, s.RunMS, whyNoIdeal)
	}
	s.PerformanceHigh = s.Performance.OK && s.Performance.Value > 1
	s.Quality = quality(s.Good, s.Total)
	s.OEE = oee(s.Availability, s.Performance, s.Quality)
	s.MTBF, s.MTTR = mtbf(s.RunMS, s.DownMS, s.Stops)

	switch {
	case len(ks) == 0 || costOK == 0:
		s.CostWhy = whyNoCostsAll
	case costMissing > 0:
		s.CostOK, s.CostWhy = true, whySomeNoCosts
	case missingLost:
		s.CostOK, s.CostWhy = true, whySomeNoLost
	default:
		s.CostOK = true
	}
	return s
}

func availability(run, planned, offline int64) Ratio {
	switch {
	case planned <= 0:
		return Ratio{Why: whyNoPlanned}
	case planned-offline <= 0:
		return Ratio{Why: whyAllOffline}
	}
	return okRatio(float64(run) / float64(planned-offline))
}

// performance is idealSeconds (ideal cycle × parts) over run time. haveIdeal
// false makes it n/a with why.
func performance(idealSeconds float64, haveIdeal bool, run int64, why string) Ratio {
	switch {
	case !haveIdeal:
		return Ratio{Why: why}
	case run <= 0:
		return Ratio{Why: whyNoRun}
	}
	return okRatio(idealSeconds / (float64(run) / msPerSecond))
}

func quality(good, total float64) Ratio {
	if total <= 0 {
		return Ratio{Why: whyNoParts}
	}
	return okRatio(good / total)
}

// oee is A × P × Q, n/a with the reason of the first of them that is n/a.
func oee(a, p, q Ratio) Ratio {
	for _, r := range []Ratio{a, p, q} {
		if !r.OK {
			return Ratio{Why: r.Why}
		}
	}
	return okRatio(a.Value * p.Value * q.Value)
}

func mtbf(run, down int64, stops int) (Duration, Duration) {
	if stops <= 0 {
		return Duration{Why: whyNoStops}, Duration{Why: whyNoStops}
	}
	n := int64(stops)
	return Duration{MS: run / n, OK: true}, Duration{MS: down / n, OK: true}
}

// okRatio is v as an OK Ratio, or n/a when v is not a finite number (a
// configured value so large that the product overflowed).
func okRatio(v float64) Ratio {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Ratio{Why: whyOutOfRange}
	}
	return Ratio{Value: v, OK: true}
}

// nonNeg is v, or 0 for a negative or non-finite v: counts and money that
// cannot be trusted count as nothing rather than poisoning every sum.
func nonNeg(v float64) float64 {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// cleanConfig treats negative and non-finite settings as not set.
func cleanConfig(c MachineConfig) MachineConfig {
	return MachineConfig{
		IdealCycleS:   nonNeg(c.IdealCycleS),
		CostPerHour:   nonNeg(c.CostPerHour),
		MarginPerUnit: nonNeg(c.MarginPerUnit),
	}
}

// ivUnion is the union of ivs: sorted by start, overlapping and touching
// intervals merged, empty ones (End <= Start) dropped. It does not change ivs.
func ivUnion(ivs []Interval) []Interval {
	out := make([]Interval, 0, len(ivs))
	for _, iv := range ivs {
		if iv.Len() > 0 {
			out = append(out, iv)
		}
	}
	if len(out) < 2 {
		return out
	}
	slices.SortFunc(out, func(a, b Interval) int { return cmp.Compare(a.Start, b.Start) })
	n := 0
	for _, iv := range out[1:] {
		if iv.Start <= out[n].End {
			out[n].End = max(out[n].End, iv.End)
			continue
		}
		n++
		out[n] = iv
	}
	return out[:n+1]
}

// ivIntersect is the time in both a and b, each a union (sorted, disjoint).
func ivIntersect(a, b []Interval) []Interval {
	var out []Interval
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := max(a[i].Start, b[j].Start), min(a[i].End, b[j].End)
		if lo < hi {
			out = append(out, Interval{lo, hi})
		}
		if a[i].End < b[j].End {
			i++
		} else {
			j++
		}
	}
	return out
}

// ivSubtract is the time in a but not in b, each a union (sorted, disjoint).
func ivSubtract(a, b []Interval) []Interval {
	var out []Interval
	j := 0
	for _, iv := range a {
		start := iv.Start
		for j < len(b) && b[j].End <= start {
			j++
		}
		for k := j; k < len(b) && b[k].Start < iv.End; k++ {
			if b[k].Start > start {
				out = append(out, Interval{start, b[k].Start})
			}
			start = max(start, b[k].End)
		}
		if start < iv.End {
			out = append(out, Interval{start, iv.End})
		}
	}
	return out
}

// ivTotal is the summed length of ivs.
func ivTotal(ivs []Interval) int64 {
	var n int64
	for _, iv := range ivs {
		n += iv.Len()
	}
	return n
}
