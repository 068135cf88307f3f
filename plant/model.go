package plant

// Line groups the machines that share a line level in their path. Lines are
// derived from the paths machines publish under, not configured.
type Line struct {
	ID       int64  // the asset id of the line; 0 for machines published without a line level
	Name     string // "" for the implicit line of machines without one
	Path     string
	Machines []Machine
}

// Machine is one machine of the asset tree with what is known about it now.
type Machine struct {
	ID       int64
	Path     Path
	Name     string // display name; the path's machine level unless renamed
	LastSeen int64  // ms of the newest reading of any of its tags; 0 if none
	// OfflineSince is when the machine's device announced it left (a death
	// certificate or last will), 0 while it has not or has come back since.
	// Its values shown then are stale.
	OfflineSince int64
	Tags         []Tag // filled by queries that say so
}

// offlineSkewMS is how far a reading's own time may lie before its
// machine's announced departure and still bring it back: a device whose
// clock runs a little behind the host's reports its rebirth "before" the
// death the host stamped on arrival.
const offlineSkewMS = 60_000

// BackOnline says whether a reading at ts, stored after its machine
// announced at offlineSince that it left, shows the machine back. Older
// readings (a backlog, history) do not.
func BackOnline(offlineSince, ts int64) bool {
	return offlineSince == 0 || ts > offlineSince-offlineSkewMS
}

// Tag is one metric of one machine, discovered from the first reading for it.
type Tag struct {
	ID        int64
	MachineID int64
	Machine   string // the machine's path, for lists across machines
	Metric    string
	Topic     string // the topic of its first reading
	Unit      string
	Role      string // "state", "good", "scrap", "total" or "" for a gauge
	Text      bool   // true when the tag carries words (states) instead of numbers
	Hidden    bool
	LastTS    int64   // ms; 0 if no reading yet
	LastValue float64 // the newest value (numbers)
	LastWord  string  // the newest word (text tags)
	Created   int64   // ms
}

// Point is one stored value of a numeric tag, as sent to charts.
type Point struct {
	TS    int64
	Value float64
}

// RoleFor is the role a metric gets by its name when nobody assigned one.
func RoleFor(metric string) string {
	switch metric {
	case "state", "status", "machine_state":
		return "state"
	case "good", "good_count", "good_parts":
		return "good"
	case "scrap", "scrap_count", "bad", "reject":
		return "scrap"
	case "total", "total_count", "count", "parts":
		return "total"
	}
	return ""
}
