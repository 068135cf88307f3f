package plant

// This file holds the types that shifts, KPIs and costs are exchanged in, so
// the store, the engine and the pages agree on them. The computations are in
// shift.go, kpi.go and cost.go.

// Clock is a time of day in minutes after midnight, in the plant's zone
// (0 to 1439; 1440 only as an end meaning midnight).
type Clock int

// Break is a planned pause within a shift, by time of day.
type Break struct {
	Name       string
	Start, End Clock
}

// Shift is a recurring working period, e.g. "Early" 06:00–14:00 Monday to
// Friday with a break at 10:00. End <= Start means it ends the next day
// (22:00–06:00). Days are the weekdays the shift starts on, time.Sunday = 0.
type Shift struct {
	ID     int64
	Name   string
	Start  Clock
	End    Clock
	Days   [7]bool
	Breaks []Break
}

// Interval is [Start, End) in ms since the epoch.
type Interval struct {
	Start, End int64
}

// Len is the interval's length in ms (0 if empty).
func (i Interval) Len() int64 { return max(0, i.End-i.Start) }

// ShiftRun is one occurrence of a shift: the Early shift of 25 November.
type ShiftRun struct {
	ShiftID int64
	Name    string
	Start   int64 // ms
	End     int64 // ms
	Breaks  []Interval
}

// Ratio is a KPI that is a fraction (availability, performance, quality,
// OEE). When OK is false the KPI is undefined and Why says why in words a
// plant manager understands ("no ideal cycle time set", "no planned
// production time"); screens show "n/a" with that reason, never NaN.
type Ratio struct {
	Value float64
	OK    bool
	Why   string
}

// Duration is a KPI that is a length of time (MTBF, MTTR), undefined like a
// Ratio when there is nothing to divide by.
type Duration struct {
	MS  int64
	OK  bool
	Why string
}

// KPI is what a machine (or a sum of machines) did in a period. All times
// are ms within the period.
type KPI struct {
	From, To int64 // the period; To is "now" for a period still going

	ScheduledMS   int64 // shift time (the whole period when no shifts are configured)
	PlannedStopMS int64 // breaks and stops whose reason is planned, within scheduled time
	PlannedMS     int64 // planned production time = scheduled − planned stops
	OfflineMS     int64 // unknown time within planned production time: its own bucket
	DownMS        int64 // unplanned stop time (micro-stops excluded), within planned production time
	MicroStopMS   int64 // time in micro-stops: a performance loss, counted inside run time
	RunMS         int64 // planned production − unplanned stops − offline

	Stops      int // unplanned stops of at least the micro-stop threshold
	MicroStops int

	Good, Scrap, Total float64

	Availability Ratio // run / (planned − offline)
	Performance  Ratio // ideal cycle × total / run
	Quality      Ratio // good / total
	OEE          Ratio // availability × performance × quality
	// PerformanceHigh flags a performance over 100 %: the ideal cycle time is
	// wrong (too slow), shown as a warning, not hidden or capped.
	PerformanceHigh bool

	MTBF Duration // run time / unplanned stops
	MTTR Duration // unplanned stop time / unplanned stops

	// Cost of downtime: unplanned stops (micro-stops included) in the period,
	// each duration × cost per hour + lost units × margin per unit.
	Cost      float64
	LostUnits float64
	CostOK    bool
	CostWhy   string
}

// ParetoRow is one bar of a Pareto of stops by reason.
type ParetoRow struct {
	ReasonID   int64 // 0 for uncoded stops
	Reason     string
	Category   string
	Planned    bool
	Stops      int
	DurationMS int64
	Cost       float64
}
