package plant

import (
	"math"
	"reflect"
	"testing"
)

func TestStopCost(t *testing.T) {
	full := MachineConfig{IdealCycleS: 30, CostPerHour: 120, MarginPerUnit: 2.5}
	tests := []struct {
		name string
		s    Stop
		cfg  MachineConfig
		now  float64 // minutes after kpiT0
		cost float64
		lost float64
		ok   bool
		why  string
	}{
		// 40 min: 40/60 h × 120 = 80; 2400 s / 30 = 80 units × 2.5 = 200; 280.
		{"ended stop", testStop(1, Down, 0, 40, false), full, 500, 280, 80, true, ""},
		// Ongoing since min 100, now min 115: 15 min = 30 + 30 × 2.5 = 105.
		{"ongoing stop up to now", testStop(1, Down, 100, -1, false), full, 115, 105, 30, true, ""},
		// Five minutes later it has cost 20 min = 40 + 40 × 2.5 = 140.
		{"ongoing stop later", testStop(1, Down, 100, -1, false), full, 120, 140, 40, true, ""},
		// No ideal cycle time: the hourly part only, 30 min × 120/h = 60.
		{"no ideal cycle time", testStop(1, Down, 0, 30, false), MachineConfig{CostPerHour: 120, MarginPerUnit: 2.5}, 500,
			60, 0, true, "no ideal cycle time set: lost units not counted"},
		// Margin only: 10 min at 60 s a part = 10 units × 3 = 30.
		{"margin only", testStop(1, Down, 0, 10, false), MachineConfig{IdealCycleS: 60, MarginPerUnit: 3}, 500, 30, 10, true, ""},
		// Neither cost per hour nor margin: not ok, lost units still told.
		{"no costs", testStop(1, Down, 0, 30, false), MachineConfig{IdealCycleS: 30}, 500, 0, 60, false, "no costs set for this machine"},
		{"nothing set at all", testStop(1, Down, 0, 30, false), MachineConfig{}, 500, 0, 0, false, "no costs set for this machine"},
		{"end before start", testStop(1, Down, 30, 10, false), full, 500, 0, 0, true, ""},
		{"ongoing, now before start", testStop(1, Down, 30, -1, false), full, 10, 0, 0, true, ""},
		{"negative and NaN settings are not set", testStop(1, Down, 0, 60, false),
			MachineConfig{IdealCycleS: math.NaN(), CostPerHour: -10, MarginPerUnit: math.Inf(1)}, 500, 0, 0, false, "no costs set for this machine"},
		// An absurd margin overflows: cost shows 0 rather than infinity.
		{"overflow", testStop(1, Down, 0, 60, false), MachineConfig{IdealCycleS: 1e-300, MarginPerUnit: 1e300}, 500, 0, 3.6e303, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cost, lost, ok, why := StopCost(tt.s, tt.cfg, atMin(tt.now))
			if math.IsNaN(cost) || math.IsInf(cost, 0) || math.IsNaN(lost) || math.IsInf(lost, 0) {
				t.Fatalf("StopCost = %v, %v: not finite", cost, lost)
			}
			if !approxEq(cost, tt.cost) || !approxEq(lost, tt.lost) || ok != tt.ok || why != tt.why {
				t.Errorf("StopCost = %v, %v, %v, %q; want %v, %v, %v, %q", cost, lost, ok, why, tt.cost, tt.lost, tt.ok, tt.why)
			}
		})
	}
}

// paretoStops are stops of two machines in the period min 0–480, now = min
// 400. Machine 1 costs 60/h + 1 a part at 60 s a part: 2 a minute. Machine 2
// costs 30/h, no margin: 0.5 a minute.
func paretoStops() []Stop {
	coded := func(s Stop, machine, reason int64, name, category string) Stop {
		s.MachineID, s.ReasonID, s.Reason, s.Category = machine, reason, name, category
		return s
	}
	return []Stop{
		// Mechanical failure: 30 min on machine 1 (60) + 20 min on machine 2
		// (10) = 2 stops, 50 min, 70.
		coded(testStop(1, Down, 10, 40, false), 1, 2, "Mechanical failure", "Breakdown"),
		coded(testStop(2, Down, 50, 70, false), 2, 2, "Mechanical failure", "Breakdown"),
		// Material shortage: 90 min on machine 2 = 45.
		coded(testStop(3, Idle, 100, 190, false), 2, 7, "Material shortage", "Material"),
		// Uncoded: 10 min of a stop that began before the period (20) and an
		// ongoing stop since min 390, 10 min at now (20) = 2 stops, 20 min, 40.
		coded(testStop(4, Down, -20, 10, false), 1, 0, "", ""),
		coded(testStop(5, Down, 390, -1, false), 1, 0, "", ""),
		// Planned maintenance, 30 min: left out unless asked for; costs nothing.
		coded(testStop(6, PlannedStop, 200, 230, true), 1, 23, "Planned maintenance", "Planned"),
		// Outside the period, and a stop ending before it starts: nothing.
		coded(testStop(7, Down, 500, 520, false), 2, 3, "Electrical failure", "Breakdown"),
		coded(testStop(8, Down, 300, 290, false), 2, 4, "Tooling failure", "Breakdown"),
		// Jam: 20 min on machine 1 = 40, tying with the uncoded row in both
		// duration and cost: names decide ("Jam" < "Not coded yet").
		coded(testStop(9, Down, 300, 320, false), 1, 5, "Jam", "Breakdown"),
	}
}

func paretoConfig(id int64) MachineConfig {
	switch id {
	case 1:
		return MachineConfig{IdealCycleS: 60, CostPerHour: 60, MarginPerUnit: 1}
	case 2:
		return MachineConfig{CostPerHour: 30}
	}
	return MachineConfig{}
}

func TestPareto(t *testing.T) {
	mech := ParetoRow{ReasonID: 2, Reason: "Mechanical failure", Category: "Breakdown", Stops: 2, DurationMS: 50 * minMS, Cost: 70}
	mat := ParetoRow{ReasonID: 7, Reason: "Material shortage", Category: "Material", Stops: 1, DurationMS: 90 * minMS, Cost: 45}
	uncoded := ParetoRow{ReasonID: 0, Reason: "Not coded yet", Stops: 2, DurationMS: 20 * minMS, Cost: 40}
	jam := ParetoRow{ReasonID: 5, Reason: "Jam", Category: "Breakdown", Stops: 1, DurationMS: 20 * minMS, Cost: 40}
	maint := ParetoRow{ReasonID: 23, Reason: "Planned maintenance", Category: "Planned", Planned: true, Stops: 1, DurationMS: 30 * minMS}
	noCost := func(rows ...ParetoRow) []ParetoRow {
		for i := range rows {
			rows[i].Cost = 0
		}
		return rows
	}

	tests := []struct {
		name            string
		stops           []Stop
		cfg             func(int64) MachineConfig
		from, to, now   float64
		includePlanned  bool
		byDur, byCostWt []ParetoRow
	}{
		{"unplanned only", paretoStops(), paretoConfig, 0, 480, 400, false,
			[]ParetoRow{mat, mech, jam, uncoded}, []ParetoRow{mech, mat, jam, uncoded}},
		{"with planned stops", paretoStops(), paretoConfig, 0, 480, 400, true,
			[]ParetoRow{mat, mech, maint, jam, uncoded}, []ParetoRow{mech, mat, jam, uncoded, maint}},
		// Without configs every cost is 0: byCost falls back to names.
		{"no configs", paretoStops(), nil, 0, 480, 400, false,
			noCost(mat, mech, jam, uncoded), noCost(jam, mat, mech, uncoded)},
		{"empty period", paretoStops(), paretoConfig, 100, 100, 400, false, []ParetoRow{}, []ParetoRow{}},
		{"no stops", nil, paretoConfig, 0, 480, 400, true, []ParetoRow{}, []ParetoRow{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			byDur, byCost := Pareto(tt.stops, tt.cfg, atMin(tt.from), atMin(tt.to), atMin(tt.now), tt.includePlanned)
			checkRows(t, "byDuration", byDur, tt.byDur)
			checkRows(t, "byCost", byCost, tt.byCostWt)
		})
	}
}

func checkRows(t *testing.T, name string, got, want []ParetoRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d rows, want %d: %+v", name, len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !approxEq(g.Cost, w.Cost) {
			t.Errorf("%s[%d] %q cost %v, want %v", name, i, g.Reason, g.Cost, w.Cost)
		}
		g.Cost, w.Cost = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s[%d] = %+v, want %+v", name, i, g, w)
		}
	}
}

func TestParetoWithin(t *testing.T) {
	// Windows 06:00–14:00 and 22:00–06:00 the next day: a stop 13:00–23:00
	// on machine 2 (30/h) counts 1 h before and 1 h after the gap: 2 h, 60.
	stops := []Stop{{ID: 1, MachineID: 2, State: Idle, Start: atMin(420), End: atMin(1020), ReasonID: 13, Reason: "No operator", Category: "People"}}
	byDur, byCost := ParetoWithin(stops, paretoConfig, []Interval{ivMin(960, 1440), ivMin(0, 480)}, atMin(2000), false)
	want := []ParetoRow{{ReasonID: 13, Reason: "No operator", Category: "People", Stops: 1, DurationMS: 120 * minMS, Cost: 60}}
	checkRows(t, "byDuration", byDur, want)
	checkRows(t, "byCost", byCost, want)

	// A stop that falls wholly in the gap is not in the Pareto at all.
	byDur, _ = ParetoWithin([]Stop{{MachineID: 2, Start: atMin(500), End: atMin(900)}}, paretoConfig,
		[]Interval{ivMin(0, 480), ivMin(960, 1440)}, atMin(2000), true)
	checkRows(t, "byDuration", byDur, []ParetoRow{})
}

// TestParetoMixedUncoded checks that the uncoded row is planned only when
// all its stops are.
func TestParetoMixedUncoded(t *testing.T) {
	tests := []struct {
		name    string
		planned []bool
		want    bool
	}{
		{"all planned", []bool{true, true}, true},
		{"mixed", []bool{true, false}, false},
		{"none planned", []bool{false}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stops []Stop
			for i, p := range tt.planned {
				stops = append(stops, testStop(int64(i), PlannedStop, float64(i*10), float64(i*10+5), p))
			}
			rows, _ := Pareto(stops, nil, atMin(0), atMin(100), atMin(100), true)
			if len(rows) != 1 || rows[0].Planned != tt.want || rows[0].Stops != len(tt.planned) {
				t.Errorf("rows = %+v, want one row with Planned %v", rows, tt.want)
			}
		})
	}
}
