package plant

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// benchMachine is one machine's month: state spans and stops sorted by start,
// none overlapping, as the store hands them over.
type benchMachine struct {
	cfg   MachineConfig
	spans []Span
	stops []Stop
}

// benchPlant builds a month (November 2026, Berlin) of a three-shift plant,
// Monday to Friday, for n machines with about ten stops per machine and shift:
// mostly micro-stops, some longer breakdowns, now and then planned
// maintenance, and the machines offline over the weekends.
func benchPlant(n int) (Calendar, int64, int64, []benchMachine) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		loc = time.UTC
	}
	cal := Calendar{Location: loc, Shifts: []Shift{
		{ID: 1, Name: "Early", Start: 6 * 60, End: 14 * 60, Days: benchWeekdays(), Breaks: []Break{{"Lunch", 10 * 60, 10*60 + 30}}},
		{ID: 2, Name: "Late", Start: 14 * 60, End: 22 * 60, Days: benchWeekdays(), Breaks: []Break{{"Dinner", 18 * 60, 18*60 + 30}}},
		{ID: 3, Name: "Night", Start: 22 * 60, End: 6 * 60, Days: benchWeekdays(), Breaks: []Break{{"Night break", 2 * 60, 2*60 + 30}}},
	}}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, loc).UnixMilli()
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, loc).UnixMilli()
	runs := cal.Runs(from, to)
	r := rand.New(rand.NewPCG(7, 11))
	machines := make([]benchMachine, n)
	for m := range machines {
		bm := benchMachine{cfg: MachineConfig{IdealCycleS: 20 + float64(m%5)*10, CostPerHour: 80, MarginPerUnit: 1.5}}
		id := int64(m + 1)
		t := from
		add := func(st State, start, end int64, planned bool) {
			if end <= start {
				return
			}
			if start > t {
				// Between runs the machine is offline (weekends) or idle.
				gap := Running
				if start-t > 12*3_600_000 {
					gap = Offline
				}
				bm.spans = append(bm.spans, Span{MachineID: id, State: gap, Start: t, End: start})
			}
			bm.spans = append(bm.spans, Span{MachineID: id, State: st, Start: start, End: end})
			if st.IsStop() {
				bm.stops = append(bm.stops, Stop{ID: int64(len(bm.stops) + 1), MachineID: id, State: st, Start: start, End: end,
					Planned: planned, ReasonID: int64(r.IntN(25)), Reason: "reason"})
			}
			t = end
		}
		for _, run := range runs {
			slot := (run.End - run.Start) / 10
			for i := range int64(10) {
				s := run.Start + i*slot + r.Int64N(slot/2)
				var d int64
				st, planned := Idle, false
				switch p := r.IntN(100); {
				case p < 60:
					d = 20_000 + r.Int64N(100_000) // a micro-stop
				case p < 95:
					d = 3*60_000 + r.Int64N(20*60_000)
					st = Down
				default:
					d = 15*60_000 + r.Int64N(15*60_000)
					st, planned = PlannedStop, true
				}
				add(Running, t, s, false)
				add(st, s, min(s+d, run.Start+(i+1)*slot), planned)
			}
		}
		add(Running, t, to, false)
		machines[m] = bm
	}
	return cal, from, to, machines
}

func benchWeekdays() [7]bool {
	return [7]bool{false, true, true, true, true, true, false}
}

// benchSpans and benchStops pick the spans and stops overlapping [from, to)
// from a machine's sorted, non-overlapping month, as an indexed query would.
func benchSpans(ss []Span, from, to int64) []Span {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].EndOr(to) > from })
	j := sort.Search(len(ss), func(i int) bool { return ss[i].Start >= to })
	return ss[i:max(i, j)]
}

func benchStops(ss []Stop, from, to int64) []Stop {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].EndOr(to) > from })
	j := sort.Search(len(ss), func(i int) bool { return ss[i].Start >= to })
	return ss[i:max(i, j)]
}

// BenchmarkMonth100Machines computes a month of KPIs for 100 machines: per
// machine per day and per shift, and the plant's sum per day, with the
// selection of each period's spans and stops included. One op is the whole
// month. The target is under 200 ms on the 2-core development machine.
func BenchmarkMonth100Machines(b *testing.B) {
	cal, from, to, machines := benchPlant(100)
	shiftRuns := cal.Runs(from, to)
	stops := 0
	for _, m := range machines {
		stops += len(m.stops)
	}
	settings := DefaultSettings()
	b.ResetTimer()
	computed := 0
	for b.Loop() {
		computed = 0
		kpi := func(m benchMachine, pFrom, pTo int64, runs []ShiftRun) KPI {
			computed++
			return ComputeKPI(KPIInput{From: pFrom, To: pTo, Runs: runs,
				Spans: benchSpans(m.spans, pFrom, pTo), Stops: benchStops(m.stops, pFrom, pTo),
				Good: 900, Scrap: 12, Config: m.cfg, Settings: settings})
		}
		ks := make([]KPI, len(machines))
		ideals := make([]float64, len(machines))
		for d := from; d < to; {
			dFrom, dTo := Day(d, cal.Location)
			runs := cal.Runs(dFrom, dTo)
			for i, m := range machines {
				ks[i] = kpi(m, dFrom, dTo, runs)
				ideals[i] = m.cfg.IdealCycleS * ks[i].Total
			}
			if s := SumKPI(dFrom, dTo, ks, ideals); s.ScheduledMS < 0 {
				b.Fatal("negative scheduled time")
			}
			d = dTo
		}
		for _, run := range shiftRuns {
			for _, m := range machines {
				kpi(m, run.Start, run.End, []ShiftRun{run})
			}
		}
	}
	b.ReportMetric(float64(computed), "kpis/op")
	b.ReportMetric(float64(stops)/float64(len(machines)*len(shiftRuns)), "stops/shift")
}

// TestBenchPlantIsRealistic keeps the benchmark honest: the month it computes
// must have the stops and shifts it claims.
func TestBenchPlantIsRealistic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a month of data")
	}
	cal, from, to, machines := benchPlant(3)
	runs := cal.Runs(from, to)
	// November 2026 has 21 weekdays, each starting three shifts: 63 runs
	// (the last night shift is cut at midnight on 1 December). It begins on a
	// Sunday, so no run of October reaches in.
	if len(runs) != 63 {
		t.Errorf("%d runs in November, want 63", len(runs))
	}
	for i, m := range machines {
		per := float64(len(m.stops)) / float64(len(runs))
		if per < 9 || per > 10 {
			t.Errorf("machine %d: %.1f stops a shift, want about 10", i, per)
		}
		for j := 1; j < len(m.spans); j++ {
			if m.spans[j].Start < m.spans[j-1].End {
				t.Fatalf("machine %d: spans overlap at %d", i, j)
			}
		}
		k := ComputeKPI(KPIInput{From: from, To: to, Runs: runs, Spans: m.spans, Stops: m.stops, Good: 1, Config: m.cfg})
		if k.Stops == 0 || k.MicroStops == 0 || k.PlannedStopMS <= 0 {
			t.Errorf("machine %d: month KPI without stops, micro-stops or planned stops: %+v", i, k)
		}
	}
}
