package plant

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestMappingRuleValidate(t *testing.T) {
	ok := func(edit func(*MappingRule)) MappingRule {
		r := MappingRule{Pattern: "factory/{line}/{machine}/{metric}", Scale: 1, Note: "line one\nand two"}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	tests := []struct {
		name  string
		rule  MappingRule
		field string // "" = valid
	}{
		{"plain", ok(nil), ""},
		{"availability", ok(func(r *MappingRule) { r.Availability = true; r.Online = "Online"; r.Offline = "Offline" }), ""},
		{"negative scale", ok(func(r *MappingRule) { r.Scale = -0.1; r.Offset = -273.15 }), ""},
		{"config source", ok(func(r *MappingRule) { r.Source = RuleFromConfig }), ""},
		{"no pattern", ok(func(r *MappingRule) { r.Pattern = "" }), "pattern"},
		{"long pattern", ok(func(r *MappingRule) { r.Pattern = strings.Repeat("a", MaxRulePattern+1) }), "pattern"},
		{"control in pattern", ok(func(r *MappingRule) { r.Pattern = "a/\x00{machine}" }), "pattern"},
		{"bad utf8 in value", ok(func(r *MappingRule) { r.Value = "a\xff" }), "value"},
		{"long timestamp", ok(func(r *MappingRule) { r.Timestamp = strings.Repeat("t", MaxRulePath+1) }), "timestamp"},
		{"long metric", ok(func(r *MappingRule) { r.Metric = strings.Repeat("m", MaxRuleMetric+1) }), "metric"},
		{"long unit", ok(func(r *MappingRule) { r.Unit = strings.Repeat("u", MaxRuleUnit+1) }), "unit"},
		{"newline in unit", ok(func(r *MappingRule) { r.Unit = "°C\n" }), "unit"},
		{"long note", ok(func(r *MappingRule) { r.Note = strings.Repeat("n", MaxRuleNote+1) }), "note"},
		{"zero scale", ok(func(r *MappingRule) { r.Scale = 0 }), "scale"},
		{"NaN scale", ok(func(r *MappingRule) { r.Scale = math.NaN() }), "scale"},
		{"infinite offset", ok(func(r *MappingRule) { r.Offset = math.Inf(-1) }), "offset"},
		{"same words", ok(func(r *MappingRule) { r.Availability = true; r.Online = "UP"; r.Offline = " up " }), "offline"},
		{"same default words", ok(func(r *MappingRule) { r.Availability = true; r.Online = "offline" }), "offline"},
		{"unknown source", ok(func(r *MappingRule) { r.Source = "api" }), "source"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var me *MappingError
			if !errors.As(err, &me) {
				t.Fatalf("Validate: %v, want a *MappingError on %s", err, tc.field)
			}
			if me.Field != tc.field {
				t.Errorf("field %q (%v), want %q", me.Field, err, tc.field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
}

func TestMappingRuleWords(t *testing.T) {
	tests := []struct {
		rule            MappingRule
		online, offline string
	}{
		{MappingRule{}, "online", "offline"},
		{MappingRule{Online: "Online", Offline: "LOST"}, "Online", "LOST"},
	}
	for _, tc := range tests {
		if got := tc.rule.OnlineWord(); got != tc.online {
			t.Errorf("OnlineWord of %+v = %q, want %q", tc.rule, got, tc.online)
		}
		if got := tc.rule.OfflineWord(); got != tc.offline {
			t.Errorf("OfflineWord of %+v = %q, want %q", tc.rule, got, tc.offline)
		}
	}
}
