package plant

import (
	"cmp"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// kpiT0 is 06:00 UTC on Wednesday 25 November 2026; the scenarios below give
// times as minutes after it, so 06:00–14:00 is atMin(0)–atMin(480).
const kpiT0 = 1_795_586_400_000

func atMin(m float64) int64 { return kpiT0 + int64(m*60_000) }

const minMS = int64(60_000)

// kpiWant is the part of a KPI a scenario checks. A nil ratio means "must be
// n/a", with the reason in the matching Why field; a duration of -1 means n/a
// ("no unplanned stops").
type kpiWant struct {
	scheduled, plannedStop, planned, offline, down, micro, run int64 // minutes
	microMS                                                    int64 // if set, checked instead of micro (for parts of a minute)
	stops, microStops                                          int
	a, p, q, oee                                               *float64
	aWhy, pWhy, qWhy, oeeWhy                                   string
	high                                                       bool
	mtbf, mttr                                                 int64 // ms; -1 = n/a
	cost, lost                                                 float64
	costOK                                                     bool
	costWhy                                                    string
}

func pf(v float64) *float64 { return &v }

func approxEq(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func checkKPI(t *testing.T, got KPI, w kpiWant) {
	t.Helper()
	times := []struct {
		name      string
		got, want int64
	}{
		{"ScheduledMS", got.ScheduledMS, w.scheduled * minMS},
		{"PlannedStopMS", got.PlannedStopMS, w.plannedStop * minMS},
		{"PlannedMS", got.PlannedMS, w.planned * minMS},
		{"OfflineMS", got.OfflineMS, w.offline * minMS},
		{"DownMS", got.DownMS, w.down * minMS},
		{"MicroStopMS", got.MicroStopMS, cmp.Or(w.microMS, w.micro*minMS)},
		{"RunMS", got.RunMS, w.run * minMS},
	}
	for _, tt := range times {
		if tt.got != tt.want {
			t.Errorf("%s = %d ms (%.2f min), want %d min", tt.name, tt.got, float64(tt.got)/float64(minMS), tt.want/minMS)
		}
	}
	if got.Stops != w.stops || got.MicroStops != w.microStops {
		t.Errorf("Stops, MicroStops = %d, %d; want %d, %d", got.Stops, got.MicroStops, w.stops, w.microStops)
	}
	ratios := []struct {
		name string
		got  Ratio
		want *float64
		why  string
	}{
		{"Availability", got.Availability, w.a, w.aWhy},
		{"Performance", got.Performance, w.p, w.pWhy},
		{"Quality", got.Quality, w.q, w.qWhy},
		{"OEE", got.OEE, w.oee, w.oeeWhy},
	}
	for _, r := range ratios {
		switch {
		case r.want == nil && (r.got.OK || r.got.Why != r.why):
			t.Errorf("%s = %+v, want n/a %q", r.name, r.got, r.why)
		case r.want != nil && (!r.got.OK || !approxEq(r.got.Value, *r.want) || r.got.Why != ""):
			t.Errorf("%s = %+v, want %.6f", r.name, r.got, *r.want)
		}
	}
	if got.PerformanceHigh != w.high {
		t.Errorf("PerformanceHigh = %v, want %v", got.PerformanceHigh, w.high)
	}
	durs := []struct {
		name string
		got  Duration
		want int64
	}{{"MTBF", got.MTBF, w.mtbf}, {"MTTR", got.MTTR, w.mttr}}
	for _, d := range durs {
		switch {
		case d.want < 0 && (d.got.OK || d.got.Why != "no unplanned stops"):
			t.Errorf("%s = %+v, want n/a", d.name, d.got)
		case d.want >= 0 && (!d.got.OK || d.got.MS != d.want):
			t.Errorf("%s = %+v, want %d ms", d.name, d.got, d.want)
		}
	}
	if !approxEq(got.Cost, w.cost) || !approxEq(got.LostUnits, w.lost) || got.CostOK != w.costOK || got.CostWhy != w.costWhy {
		t.Errorf("Cost, LostUnits, CostOK, CostWhy = %v, %v, %v, %q; want %v, %v, %v, %q",
			got.Cost, got.LostUnits, got.CostOK, got.CostWhy, w.cost, w.lost, w.costOK, w.costWhy)
	}
	checkSane(t, got)
}

// checkSane asserts what must hold for any input: no NaN or infinity in any
// number, no negative time, and the time buckets adding up.
func checkSane(t *testing.T, k KPI) {
	t.Helper()
	walkFloats(reflect.ValueOf(k), "KPI", func(path string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v", path, v)
		}
	})
	for name, v := range map[string]int64{"ScheduledMS": k.ScheduledMS, "PlannedStopMS": k.PlannedStopMS, "PlannedMS": k.PlannedMS,
		"OfflineMS": k.OfflineMS, "DownMS": k.DownMS, "MicroStopMS": k.MicroStopMS, "RunMS": k.RunMS} {
		if v < 0 {
			t.Errorf("%s = %d < 0", name, v)
		}
	}
	if k.PlannedMS+k.PlannedStopMS != k.ScheduledMS {
		t.Errorf("planned %d + planned stops %d != scheduled %d", k.PlannedMS, k.PlannedStopMS, k.ScheduledMS)
	}
	if k.RunMS+k.DownMS+k.OfflineMS != k.PlannedMS {
		t.Errorf("run %d + down %d + offline %d != planned %d", k.RunMS, k.DownMS, k.OfflineMS, k.PlannedMS)
	}
	if k.MicroStopMS > k.RunMS {
		t.Errorf("micro-stops %d outside run time %d", k.MicroStopMS, k.RunMS)
	}
}

func walkFloats(v reflect.Value, path string, fn func(string, float64)) {
	switch v.Kind() {
	case reflect.Float64:
		fn(path, v.Float())
	case reflect.Struct:
		for i := range v.NumField() {
			walkFloats(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
		}
	}
}

func ivMin(from, to float64) Interval { return Interval{atMin(from), atMin(to)} }

// shift0614 is the run 06:00–14:00 with the 10:00–10:30 break.
func shift0614() []ShiftRun {
	return []ShiftRun{{ShiftID: 1, Name: "Early", Start: atMin(0), End: atMin(480), Breaks: []Interval{ivMin(240, 270)}}}
}

func testStop(id int64, st State, from, to float64, planned bool) Stop {
	s := Stop{ID: id, MachineID: 1, State: st, Start: atMin(from), End: atMin(to), Planned: planned}
	if to < 0 { // ongoing
		s.End = 0
	}
	return s
}

func TestComputeKPI(t *testing.T) {
	costly := MachineConfig{IdealCycleS: 30, CostPerHour: 120, MarginPerUnit: 2.5}
	// The full shift of the design: 06:00–14:00 with a 30 min break at 10:00,
	// a 40 min breakdown at 07:00, micro-stops of 1 min at 08:00, 09:00 and
	// 11:00, and 20 min of planned maintenance at 12:00.
	fullShift := []Stop{
		testStop(1, Down, 60, 100, false),
		testStop(2, Idle, 120, 121, false),
		testStop(3, Idle, 180, 181, false),
		testStop(4, Idle, 300, 301, false),
		testStop(5, PlannedStop, 360, 380, true),
	}
	fullSpans := []Span{
		{State: Running, Start: atMin(0), End: atMin(60)},
		{State: Down, Start: atMin(60), End: atMin(100)},
		{State: Running, Start: atMin(100), End: atMin(360)},
		{State: PlannedStop, Start: atMin(360), End: atMin(380)},
		{State: Running, Start: atMin(380)}, // open: ends at To
	}

	tests := []struct {
		name string
		in   KPIInput
		want kpiWant
	}{
		{
			// scheduled  = 480 min
			// planned stops = break 30 + maintenance 20 = 50 min
			// planned    = 480 − 50 = 430 min
			// down       = 40 min (1 stop); micro-stops 3 × 1 min stay in run time
			// run        = 430 − 40 = 390 min
			// A   = 390 / 430                         = 0.906977
			// P   = 30 s × 720 / (390 × 60 s = 23400) = 21600 / 23400 = 0.923077
			// Q   = 700 / 720                         = 0.972222
			// OEE = A × P × Q = 30 × 700 / (430 × 60) = 21000 / 25800 = 0.813953
			// MTBF = 390 min / 1, MTTR = 40 min / 1
			// cost: unplanned stop time 40 + 3 = 43 min
			//   43/60 h × 120 = 86; lost units 43 × 60 / 30 = 86, × 2.5 = 215; total 301
			name: "full shift with break, breakdown, micro-stops, maintenance and scrap",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: shift0614(), Spans: fullSpans, Stops: fullShift,
				Good: 700, Scrap: 20, Config: costly, Settings: DefaultSettings()},
			want: kpiWant{scheduled: 480, plannedStop: 50, planned: 430, down: 40, micro: 3, run: 390,
				stops: 1, microStops: 3,
				a: pf(390.0 / 430), p: pf(21600.0 / 23400), q: pf(700.0 / 720), oee: pf(21000.0 / 25800),
				mtbf: 390 * minMS, mttr: 40 * minMS, cost: 301, lost: 86, costOK: true},
		},
		{
			// The same shift with 780 good + 20 scrap: P = 30 × 800 / 23400 =
			// 1.025641, over 100 %: kept and flagged. Q = 780 / 800 = 0.975.
			// OEE = 30 × 780 / 25800 = 0.906977.
			name: "performance over 100 % is kept and flagged",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: shift0614(), Spans: fullSpans, Stops: fullShift,
				Good: 780, Scrap: 20, Config: costly},
			want: kpiWant{scheduled: 480, plannedStop: 50, planned: 430, down: 40, micro: 3, run: 390,
				stops: 1, microStops: 3,
				a: pf(390.0 / 430), p: pf(24000.0 / 23400), q: pf(0.975), oee: pf(23400.0 / 25800), high: true,
				mtbf: 390 * minMS, mttr: 40 * minMS, cost: 301, lost: 86, costOK: true},
		},
		{
			// A planned stop 10:15–10:45 overlaps the break 10:00–10:30:
			// planned stop time is 10:00–10:45 = 45 min, not 30 + 30. A
			// breakdown 10:05–10:20 lies wholly inside the break, so it is
			// neither down time nor a stop.
			// planned = 480 − 45 = 435; run = 435; A = 1.
			name: "planned stop overlapping a break and a stop inside the break",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: shift0614(),
				Stops: []Stop{testStop(1, PlannedStop, 255, 285, true), testStop(2, Down, 245, 260, false)},
				Good:  0, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 60}},
			want: kpiWant{scheduled: 480, plannedStop: 45, planned: 435, run: 435,
				a: pf(1), p: pf(0), qWhy: "no parts made", oeeWhy: "no parts made",
				mtbf: -1, mttr: -1, costOK: true},
		},
		{
			// Early shift 06:00–14:00, period = that shift. A breakdown
			// 13:50–14:10 crosses into the late shift: the early shift gets
			// 10 min of it and counts it as one stop (the late shift does too:
			// see TestComputeKPIShiftChangeWholeDay).
			// run = 480 − 10 = 470; A = 470/480; P = 30 × 940 / (470 × 60) = 1.
			// lost units 600 s / 30 = 20.
			name: "stop crossing the shift change, early shift's part",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Stops: []Stop{testStop(1, Down, 470, 490, false)}, Good: 940, Config: MachineConfig{IdealCycleS: 30}},
			want: kpiWant{scheduled: 480, planned: 480, down: 10, run: 470, stops: 1,
				a: pf(470.0 / 480), p: pf(1), q: pf(1), oee: pf(470.0 / 480),
				mtbf: 470 * minMS, mttr: 10 * minMS, lost: 20, costWhy: "no costs set for this machine"},
		},
		{
			// The late shift 14:00–22:00 gets 14:00–14:10 of the same stop.
			name: "stop crossing the shift change, late shift's part",
			in: KPIInput{From: atMin(480), To: atMin(960), Runs: []ShiftRun{{Start: atMin(480), End: atMin(960)}},
				Stops: []Stop{testStop(1, Down, 470, 490, false)}, Good: 940, Config: MachineConfig{IdealCycleS: 30}},
			want: kpiWant{scheduled: 480, planned: 480, down: 10, run: 470, stops: 1,
				a: pf(470.0 / 480), p: pf(1), q: pf(1), oee: pf(470.0 / 480),
				mtbf: 470 * minMS, mttr: 10 * minMS, lost: 20, costWhy: "no costs set for this machine"},
		},
		{
			// A 3 min stop 13:59–14:02 leaves only 1 min in the early shift,
			// but its whole length decides: a stop, not a micro-stop.
			name: "short stop crossing the shift change is no micro-stop",
			in: KPIInput{From: atMin(0), To: atMin(480), NoCalendar: true,
				Stops: []Stop{testStop(1, Down, 479, 482, false)}, Config: MachineConfig{IdealCycleS: 60}},
			want: kpiWant{scheduled: 480, planned: 480, down: 1, run: 479, stops: 1,
				a: pf(479.0 / 480), p: pf(0), qWhy: "no parts made", oeeWhy: "no parts made",
				mtbf: 479 * minMS, mttr: minMS, lost: 1, costWhy: "no costs set for this machine"},
		},
		{
			// A 90 s stop 13:59:30–14:01 is a micro-stop, with 30 s in the
			// early shift, and left inside run time.
			name: "micro-stop crossing the shift change",
			in: KPIInput{From: atMin(0), To: atMin(480), NoCalendar: true,
				Stops: []Stop{testStop(1, Idle, 479.5, 481, false)}, Config: MachineConfig{IdealCycleS: 60}},
			want: kpiWant{scheduled: 480, planned: 480, microMS: 30_000, run: 480, microStops: 1,
				a: pf(1), p: pf(0), qWhy: "no parts made", oeeWhy: "no parts made",
				mtbf: -1, mttr: -1, lost: 0.5, costWhy: "no costs set for this machine"},
		},
		{
			// "This shift so far" at 11:00 (To = now = min 300): the run is
			// clipped to 06:00–11:00 by Calendar.Runs. A stop started at 10:30
			// and is still going: 30 min down.
			// planned = 300; run = 270; A = 0.9
			// P = 30 × 500 / (270 × 60) = 15000 / 16200 = 0.925926
			// cost = 0.5 h × 60 + (1800 s / 30 = 60 units) × 1 = 90
			name: "ongoing stop at now",
			in: KPIInput{From: atMin(0), To: atMin(300), Runs: []ShiftRun{{Start: atMin(0), End: atMin(300)}},
				Stops: []Stop{testStop(1, Down, 270, -1, false)},
				Spans: []Span{{State: Running, Start: atMin(0), End: atMin(270)}, {State: Down, Start: atMin(270)}},
				Good:  500, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 60, MarginPerUnit: 1}},
			want: kpiWant{scheduled: 300, planned: 300, down: 30, run: 270, stops: 1,
				a: pf(0.9), p: pf(15000.0 / 16200), q: pf(1), oee: pf(0.9 * 15000 / 16200),
				mtbf: 270 * minMS, mttr: 30 * minMS, cost: 90, lost: 60, costOK: true},
		},
		{
			// Ten minutes later (now = min 310) the same stop has lasted 40
			// min: cost = 40/60 × 60 + 80 units × 1 = 120.
			// planned 310, run 270, A = 270/310; P = 15000 / 16200 still.
			name: "ongoing stop ten minutes later costs more",
			in: KPIInput{From: atMin(0), To: atMin(310), Runs: []ShiftRun{{Start: atMin(0), End: atMin(310)}},
				Stops: []Stop{testStop(1, Down, 270, -1, false)},
				Good:  500, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 60, MarginPerUnit: 1}},
			want: kpiWant{scheduled: 310, planned: 310, down: 40, run: 270, stops: 1,
				a: pf(270.0 / 310), p: pf(15000.0 / 16200), q: pf(1), oee: pf(270.0 / 310 * 15000 / 16200),
				mtbf: 270 * minMS, mttr: 40 * minMS, cost: 120, lost: 80, costOK: true},
		},
		{
			// An ongoing stop started 90 s before now is a micro-stop for now.
			name: "young ongoing stop is a micro-stop so far",
			in: KPIInput{From: atMin(0), To: atMin(300), NoCalendar: true,
				Stops: []Stop{testStop(1, Down, 298.5, -1, false)}, Good: 580, Config: MachineConfig{IdealCycleS: 30}},
			want: kpiWant{scheduled: 300, planned: 300, microMS: 90_000, run: 300, microStops: 1,
				a: pf(1), p: pf(17400.0 / 18000), q: pf(1), oee: pf(17400.0 / 18000),
				mtbf: -1, mttr: -1, costWhy: "no costs set for this machine", lost: 3},
		},
		{
			// Five 1 min stops and one of 1:59, all under the 2 min threshold:
			// micro = 5 × 60 s + 119 s = 419 s; no down time,
			// A = 1, MTBF/MTTR n/a. P = 30 × 900 / (480 × 60) = 27000 / 28800 = 0.9375.
			name: "micro-stops only",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Stops: []Stop{testStop(1, Idle, 10, 11, false), testStop(2, Idle, 20, 21, false), testStop(3, Idle, 30, 31, false),
					testStop(4, Idle, 40, 41, false), testStop(5, Idle, 50, 51, false), {ID: 6, State: Down, Start: atMin(60), End: atMin(60) + 119_000}},
				Good: 900, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 60}},
			want: kpiWant{scheduled: 480, planned: 480, microMS: 419_000, run: 480, microStops: 6,
				a: pf(1), p: pf(0.9375), q: pf(1), oee: pf(0.9375), mtbf: -1, mttr: -1,
				// 419 s × 60/3600 = 6.983333 €;
				// lost units 419 / 30 = 13.966667
				cost: 419.0 / 3600 * 60, lost: 419.0 / 30, costOK: true},
		},
		{
			// Offline 08:00–09:00 (no readings); a breakdown 08:30–09:30 has
			// 30 min within the offline hour, which stays offline, and 30 min
			// after it, which is down. planned 480, offline 60, down 30,
			// run = 480 − 30 − 60 = 390; A = 390 / (480 − 60) = 0.928571.
			// P = 30 × 600 / (390 × 60) = 18000 / 23400 = 0.769231;
			// OEE = 30 × 600 / (420 × 60) = 18000 / 25200 = 0.714286.
			// cost: 30 min × 100/h = 50.
			name: "offline gap",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Spans: []Span{{State: Running, Start: atMin(0), End: atMin(120)}, {State: Offline, Start: atMin(120), End: atMin(180)},
					{State: Down, Start: atMin(180), End: atMin(210)}, {State: Running, Start: atMin(210)}},
				Stops: []Stop{testStop(1, Down, 150, 210, false)},
				Good:  600, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 100}},
			want: kpiWant{scheduled: 480, planned: 480, offline: 60, down: 30, run: 390, stops: 1,
				a: pf(390.0 / 420), p: pf(18000.0 / 23400), q: pf(1), oee: pf(18000.0 / 25200),
				mtbf: 390 * minMS, mttr: 30 * minMS, cost: 50, lost: 60, costOK: true, costWhy: ""},
		},
		{
			name: "offline for the whole shift",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Spans:  []Span{{State: Offline, Start: atMin(-60)}},
				Config: MachineConfig{IdealCycleS: 30}},
			want: kpiWant{scheduled: 480, planned: 480, offline: 480,
				aWhy: "offline for all planned production time", pWhy: "no run time", qWhy: "no parts made",
				oeeWhy: "offline for all planned production time", mtbf: -1, mttr: -1, costWhy: "no costs set for this machine"},
		},
		{
			// Running all shift, nothing counted: P = 0 is a defined value,
			// Q and OEE are n/a.
			name: "zero production",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Config: MachineConfig{IdealCycleS: 30, CostPerHour: 60}},
			want: kpiWant{scheduled: 480, planned: 480, run: 480,
				a: pf(1), p: pf(0), qWhy: "no parts made", oeeWhy: "no parts made", mtbf: -1, mttr: -1, costOK: true},
		},
		{
			// No ideal cycle time: P and OEE n/a; the stop still costs its
			// hourly part (1 h × 90), with a note that no units count as lost.
			name: "no ideal cycle time",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
				Stops: []Stop{testStop(1, Down, 60, 120, false)}, Good: 95, Scrap: 5,
				Config: MachineConfig{CostPerHour: 90, MarginPerUnit: 3}},
			want: kpiWant{scheduled: 480, planned: 480, down: 60, run: 420, stops: 1,
				a: pf(420.0 / 480), pWhy: "no ideal cycle time set", q: pf(0.95), oeeWhy: "no ideal cycle time set",
				mtbf: 420 * minMS, mttr: 60 * minMS, cost: 90, costOK: true, costWhy: "no ideal cycle time set: lost units not counted"},
		},
		{
			// A holiday: the calendar gives no runs for the day, so nothing is
			// scheduled and the stop that day neither counts nor costs.
			name: "zero planned time (a holiday)",
			in: KPIInput{From: atMin(-360), To: atMin(1080), Runs: nil,
				Stops: []Stop{testStop(1, Down, 60, 120, false)}, Good: 10, Config: costly},
			want: kpiWant{aWhy: "no planned production time", pWhy: "no run time", q: pf(1),
				oeeWhy: "no planned production time", mtbf: -1, mttr: -1, costOK: true},
		},
		{
			// Planned maintenance for the whole shift: planned production 0.
			name: "planned stop all shift",
			in: KPIInput{From: atMin(0), To: atMin(480), Runs: shift0614(),
				Stops: []Stop{testStop(1, PlannedStop, -10, 500, true)}, Config: costly},
			want: kpiWant{scheduled: 480, plannedStop: 480, aWhy: "no planned production time", pWhy: "no run time",
				qWhy: "no parts made", oeeWhy: "no planned production time", mtbf: -1, mttr: -1, costOK: true},
		},
		{
			// No shifts configured: the whole day 00:00–24:00 is scheduled.
			// A 2 h breakdown: planned 1440, down 120, run 1320;
			// A = 1320/1440 = 0.916667; P = 30 × 2500 / (1320 × 60) =
			// 75000 / 79200 = 0.946970; Q = 2500 / 2500; cost 2 h × 50 = 100.
			name: "no calendar: 24/7",
			in: KPIInput{From: atMin(-360), To: atMin(1080), NoCalendar: true,
				Runs:  shift0614(), // ignored: NoCalendar wins
				Stops: []Stop{testStop(1, Down, 600, 720, false)}, Good: 2500, Config: MachineConfig{IdealCycleS: 30, CostPerHour: 50}},
			want: kpiWant{scheduled: 1440, planned: 1440, down: 120, run: 1320, stops: 1,
				a: pf(1320.0 / 1440), p: pf(75000.0 / 79200), q: pf(1), oee: pf(75000.0 / 86400),
				mtbf: 1320 * minMS, mttr: 120 * minMS, cost: 100, lost: 240, costOK: true},
		},
		{
			// A custom micro-stop threshold of 5 min makes a 3 min stop micro.
			name: "custom micro-stop threshold",
			in: KPIInput{From: atMin(0), To: atMin(60), NoCalendar: true, Settings: Settings{MicroStopMS: 5 * minMS},
				Stops: []Stop{testStop(1, Down, 10, 13, false), testStop(2, Down, 20, 26, false)}, Good: 100, Config: MachineConfig{IdealCycleS: 30}},
			want: kpiWant{scheduled: 60, planned: 60, down: 6, micro: 3, run: 54, stops: 1, microStops: 1,
				a: pf(0.9), p: pf(3000.0 / 3240), q: pf(1), oee: pf(0.9 * 3000 / 3240),
				mtbf: 54 * minMS, mttr: 6 * minMS, lost: 18, costWhy: "no costs set for this machine"},
		},
		{
			name: "empty period",
			in: KPIInput{From: atMin(10), To: atMin(10), NoCalendar: true, Stops: []Stop{testStop(1, Down, 0, 20, false)},
				Config: costly},
			want: kpiWant{aWhy: "no planned production time", pWhy: "no run time", qWhy: "no parts made",
				oeeWhy: "no planned production time", mtbf: -1, mttr: -1, costOK: true},
		},
		{
			name: "reversed period and broken input",
			in: KPIInput{From: atMin(10), To: atMin(0), NoCalendar: true, Good: math.NaN(), Scrap: math.Inf(1),
				Stops: []Stop{testStop(1, Down, 5, 2, false)}, Config: MachineConfig{IdealCycleS: math.NaN(), CostPerHour: -5}},
			want: kpiWant{aWhy: "no planned production time", pWhy: "no ideal cycle time set", qWhy: "no parts made",
				oeeWhy: "no planned production time", mtbf: -1, mttr: -1,
				costWhy: "no costs set for this machine"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComputeKPI(watched(tt.in))
			if got.From != tt.in.From || got.To != tt.in.To {
				t.Errorf("period = %d–%d, want %d–%d", got.From, got.To, tt.in.From, tt.in.To)
			}
			checkKPI(t, got, tt.want)
		})
	}
}

// TestComputeKPIShiftChangeWholeDay checks the documented choice for a stop
// crossing a shift change: each shift counts it, the day counts it once, and
// the down time adds up either way.
func TestComputeKPIShiftChangeWholeDay(t *testing.T) {
	cal := Calendar{Shifts: []Shift{
		{ID: 1, Name: "Early", Start: 6 * 60, End: 14 * 60, Days: shiftDaysOf(everyDay)},
		{ID: 2, Name: "Late", Start: 14 * 60, End: 22 * 60, Days: shiftDaysOf(everyDay)},
	}}
	stops := []Stop{testStop(1, Down, 470, 490, false)} // 13:50–14:10
	cfg := MachineConfig{IdealCycleS: 30, CostPerHour: 60}
	in := func(from, to int64) KPIInput {
		return watched(KPIInput{From: from, To: to, Runs: cal.Runs(from, to), Stops: stops, Good: 100, Config: cfg})
	}
	dayFrom, dayTo := Day(atMin(0), nil)
	day := ComputeKPI(in(dayFrom, dayTo))
	var shifts []KPI
	for _, r := range cal.Runs(dayFrom, dayTo) {
		shifts = append(shifts, ComputeKPI(in(r.Start, r.End)))
	}
	if len(shifts) != 2 {
		t.Fatalf("got %d shifts, want 2", len(shifts))
	}
	tests := []struct {
		name      string
		k         KPI
		stops     int
		downMin   int64
		scheduled int64
		cost      float64
	}{
		// Each shift: 10 min down, one stop, 10/60 h × 60 = 10.
		{"early", shifts[0], 1, 10, 480, 10},
		{"late", shifts[1], 1, 10, 480, 10},
		// The day: 20 min down, the stop once, 20.
		{"day", day, 1, 20, 960, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.k.Stops != tt.stops || tt.k.DownMS != tt.downMin*minMS || tt.k.ScheduledMS != tt.scheduled*minMS || !approxEq(tt.k.Cost, tt.cost) {
				t.Errorf("stops %d, down %d min, scheduled %d min, cost %v; want %d, %d, %d, %v",
					tt.k.Stops, tt.k.DownMS/minMS, tt.k.ScheduledMS/minMS, tt.k.Cost, tt.stops, tt.downMin, tt.scheduled, tt.cost)
			}
		})
	}
}

// TestComputeKPIRandomInput feeds arbitrary spans and stops (overlapping,
// reversed, ongoing, outside the period) and checks the invariants that must
// hold whatever comes in.
func TestComputeKPIRandomInput(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }
	states := []State{Running, Idle, Down, Changeover, PlannedStop, Offline, Unknown}
	for i := range 500 {
		from, to := atMin(pick(-100, 200)), atMin(pick(-100, 700))
		in := KPIInput{From: from, To: to, NoCalendar: r.IntN(3) == 0, Good: pick(-10, 1000), Scrap: pick(-10, 50),
			Config:   MachineConfig{IdealCycleS: pick(-5, 60), CostPerHour: pick(-50, 200), MarginPerUnit: pick(-1, 5)},
			Settings: Settings{MicroStopMS: int64(pick(-60_000, 600_000))}}
		for range r.IntN(4) {
			a := pick(-200, 900)
			run := ShiftRun{Start: atMin(a), End: atMin(a + pick(-60, 600))}
			for range r.IntN(3) {
				b := pick(a-50, a+600)
				run.Breaks = append(run.Breaks, Interval{atMin(b), atMin(b + pick(-10, 60))})
			}
			in.Runs = append(in.Runs, run)
		}
		for range r.IntN(20) {
			a := pick(-200, 900)
			end := atMin(a + pick(-30, 200))
			if r.IntN(5) == 0 {
				end = 0
			}
			in.Spans = append(in.Spans, Span{State: states[r.IntN(len(states))], Start: atMin(a), End: end})
		}
		for range r.IntN(20) {
			a := pick(-200, 900)
			end := atMin(a + pick(-5, 60))
			if r.IntN(5) == 0 {
				end = 0
			}
			in.Stops = append(in.Stops, Stop{State: Down, Start: atMin(a), End: end, Planned: r.IntN(4) == 0})
		}
		k := ComputeKPI(in)
		checkSane(t, k)
		if to > from && in.NoCalendar && k.ScheduledMS != to-from {
			t.Errorf("case %d: 24/7 scheduled %d, want %d", i, k.ScheduledMS, to-from)
		}
		if k.OEE.OK && (!k.Availability.OK || !k.Performance.OK || !k.Quality.OK) {
			t.Errorf("case %d: OEE OK without all three parts: %+v", i, k)
		}
		if k.Availability.OK && (k.Availability.Value < 0 || k.Availability.Value > 1) {
			t.Errorf("case %d: availability %v out of [0, 1]", i, k.Availability.Value)
		}
		if t.Failed() {
			t.Fatalf("case %d input: %+v", i, in)
		}
	}
}

func TestSumKPI(t *testing.T) {
	// Machine 1 is the full shift of TestComputeKPI: planned 430, run 390,
	// down 40 (1 stop), 3 micro-stops (3 min), 700 good + 20 scrap at 30 s,
	// cost 301, 86 lost units.
	m1 := KPI{ScheduledMS: 480 * minMS, PlannedStopMS: 50 * minMS, PlannedMS: 430 * minMS, DownMS: 40 * minMS,
		MicroStopMS: 3 * minMS, RunMS: 390 * minMS, Stops: 1, MicroStops: 3, Good: 700, Scrap: 20, Total: 720,
		Performance: Ratio{Value: 21600.0 / 23400, OK: true}, Cost: 301, LostUnits: 86, CostOK: true}
	// Machine 2: the same shift with only the break planned (planned 450),
	// 30 min offline, two stops of 30 min (down 60), run 450 − 60 − 30 =
	// 360, 1000 good + 50 scrap at 20 s, cost 60 min × 60/h = 60 + 180 lost
	// units × 1 = 240.
	m2 := KPI{ScheduledMS: 480 * minMS, PlannedStopMS: 30 * minMS, PlannedMS: 450 * minMS, OfflineMS: 30 * minMS,
		DownMS: 60 * minMS, RunMS: 360 * minMS, Stops: 2, Good: 1000, Scrap: 50, Total: 1050,
		Performance: Ratio{Value: 21000.0 / 21600, OK: true}, Cost: 240, LostUnits: 180, CostOK: true}
	// Σ: planned 880, offline 30, down 100, run 750, stops 3.
	// A = 750 / (880 − 30) = 750 / 850 = 0.882353
	// P = (30 × 720 + 20 × 1050) / (750 × 60) = (21600 + 21000) / 45000 = 0.946667
	// Q = 1700 / 1770 = 0.960452
	// OEE = A × P × Q = 0.802260
	// MTBF = 750 / 3 = 250 min; MTTR = 100 / 3 min = 2,000,000 ms
	// cost 301 + 240 = 541; lost units 86 + 180 = 266
	a, p, q := 750.0/850, 42600.0/45000, 1700.0/1770
	noIdeal := m2
	noIdeal.Performance = Ratio{Why: "no ideal cycle time set"}
	noCost := m2
	noCost.CostOK, noCost.CostWhy, noCost.Cost = false, "no costs set for this machine", 0

	tests := []struct {
		name   string
		ks     []KPI
		ideals []float64
		check  func(t *testing.T, s KPI)
	}{
		{"two machines", []KPI{m1, m2}, []float64{21600, 21000}, func(t *testing.T, s KPI) {
			checkKPI(t, s, kpiWant{scheduled: 960, plannedStop: 80, planned: 880, offline: 30, down: 100, micro: 3, run: 750,
				stops: 3, microStops: 3, a: pf(a), p: pf(p), q: pf(q), oee: pf(a * p * q),
				mtbf: 250 * minMS, mttr: 2_000_000, cost: 541, lost: 266, costOK: true})
			if s.Good != 1700 || s.Scrap != 70 || s.Total != 1770 {
				t.Errorf("counts %v + %v = %v, want 1700 + 70 = 1770", s.Good, s.Scrap, s.Total)
			}
		}},
		{"a machine without ideal cycle time makes the sum's performance n/a", []KPI{m1, noIdeal}, []float64{21600, 0}, func(t *testing.T, s KPI) {
			if s.Performance.OK || s.Performance.Why != "no ideal cycle time set for some machines" || s.OEE.OK || s.OEE.Why != s.Performance.Why {
				t.Errorf("Performance %+v, OEE %+v; want n/a for some machines", s.Performance, s.OEE)
			}
			if !s.Availability.OK || !approxEq(s.Availability.Value, a) {
				t.Errorf("Availability = %+v, want %v", s.Availability, a)
			}
		}},
		{"a machine without costs", []KPI{m1, noCost}, []float64{21600, 21000}, func(t *testing.T, s KPI) {
			if !s.CostOK || s.CostWhy != "no costs set for some machines" || s.Cost != 301 {
				t.Errorf("cost %v, %v, %q; want 301, true, some machines", s.Cost, s.CostOK, s.CostWhy)
			}
		}},
		{"missing ideal totals count as zero", []KPI{m1, m2}, []float64{21600}, func(t *testing.T, s KPI) {
			if !s.Performance.OK || !approxEq(s.Performance.Value, 21600.0/45000) {
				t.Errorf("Performance = %+v, want %v", s.Performance, 21600.0/45000)
			}
		}},
		{"no machines", nil, nil, func(t *testing.T, s KPI) {
			checkKPI(t, s, kpiWant{aWhy: "no planned production time", pWhy: "no run time", qWhy: "no parts made",
				oeeWhy: "no planned production time", mtbf: -1, mttr: -1, costWhy: "no costs set for these machines"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SumKPI(atMin(0), atMin(480), tt.ks, tt.ideals)
			if s.From != atMin(0) || s.To != atMin(480) {
				t.Errorf("period %d–%d", s.From, s.To)
			}
			tt.check(t, s)
		})
	}
}

// TestSumKPIOfComputed sums real ComputeKPI results, so that the two agree on
// what a KPI holds (the n/a reasons SumKPI looks at, the counts).
func TestSumKPIOfComputed(t *testing.T) {
	cfgs := []MachineConfig{{IdealCycleS: 30, CostPerHour: 60}, {IdealCycleS: 60, CostPerHour: 30}}
	var ks []KPI
	var ideals []float64
	for i, c := range cfgs {
		k := ComputeKPI(watched(KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
			Stops: []Stop{testStop(1, Down, 60, 120, false)}, Good: float64(400 * (i + 1)), Config: c}))
		ks = append(ks, k)
		ideals = append(ideals, c.IdealCycleS*k.Total)
	}
	// Each: planned 480, down 60, run 420. Machine 1: 400 × 30 s = 12000 s;
	// machine 2: 800 × 60 s = 48000 s. P = 60000 / (840 × 60) = 1.190476, high.
	s := SumKPI(atMin(0), atMin(480), ks, ideals)
	if !s.Performance.OK || !approxEq(s.Performance.Value, 60000.0/50400) || !s.PerformanceHigh {
		t.Errorf("Performance = %+v high %v, want %v and high", s.Performance, s.PerformanceHigh, 60000.0/50400)
	}
	// Cost: 1 h × 60 + 1 h × 30 = 90.
	if !approxEq(s.Cost, 90) || !s.CostOK || s.CostWhy != "" {
		t.Errorf("Cost = %v %v %q, want 90", s.Cost, s.CostOK, s.CostWhy)
	}
}

func TestIntervals(t *testing.T) {
	I := func(pairs ...int64) []Interval {
		var out []Interval
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, Interval{pairs[i], pairs[i+1]})
		}
		return out
	}
	t.Run("union", func(t *testing.T) {
		tests := []struct {
			name string
			in   []Interval
			want []Interval
		}{
			{"empty", nil, nil},
			{"drops empty and reversed", I(5, 5, 7, 3), nil},
			{"sorts and merges overlap", I(10, 20, 0, 5, 15, 25), I(0, 5, 10, 25)},
			{"merges touching", I(0, 5, 5, 10), I(0, 10)},
			{"contained", I(0, 100, 10, 20, 30, 40), I(0, 100)},
			{"single", I(3, 4), I(3, 4)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := append([]Interval(nil), tt.in...)
				got := ivUnion(tt.in)
				if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
					t.Errorf("ivUnion(%v) = %v, want %v", tt.in, got, tt.want)
				}
				if !reflect.DeepEqual(in, tt.in) {
					t.Errorf("ivUnion changed its input to %v", tt.in)
				}
			})
		}
	})
	t.Run("intersect", func(t *testing.T) {
		tests := []struct {
			name    string
			a, b    []Interval
			want    []Interval
			wantLen int64
		}{
			{"disjoint", I(0, 5), I(5, 10), nil, 0},
			{"overlap", I(0, 10), I(5, 15), I(5, 10), 5},
			{"many", I(0, 10, 20, 30, 40, 50), I(5, 25, 45, 100), I(5, 10, 20, 25, 45, 50), 15},
			{"one inside", I(0, 100), I(10, 20, 30, 40), I(10, 20, 30, 40), 20},
			{"empty side", I(0, 100), nil, nil, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := ivIntersect(tt.a, tt.b)
				if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) || ivTotal(got) != tt.wantLen {
					t.Errorf("ivIntersect(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
				}
				if back := ivIntersect(tt.b, tt.a); ivTotal(back) != tt.wantLen {
					t.Errorf("not symmetric: %v", back)
				}
			})
		}
	})
	t.Run("subtract", func(t *testing.T) {
		tests := []struct {
			name string
			a, b []Interval
			want []Interval
		}{
			{"nothing to take", I(0, 10), nil, I(0, 10)},
			{"hole in the middle", I(0, 10), I(3, 5), I(0, 3, 5, 10)},
			{"cut both ends", I(0, 10), I(-5, 2, 8, 20), I(2, 8)},
			{"all taken", I(0, 10, 20, 30), I(0, 30), nil},
			{"one b across two a", I(0, 10, 20, 30), I(5, 25), I(0, 5, 25, 30)},
			{"several holes", I(0, 100), I(10, 20, 30, 40, 90, 110), I(0, 10, 20, 30, 40, 90)},
			{"b before and after", I(50, 60), I(0, 10, 70, 80), I(50, 60)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := ivSubtract(tt.a, tt.b)
				if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
					t.Errorf("ivSubtract(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
				}
				// What is left and what was taken add up to a.
				if ivTotal(got)+ivTotal(ivIntersect(tt.a, tt.b)) != ivTotal(tt.a) {
					t.Errorf("left %v and taken %v do not add up to %v", got, ivIntersect(tt.a, tt.b), tt.a)
				}
			})
		}
	})
}

// watched gives a scenario written without spans one that vouches for the
// whole period (a machine reporting all along), as the scenarios assume: time
// no span covers is unknown, so offline, which a separate test checks.
func watched(in KPIInput) KPIInput {
	if in.Spans == nil {
		in.Spans = []Span{{State: Running, Start: in.From}}
	}
	return in
}

// Time no span covers (before a machine's first reading) is offline, never
// run time: 2 h of reading in an 8 h shift give 6 h offline.
func TestComputeKPIUncoveredTimeIsOffline(t *testing.T) {
	in := KPIInput{From: atMin(0), To: atMin(480), Runs: []ShiftRun{{Start: atMin(0), End: atMin(480)}},
		Spans: []Span{{State: Running, Start: atMin(360)}}, Good: 240, Config: MachineConfig{IdealCycleS: 30}}
	k := ComputeKPI(in)
	if k.OfflineMS != 360*60_000 || k.RunMS != 120*60_000 {
		t.Fatalf("offline %d min, run %d min; want 360 and 120", k.OfflineMS/60_000, k.RunMS/60_000)
	}
	// P = 30 s × 240 / 7200 s = 1.0; A = 120 / (480 − 360) = 1.0.
	if !approxEq(k.Availability.Value, 1) || !approxEq(k.Performance.Value, 1) {
		t.Errorf("A %v P %v, want 1 and 1", k.Availability, k.Performance)
	}
	none := ComputeKPI(KPIInput{From: atMin(0), To: atMin(480), NoCalendar: true})
	if none.OfflineMS != 480*60_000 || none.Availability.OK {
		t.Errorf("a machine never seen: offline %d min, availability %v; want all offline and n/a", none.OfflineMS/60_000, none.Availability)
	}
}
