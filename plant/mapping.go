package plant

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReasonUnmapped is the reject reason of a message that a mapping rule
// claimed by its topic but could not read (its value is not where the rule
// says), or that no decoder understood at all. Such topics are listed in the
// admin's "unmapped topics" inbox.
const ReasonUnmapped = "unmapped"

// Where a mapping rule comes from.
const (
	RuleFromConfig = "config" // the config file's mapping: section; read-only in the UI
	RuleFromAdmin  = "admin"  // added in the admin UI
)

// Default words of an availability rule.
const (
	DefaultOnlineWord  = "online"
	DefaultOfflineWord = "offline"
)

// Bounds of a mapping rule's texts. Rules come from admins and the config
// file; the bounds keep them readable and their matching cheap.
const (
	MaxRulePattern = 256 // bytes of a pattern
	MaxRulePath    = 256 // bytes of a JSON path
	MaxRuleMetric  = 128 // bytes of a metric template
	MaxRuleUnit    = 32  // bytes of a unit, as the default decoder allows
	MaxRuleWord    = 64  // bytes of an online/offline word, as a state word
	MaxRuleNote    = 500 // bytes of a note
)

// MappingRule tells ingest how to read messages whose topic matches Pattern,
// before the built-in topic scheme is tried. Rules are tried in order and the
// first whose pattern matches the topic decides.
//
// Pattern has MQTT-style levels separated by '/': a literal, '+' (any one
// level), a trailing '#' (any rest), or a template mixing literal text with
// named segments such as {site}, {area}, {line}, {machine}, {metric} or any
// other {name}, e.g. "plant.{line}.{machine}" within one level. {machine} is
// required. Value and Timestamp are JSON paths such as "data.temp",
// "a[0].b", "$.a" or `a["key with.dots"]`.
type MappingRule struct {
	ID        int64
	Pattern   string
	Value     string // JSON path of the value; "" = the whole payload (a JSON object: every field)
	Timestamp string // JSON path of the reading's time; "" = the default ts keys, else arrival
	// Metric is the metric's name: a literal or a template with the
	// pattern's segment names ("{sensor}_temp"); "" = the {metric} segment,
	// else the value path's last element.
	Metric       string
	Unit         string
	Scale        float64 // value × Scale + Offset, for numbers; 1 leaves them as they are
	Offset       float64
	Availability bool   // the payload says whether the machine is online or offline
	Online       string // the words of an availability rule; "" = "online"
	Offline      string // "" = "offline"
	Source       string // RuleFromConfig or RuleFromAdmin
	Note         string // what the rule is for, in the admin's words
}

// MappingError says which part of a mapping rule is wrong and why. Field is
// the rule's key as the config file and the admin form name it (pattern,
// value, timestamp, metric, unit, scale, offset, online, offline, note).
type MappingError struct {
	Field string
	Msg   string
}

func (e *MappingError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes a wrong rule an invalid request: a 4xx, never a 500.
func (e *MappingError) Unwrap() error { return ErrInvalid }

// OnlineWord is the word that says the machine is online.
func (r MappingRule) OnlineWord() string {
	if r.Online == "" {
		return DefaultOnlineWord
	}
	return r.Online
}

// OfflineWord is the word that says the machine left.
func (r MappingRule) OfflineWord() string {
	if r.Offline == "" {
		return DefaultOfflineWord
	}
	return r.Offline
}

// Validate checks what needs no compiling: lengths, text without control
// characters, finite numbers, a scale that does not erase the value, and
// distinct online and offline words. The pattern and paths are checked when
// ingest compiles the rule. The error is a *MappingError.
func (r MappingRule) Validate() error {
	texts := []struct {
		field, s string
		max      int
	}{
		{"pattern", r.Pattern, MaxRulePattern},
		{"value", r.Value, MaxRulePath},
		{"timestamp", r.Timestamp, MaxRulePath},
		{"metric", r.Metric, MaxRuleMetric},
		{"unit", r.Unit, MaxRuleUnit},
		{"online", r.Online, MaxRuleWord},
		{"offline", r.Offline, MaxRuleWord},
		{"note", r.Note, MaxRuleNote},
	}
	for _, t := range texts {
		if len(t.s) > t.max {
			return &MappingError{t.field, fmt.Sprintf("%d bytes long; at most %d are allowed", len(t.s), t.max)}
		}
		if !utf8.ValidString(t.s) {
			return &MappingError{t.field, "not valid UTF-8"}
		}
		for _, c := range t.s {
			// A note may run over several lines; nothing else may.
			if unicode.IsControl(c) && (t.field != "note" || (c != '\n' && c != '\r' && c != '\t')) {
				return &MappingError{t.field, "contains a control character"}
			}
		}
	}
	if r.Pattern == "" {
		return &MappingError{"pattern", "a pattern is needed, like factory/{line}/{machine}/{metric}"}
	}
	if math.IsNaN(r.Scale) || math.IsInf(r.Scale, 0) {
		return &MappingError{"scale", "must be a finite number"}
	}
	if r.Scale == 0 {
		return &MappingError{"scale", "must not be 0 (it would erase every value); 1 leaves values as they are"}
	}
	if math.IsNaN(r.Offset) || math.IsInf(r.Offset, 0) {
		return &MappingError{"offset", "must be a finite number"}
	}
	if r.Availability && equalFoldTrim(r.OnlineWord(), r.OfflineWord()) {
		return &MappingError{"offline", "the online and offline words must differ"}
	}
	switch r.Source {
	case "", RuleFromConfig, RuleFromAdmin:
	default:
		return &MappingError{"source", fmt.Sprintf("%q: want %q or %q", r.Source, RuleFromConfig, RuleFromAdmin)}
	}
	return nil
}

// equalFoldTrim compares two words as an availability rule does: without
// surrounding spaces, ignoring case.
func equalFoldTrim(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
