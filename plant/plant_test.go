package plant

import "testing"

func TestPathString(t *testing.T) {
	tests := []struct {
		p    Path
		want string
	}{
		{Path{Site: "acme", Area: "hall", Line: "l1", Machine: "m"}, "acme/hall/l1/m"},
		{Path{Line: "l1", Machine: "m"}, "l1/m"},
		{Path{Machine: "m"}, "m"},
		{Path{Site: "umh/v1/acme", Machine: "m"}, "umh/v1/acme/m"},
		{Path{}, ""},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		word string
		want State
		ok   bool
	}{
		{"running", Running, true},
		{"  RUNNING ", Running, true},
		{"Execute", Running, true},
		{"idle", Idle, true},
		{"starved", Idle, true},
		{"down", Down, true},
		{"Fault", Down, true},
		{"changeover", Changeover, true},
		{"setup", Changeover, true},
		{"planned_stop", PlannedStop, true},
		{"Planned Stop", PlannedStop, true},
		{"maintenance", PlannedStop, true},
		{"offline", "", false}, // a device cannot declare itself offline: that is Andon's conclusion
		{"warming", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseState(tt.word)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseState(%q) = %q, %v; want %q, %v", tt.word, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStateCode(t *testing.T) {
	for v, want := range map[float64]State{1: Running, 2: Idle, 3: Down, 4: Changeover, 5: PlannedStop} {
		if got, ok := StateCode(v); !ok || got != want {
			t.Errorf("StateCode(%v) = %q, %v; want %q", v, got, ok, want)
		}
	}
	for _, v := range []float64{0, 6, 1.5, -1} {
		if got, ok := StateCode(v); ok {
			t.Errorf("StateCode(%v) = %q, want no state", v, got)
		}
	}
}

func TestCurrentState(t *testing.T) {
	const now, hb = int64(1_000_000), int64(30_000)
	word := func(w string, ts int64) Tag { return Tag{Role: "state", Text: true, LastWord: w, LastTS: ts} }
	tests := []struct {
		name string
		m    Machine
		want State
	}{
		{"never seen", Machine{}, Offline},
		{"silent past the heartbeat", Machine{LastSeen: now - hb - 1, Tags: []Tag{word("running", now-hb-1)}}, Offline},
		{"just within the heartbeat", Machine{LastSeen: now - hb, Tags: []Tag{word("down", now-hb)}}, Down},
		{"state word", Machine{LastSeen: now, Tags: []Tag{{Metric: "temp", LastTS: now}, word("Idle", now)}}, Idle},
		{"numeric state code", Machine{LastSeen: now, Tags: []Tag{{Role: "state", LastValue: 4, LastTS: now}}}, Changeover},
		{"unknown word", Machine{LastSeen: now, Tags: []Tag{word("warming", now)}}, Unknown},
		{"no state tag", Machine{LastSeen: now, Tags: []Tag{{Metric: "temp", LastTS: now}}}, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CurrentState(tt.m, now, hb); got != tt.want {
				t.Errorf("CurrentState = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStateLabel(t *testing.T) {
	for _, s := range []State{Running, Idle, Down, Changeover, PlannedStop, Offline, Unknown} {
		if s.Label() == "" {
			t.Errorf("%q has no label", s)
		}
	}
	if PlannedStop.Label() != "Planned stop" {
		t.Errorf("PlannedStop.Label() = %q", PlannedStop.Label())
	}
}

func TestRoleFor(t *testing.T) {
	for metric, want := range map[string]string{
		"state": "state", "status": "state", "good": "good", "scrap": "scrap", "total": "total", "temperature": "",
	} {
		if got := RoleFor(metric); got != want {
			t.Errorf("RoleFor(%q) = %q, want %q", metric, got, want)
		}
	}
}
