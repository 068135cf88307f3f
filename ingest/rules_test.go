package ingest

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"andon/plant"
)

// rule is a mapping rule with the defaults a form or the config file gives.
func rule(pattern string, edit ...func(*plant.MappingRule)) plant.MappingRule {
	r := plant.MappingRule{Pattern: pattern, Scale: 1, Source: plant.RuleFromAdmin}
	for _, f := range edit {
		f(&r)
	}
	return r
}

func msg(topic, payload string) Message {
	return Message{Topic: topic, Payload: []byte(payload), RecvMS: recv}
}

// decodeOne compiles rules and decodes one message with them.
func decodeOne(t *testing.T, rules []plant.MappingRule, m Message) ([]plant.Reading, *plant.Reject, bool) {
	t.Helper()
	rs, err := CompileRules(rules)
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	return rs.decode(m, DefaultLimits())
}

func TestRulesPatternMatching(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		topic   string
		want    plant.Path // zero: no match
		metric  string
	}{
		{"literals and segments", "factory/{line}/{machine}/{metric}", "factory/l1/press-3/temp",
			plant.Path{Line: "l1", Machine: "press-3"}, "temp"},
		{"literal differs", "factory/{line}/{machine}/{metric}", "plant/l1/press-3/temp", plant.Path{}, ""},
		{"too few levels", "factory/{line}/{machine}/{metric}", "factory/l1/press-3", plant.Path{}, ""},
		{"too many levels", "factory/{line}/{machine}/{metric}", "factory/l1/press-3/temp/x", plant.Path{}, ""},
		{"all four levels", "{site}/{area}/{line}/{machine}/{metric}", "acme/hall/l1/m1/speed",
			plant.Path{Site: "acme", Area: "hall", Line: "l1", Machine: "m1"}, "speed"},
		{"plus skips a level", "factory/+/{machine}/{metric}", "factory/anything/m1/temp", plant.Path{Machine: "m1"}, "temp"},
		{"hash takes the rest", "tele/{machine}/{metric}/#", "tele/m1/temp/a/b/c", plant.Path{Machine: "m1"}, "temp"},
		{"hash takes the parent too", "tele/{machine}/{metric}/#", "tele/m1/temp", plant.Path{Machine: "m1"}, "temp"},
		{"in-level template", "plant.{line}.{machine}/{metric}", "plant.l2.cnc7/rpm", plant.Path{Line: "l2", Machine: "cnc7"}, "rpm"},
		{"in-level template, dotted machine", "plant.{line}.{machine}/{metric}", "plant.l2.cnc.7/rpm",
			plant.Path{Line: "l2", Machine: "cnc.7"}, "rpm"},
		{"in-level template mismatch", "plant.{line}.{machine}/{metric}", "plant-l2-cnc7/rpm", plant.Path{}, ""},
		{"segment needs a character", "m-{machine}/{metric}", "m-/temp", plant.Path{}, ""},
		{"prefix and suffix", "dev_{machine}_v1/{metric}", "dev_abc_v1/t", plant.Path{Machine: "abc"}, "t"},
		{"regexp characters are literal", "a.b*(c)/{machine}/{metric}", "a.b*(c)/m/v", plant.Path{Machine: "m"}, "v"},
		{"regexp characters do not match others", "a.b/{machine}/{metric}", "axb/m/v", plant.Path{}, ""},
		{"escaped braces", "x{{y}}/{machine}/{metric}", "x{y}/m/v", plant.Path{Machine: "m"}, "v"},
		{"unicode levels", "werk/{line}/{machine}/{metric}", "werk/straße-1/presse-ä/temp",
			plant.Path{Line: "straße-1", Machine: "presse-ä"}, "temp"},
		{"broker topics are never matched", "+/{machine}/{metric}", "$SYS/broker/load", plant.Path{}, ""},
		{"invalid topic left to the default", "a/{machine}/{metric}", "a//m/v", plant.Path{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, ok := decodeOne(t, []plant.MappingRule{rule(tc.pattern)}, msg(tc.topic, "1.5"))
			if tc.want == (plant.Path{}) {
				if ok {
					t.Fatalf("matched %q: %+v %+v", tc.topic, rs, rej)
				}
				return
			}
			if !ok || rej != nil || len(rs) != 1 {
				t.Fatalf("got ok=%v %+v %+v, want one reading", ok, rs, rej)
			}
			if rs[0].Path != tc.want || rs[0].Metric != tc.metric {
				t.Errorf("got %+v %q, want %+v %q", rs[0].Path, rs[0].Metric, tc.want, tc.metric)
			}
		})
	}
}

func TestRulesValues(t *testing.T) {
	const at = int64(1732449990000) // 10 s before recv
	p := plant.Path{Line: "l1", Machine: "m1"}
	tests := []struct {
		name    string
		rule    plant.MappingRule
		topic   string
		payload string
		want    []plant.Reading
		reason  string // of the reject, "" for none
	}{
		{"bare number", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/temp", "23.5",
			[]plant.Reading{{Path: p, Metric: "temp", TS: recv, Arrival: true, Value: 23.5, Topic: "f/l1/m1/temp"}}, ""},
		{"bare word", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/state", "running",
			[]plant.Reading{{Path: p, Metric: "state", TS: recv, Arrival: true, Word: "running", Topic: "f/l1/m1/state"}}, ""},
		{"quoted bare word", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/state", `"idle"`,
			[]plant.Reading{{Path: p, Metric: "state", TS: recv, Arrival: true, Word: "idle", Topic: "f/l1/m1/state"}}, ""},
		{"scale and offset", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 0.1; r.Offset = -40; r.Unit = "°C" }),
			"f/l1/m1/temp", "650",
			[]plant.Reading{{Path: p, Metric: "temp", TS: recv, Arrival: true, Value: 25, Unit: "°C", Topic: "f/l1/m1/temp"}}, ""},
		{"bool not scaled", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 10; r.Offset = 5 }),
			"f/l1/m1/on", "true",
			[]plant.Reading{{Path: p, Metric: "on", TS: recv, Arrival: true, Value: 1, Topic: "f/l1/m1/on"}}, ""},
		{"word not scaled", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 10 }),
			"f/l1/m1/state", "down",
			[]plant.Reading{{Path: p, Metric: "state", TS: recv, Arrival: true, Word: "down", Topic: "f/l1/m1/state"}}, ""},
		{"scaled overflow", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 1e300 }),
			"f/l1/m1/temp", "1e300", nil, plant.ReasonNotFinite},
		{"nested value path", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "data.temp" }),
			"f/l1/m1", `{"data": {"temp": 21.5, "hum": 40}}`,
			[]plant.Reading{{Path: p, Metric: "temp", TS: recv, Arrival: true, Value: 21.5, Topic: "f/l1/m1"}}, ""},
		{"array index", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "$[1].v"; r.Metric = "power" }),
			"f/l1/m1", `[{"v": 1}, {"v": 2}]`,
			[]plant.Reading{{Path: p, Metric: "power", TS: recv, Arrival: true, Value: 2, Topic: "f/l1/m1"}}, ""},
		{"array inside", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "a[0].b" }),
			"f/l1/m1", `{"a": [{"b": 7}]}`,
			[]plant.Reading{{Path: p, Metric: "b", TS: recv, Arrival: true, Value: 7, Topic: "f/l1/m1"}}, ""},
		{"quoted key with dots", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = `["temp.C"]`; r.Metric = "temp" }),
			"f/l1/m1", `{"temp.C": 19, "temp": 1}`,
			[]plant.Reading{{Path: p, Metric: "temp", TS: recv, Arrival: true, Value: 19, Topic: "f/l1/m1"}}, ""},
		{"dollar root", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Value = "$.v" }),
			"f/l1/m1/temp", `{"v": "12.5"}`,
			[]plant.Reading{{Path: p, Metric: "temp", TS: recv, Arrival: true, Value: 12.5, Topic: "f/l1/m1/temp"}}, ""},
		{"value path missing", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "data.temp" }),
			"f/l1/m1", `{"data": {"hum": 40}}`, nil, plant.ReasonUnmapped},
		{"value path through a number", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "data.temp" }),
			"f/l1/m1", `{"data": 5}`, nil, plant.ReasonUnmapped},
		{"value is an object", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "data" }),
			"f/l1/m1", `{"data": {"x": 1}}`, nil, plant.ReasonNotANumber},
		{"value path on a bare payload", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "data" }),
			"f/l1/m1", `running`, nil, plant.ReasonBadJSON},
		{"broken JSON", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/temp", `{"value": `, nil, plant.ReasonBadJSON},
		{"empty payload", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/temp", "  ", nil, plant.ReasonEmpty},
		{"not a number", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/temp", "12,5", nil, plant.ReasonNotANumber},
		{"metric template", rule("f/{line}/{machine}/{sensor}/raw", func(r *plant.MappingRule) { r.Metric = "{sensor}_raw" }),
			"f/l1/m1/t3/raw", "4",
			[]plant.Reading{{Path: p, Metric: "t3_raw", TS: recv, Arrival: true, Value: 4, Topic: "f/l1/m1/t3/raw"}}, ""},
		{"literal metric", rule("f/{line}/{machine}/x", func(r *plant.MappingRule) { r.Metric = "speed" }),
			"f/l1/m1/x", "4",
			[]plant.Reading{{Path: p, Metric: "speed", TS: recv, Arrival: true, Value: 4, Topic: "f/l1/m1/x"}}, ""},
		{"bare value without a metric", rule("f/{line}/{machine}"), "f/l1/m1", "4", nil, plant.ReasonUnmapped},
		{"metric too long", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Metric = "{metric}" + strings.Repeat("x", 120) }),
			"f/l1/m1/temperature", "4", nil, plant.ReasonNameInvalid},
		{"timestamp path, epoch ms", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "d.v"; r.Timestamp = "d.when" }),
			"f/l1/m1", `{"d": {"v": 3, "when": 1732449990000}}`,
			[]plant.Reading{{Path: p, Metric: "v", TS: at, Value: 3, Topic: "f/l1/m1"}}, ""},
		{"timestamp path, RFC 3339", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "v"; r.Timestamp = "Time" }),
			"f/l1/m1", `{"v": 3, "Time": "2024-11-24T12:06:30Z"}`,
			[]plant.Reading{{Path: p, Metric: "v", TS: at, Value: 3, Topic: "f/l1/m1"}}, ""},
		{"timestamp path missing", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "v"; r.Timestamp = "ts" }),
			"f/l1/m1", `{"v": 3}`, nil, plant.ReasonBadTimestamp},
		{"timestamp path in the future", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "v"; r.Timestamp = "ts" }),
			"f/l1/m1", `{"v": 3, "ts": 1832449990000}`, nil, plant.ReasonFutureTimestamp},
		{"timestamp path on a bare payload", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Timestamp = "ts" }),
			"f/l1/m1/t", `running`, nil, plant.ReasonBadTimestamp},
		{"default ts keys", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Value = "v" }),
			"f/l1/m1", `{"v": 3, "ts": 1732449990000}`,
			[]plant.Reading{{Path: p, Metric: "v", TS: at, Value: 3, Topic: "f/l1/m1"}}, ""},
		{"whole object flattened", rule("f/{line}/{machine}", func(r *plant.MappingRule) { r.Scale = 2; r.Unit = "x" }),
			"f/l1/m1", `{"a": 1, "b": {"c": "idle"}, "timestamp": 1732449990000}`,
			[]plant.Reading{
				{Path: p, Metric: "a", TS: at, Value: 1, Topic: "f/l1/m1"},
				{Path: p, Metric: "b.c", TS: at, Word: "idle", Topic: "f/l1/m1"},
			}, ""},
		{"whole object under the metric", rule("tele/{machine}/{metric}", func(r *plant.MappingRule) { r.Timestamp = "Time" }),
			"tele/plug1/SENSOR", `{"Time": "2024-11-24T12:06:30Z", "ENERGY": {"Power": 12, "Voltage": 230}}`,
			[]plant.Reading{
				{Path: plant.Path{Machine: "plug1"}, Metric: "SENSOR.ENERGY.Power", TS: at, Value: 12, Topic: "tele/plug1/SENSOR"},
				{Path: plant.Path{Machine: "plug1"}, Metric: "SENSOR.ENERGY.Voltage", TS: at, Value: 230, Topic: "tele/plug1/SENSOR"},
			}, ""},
		{"whole object, partly unreadable", rule("f/{line}/{machine}"), "f/l1/m1", `{"a": 1, "b": [1]}`,
			[]plant.Reading{{Path: p, Metric: "a", TS: recv, Arrival: true, Value: 1, Topic: "f/l1/m1"}}, plant.ReasonNotANumber},
		{"single-value shape", rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 1000 }),
			"f/l1/m1/len", `{"value": 1.5, "unit": "m", "ts": 1732449990000}`,
			[]plant.Reading{{Path: p, Metric: "len", TS: at, Value: 1500, Unit: "m", Topic: "f/l1/m1/len"}}, ""},
		{"whole array refused", rule("f/{line}/{machine}/{metric}"), "f/l1/m1/v", `[1, 2]`, nil, plant.ReasonUnmapped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rej, ok := decodeOne(t, []plant.MappingRule{tc.rule}, msg(tc.topic, tc.payload))
			if !ok {
				t.Fatal("the rule did not match")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readings\n got  %+v\n want %+v", got, tc.want)
			}
			switch {
			case tc.reason == "" && rej != nil:
				t.Errorf("unexpected reject %+v", rej)
			case tc.reason != "" && rej == nil:
				t.Errorf("no reject, want %s", tc.reason)
			case rej != nil && (rej.Reason != tc.reason || rej.Detail == "" || rej.Topic != tc.topic || rej.TS != recv):
				t.Errorf("reject %+v, want reason %s", rej, tc.reason)
			}
		})
	}
}

func TestRulesAvailability(t *testing.T) {
	p := plant.Path{Machine: "plug1"}
	offline := []plant.Reading{{Path: p, TS: recv, Offline: true, Topic: "tele/plug1/LWT"}}
	lwt := rule("tele/{machine}/LWT", func(r *plant.MappingRule) { r.Availability = true })
	tests := []struct {
		name    string
		rule    plant.MappingRule
		payload string
		want    []plant.Reading
		reject  bool
	}{
		{"offline", lwt, "offline", offline, false},
		{"offline, other case and spaces", lwt, " Offline\n", offline, false},
		{"offline as a JSON string", lwt, `"offline"`, offline, false},
		{"online gives nothing", lwt, "Online", nil, false},
		{"anything else is a reject", lwt, "rebooting", nil, true},
		{"an object is a reject", lwt, `{"a": 1}`, nil, true},
		{"own words", rule("tele/{machine}/LWT", func(r *plant.MappingRule) {
			r.Availability, r.Online, r.Offline = true, "true", "false"
		}), "false", offline, false},
		{"word inside JSON", rule("tele/{machine}/LWT", func(r *plant.MappingRule) {
			r.Availability, r.Value = true, "state"
		}), `{"state": "OFFLINE"}`, offline, false},
		{"bool inside JSON", rule("tele/{machine}/LWT", func(r *plant.MappingRule) {
			r.Availability, r.Value, r.Online, r.Offline = true, "connected", "true", "false"
		}), `{"connected": false}`, offline, false},
		{"word path missing", rule("tele/{machine}/LWT", func(r *plant.MappingRule) {
			r.Availability, r.Value = true, "state"
		}), `{"status": "offline"}`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rej, ok := decodeOne(t, []plant.MappingRule{tc.rule}, msg("tele/plug1/LWT", tc.payload))
			if !ok {
				t.Fatal("the rule did not match")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if (rej != nil) != tc.reject {
				t.Errorf("reject %+v, want one: %v", rej, tc.reject)
			}
			if rej != nil && rej.Reason != plant.ReasonUnmapped {
				t.Errorf("reason %q, want %q", rej.Reason, plant.ReasonUnmapped)
			}
		})
	}
}

func TestRulesOrder(t *testing.T) {
	rules := []plant.MappingRule{
		rule("tele/{machine}/LWT", func(r *plant.MappingRule) { r.Availability = true }),
		rule("tele/{machine}/{metric}", func(r *plant.MappingRule) { r.Unit = "first" }),
		rule("tele/{machine}/temp", func(r *plant.MappingRule) { r.Metric = "never"; r.Unit = "second" }),
		rule("+/{machine}/{metric}", func(r *plant.MappingRule) { r.Unit = "third" }),
	}
	tests := []struct {
		topic, payload string
		unit           string
		offline        bool
		match          int
	}{
		{"tele/m/LWT", "offline", "", true, 0},
		{"tele/m/temp", "1", "first", false, 1},
		{"stat/m/temp", "1", "third", false, 3},
	}
	set, err := CompileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			got, rej, ok := set.decode(msg(tc.topic, tc.payload), DefaultLimits())
			if !ok || rej != nil || len(got) != 1 {
				t.Fatalf("got ok=%v %+v %+v", ok, got, rej)
			}
			if got[0].Unit != tc.unit || got[0].Offline != tc.offline {
				t.Errorf("got %+v, want unit %q offline %v", got[0], tc.unit, tc.offline)
			}
			if m := set.Match(tc.topic); m != tc.match {
				t.Errorf("Match = %d, want %d", m, tc.match)
			}
		})
	}
	if _, _, ok := set.decode(msg("a/b/c/d", "1"), DefaultLimits()); ok {
		t.Error("a topic no rule fits was taken")
	}
	if m := set.Match("x"); m != -1 {
		t.Errorf("Match(x) = %d, want -1", m)
	}
	var none *RuleSet
	if _, _, ok := none.decode(msg("tele/m/temp", "1"), DefaultLimits()); ok || none.Len() != 0 || none.Match("tele/m/t") != -1 {
		t.Error("a nil RuleSet matched")
	}
}

func TestCompileRulesErrors(t *testing.T) {
	tests := []struct {
		name  string
		rule  plant.MappingRule
		field string
		msg   string // part of the message
	}{
		{"no machine", rule("f/{line}/{metric}"), "pattern", "{machine}"},
		{"empty level", rule("f//{machine}"), "pattern", "empty"},
		{"trailing slash", rule("f/{machine}/"), "pattern", "empty"},
		{"hash not last", rule("f/#/{machine}"), "pattern", "last level"},
		{"plus inside a level", rule("f+/{machine}"), "pattern", "whole level"},
		{"hash inside a level", rule("f/{machine}/a#"), "pattern", "whole level"},
		{"unclosed brace", rule("f/{machine"), "pattern", "without '}'"},
		{"stray brace", rule("f/machine}"), "pattern", "without '{'"},
		{"bad segment name", rule("f/{ma chine}"), "pattern", "segment's name"},
		{"empty segment name", rule("f/{}/{machine}"), "pattern", "segment's name"},
		{"duplicate segment", rule("{machine}/{machine}"), "pattern", "twice"},
		{"adjacent segments", rule("f/{line}{machine}"), "pattern", "literal text between"},
		{"broker topic", rule("$SYS/{machine}"), "pattern", "broker"},
		{"too many levels", rule(strings.Repeat("a/", 40) + "{machine}"), "pattern", "levels"},
		{"empty pattern", rule(""), "pattern", "needed"},
		{"zero scale", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Scale = 0 }), "scale", "0"},
		{"bad value path", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Value = "a..b" }), "value", "missing"},
		{"unclosed bracket", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Value = "a[0" }), "value", "["},
		{"negative index", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Value = "a[-1]" }), "value", "index"},
		{"dollar alone", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Value = "$" }), "value", "empty"},
		{"bad quoted key", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Value = `["a\x"]` }), "value", "JSON string"},
		{"bad timestamp path", rule("{machine}/{metric}", func(r *plant.MappingRule) { r.Timestamp = "a]" }), "timestamp", "unexpected"},
		{"unknown metric segment", rule("{machine}/x", func(r *plant.MappingRule) { r.Metric = "{sensor}" }), "metric", "not a segment"},
		{"unclosed metric brace", rule("{machine}/x", func(r *plant.MappingRule) { r.Metric = "{sensor" }), "metric", "without"},
		{"index-only path without metric", rule("{machine}", func(r *plant.MappingRule) { r.Value = "$[0]" }), "metric", "no name"},
		{"availability with a metric", rule("{machine}/LWT", func(r *plant.MappingRule) { r.Availability = true; r.Metric = "x" }), "metric", "availability"},
		{"availability with a scale", rule("{machine}/LWT", func(r *plant.MappingRule) { r.Availability = true; r.Scale = 2 }), "scale", "availability"},
		{"availability with a time", rule("{machine}/LWT", func(r *plant.MappingRule) { r.Availability = true; r.Timestamp = "ts" }), "timestamp", "arrives"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := rule("ok/{machine}/{metric}")
			_, err := CompileRules([]plant.MappingRule{good, tc.rule})
			if err == nil {
				t.Fatal("compiled")
			}
			var me *plant.MappingError
			if !errors.As(err, &me) {
				t.Fatalf("%v is not a *plant.MappingError", err)
			}
			if me.Field != tc.field || !strings.Contains(me.Msg, tc.msg) {
				t.Errorf("got %s: %q, want %s: …%s…", me.Field, me.Msg, tc.field, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "mapping rule 2 ") {
				t.Errorf("%q does not name the rule", err)
			}
			if !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("%v is not plant.ErrInvalid", err)
			}
			if _, _, perr := PreviewRule(tc.rule, msg("a/b", "1"), DefaultLimits()); perr == nil {
				t.Error("PreviewRule accepted the rule")
			}
		})
	}
}

func TestParsePathRoundTrip(t *testing.T) {
	tests := []struct {
		in, out string
	}{
		{"a.b.c", "a.b.c"},
		{"$.a", "a"},
		{"a[0].b", "a[0].b"},
		{"$[2]", "$[2]"},
		{`a["key with.dots"]`, `a["key with.dots"]`},
		{`a['k']`, "a.k"},
		{`["x"][1]`, "x[1]"},
		{`$["$ref"]`, `$["$ref"]`},
		{`["a\"b"]`, `$["a\"b"]`},
		{`["tab\there\u007f"]`, `$["tab\u0009here\u007f"]`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p, err := parsePath(tc.in)
			if err != nil {
				t.Fatalf("parsePath: %v", err)
			}
			if got := p.String(); got != tc.out {
				t.Errorf("String() = %q, want %q", got, tc.out)
			}
			again, err := parsePath(p.String())
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("re-parsed %q as %+v (%v), want %+v", p.String(), again, err, p)
			}
		})
	}
}

func TestPreviewRule(t *testing.T) {
	r := rule("f/{line}/{machine}/{metric}", func(r *plant.MappingRule) { r.Unit = "bar" })
	tests := []struct {
		name, topic string
		readings    int
		reason      string
	}{
		{"matches", "f/l/m/p", 1, ""},
		{"does not match", "g/l/m/p", 0, plant.ReasonUnmapped},
		{"invalid topic", "f/l//p", 0, plant.ReasonTopicInvalid},
		{"broker topic", "$SYS/l/m/p", 0, plant.ReasonTopicInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, err := PreviewRule(r, msg(tc.topic, "2.5"), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != tc.readings {
				t.Errorf("%d readings, want %d", len(rs), tc.readings)
			}
			if got := ""; rej != nil {
				got = rej.Reason
				if got != tc.reason {
					t.Errorf("reason %q, want %q", got, tc.reason)
				}
			} else if tc.reason != "" {
				t.Errorf("no reject, want %q", tc.reason)
			}
		})
	}
}

func TestSuggestRule(t *testing.T) {
	tests := []struct {
		name, topic, payload string
		want                 plant.MappingRule
	}{
		{"bare value, deep topic", "factory/hall1/line2/press3/temp", "23.5",
			plant.MappingRule{Pattern: "factory/{area}/{line}/{machine}/{metric}"}},
		{"very deep topic keeps the prefix", "acme/v1/berlin/hall1/line2/press3/temp", "1",
			plant.MappingRule{Pattern: "acme/v1/{site}/{area}/{line}/{machine}/{metric}"}},
		{"one level", "press3", "1", plant.MappingRule{Pattern: "{machine}", Metric: "value"}},
		{"tasmota sensor", "tele/plug_ABC123/SENSOR",
			`{"Time":"2024-11-24T12:06:30","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00","Total":1.5,"Power":12}}`,
			plant.MappingRule{Pattern: "tele/{machine}/SENSOR", Value: "ENERGY.Total", Metric: "Total"}},
		{"nested JSON with a time", "plant/l1/m7", `{"meta": {"id": "x"}, "data": {"ts": 1732449990000, "temp": 21.5}}`,
			plant.MappingRule{Pattern: "plant/{line}/{machine}", Value: "data.temp", Timestamp: "data.ts", Metric: "temp"}},
		{"array payload", "sensors/abc123", `[{"t": 1732449990, "v": 4.2}]`,
			plant.MappingRule{Pattern: "sensors/{machine}", Value: "$[0].v", Timestamp: "$[0].t", Metric: "v"}},
		{"value shape", "l1/m1/len", `{"value": {"mm": 3}, "unit": "mm"}`,
			plant.MappingRule{Pattern: "{line}/{machine}/{metric}", Value: "value.mm", Unit: "mm"}},
		{"default single shape", "l1/m1/len", `{"value": "3", "ts": "2024-11-24T12:06:30Z"}`,
			plant.MappingRule{Pattern: "{line}/{machine}/{metric}", Value: "value", Timestamp: "ts"}},
		{"only words", "m1/status", `{"mode": "auto", "state": "running"}`,
			plant.MappingRule{Pattern: "{machine}/status", Value: "mode", Metric: "mode"}},
		{"awkward key", "m1/x", `{"temp °C": 20}`,
			plant.MappingRule{Pattern: "{line}/{machine}", Value: `$["temp °C"]`, Metric: "temp °C"}},
		{"braces in the topic", "a{b}/m1/t", "1", plant.MappingRule{Pattern: "{line}/{machine}/{metric}"}},
		{"braces kept literal", "factory/{x}/t", "1", plant.MappingRule{Pattern: "factory/{machine}/{metric}"}},
		{"availability", "tele/plug_ABC/LWT", "Offline",
			plant.MappingRule{Pattern: "tele/{machine}/LWT", Availability: true}},
		{"shelly online", "shellies/shelly1-ABC/online", "true",
			plant.MappingRule{Pattern: "shellies/{machine}/online", Availability: true, Online: "true", Offline: "false"}},
		{"nothing readable", "devices/m1", `{"a": null}`, plant.MappingRule{Pattern: "devices/{machine}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SuggestRule(tc.topic, []byte(tc.payload))
			got.Note = ""
			want := tc.want
			want.Scale, want.Source = 1, plant.RuleFromAdmin
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if _, err := CompileRules([]plant.MappingRule{got}); err != nil {
				t.Errorf("the suggestion does not compile: %v", err)
			}
		})
	}
}

// TestSuggestRuleReadsItsSample checks the promise of the inbox's "Create
// rule": the suggestion, saved as it is, reads the sample it came from.
func TestSuggestRuleReadsItsSample(t *testing.T) {
	tests := []struct {
		topic, payload string
		readings       int
	}{
		{"tele/plug_ABC123/SENSOR", `{"Time":"2024-11-24T12:06:30Z","ENERGY":{"Power":12}}`, 1},
		{"sensors/abc123", `[{"t": 1732449990, "v": 4.2}]`, 1},
		{"press3", "1", 1},
		{"x/y/z/state", "running", 1},
		{"l1/m1/len", `{"value": {"mm": 3}}`, 1},
		{"tele/plug/LWT", "Offline", 1},
		{"tele/plug/LWT", "online", 0},
	}
	for _, tc := range tests {
		t.Run(tc.topic+" "+tc.payload, func(t *testing.T) {
			r := SuggestRule(tc.topic, []byte(tc.payload))
			rs, rej, err := PreviewRule(r, msg(tc.topic, tc.payload), DefaultLimits())
			if err != nil || rej != nil || len(rs) != tc.readings {
				t.Errorf("rule %+v gives %+v, %+v, %v; want %d readings", r, rs, rej, err, tc.readings)
			}
		})
	}
}

func FuzzRules(f *testing.F) {
	seeds := []struct{ pattern, value, ts, metric, topic, payload string }{
		{"factory/{line}/{machine}/{metric}", "", "", "", "factory/l1/m1/temp", "23.5"},
		{"tele/{machine}/SENSOR", "ENERGY.Power", "Time", "", "tele/p/SENSOR", `{"Time":"2024-11-24T12:06:30Z","ENERGY":{"Power":12}}`},
		{"plant.{line}.{machine}/+/#", "$[0].v", "", "{line}_v", "plant.a.b/x/y/z", `[{"v": 1e308}]`},
		{"{machine}/{metric}", `a["b.c"]`, "a.t", "", "m/v", `{"a": {"b.c": "idle", "t": 1732449990}}`},
		{"x{{y}}/{machine}", "", "", "n", "x{y}/m", `"running"`},
		{"{machine}/#", "", "", "", "m/a/b", `{"a": [1, {"b": 2}], "c": null}`},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.value, s.ts, s.metric, s.topic, []byte(s.payload), false, 0.5)
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, pattern, value, ts, metric, topic string, payload []byte, avail bool, scale float64) {
		r := plant.MappingRule{Pattern: pattern, Value: value, Timestamp: ts, Metric: metric, Scale: scale, Availability: avail}
		set, err := CompileRules([]plant.MappingRule{r})
		if err == nil {
			m := Message{Topic: topic, Payload: payload, RecvMS: recv}
			rs, rej, _ := set.decode(m, lim)
			checkRuleOutput(t, rs, rej)
			prs, prej, perr := PreviewRule(r, m, lim)
			if perr != nil {
				t.Fatalf("compiled, yet PreviewRule says %v", perr)
			}
			checkRuleOutput(t, prs, prej)
		} else {
			var me *plant.MappingError
			if !errors.As(err, &me) || me.Field == "" || me.Msg == "" || !utf8.ValidString(err.Error()) {
				t.Fatalf("compile error without a field: %v", err)
			}
		}
		// A suggestion is a rule an admin will read: it must compile and
		// take its own topic, for any topic a device may send.
		s := SuggestRule(topic, payload)
		if _, reason, _ := splitTopic(topic, lim); reason == "" && !strings.HasPrefix(topic, "$") && len(topic) <= 100 {
			sset, err := CompileRules([]plant.MappingRule{s})
			if err != nil {
				t.Fatalf("SuggestRule(%q, %q) = %+v does not compile: %v", topic, payload, s, err)
			}
			if sset.Match(topic) != 0 {
				t.Fatalf("SuggestRule(%q) = %q does not match its own topic", topic, s.Pattern)
			}
		}
	})
}

// checkRuleOutput checks what a rule made: valid, bounded names, finite
// values, and a well-formed reject.
func checkRuleOutput(t *testing.T, rs []plant.Reading, rej *plant.Reject) {
	t.Helper()
	if rej != nil && (rej.Reason == "" || rej.Detail == "" || len(rej.Payload) > maxRejectPayload || rej.TS != recv || !utf8.ValidString(rej.Detail)) {
		t.Fatalf("malformed reject %+v", rej)
	}
	lim := DefaultLimits()
	for _, r := range rs {
		if r.Path.Machine == "" || (!r.Offline && r.Metric == "") {
			t.Fatalf("reading without machine or metric: %+v", r)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			t.Fatalf("non-finite value: %+v", r)
		}
		for _, s := range []string{r.Metric, r.Path.Site, r.Path.Area, r.Path.Line, r.Path.Machine, r.Word, r.Unit} {
			if !plant.ValidName(s) || len(s) > lim.MaxName || strings.Contains(s, "\x00") {
				t.Fatalf("invalid or unbounded name %q in %+v", s, r)
			}
		}
		for _, s := range []string{r.Path.Site, r.Path.Area, r.Path.Line, r.Path.Machine} {
			if strings.Contains(s, "/") {
				t.Fatalf("a path level holds '/': %+v", r)
			}
		}
		if r.TS != recv && (r.TS < minTS || r.TS > recv+lim.MaxFuture.Milliseconds()) {
			t.Fatalf("time out of bounds: %+v", r)
		}
	}
}

// BenchmarkRulesDecode measures what rules cost a message: ten rules that
// all miss (every message the default layout reads pays this), and the
// tenth matching, with a JSON path into the payload.
func BenchmarkRulesDecode(b *testing.B) {
	var rules []plant.MappingRule
	for i := range 9 {
		rules = append(rules, rule("vendor"+strings.Repeat("x", i)+"/{line}/{machine}/{metric}"))
	}
	rules = append(rules, rule("tele/{machine}/SENSOR", func(r *plant.MappingRule) { r.Value = "ENERGY.Power"; r.Timestamp = "Time" }))
	set, err := CompileRules(rules)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		m    Message
		ok   bool
	}{
		{"miss", msg("acme/hall1/line-1/press-3/temp", "23.5"), false},
		{"match", msg("tele/plug_ABC123/SENSOR", `{"Time":"2024-11-24T12:06:30Z","ENERGY":{"Power":12,"Voltage":230}}`), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lim := DefaultLimits()
			for b.Loop() {
				if _, _, ok := set.decode(bc.m, lim); ok != bc.ok {
					b.Fatalf("ok = %v", ok)
				}
			}
		})
	}
}
