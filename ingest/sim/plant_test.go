package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

var t0 = time.Date(2025, 3, 10, 6, 0, 0, 0, time.UTC)

// metricsMsg is the multi-metric payload as a consumer decodes it.
type metricsMsg struct {
	TimestampMS  *int64   `json:"timestamp_ms"`
	Good         *int64   `json:"good"`
	Scrap        *int64   `json:"scrap"`
	CycleTime    *float64 `json:"cycle_time"`
	Temperature  *float64 `json:"temperature"`
	SpindleSpeed *float64 `json:"spindle_speed"`
	Power        *float64 `json:"power"`
}

func decodeMetrics(t *testing.T, m Message) metricsMsg {
	t.Helper()
	var v metricsMsg
	dec := json.NewDecoder(bytes.NewReader(m.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: payload %q is not the expected JSON: %v", m.Topic, m.Payload, err)
	}
	if v.TimestampMS == nil || v.Good == nil || v.Scrap == nil || v.CycleTime == nil ||
		v.Temperature == nil || v.SpindleSpeed == nil || v.Power == nil {
		t.Fatalf("%s: payload %q misses a metric", m.Topic, m.Payload)
	}
	return v
}

// machineOf splits a topic into the machine's path and the metric ("" for
// the machine's own topic), checking the level counts of the convention.
func machineOf(t *testing.T, topic string) (machine, metric string) {
	t.Helper()
	levels := strings.Split(topic, "/")
	switch len(levels) {
	case 4:
		return topic, ""
	case 5:
		return strings.Join(levels[:4], "/"), levels[4]
	}
	t.Fatalf("topic %q has %d levels, want 4 (JSON) or 5 (single value)", topic, len(levels))
	return "", ""
}

// machineTrack is what a test consumer knows about one machine.
type machineTrack struct {
	state       plant.State
	good, scrap int64
	changes     int
	runningSecs int
	metricsSeen int
	unitsSeen   map[string]bool
}

// checkUnitMessage checks a gauge sent on its own topic with its unit.
func checkUnitMessage(t *testing.T, m Message, metric string, now time.Time) {
	t.Helper()
	want := map[string]string{"cycle_time": "s", "temperature": "°C", "spindle_speed": "rpm", "power": "kW"}[metric]
	if want == "" {
		t.Fatalf("single-value topic %q: want only state or a gauge with its unit", m.Topic)
	}
	var v struct {
		Value *float64
		TS    int64
		Unit  string
	}
	if err := json.Unmarshal(m.Payload, &v); err != nil || v.Value == nil {
		t.Fatalf("%s: payload %q is not {value, ts, unit}: %v", m.Topic, m.Payload, err)
	}
	if v.Unit != want || v.TS != now.UnixMilli() {
		t.Errorf("%s: unit %q ts %d, want %q at %d", m.Topic, v.Unit, v.TS, want, now.UnixMilli())
	}
}

func TestPlantHour(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 42, 20250310} {
		t.Run(fmt.Sprintf("seed_%d", seed), func(t *testing.T) {
			p := NewPlant(Config{Seed: seed}, t0)
			tracks := map[string]*machineTrack{}
			for _, ms := range p.Machines() {
				tracks[ms.Path.String()] = &machineTrack{good: -1, scrap: -1, unitsSeen: map[string]bool{}}
			}
			if len(tracks) != 10 {
				t.Fatalf("got %d distinct machines, want 10", len(tracks))
			}

			for step := 0; step <= 3600; step++ {
				now := t0.Add(time.Duration(step) * time.Second)
				msgs := p.Step(now)
				prevState := map[string]plant.State{}
				for name, tr := range tracks {
					prevState[name] = tr.state
				}
				// States first: a step's state word says what the machine did
				// in the moment its counters were read.
				for _, m := range msgs {
					name, metric := machineOf(t, m.Topic)
					tr, ok := tracks[name]
					if !ok {
						t.Fatalf("step %d: message for unknown machine %q", step, name)
					}
					if metric == "" {
						continue
					}
					if metric != "state" {
						checkUnitMessage(t, m, metric, now)
						tr.unitsSeen[metric] = true
						continue
					}
					s, ok := plant.ParseState(string(m.Payload))
					if !ok || string(s) != string(m.Payload) {
						t.Fatalf("step %d: %s: state %q is not a canonical state word", step, m.Topic, m.Payload)
					}
					switch s {
					case plant.Running, plant.Idle, plant.Down, plant.Changeover:
					default:
						t.Fatalf("step %d: %s: state %q outside the simulated set", step, m.Topic, s)
					}
					if m.QoS != 1 {
						t.Errorf("%s: QoS %d, want 1 for state changes", m.Topic, m.QoS)
					}
					if tr.state != "" && tr.state != s {
						tr.changes++
					}
					tr.state = s
				}
				for _, m := range msgs {
					name, metric := machineOf(t, m.Topic)
					if metric != "" {
						continue
					}
					tr := tracks[name]
					v := decodeMetrics(t, m)
					if got, want := *v.TimestampMS, now.UnixMilli(); got != want {
						t.Fatalf("step %d: %s: timestamp_ms %d, want %d", step, name, got, want)
					}
					if *v.Good < tr.good || *v.Scrap < tr.scrap {
						t.Fatalf("step %d: %s: counters went back: good %d→%d scrap %d→%d",
							step, name, tr.good, *v.Good, tr.scrap, *v.Scrap)
					}
					// A part completes only while running; a step of one second
					// is far shorter than any stop, so the machine was running
					// at the start or the end of the step.
					if tr.good >= 0 && *v.Good > tr.good &&
						prevState[name] != plant.Running && tr.state != plant.Running {
						t.Fatalf("step %d: %s: good rose %d→%d while %s", step, name, tr.good, *v.Good, tr.state)
					}
					if tr.state == plant.Running {
						tr.runningSecs++
						if *v.SpindleSpeed < 1000 || *v.SpindleSpeed > 8500 {
							t.Errorf("step %d: %s: running spindle_speed %g outside 1,000–8,500", step, name, *v.SpindleSpeed)
						}
					} else if *v.SpindleSpeed != 0 {
						t.Errorf("step %d: %s: spindle_speed %g while %s, want 0", step, name, *v.SpindleSpeed, tr.state)
					}
					if *v.Temperature < 15 || *v.Temperature > 75 {
						t.Errorf("step %d: %s: temperature %g outside 15–75 °C", step, name, *v.Temperature)
					}
					if *v.Power <= 0 || *v.Power > 25 {
						t.Errorf("step %d: %s: power %g kW outside (0, 25]", step, name, *v.Power)
					}
					if *v.CycleTime < 8 || *v.CycleTime > 70 {
						t.Errorf("step %d: %s: cycle_time %g s outside 8–70", step, name, *v.CycleTime)
					}
					tr.good, tr.scrap = *v.Good, *v.Scrap
					tr.metricsSeen++
				}

				if step <= 60 {
					stopped := 0
					for _, tr := range tracks {
						if tr.state != plant.Running {
							stopped++
						}
					}
					if stopped == 0 {
						t.Fatalf("step %d: all machines running in the first minute, want a colourful overview", step)
					}
				}
			}

			var good, scrap int64
			var changes, running int
			for name, tr := range tracks {
				if len(tr.unitsSeen) != 4 {
					t.Errorf("%s: units declared for %v, want the 4 gauges", name, tr.unitsSeen)
				}
				if tr.state == "" {
					t.Errorf("%s published no state word", name)
				}
				if got, want := tr.metricsSeen, 3601; got != want {
					t.Errorf("%s: %d metric messages at 1 Hz over 3600 s, want %d", name, got, want)
				}
				good += tr.good
				scrap += tr.scrap
				changes += tr.changes
				running += tr.runningSecs
			}
			if changes < 10 {
				t.Errorf("%d state changes in an hour across the plant, want at least 10", changes)
			}
			ratio := float64(scrap) / float64(good+scrap)
			if ratio < 0.01 || ratio > 0.06 {
				t.Errorf("scrap ratio %.3f (%d of %d), want 1–6 %%", ratio, scrap, good+scrap)
			}
			if share := float64(running) / (3601 * 10); share < 0.5 || share > 0.95 {
				t.Errorf("running share %.2f, want a plant that runs most of the time but not always", share)
			}
			t.Logf("parts %d, scrap %.1f %%, state changes %d, running %.0f %%",
				good+scrap, 100*ratio, changes, 100*float64(running)/(3601*10))
		})
	}
}

// TestPlantLongRun checks the long-run figures a plant manager would judge
// the demo by: OEE, availability and how often states change.
func TestPlantLongRun(t *testing.T) {
	const hours = 8
	p := NewPlant(Config{Seed: 7}, t0)
	specs := p.Machines()
	ideal := map[string]float64{}
	for _, s := range specs {
		ideal[s.Path.String()] = s.IdealCycle.Seconds()
	}
	state := map[string]plant.State{}
	last := map[string]metricsMsg{}
	first := map[string]metricsMsg{}
	var runningSecs, changes int
	for step := 0; step <= hours*3600; step++ {
		for _, m := range p.Step(t0.Add(time.Duration(step) * time.Second)) {
			name, metric := machineOf(t, m.Topic)
			if metric != "" && metric != "state" {
				continue // a gauge with its unit
			}
			if metric == "state" {
				s := plant.State(m.Payload)
				if state[name] != "" && state[name] != s {
					changes++
				}
				state[name] = s
				continue
			}
			if state[name] == plant.Running {
				runningSecs++
			}
			var v metricsMsg
			if err := json.Unmarshal(m.Payload, &v); err != nil {
				t.Fatal(err)
			}
			if _, ok := first[name]; !ok {
				first[name] = v
			}
			last[name] = v
		}
	}
	var oeeSum float64
	for name, v := range last {
		// OEE = good count × ideal cycle time / planned time (all of it
		// here); the counters start part-way into a shift, not at zero.
		oeeSum += float64(*v.Good-*first[name].Good) * ideal[name] / (hours * 3600)
	}
	oee := oeeSum / float64(len(last))
	avail := float64(runningSecs) / float64(len(specs)*(hours*3600+1))
	perHour := float64(changes) / hours
	t.Logf("OEE %.1f %%, running %.1f %%, %.0f state changes per hour", 100*oee, 100*avail, perHour)
	if oee < 0.60 || oee > 0.85 {
		t.Errorf("OEE %.1f %%, want 60–85 %%", 100*oee)
	}
	if perHour < 20 || perHour > 300 {
		t.Errorf("%.0f state changes per hour across %d machines, want a change every few minutes", perHour, len(specs))
	}
}

func TestPlantDeterministic(t *testing.T) {
	run := func(seed int64) [][]Message {
		p := NewPlant(Config{Seed: seed, Machines: 7}, t0)
		var out [][]Message
		for step := range 600 {
			out = append(out, p.Step(t0.Add(time.Duration(step)*time.Second)))
		}
		return out
	}
	equal := func(a, b [][]Message) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if len(a[i]) != len(b[i]) {
				return false
			}
			for j := range a[i] {
				x, y := a[i][j], b[i][j]
				if x.Topic != y.Topic || !bytes.Equal(x.Payload, y.Payload) || x.QoS != y.QoS || x.Retain != y.Retain {
					return false
				}
			}
		}
		return true
	}
	tests := []struct {
		name   string
		a, b   int64
		wantEq bool
	}{
		{"same seed", 5, 5, true},
		{"other seed", 5, 6, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equal(run(tt.a), run(tt.b)); got != tt.wantEq {
				t.Errorf("seeds %d and %d: equal output %v, want %v", tt.a, tt.b, got, tt.wantEq)
			}
		})
	}
}

func TestPlantStepGaps(t *testing.T) {
	tests := []struct {
		name     string
		next     time.Duration
		wantMsgs bool
		maxParts int64 // per machine, in the step after the first
	}{
		{"backwards", -time.Second, false, 0},
		{"same instant", 0, false, 0},
		{"ten seconds", 10 * time.Second, true, 10/8 + 1},
		{"three days asleep", 72 * time.Hour, true, int64(maxGap/(8*time.Second)) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlant(Config{Seed: 11}, t0)
			before := map[string]metricsMsg{}
			for _, m := range p.Step(t0) {
				if name, metric := machineOf(t, m.Topic); metric == "" {
					before[name] = decodeMetrics(t, m)
				}
			}
			now := t0.Add(tt.next)
			msgs := p.Step(now)
			if got := len(msgs) > 0; got != tt.wantMsgs {
				t.Fatalf("got %d messages, want some: %v", len(msgs), tt.wantMsgs)
			}
			for _, m := range msgs {
				name, metric := machineOf(t, m.Topic)
				if metric != "" {
					continue
				}
				v := decodeMetrics(t, m)
				if *v.TimestampMS != now.UnixMilli() {
					t.Errorf("%s: timestamp_ms %d, want %d", name, *v.TimestampMS, now.UnixMilli())
				}
				parts := *v.Good + *v.Scrap - *before[name].Good - *before[name].Scrap
				if parts < 0 || parts > tt.maxParts {
					t.Errorf("%s: %d parts in the step, want 0–%d", name, parts, tt.maxParts)
				}
			}
		})
	}
}

func TestPlantRate(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		step time.Duration
		dur  time.Duration
		want int // metric messages per machine, the first step included
	}{
		{"default 1 Hz", 0, time.Second, 60 * time.Second, 61},
		{"2 Hz", 2, 500 * time.Millisecond, 10 * time.Second, 21},
		{"one every 5 s", 0.2, time.Second, 60 * time.Second, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlant(Config{Seed: 3, Rate: tt.rate, Machines: 3}, t0)
			metrics := map[string]int{}
			states := map[string]int{}
			for d := time.Duration(0); d <= tt.dur; d += tt.step {
				for _, m := range p.Step(t0.Add(d)) {
					name, metric := machineOf(t, m.Topic)
					switch metric {
					case "":
						metrics[name]++
					case "state":
						states[name]++
					}
				}
			}
			if len(metrics) != 3 {
				t.Fatalf("metrics from %d machines, want 3", len(metrics))
			}
			for name, n := range metrics {
				if n != tt.want {
					t.Errorf("%s: %d metric messages, want %d", name, n, tt.want)
				}
				// The state is repeated every 10 s whatever the rate.
				if min := int(tt.dur / stateResend); states[name] < min {
					t.Errorf("%s: %d state messages in %v, want at least %d", name, states[name], tt.dur, min)
				}
			}
		})
	}
}

func TestPlantLayout(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantLines map[string]int
		wantFirst string
		wantLast  string
	}{
		{"default", Config{}, map[string]int{"line-1": 5, "line-2": 5},
			"acme/hall-1/line-1/press-01", "acme/hall-1/line-2/pack-02"},
		{"twelve machines elsewhere", Config{Machines: 12, Site: "works", Area: "bay-2"},
			map[string]int{"line-1": 5, "line-2": 5, "line-3": 2},
			"works/bay-2/line-1/press-01", "works/bay-2/line-3/cnc-04"},
		{"one machine", Config{Machines: 1}, map[string]int{"line-1": 1},
			"acme/hall-1/line-1/press-01", "acme/hall-1/line-1/press-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs := NewPlant(tt.cfg, t0).Machines()
			lines := map[string]int{}
			seen := map[string]bool{}
			for _, s := range specs {
				lines[s.Path.Line]++
				if seen[s.Path.String()] {
					t.Errorf("machine %s appears twice", s.Path)
				}
				seen[s.Path.String()] = true
				if !strings.HasPrefix(s.Path.Machine, s.Kind+"-") {
					t.Errorf("machine %s is not named by its kind %q", s.Path.Machine, s.Kind)
				}
				if s.IdealCycle < 8*time.Second || s.IdealCycle > 45*time.Second {
					t.Errorf("%s: ideal cycle %v outside 8–45 s", s.Path, s.IdealCycle)
				}
			}
			if fmt.Sprint(lines) != fmt.Sprint(tt.wantLines) {
				t.Errorf("machines per line %v, want %v", lines, tt.wantLines)
			}
			if got := specs[0].Path.String(); got != tt.wantFirst {
				t.Errorf("first machine %s, want %s", got, tt.wantFirst)
			}
			if got := specs[len(specs)-1].Path.String(); got != tt.wantLast {
				t.Errorf("last machine %s, want %s", got, tt.wantLast)
			}
		})
	}
}

// Backfilled messages carry their own time, so a history published now lands
// in the past: no bare state word, and every payload's time is the step's.
func TestPlantBackfill(t *testing.T) {
	p := NewPlant(Config{Seed: 5}, t0)
	states := 0
	for step := 0; step < 360; step++ {
		at := t0.Add(time.Duration(step) * 10 * time.Second)
		for _, m := range p.Backfill(at) {
			var v struct {
				Value       any
				TS          *int64 `json:"ts"`
				TimestampMS *int64 `json:"timestamp_ms"`
			}
			if err := json.Unmarshal(m.Payload, &v); err != nil {
				t.Fatalf("%s: payload %q is not JSON: %v", m.Topic, m.Payload, err)
			}
			ts := v.TS
			if ts == nil {
				ts = v.TimestampMS
			}
			if ts == nil || *ts != at.UnixMilli() {
				t.Fatalf("%s: payload %q does not carry the step's time %d", m.Topic, m.Payload, at.UnixMilli())
			}
			if strings.HasSuffix(m.Topic, "/state") {
				states++
				if w, ok := v.Value.(string); !ok {
					t.Fatalf("%s: state value %v is not a word", m.Topic, v.Value)
				} else if _, ok := plant.ParseState(w); !ok {
					t.Fatalf("%s: %q is not a state", m.Topic, w)
				}
			}
		}
	}
	if states < 360 {
		t.Errorf("%d state messages in an hour of history, want them re-sent every step", states)
	}
}
