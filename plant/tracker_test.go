package plant

import (
	"reflect"
	"testing"
)

// step is one call on a StateTracker in a scenario.
type step struct {
	op   string // "observe", "seen", "tick"
	ts   int64  // the reading's time, or now for a tick
	s    State  // for observe
	want []Span // what the call returns, machine id left out
}

func TestStateTracker(t *testing.T) {
	const hb = 30_000
	sp := func(s State, start, end int64) Span { return Span{State: s, Start: start, End: end} }
	tests := []struct {
		name     string
		open     Span
		hasOpen  bool
		lastSeen int64
		steps    []step
		wantOpen Span
	}{
		{
			name: "first state opens a span, same state changes nothing",
			steps: []step{
				{op: "observe", ts: 1000, s: Running, want: []Span{sp(Running, 1000, 0)}},
				{op: "observe", ts: 2000, s: Running},
			},
			wantOpen: sp(Running, 1000, 0),
		},
		{
			name: "running, down, running: each change closes one span and opens the next",
			steps: []step{
				{op: "observe", ts: 1000, s: Running, want: []Span{sp(Running, 1000, 0)}},
				{op: "observe", ts: 5000, s: Down, want: []Span{sp(Running, 1000, 5000), sp(Down, 5000, 0)}},
				{op: "observe", ts: 9000, s: Running, want: []Span{sp(Down, 5000, 9000), sp(Running, 9000, 0)}},
			},
			wantOpen: sp(Running, 9000, 0),
		},
		{
			name:    "a reading older than the open span is ignored",
			open:    sp(Down, 5000, 0),
			hasOpen: true, lastSeen: 5000,
			steps: []step{
				{op: "observe", ts: 4999, s: Running},
			},
			wantOpen: sp(Down, 5000, 0),
		},
		{
			name:    "a change at the open span's start replaces it instead of storing zero length",
			open:    sp(Running, 1000, 0),
			hasOpen: true, lastSeen: 1000,
			steps: []step{
				{op: "observe", ts: 5000, s: Down, want: []Span{sp(Running, 1000, 5000), sp(Down, 5000, 0)}},
				{op: "observe", ts: 5000, s: Idle, want: []Span{sp(Down, 5000, 5000), sp(Idle, 5000, 0)}},
			},
			wantOpen: sp(Idle, 5000, 0),
		},
		{
			name: "offline after the heartbeat, at the last reading, then back as unknown until a state says more",
			steps: []step{
				{op: "seen", ts: 1000, want: []Span{sp(Unknown, 1000, 0)}},
				{op: "observe", ts: 1000, s: Running, want: []Span{sp(Unknown, 1000, 1000), sp(Running, 1000, 0)}},
				{op: "seen", ts: 2000},
				{op: "tick", ts: 2000 + hb}, // exactly the heartbeat: still online
				{op: "tick", ts: 2001 + hb, want: []Span{sp(Running, 1000, 2000), sp(Offline, 2000, 0)}},
				{op: "tick", ts: 9000 + hb}, // already offline
				{op: "seen", ts: 2000},      // at the offline start: nothing new
				{op: "seen", ts: 50_000, want: []Span{sp(Offline, 2000, 50_000), sp(Unknown, 50_000, 0)}},
				{op: "observe", ts: 50_000, s: Down, want: []Span{sp(Unknown, 50_000, 50_000), sp(Down, 50_000, 0)}},
			},
			wantOpen: sp(Down, 50_000, 0),
		},
		{
			name:    "restart resumes the open span and goes offline from the stored last reading",
			open:    sp(Running, 1000, 0),
			hasOpen: true, lastSeen: 7000,
			steps: []step{
				{op: "observe", ts: 6000, s: Running},
				{op: "tick", ts: 100_000, want: []Span{sp(Running, 1000, 7000), sp(Offline, 7000, 0)}},
			},
			wantOpen: sp(Offline, 7000, 0),
		},
		{
			name:     "a machine with readings but no span goes offline from its last reading",
			lastSeen: 7000,
			steps: []step{
				{op: "tick", ts: 100_000, want: []Span{sp(Offline, 7000, 0)}},
			},
			wantOpen: sp(Offline, 7000, 0),
		},
		{
			name: "a machine never seen does not go offline",
			steps: []step{
				{op: "tick", ts: 100_000},
			},
		},
		{
			name:    "a span opened after the last reading is replaced by offline",
			open:    sp(Down, 9000, 0), // a rule's stop, dated after the last reading
			hasOpen: true, lastSeen: 7000,
			steps: []step{
				{op: "tick", ts: 100_000, want: []Span{sp(Down, 9000, 9000), sp(Offline, 9000, 0)}},
			},
			wantOpen: sp(Offline, 9000, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewStateTracker(7, tt.open, tt.hasOpen, tt.lastSeen)
			for i, st := range tt.steps {
				var got []Span
				switch st.op {
				case "observe":
					got = tr.Observe(st.ts, st.s)
				case "seen":
					got = tr.Seen(st.ts)
				case "tick":
					got = tr.Tick(st.ts, hb)
				}
				for j := range st.want {
					st.want[j].MachineID = 7
				}
				if !reflect.DeepEqual(got, st.want) {
					t.Errorf("step %d (%s %d %s) = %+v, want %+v", i, st.op, st.ts, st.s, got, st.want)
				}
				for _, s := range got {
					if s.End != 0 && s.End < s.Start {
						t.Errorf("step %d: span %+v ends before it starts", i, s)
					}
				}
			}
			open, ok := tr.Open()
			wantOK := tt.wantOpen != Span{}
			if wantOK {
				tt.wantOpen.MachineID = 7
			}
			if ok != wantOK || open != tt.wantOpen {
				t.Errorf("Open() = %+v, %v; want %+v, %v", open, ok, tt.wantOpen, wantOK)
			}
		})
	}
}

func TestSpanDropped(t *testing.T) {
	tests := []struct {
		s    Span
		want bool
	}{
		{Span{Start: 5, End: 0}, false},
		{Span{Start: 5, End: 9}, false},
		{Span{Start: 5, End: 5}, true},
	}
	for _, tt := range tests {
		if got := tt.s.Dropped(); got != tt.want {
			t.Errorf("%+v.Dropped() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestMapState(t *testing.T) {
	st := DefaultSettings()
	st.StateWords = map[string]State{"störung": Down, "Rüsten": Changeover, "running": Idle}
	st.StateCodes = map[float64]State{1: Idle, 7: Down}
	tests := []struct {
		name   string
		word   string
		value  float64
		isWord bool
		want   State
	}{
		{"built-in word", "Producing", 0, true, Running},
		{"extra word, any case", "STÖRUNG ", 0, true, Down},
		{"extra word as configured", "Rüsten", 0, true, Changeover},
		{"extra word configured in capitals", " rüsten", 0, true, Changeover},
		{"extra word wins over the built-in one", "running", 0, true, Idle},
		{"unmapped word is unknown, never guessed", "warming", 0, true, Unknown},
		{"offline cannot be declared", "offline", 0, true, Unknown},
		{"built-in code", "", 3, false, Down},
		{"extra code", "", 7, false, Down},
		{"extra code wins over the built-in one", "", 1, false, Idle},
		{"unmapped code is unknown", "", 42, false, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MapState(tt.word, tt.value, tt.isWord, st); got != tt.want {
				t.Errorf("MapState(%q, %v, %v) = %q, want %q", tt.word, tt.value, tt.isWord, got, tt.want)
			}
		})
	}
	if got := MapState("down", 0, true, Settings{}); got != Down {
		t.Errorf("MapState with no settings = %q, want %q", got, Down)
	}
}
