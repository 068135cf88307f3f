package plant

import (
	"unicode"
	"unicode/utf8"
)

// ValidName reports whether a name from a device or a payload (a topic
// level, a metric, a unit) is valid UTF-8 without control characters.
func ValidName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Truncate shortens s to at most n bytes without splitting a character,
// marking the cut with an ellipsis, for names quoted in messages.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
