package plant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Rule kinds.
const (
	// RuleCounter: down when the part counter has not increased for Factor ×
	// the ideal cycle time; running when it increases.
	RuleCounter = "counter"
	// RuleBelow: down when the metric stays below Threshold for ForMS;
	// running when it is at or above Threshold.
	RuleBelow = "below"
)

// DefaultRuleFactor is how many ideal cycles a counter may stand still
// before the machine counts as down.
const DefaultRuleFactor = 3

// Rule derives a machine's state from its other metrics, for machines that
// publish no state tag. It is stored as JSON in assets.state_rule, e.g.
// {"kind":"counter","metric":"total","factor":3} or
// {"kind":"below","metric":"speed","threshold":10,"for_ms":30000}.
type Rule struct {
	// Kind is "counter": down when the part counter (Metric, e.g. "good" or
	// "total") has not increased for Factor × ideal cycle time (Factor
	// default 3); or "below": down when Metric is below Threshold for ForMS,
	// running when at or above.
	Kind      string  `json:"kind"`
	Metric    string  `json:"metric"`
	Threshold float64 `json:"threshold,omitempty"`
	ForMS     int64   `json:"for_ms,omitempty"`
	Factor    float64 `json:"factor,omitempty"`
	// Increments says the counter reports parts per message rather than a
	// running total (counter rules only): any positive value is an increase.
	Increments bool `json:"increments,omitempty"`
}

// ParseRule reads the JSON form stored in assets.state_rule. "" (or only
// spaces) is no rule: a zero Rule with Kind "". Unknown fields are refused, so
// a typo does not silently become a rule that never fires. Errors wrap
// ErrInvalid.
func ParseRule(s string) (Rule, error) {
	if strings.TrimSpace(s) == "" {
		return Rule{}, nil
	}
	var r Rule
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rule{}, fmt.Errorf("%w: state rule: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Rule{}, fmt.Errorf("%w: state rule: more than one JSON value", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	if r.Kind == RuleCounter && r.Factor == 0 {
		r.Factor = DefaultRuleFactor
	}
	return r, nil
}

// Validate says what is wrong with a rule, wrapping ErrInvalid, or nil.
func (r Rule) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: state rule: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if strings.TrimSpace(r.Metric) == "" {
		return bad("a metric is required")
	}
	switch r.Kind {
	case RuleCounter:
		if r.Factor < 0 || math.IsNaN(r.Factor) || math.IsInf(r.Factor, 0) {
			return bad("factor must be a positive number, not %v", r.Factor)
		}
	case RuleBelow:
		if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
			return bad("threshold must be a number")
		}
		if r.ForMS < 0 {
			return bad("for_ms must not be negative")
		}
	default:
		return bad("kind must be %q or %q, not %q", RuleCounter, RuleBelow, r.Kind)
	}
	return nil
}

// RuleState applies a Rule to one machine's readings. Like StateTracker it
// holds no references, so a copy of it is a complete snapshot.
type RuleState struct {
	rule    Rule
	cycleMS float64 // the ideal cycle time in ms; 0 when not set

	state State // the derived state; "" while not known
	since int64 // when state began

	has    bool    // a reading of the metric has been seen
	last   float64 // the newest value of the metric
	lastTS int64   // its time

	// counter: when the counter last moved (or was first seen)
	moved int64
	// below: whether the metric is below the threshold, and since when
	below      bool
	belowSince int64
}

// NewRuleState starts applying r to a machine whose ideal cycle time is
// idealCycleS seconds (0 if not set: a counter rule can then never decide,
// because "stood still for too long" has no length).
func NewRuleState(r Rule, idealCycleS float64) *RuleState {
	if r.Kind == RuleCounter && r.Factor == 0 {
		r.Factor = DefaultRuleFactor
	}
	rs := &RuleState{rule: r}
	if idealCycleS > 0 && !math.IsInf(idealCycleS, 0) {
		rs.cycleMS = idealCycleS * 1000
	}
	return rs
}

// Rule is the rule being applied.
func (r *RuleState) Rule() Rule { return r.rule }

// Since is when the derived state began. A stop found by time is dated when
// it began, not when it was noticed: a stalled counter one ideal cycle after
// it last moved (when the next part was due), a low metric when it went
// below the threshold.
func (r *RuleState) Since() int64 { return r.since }

// Observe applies a reading of metric at ts and returns the derived state
// after it; ok is false while the state is not known (no reading yet, or a
// counter rule without an ideal cycle time) and for readings that say
// nothing (another metric, NaN, older than the newest reading).
func (r *RuleState) Observe(metric string, ts int64, v float64) (State, bool) {
	if metric != r.rule.Metric || math.IsNaN(v) || math.IsInf(v, 0) || (r.has && ts < r.lastTS) {
		return "", false
	}
	first := !r.has
	prev := r.last
	r.has, r.last, r.lastTS = true, v, ts
	switch r.rule.Kind {
	case RuleCounter:
		if r.cycleMS == 0 {
			return "", false
		}
		if first {
			r.moved = ts
			return "", false
		}
		if r.increased(prev, v) {
			r.moved = ts
			r.set(Running, ts)
			return Running, true
		}
		if s, ok := r.At(ts); ok {
			return s, true
		}
	case RuleBelow:
		if v >= r.rule.Threshold {
			r.below = false
			r.set(Running, ts)
			return Running, true
		}
		if !r.below {
			r.below, r.belowSince = true, ts
		}
		if s, ok := r.At(ts); ok {
			return s, true
		}
	}
	return r.state, r.state != ""
}

// At is the derived state at now by time alone: Down when a counter has
// stood still for Factor × the ideal cycle time, or a metric has stayed below
// its threshold for ForMS. ok is false when time says nothing (yet).
func (r *RuleState) At(now int64) (State, bool) {
	switch r.rule.Kind {
	case RuleCounter:
		if r.cycleMS == 0 || !r.has {
			return "", false
		}
		if float64(now-r.moved) >= r.rule.Factor*r.cycleMS {
			// A factor below 1 notices the stall before the next part
			// was due; the stop then begins when it is noticed.
			r.set(Down, r.moved+int64(math.Round(min(1, r.rule.Factor)*r.cycleMS)))
			return Down, true
		}
	case RuleBelow:
		if r.below && now-r.belowSince >= r.rule.ForMS {
			r.set(Down, r.belowSince)
			return Down, true
		}
	}
	return "", false
}

// increased says whether a counter moved from prev to v: up, or (for a
// monotonic counter) down and back up again after a reset or a wrap.
func (r *RuleState) increased(prev, v float64) bool {
	if r.rule.Increments {
		return v > 0
	}
	return v >= 0 && counterStep(prev, v) > 0 && v != prev
}

// set records a new derived state; the same state keeps its start.
func (r *RuleState) set(s State, at int64) {
	if s != r.state {
		r.state, r.since = s, at
	}
}
