package plant

import (
	"errors"
	"testing"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Rule
		wantErr bool
	}{
		{"empty is no rule", "", Rule{}, false},
		{"spaces are no rule", "  ", Rule{}, false},
		{"counter with the default factor", `{"kind":"counter","metric":"total"}`, Rule{Kind: RuleCounter, Metric: "total", Factor: 3}, false},
		{"counter with a factor", `{"kind":"counter","metric":"good","factor":5}`, Rule{Kind: RuleCounter, Metric: "good", Factor: 5}, false},
		{"below", `{"kind":"below","metric":"speed","threshold":10,"for_ms":30000}`, Rule{Kind: RuleBelow, Metric: "speed", Threshold: 10, ForMS: 30000}, false},
		{"unknown kind", `{"kind":"above","metric":"speed"}`, Rule{}, true},
		{"no metric", `{"kind":"counter"}`, Rule{}, true},
		{"negative factor", `{"kind":"counter","metric":"total","factor":-1}`, Rule{}, true},
		{"negative duration", `{"kind":"below","metric":"speed","for_ms":-5}`, Rule{}, true},
		{"typo in a field", `{"kind":"below","metric":"speed","treshold":10}`, Rule{}, true},
		{"not JSON", `counter`, Rule{}, true},
		{"two values", `{"kind":"counter","metric":"total"} {}`, Rule{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRule(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRule(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if got != tt.want {
				t.Errorf("ParseRule(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// ruleStep is a reading (metric != "") or a tick (metric == "") in a rule scenario.
type ruleStep struct {
	metric    string
	ts        int64
	v         float64
	want      State
	wantOK    bool
	wantSince int64 // checked when wantOK
}

func TestRuleState(t *testing.T) {
	counter := Rule{Kind: RuleCounter, Metric: "total", Factor: 3}
	below := Rule{Kind: RuleBelow, Metric: "speed", Threshold: 10, ForMS: 30_000}
	tests := []struct {
		name   string
		rule   Rule
		idealS float64
		steps  []ruleStep
	}{
		{
			// Ideal cycle 10 s, factor 3: down after 30 s without an increase,
			// dated one cycle (10 s) after the counter last moved.
			name: "stalled counter with factor", rule: counter, idealS: 10,
			steps: []ruleStep{
				{metric: "total", ts: 0, v: 100}, // baseline: not known yet
				{metric: "total", ts: 10_000, v: 101, want: Running, wantOK: true, wantSince: 10_000}, // moved
				{metric: "temp", ts: 15_000, v: 80},                                                   // another metric says nothing
				{ts: 39_999},                                                                          // 29.999 s: not yet
				{metric: "total", ts: 35_000, v: 101, want: Running, wantOK: true, wantSince: 10_000},
				{ts: 40_000, want: Down, wantOK: true, wantSince: 20_000}, // 30 s: down since 10 s + one cycle
				{ts: 50_000, want: Down, wantOK: true, wantSince: 20_000}, // still the same stop
				{metric: "total", ts: 60_000, v: 102, want: Running, wantOK: true, wantSince: 60_000},
			},
		},
		{
			name: "a reading of a standing counter finds the stall too", rule: counter, idealS: 10,
			steps: []ruleStep{
				{metric: "total", ts: 0, v: 5},
				{metric: "total", ts: 30_000, v: 5, want: Down, wantOK: true, wantSince: 10_000},
			},
		},
		{
			name: "counter reset and wrap are increases", rule: counter, idealS: 10,
			steps: []ruleStep{
				{metric: "total", ts: 0, v: 65534},
				{metric: "total", ts: 1000, v: 65535, want: Running, wantOK: true, wantSince: 1000},
				{metric: "total", ts: 2000, v: 0, want: Running, wantOK: true, wantSince: 1000},  // wrapped
				{metric: "total", ts: 3000, v: 2, want: Running, wantOK: true, wantSince: 1000},  // counting
				{metric: "total", ts: 40_000, v: 2, want: Down, wantOK: true, wantSince: 13_000}, // stalled
				{metric: "total", ts: 41_000, v: 1, want: Running, wantOK: true, wantSince: 41_000},
			},
		},
		{
			name: "out of order counter reading ignored", rule: counter, idealS: 10,
			steps: []ruleStep{
				{metric: "total", ts: 10_000, v: 5},
				{metric: "total", ts: 5_000, v: 7},
				{metric: "total", ts: 11_000, v: 5}, // still the baseline: no increase, no stall
			},
		},
		{
			name: "increments counter", rule: Rule{Kind: RuleCounter, Metric: "good", Factor: 2, Increments: true}, idealS: 1,
			steps: []ruleStep{
				{metric: "good", ts: 0, v: 1},
				{metric: "good", ts: 1000, v: 1, want: Running, wantOK: true, wantSince: 1000},
				{metric: "good", ts: 2000, v: 0, want: Running, wantOK: true, wantSince: 1000},
				{ts: 3000, want: Down, wantOK: true, wantSince: 2000},
			},
		},
		{
			name: "no ideal cycle time: the counter rule cannot decide", rule: counter, idealS: 0,
			steps: []ruleStep{
				{metric: "total", ts: 0, v: 1},
				{metric: "total", ts: 1000, v: 2},
				{ts: 1_000_000},
			},
		},
		{
			name: "below the threshold long enough is down, dated when it went below", rule: below,
			steps: []ruleStep{
				{metric: "speed", ts: 0, v: 5}, // below, but not for long: not known
				{metric: "speed", ts: 1000, v: 10, want: Running, wantOK: true, wantSince: 1000}, // at the threshold: running
				{metric: "speed", ts: 2000, v: 9.9, want: Running, wantOK: true, wantSince: 1000},
				{ts: 31_999},
				{metric: "speed", ts: 32_000, v: 0, want: Down, wantOK: true, wantSince: 2000},
				{metric: "speed", ts: 40_000, v: 1200, want: Running, wantOK: true, wantSince: 40_000},
				{metric: "speed", ts: 41_000, v: 3, want: Running, wantOK: true, wantSince: 40_000},
				{ts: 71_000, want: Down, wantOK: true, wantSince: 41_000}, // time alone, no reading
			},
		},
		{
			name: "below with no delay", rule: Rule{Kind: RuleBelow, Metric: "speed", Threshold: 1},
			steps: []ruleStep{
				{metric: "speed", ts: 500, v: 0, want: Down, wantOK: true, wantSince: 500},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRuleState(tt.rule, tt.idealS)
			for i, st := range tt.steps {
				var got State
				var ok bool
				if st.metric == "" {
					got, ok = r.At(st.ts)
				} else {
					got, ok = r.Observe(st.metric, st.ts, st.v)
				}
				if ok != st.wantOK || (ok && got != st.want) {
					t.Fatalf("step %d (%q at %d = %v) = %q, %v; want %q, %v", i, st.metric, st.ts, st.v, got, ok, st.want, st.wantOK)
				}
				if ok && r.Since() != st.wantSince {
					t.Errorf("step %d: Since() = %d, want %d", i, r.Since(), st.wantSince)
				}
			}
		})
	}
}
