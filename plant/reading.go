// Package plant is the domain at the centre of Andon: readings, machines,
// tags and machine states. It does no I/O and has no clock of its own, so
// everything here can be tested with hand-worked scenarios.
package plant

import (
	"errors"
	"strings"
)

// ErrNotFound is returned by stores when an asset, tag or reading does not exist.
var ErrNotFound = errors.New("not found")

// Path names a machine by the levels of its asset tree. Empty levels are
// absent: a topic "line-1/press-3/temp" has no site and no area.
type Path struct {
	Site, Area, Line, Machine string
}

// String joins the present levels with '/', the machine's identity in the store.
func (p Path) String() string {
	parts := make([]string, 0, 4)
	for _, s := range []string{p.Site, p.Area, p.Line, p.Machine} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "/")
}

// Reading is one value of one metric of one machine at one instant, as it
// arrives from a device. A reading carries either a number or a word (a state
// such as "running"); Word is empty for numbers.
type Reading struct {
	Path   Path
	Metric string
	TS     int64 // milliseconds since the Unix epoch, UTC
	// Arrival says TS is when the reading arrived, because the payload stated
	// no time. The store may then move it on by a millisecond or two so that
	// readings of one tag arriving in the same millisecond (a backlog replayed
	// after an outage) stay apart instead of collapsing into one row.
	Arrival bool
	Value   float64
	Word    string // non-empty for text readings; Value is then ignored by the store
	Unit    string // optional, from the payload; empty leaves the tag's unit alone
	Topic   string // the MQTT topic it came from, for the tag list
	// Offline makes this no value but an announcement: the device said it
	// left (a Sparkplug death certificate, an MQTT last will, an
	// availability topic saying "offline"). Its machine is offline from TS,
	// and every value it showed is stale, until its next reading. Metric,
	// Value and Word are unused; a machine the store does not know yet is
	// not created by it.
	Offline bool
}

// Reject is a message that could not be turned into readings: kept, bounded,
// for an admin to see, and counted by reason.
type Reject struct {
	TS      int64 // receive time, ms
	Topic   string
	Reason  string // a short machine-readable reason, e.g. "not_a_number"
	Detail  string // a human-readable explanation
	Payload []byte // the first bytes of the payload
}

// Reject reasons. They label andon_readings_rejected_total and rows of the rejects table.
const (
	ReasonTooLarge        = "payload_too_large"
	ReasonEmpty           = "empty_payload"
	ReasonNotANumber      = "not_a_number"
	ReasonBadJSON         = "bad_json"
	ReasonNotFinite       = "not_finite"
	ReasonBadTimestamp    = "bad_timestamp"
	ReasonFutureTimestamp = "timestamp_in_future"
	ReasonOldTimestamp    = "timestamp_too_old"
	ReasonTopicTooLong    = "topic_too_long"
	ReasonTopicInvalid    = "topic_invalid"
	ReasonTopicTooShort   = "topic_too_short"
	ReasonNameInvalid     = "name_invalid"
	ReasonTooManyValues   = "too_many_values"
	ReasonTagLimit        = "tag_limit"
	ReasonQueueFull       = "queue_full"
	ReasonStoreFailed     = "store_failed"
	// Sparkplug B: a payload that is not its protobuf, and data of a node
	// or device whose birth certificate Andon has not seen (it asks for a
	// rebirth).
	ReasonBadSparkplug     = "bad_sparkplug"
	ReasonSparkplugNoBirth = "sparkplug_no_birth"
)

// Stored is a reading as committed to the store, with the ids the store gave
// it. Only stored readings are pushed to browsers: what a screen shows is
// what is stored.
type Stored struct {
	TagID     int64
	MachineID int64
	TS        int64
	Value     float64
	Word      string // non-empty for text tags
	// Offline marks the machine's announcement that it left (see
	// Reading.Offline); TagID is then 0 and there is no value.
	Offline bool
}
