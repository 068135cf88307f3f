package plant

import "strings"

// State is what a machine is doing. Offline is not reported by devices: it is
// what Andon concludes when a machine's readings stop arriving.
type State string

const (
	Running     State = "running"
	Idle        State = "idle"
	Down        State = "down"
	Changeover  State = "changeover"
	PlannedStop State = "planned_stop"
	Offline     State = "offline"
	Unknown     State = "unknown" // readings arrive, but none of them says the state
)

// Label is how the state reads on screens.
func (s State) Label() string {
	switch s {
	case Running:
		return "Running"
	case Idle:
		return "Idle"
	case Down:
		return "Down"
	case Changeover:
		return "Changeover"
	case PlannedStop:
		return "Planned stop"
	case Offline:
		return "Offline"
	}
	return "No state"
}

// ParseState maps a device's state word to a State. It accepts the canonical
// names and common synonyms, in any case; ok is false for anything else.
func ParseState(word string) (s State, ok bool) {
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "running", "run", "producing", "production", "execute", "active", "on":
		return Running, true
	case "idle", "waiting", "starved", "blocked", "ready", "standby":
		return Idle, true
	case "down", "stopped", "stop", "fault", "error", "alarm", "breakdown", "aborted":
		return Down, true
	case "changeover", "setup", "set-up", "set_up":
		return Changeover, true
	case "planned_stop", "planned-stop", "planned stop", "maintenance", "break", "off":
		return PlannedStop, true
	}
	return "", false
}

// StateCode maps numeric state codes (PackML-like defaults) to states. A
// configurable mapping replaces it later.
func StateCode(v float64) (State, bool) {
	switch v {
	case 1:
		return Running, true
	case 2:
		return Idle, true
	case 3:
		return Down, true
	case 4:
		return Changeover, true
	case 5:
		return PlannedStop, true
	}
	return "", false
}

// DefaultHeartbeatMS is how long a machine may stay silent before it is offline.
const DefaultHeartbeatMS = 30_000

// CurrentState is the state a machine is in at now: offline when its newest
// reading is older than the heartbeat or its device announced it left, else
// what its state tag says.
func CurrentState(m Machine, nowMS, heartbeatMS int64) State {
	if m.LastSeen == 0 || nowMS-m.LastSeen > heartbeatMS || m.OfflineSince > 0 {
		return Offline
	}
	for _, t := range m.Tags {
		if t.Role != "state" || t.LastTS == 0 {
			continue
		}
		if t.Text {
			if s, ok := ParseState(t.LastWord); ok {
				return s
			}
		} else if s, ok := StateCode(t.LastValue); ok {
			return s
		}
	}
	return Unknown
}
