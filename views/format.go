package views

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"andon/plant"
)

// FormatNumber writes a value for people: thousands separators and no more
// decimals than the magnitude deserves (1,234.5; 23.57; 0.00123).
func FormatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	a := math.Abs(v)
	dec := 2
	switch {
	case a >= 1000:
		dec = 1
	case a >= 100:
		dec = 1
	case a == 0 || a >= 1:
		dec = 2
	default:
		// Three significant digits for small values, so 0.00123 is not 0.
		dec = min(2-int(math.Floor(math.Log10(a))), 12)
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// WithUnit joins a formatted value and its unit with a thin gap; units stay
// as the device sent them.
func WithUnit(v float64, unit string) string {
	if unit == "" {
		return FormatNumber(v)
	}
	return FormatNumber(v) + " " + unit
}

// FormatDuration writes a duration the way the plant reads it: "1 h 23 min",
// "4 min 05 s", "12 s", "2 d 3 h".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + " s"
	case s < 3600:
		return strconv.FormatInt(s/60, 10) + " min " + pad2(s%60) + " s"
	case s < 86400:
		return strconv.FormatInt(s/3600, 10) + " h " + strconv.FormatInt(s%3600/60, 10) + " min"
	}
	return strconv.FormatInt(s/86400, 10) + " d " + strconv.FormatInt(s%86400/3600, 10) + " h"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// FormatAge is how long ago a ms timestamp was, e.g. "3 s ago"; "never" for 0.
func FormatAge(tsMS, nowMS int64) string {
	if tsMS == 0 {
		return "never"
	}
	return FormatDuration(time.Duration(nowMS-tsMS)*time.Millisecond) + " ago"
}

// FormatTime is a ms timestamp in the plant's zone, without the zone (it is
// shown once in the footer).
func FormatTime(tsMS int64, loc *time.Location) string {
	if tsMS == 0 {
		return "—"
	}
	if loc == nil {
		loc = time.Local
	}
	return time.UnixMilli(tsMS).In(loc).Format("2006-01-02 15:04:05")
}

// EscapedPayload shows the first bytes of a payload as Go-quoted text, so
// control and invalid bytes are visible as escapes instead of garbling the page.
func EscapedPayload(p []byte) string {
	const limit = 200
	more := len(p) > limit
	if more {
		p = p[:limit]
	}
	s := strconv.Quote(string(p))
	s = s[1 : len(s)-1]
	if more {
		s += "…"
	}
	return s
}

// Truncate shortens s to at most n runes, with an ellipsis.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// stateClass is the CSS class for a state's colour; states come from
// plant.CurrentState, never from device text.
func stateClass(s plant.State) string {
	switch s {
	case plant.Running, plant.Idle, plant.Down, plant.Changeover, plant.PlannedStop, plant.Offline:
		return "state-" + string(s)
	}
	return "state-unknown"
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

func itoa(n int) string { return strconv.Itoa(n) }
