package plant

import "strings"

// StateTracker follows one machine's state and reports the spans it closes
// and opens, so that a store can keep state_spans in step with the readings.
//
// The spans it returns mean, by their End:
//   - End == 0: the span opens (insert it);
//   - End > Start: the span closes at End (set its end);
//   - End == Start: the span is dropped (delete it). A span that would close
//     at the instant it opened never existed; the span that replaces it,
//     opening at the same instant, always follows in the same result.
//
// A tracker is a plain value with no references inside, so copying it
// (*t) is a complete snapshot: the engine relies on that to undo the changes
// of a transaction that fails.
type StateTracker struct {
	machineID int64
	open      Span
	hasOpen   bool
	lastSeen  int64
}

// NewStateTracker resumes a machine from the store: its open span, if it has
// one, and the time of its newest reading (0 if none).
func NewStateTracker(machineID int64, open Span, hasOpen bool, lastSeen int64) *StateTracker {
	if hasOpen {
		open.MachineID = machineID
		open.End = 0
	}
	return &StateTracker{machineID: machineID, open: open, hasOpen: hasOpen, lastSeen: lastSeen}
}

// Open is the machine's open span, if it has one.
func (t *StateTracker) Open() (Span, bool) { return t.open, t.hasOpen }

// LastSeen is the time of the newest reading of any of the machine's tags.
func (t *StateTracker) LastSeen() int64 { return t.lastSeen }

// Observe applies a state reading at ts. The same state as the open span
// changes nothing. A reading older than the open span's start (out of order)
// is ignored: spans follow time, and a late reading only lands in the
// readings table. A reading at the open span's very start replaces it: the
// open span is dropped and the new state opens at the same instant.
func (t *StateTracker) Observe(ts int64, s State) []Span {
	if t.hasOpen && (ts < t.open.Start || s == t.open.State) {
		return nil
	}
	return t.change(ts, s)
}

// Seen records that a reading of the machine arrived at ts. If the machine
// was offline (or has no span yet), the offline span closes at ts and an
// Unknown span opens: readings arrive again, but until a state reading or a
// rule says more nothing is known about what the machine does. A reading at
// or before the offline span's start says nothing new and changes no span.
func (t *StateTracker) Seen(ts int64) []Span {
	t.lastSeen = max(t.lastSeen, ts)
	if t.hasOpen && (t.open.State != Offline || ts <= t.open.Start) {
		return nil
	}
	return t.change(ts, Unknown)
}

// Tick goes offline at now when the machine's newest reading is older than
// heartbeatMS: the open span closes at the last reading and an Offline span
// opens there, because nothing is known after it. A machine never seen has
// nothing to go offline from. A span opened after the last reading (a
// rule's time-driven stop) closes at its own start instead, that is, it is
// replaced: offline wins over what was concluded without readings.
func (t *StateTracker) Tick(now, heartbeatMS int64) []Span {
	if t.lastSeen == 0 || now-t.lastSeen <= heartbeatMS {
		return nil
	}
	if t.hasOpen && t.open.State == Offline {
		return nil
	}
	at := t.lastSeen
	if t.hasOpen {
		at = max(at, t.open.Start)
	}
	return t.change(at, Offline)
}

// Leave applies a device's announcement that it left (a death
// certificate, a last will) at ts: the open span closes and an Offline span
// opens, at ts or at the open span's start if that is later, since spans
// follow time. The next reading after it ends the offline span as Seen
// does. A machine already offline, or never seen, changes nothing.
func (t *StateTracker) Leave(ts int64) []Span {
	if !t.hasOpen || t.open.State == Offline {
		return nil
	}
	return t.change(max(ts, t.open.Start), Offline)
}

// change closes (or, at the same instant, drops) the open span and opens s at ts.
func (t *StateTracker) change(ts int64, s State) []Span {
	next := Span{MachineID: t.machineID, State: s, Start: ts}
	if !t.hasOpen {
		t.open, t.hasOpen = next, true
		return []Span{next}
	}
	closed := t.open
	closed.End = ts // == Start when dropped
	t.open = next
	return []Span{closed, next}
}

// Dropped says whether a span returned by a StateTracker is to be deleted:
// it would have closed at the instant it opened.
func (s Span) Dropped() bool { return s.End != 0 && s.End == s.Start }

// MapState turns a state reading into a State: a word by the settings' extra
// words first (in any case), then ParseState; a number by the settings' codes first, then
// StateCode. An unmapped word or code is Unknown, by design: a machine is never
// guessed to be running or down from a word nobody mapped.
func MapState(word string, value float64, isWord bool, st Settings) State {
	if isWord {
		if s, ok := st.StateWords[word]; ok {
			return s
		}
		// Admins type the words as they like ("Störung"); devices send them
		// in any case and with stray spaces. The map is a handful of words.
		trimmed := strings.TrimSpace(word)
		for w, s := range st.StateWords {
			if strings.EqualFold(strings.TrimSpace(w), trimmed) {
				return s
			}
		}
		if s, ok := ParseState(word); ok {
			return s
		}
		return Unknown
	}
	if s, ok := st.StateCodes[value]; ok {
		return s
	}
	if s, ok := StateCode(value); ok {
		return s
	}
	return Unknown
}
