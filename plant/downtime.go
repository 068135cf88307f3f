package plant

import "errors"

// ErrInvalid is returned for a request that names things that exist but asks
// for something that cannot be done (splitting an ongoing stop, a reason that
// is a category). Stores and handlers wrap it with the reason.
var ErrInvalid = errors.New("invalid request")

// Span is an interval [Start, End) in which a machine was in one state.
// End == 0 means the span is still open (the machine is in that state now).
type Span struct {
	MachineID int64
	State     State
	Start     int64 // ms
	End       int64 // ms; 0 while open
}

// EndOr is the span's end, or now for an open span.
func (s Span) EndOr(now int64) int64 {
	if s.End == 0 {
		return now
	}
	return s.End
}

// IsStop says whether time in this state is a stop (downtime, planned or
// not): every state but running and offline. Offline is unknown time, its own
// bucket, never a stop. Unknown (readings arrive but none says the state) is
// not a stop either.
func (s State) IsStop() bool {
	switch s {
	case Idle, Down, Changeover, PlannedStop:
		return true
	}
	return false
}

// Stop is one downtime event: a span of a stop state, with what operators
// said about it. A stop that an operator splits becomes two stops.
type Stop struct {
	ID        int64
	MachineID int64
	Machine   string // the machine's display name, for lists
	State     State
	Start     int64 // ms
	End       int64 // ms; 0 while ongoing
	ReasonID  int64 // 0 while uncoded
	Reason    string
	Category  string
	Planned   bool // the reason's flag once coded; before that, true only for planned_stop
	Comment   string
	CodedBy   string
	CodedAt   int64 // ms; 0 while uncoded
}

// Ongoing says whether the stop has not ended yet.
func (s Stop) Ongoing() bool { return s.End == 0 }

// Duration is the stop's length in ms, up to now for an ongoing stop.
func (s Stop) Duration(now int64) int64 { return max(0, s.EndOr(now)-s.Start) }

// EndOr is the stop's end, or now for an ongoing stop.
func (s Stop) EndOr(now int64) int64 {
	if s.End == 0 {
		return now
	}
	return s.End
}

// Reason is one node of the reason tree: a category (ParentID 0) or a
// reason under one. Only reasons, not categories, code a stop. Planned says
// whether stops with this reason are planned (breaks, planned maintenance, no
// orders): planned stops reduce planned production time instead of
// availability.
type Reason struct {
	ID       int64
	ParentID int64 // 0 for a category
	Name     string
	Planned  bool
	Sort     int
	Hidden   bool // no longer offered for coding; kept for stops coded with it
}

// Coding is an operator's answer to "why did it stop?".
type Coding struct {
	StopID   int64
	ReasonID int64
	Comment  string
	By       string // who coded it (a user name; "operator" until users exist)
	At       int64  // ms
}

// DefaultReasons is the reason tree a new plant starts with: categories, each
// with its reasons. Admins rename, hide and add to it.
func DefaultReasons() []Reason {
	tree := []struct {
		category string
		planned  bool
		reasons  []string
	}{
		{"Breakdown", false, []string{"Mechanical failure", "Electrical failure", "Tooling failure", "Jam"}},
		{"Material", false, []string{"Material shortage", "Wrong material", "Waiting for upstream", "Output blocked"}},
		{"Changeover", false, []string{"Product changeover", "Tool change", "Adjustment"}},
		{"Quality", false, []string{"Quality check", "Rework", "Scrap cleanup"}},
		{"People", false, []string{"No operator", "Training"}},
		{"Planned", true, []string{"Planned maintenance", "Break", "No orders", "Meeting", "Cleaning"}},
	}
	var out []Reason
	id := int64(0)
	for i, c := range tree {
		id++
		cat := id
		out = append(out, Reason{ID: cat, Name: c.category, Planned: c.planned, Sort: i})
		for j, r := range c.reasons {
			id++
			out = append(out, Reason{ID: id, ParentID: cat, Name: r, Planned: c.planned, Sort: j})
		}
	}
	return out
}

// MachineConfig is what KPIs and costs need to know about a machine beyond
// its readings. Zero values mean "not set": the KPIs that need them are n/a
// with a reason, never a division by zero.
type MachineConfig struct {
	IdealCycleS   float64 // seconds per part at the ideal rate
	CostPerHour   float64 // labour and overhead while stopped, in the plant's currency
	MarginPerUnit float64 // contribution margin of one good part
	// Bottleneck makes this machine's availability, performance, quality,
	// OEE, MTBF, MTTR and output its line's; at most one per line.
	Bottleneck bool
}

// Settings are the plant-wide thresholds for stops.
type Settings struct {
	MicroStopMS int64  // stops shorter than this are micro-stops: performance losses (default 2 min)
	NoReasonMS  int64  // stops shorter than this need no reason code (default: the micro-stop threshold)
	Currency    string // shown with money, e.g. "€", "$", "CHF" (default "€")
	HeartbeatMS int64  // silent longer than this is offline (default DefaultHeartbeatMS)
	StateCodes  map[float64]State
	StateWords  map[string]State // extra words beyond ParseState's, e.g. "störung": Down
}

// DefaultSettings are the thresholds a new plant starts with.
func DefaultSettings() Settings {
	return Settings{MicroStopMS: 2 * 60_000, NoReasonMS: 2 * 60_000, Currency: "€", HeartbeatMS: DefaultHeartbeatMS}
}
