// Package views renders Andon's pages with templ. It takes view models built
// by package web and never touches the store, so every page can be rendered
// in a test from plain values.
package views

import (
	"time"

	"andon/plant"
)

// Page is what every page's frame needs.
type Page struct {
	Title       string
	Version     string
	Zone        string // the plant's zone as shown in the footer, e.g. "Europe/Berlin (CET)"
	ZoneName    string // IANA name for the browser's clock and charts; "" if unknown
	ZoneOffset  int    // minutes east of UTC now, for when ZoneName is ""
	Now         time.Time
	HeartbeatMS int64
	Sub         string   // what the page subscribes to on /ws: "plant", "machine:12" or ""
	Nav         string   // "overview", "tags", "rejects" for the current nav item
	User        string   // the logged-in user's name; "" when anonymous (open viewing) or a token
	Role        string   // "viewer", "operator", "admin"; "" when not logged in
	Problems    []string // what is wrong right now, for the banner under the top bar
}

// IsAdmin is true for an admin's pages: only they see the Admin nav item.
func (p Page) IsAdmin() bool { return p.Role == "admin" }

// CanCode is true for an operator or admin, who may code stops.
func (p Page) CanCode() bool { return p.Role == "operator" || p.Role == "admin" }

// Overview is the plant overview.
type Overview struct {
	Page
	Grid Grid
}

// Grid is the overview's body: the lines with their tiles, or the empty state.
type Grid struct {
	Lines    []LineView
	MQTTHost string // "" when the embedded broker is off
	MQTTPort string
}

// Empty is true when no machine has been seen yet.
func (g Grid) Empty() bool {
	for _, l := range g.Lines {
		if len(l.Tiles) > 0 {
			return false
		}
	}
	return true
}

// LineView is one line's section of the overview.
type LineView struct {
	ID    int64
	Name  string // "Unassigned" for machines without a line
	Tiles []Tile
}

// Tile is one machine on the overview.
type Tile struct {
	ID       int64
	Name     string
	Path     string
	State    plant.State
	LastSeen int64 // ms; 0 if never
	NowMS    int64
	Values   []Value // up to six
	// OfflineSince is when the machine's device reported itself offline;
	// 0 if it has not.
	OfflineSince int64
}

// Value is the newest value of one tag.
type Value struct {
	TagID  int64
	Metric string
	Unit   string
	Text   bool
	Word   string
	Number float64
	TS     int64 // ms; 0 if none yet
	NowMS  int64
	Role   string
	// Stale says the machine's device announced it left after this value:
	// it is the last one known, not a live one.
	Stale bool
}

// Crumb is one level of a breadcrumb.
type Crumb struct {
	Label string
	Href  string // "" for a level without its own page
}

// MachinePage is the page of one machine.
type MachinePage struct {
	Page
	Status  MachineStatus
	Crumbs  []Crumb
	Values  []Value
	Charts  []Chart
	Range   string // "1h", "8h", "24h", "7d"
	RangeMS int64
	// Downtime is the state timeline and stops over the range (downtime.templ);
	// nil leaves them out.
	Downtime *MachineDowntime
}

// MachineStatus is the machine page's live header: state and last seen.
type MachineStatus struct {
	ID       int64
	Name     string
	State    plant.State
	LastSeen int64
	NowMS    int64
	Location *time.Location
	// OfflineSince is when the machine's device announced it left (a death
	// certificate, a last will); 0 if it has not.
	OfflineSince int64
}

// Chart is one numeric tag's chart on a machine page.
type Chart struct {
	TagID  int64
	Metric string
	Unit   string
}

// Ranges are the choices of the machine page's range picker, in order.
func Ranges() []RangeChoice {
	return []RangeChoice{
		{Key: "1h", Label: "1 h", Dur: time.Hour},
		{Key: "8h", Label: "8 h", Dur: 8 * time.Hour},
		{Key: "24h", Label: "24 h", Dur: 24 * time.Hour},
		{Key: "7d", Label: "7 d", Dur: 7 * 24 * time.Hour},
	}
}

// RangeChoice is one choice of the range picker.
type RangeChoice struct {
	Key   string
	Label string
	Dur   time.Duration
}

// TagsPage lists every discovered tag.
type TagsPage struct {
	Page
	Location *time.Location
	NowMS    int64
	Tags     []plant.Tag
}

// RejectsPage lists the newest rejected messages.
type RejectsPage struct {
	Page
	Location *time.Location
	Rejects  []plant.Reject
}

// ErrorPage is a friendly error page.
type ErrorPage struct {
	Page
	Code    int
	Heading string
	Message string
}
