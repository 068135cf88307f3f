package ingest

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"andon/plant"
)

const recv = int64(1732450000000) // 2024-11-24T12:06:40Z

func TestParseSingle(t *testing.T) {
	p5 := plant.Path{Site: "acme", Area: "hall", Line: "line1", Machine: "cnc"}
	tests := []struct {
		name    string
		topic   string
		payload string
		want    []plant.Reading
	}{
		{"bare number, 5 levels", "acme/hall/line1/cnc/temp", "23.5",
			[]plant.Reading{{Path: p5, Metric: "temp", TS: recv, Value: 23.5}}},
		{"negative exponent", "acme/hall/line1/cnc/temp", "-1e3",
			[]plant.Reading{{Path: p5, Metric: "temp", TS: recv, Value: -1000}}},
		{"integer with whitespace", "acme/hall/line1/cnc/temp", " 42\n",
			[]plant.Reading{{Path: p5, Metric: "temp", TS: recv, Value: 42}}},
		{"underflow is zero", "m/v", "1e-999",
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "v", TS: recv, Value: 0}}},
		{"true", "m/run", "true",
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "run", TS: recv, Value: 1}}},
		{"false", "m/run", "false",
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "run", TS: recv, Value: 0}}},
		{"word", "line1/press3/state", "  running ",
			[]plant.Reading{{Path: plant.Path{Line: "line1", Machine: "press3"}, Metric: "state", TS: recv, Word: "running"}}},
		{"word with space and case kept", "area/line1/press3/state", "Planned Stop",
			[]plant.Reading{{Path: plant.Path{Area: "area", Line: "line1", Machine: "press3"}, Metric: "state", TS: recv, Word: "Planned Stop"}}},
		{"unicode word", "m/state", "Störung",
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "state", TS: recv, Word: "Störung"}}},
		{"more than 5 levels join into site", "umh/v1/acme/hall/line1/cnc/temp", "1",
			[]plant.Reading{{Path: plant.Path{Site: "umh.v1.acme", Area: "hall", Line: "line1", Machine: "cnc"}, Metric: "temp", TS: recv, Value: 1}}},
		{"json value with ms ts and unit", "acme/hall/line1/cnc/temp", `{"value": 23.5, "ts": 1732450000123, "unit": "°C"}`,
			[]plant.Reading{{Path: p5, Metric: "temp", TS: 1732450000123, Value: 23.5, Unit: "°C"}}},
		{"json value with seconds ts", "m/temp", `{"value": 1, "ts": 1732450000}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: 1732450000000, Value: 1}}},
		{"json value with fractional seconds", "m/temp", `{"value": 1, "timestamp": 1732450000.25}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: 1732450000250, Value: 1}}},
		{"json value with rfc3339 ts", "m/temp", `{"value": 1, "timestamp_ms": "2024-11-24T12:06:40.5Z"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: 1732450000500, Value: 1}}},
		{"json value with rfc3339 offset", "m/temp", `{"value": 1, "time": "2024-11-24T13:06:40+01:00"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: 1732450000000, Value: 1}}},
		{"json word value", "m/state", `{"value": "idle"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "state", TS: recv, Word: "idle"}}},
		{"json numeric string", "m/temp", `{"value": "7.5"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: recv, Value: 7.5}}},
		{"json bool value", "m/run", `{"value": true}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "run", TS: recv, Value: 1}}},
		{"overlong unit ignored", "m/temp", `{"value": 2, "unit": "` + strings.Repeat("u", 33) + `"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: recv, Value: 2}}},
		{"non-string unit ignored", "m/temp", `{"value": 2, "unit": 5}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "temp", TS: recv, Value: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rej := Parse(tt.topic, []byte(tt.payload), recv, DefaultLimits())
			if rej != nil {
				t.Fatalf("unexpected reject %+v", rej)
			}
			for i := range tt.want {
				tt.want[i].Topic = tt.topic
				tt.want[i].Arrival = !statesTime(tt.payload)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMulti(t *testing.T) {
	m := plant.Path{Site: "acme", Area: "hall", Line: "line1", Machine: "cnc"}
	tests := []struct {
		name       string
		topic      string
		payload    string
		want       []plant.Reading // Topic is filled in
		wantReason string          // "" for no reject
		wantDetail []string        // substrings of the reject's detail
	}{
		{"flat with timestamp_ms", "acme/hall/line1/cnc", `{"temperature": 23.5, "speed": 1200, "timestamp_ms": 1732450000123}`,
			[]plant.Reading{
				{Path: m, Metric: "speed", TS: 1732450000123, Value: 1200},
				{Path: m, Metric: "temperature", TS: 1732450000123, Value: 23.5},
			}, "", nil},
		{"umh historian dropped", "umh/v1/acme/hall/line1/cnc/_historian", `{"temp": 1}`,
			[]plant.Reading{{Path: plant.Path{Site: "umh.v1.acme", Area: "hall", Line: "line1", Machine: "cnc"}, Metric: "temp", TS: recv, Value: 1}},
			"", nil},
		{"one level names the machine", "press", `{"a": 1}`,
			[]plant.Reading{{Path: plant.Path{Machine: "press"}, Metric: "a", TS: recv, Value: 1}}, "", nil},
		{"nested flattened, bool, word", "l/m", `{"axis": {"x": 1, "y": {"z": 2}}, "on": false, "state": "running"}`,
			[]plant.Reading{
				{Path: plant.Path{Line: "l", Machine: "m"}, Metric: "axis.x", TS: recv, Value: 1},
				{Path: plant.Path{Line: "l", Machine: "m"}, Metric: "axis.y.z", TS: recv, Value: 2},
				{Path: plant.Path{Line: "l", Machine: "m"}, Metric: "on", TS: recv, Value: 0},
				{Path: plant.Path{Line: "l", Machine: "m"}, Metric: "state", TS: recv, Word: "running"},
			}, "", nil},
		{"nested ts is a metric", "m", `{"axis": {"ts": 3}}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "axis.ts", TS: recv, Value: 3}}, "", nil},
		{"array and null skipped, others kept", "m", `{"a": 1, "b": [1,2], "c": null}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "a", TS: recv, Value: 1}},
			plant.ReasonNotANumber, []string{`"b"`, `"c"`, "array", "null"}},
		{"non-finite field skipped", "m", `{"a": 1, "b": 1e999, "c": "NaN"}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "a", TS: recv, Value: 1}},
			plant.ReasonNotFinite, []string{`"b"`, `"c"`}},
		{"bad name skipped", "m", `{"ok": 1, "bad\u0001": 2, "": 3}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "ok", TS: recv, Value: 1}},
			plant.ReasonNameInvalid, []string{"skipped"}},
		{"overlong name skipped", "m", `{"ok": 1, "` + strings.Repeat("n", 129) + `": 2}`,
			[]plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "ok", TS: recv, Value: 1}},
			plant.ReasonNameInvalid, []string{"129 bytes"}},
		{"all fields bad", "m", `{"a": [], "b": {"c": null}}`, nil,
			plant.ReasonNotANumber, []string{"No field", `"a"`, `"b.c"`}},
		{"empty object", "m", `{}`, nil, plant.ReasonEmpty, nil},
		{"only a timestamp", "m", `{"ts": 1732450000}`, nil, plant.ReasonEmpty, nil},
		{"historian alone", "_historian", `{"a": 1}`, nil, plant.ReasonTopicTooShort, nil},
		{"bad multi timestamp", "m", `{"a": 1, "timestamp_ms": "yesterday"}`, nil, plant.ReasonBadTimestamp, []string{"timestamp_ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rej := Parse(tt.topic, []byte(tt.payload), recv, DefaultLimits())
			for i := range tt.want {
				tt.want[i].Topic = tt.topic
				tt.want[i].Arrival = !statesTime(tt.payload)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readings\ngot  %+v\nwant %+v", got, tt.want)
			}
			switch {
			case tt.wantReason == "" && rej != nil:
				t.Fatalf("unexpected reject %+v", rej)
			case tt.wantReason != "" && rej == nil:
				t.Fatalf("no reject, want %s", tt.wantReason)
			case rej != nil:
				if rej.Reason != tt.wantReason {
					t.Errorf("reason %q, want %q (detail %q)", rej.Reason, tt.wantReason, rej.Detail)
				}
				for _, s := range tt.wantDetail {
					if !strings.Contains(rej.Detail, s) {
						t.Errorf("detail %q lacks %q", rej.Detail, s)
					}
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	small := DefaultLimits()
	small.MaxValues = 3
	small.MaxPayload = 100
	dayOld := DefaultLimits()
	dayOld.MaxAge = 24 * time.Hour
	tests := []struct {
		name    string
		topic   string
		payload string
		lim     Limits
		want    string
	}{
		{"empty payload", "m/v", "", DefaultLimits(), plant.ReasonEmpty},
		{"whitespace payload", "m/v", " \n\t", DefaultLimits(), plant.ReasonEmpty},
		{"too large", "m/v", strings.Repeat("1", 101), small, plant.ReasonTooLarge},
		{"topic too long", strings.Repeat("a", 200) + "/" + strings.Repeat("b", 100), "1", DefaultLimits(), plant.ReasonTopicTooLong},
		{"one level", "temp", "1", DefaultLimits(), plant.ReasonTopicTooShort},
		{"one level json value", "temp", `{"value": 1}`, DefaultLimits(), plant.ReasonTopicTooShort},
		{"empty level", "a//b", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"trailing slash", "a/b/", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"leading slash", "/a/b", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"plus wildcard", "a/+/b", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"hash wildcard", "a/b/#", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"NUL in topic", "a/b\x00c", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"control char in topic", "a/b\x1bc", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"invalid utf-8 topic", "a/b\xffc", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"empty topic", "", "1", DefaultLimits(), plant.ReasonTopicInvalid},
		{"overlong level", "m/" + strings.Repeat("x", 129), "1", DefaultLimits(), plant.ReasonNameInvalid},
		{"not a number", "m/v", "12abc", DefaultLimits(), plant.ReasonNotANumber},
		{"word starting with digit", "m/v", "1st", DefaultLimits(), plant.ReasonNotANumber},
		{"punctuation", "m/v", "run!", DefaultLimits(), plant.ReasonNotANumber},
		{"json array", "m/v", "[1,2]", DefaultLimits(), plant.ReasonNotANumber},
		{"json string", "m/v", `"running"`, DefaultLimits(), plant.ReasonNotANumber},
		{"hex float", "m/v", "0x1p3", DefaultLimits(), plant.ReasonNotANumber},
		{"word too long", "m/v", "a" + strings.Repeat("b", 64), DefaultLimits(), plant.ReasonNotANumber},
		{"NaN", "m/v", "NaN", DefaultLimits(), plant.ReasonNotFinite},
		{"Inf", "m/v", "Inf", DefaultLimits(), plant.ReasonNotFinite},
		{"+Inf", "m/v", "+Inf", DefaultLimits(), plant.ReasonNotFinite},
		{"-infinity", "m/v", "-infinity", DefaultLimits(), plant.ReasonNotFinite},
		{"overflow", "m/v", "1e999", DefaultLimits(), plant.ReasonNotFinite},
		{"json overflow", "m/v", `{"value": -1e999}`, DefaultLimits(), plant.ReasonNotFinite},
		{"json NaN string", "m/v", `{"value": "NaN"}`, DefaultLimits(), plant.ReasonNotFinite},
		{"json null value", "m/v", `{"value": null}`, DefaultLimits(), plant.ReasonNotANumber},
		{"json array value", "m/v", `{"value": [1]}`, DefaultLimits(), plant.ReasonNotANumber},
		{"json object value", "m/v", `{"value": {"a": 1}}`, DefaultLimits(), plant.ReasonNotANumber},
		{"bad json", "m/v", `{"value": `, DefaultLimits(), plant.ReasonBadJSON},
		{"trailing data after json", "m/v", `{"value": 1} 2`, DefaultLimits(), plant.ReasonBadJSON},
		{"ts string not rfc3339", "m/v", `{"value": 1, "ts": "2024-11-24"}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts bool", "m/v", `{"value": 1, "ts": true}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts null", "m/v", `{"value": 1, "ts": null}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts before 2000", "m/v", `{"value": 1, "ts": 12}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts after 2200", "m/v", `{"value": 1, "ts": 9999999999999}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts huge", "m/v", `{"value": 1, "ts": 1e300}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"ts rfc3339 before 2000", "m/v", `{"value": 1, "ts": "1999-12-31T23:59:59Z"}`, DefaultLimits(), plant.ReasonBadTimestamp},
		{"too many values", "m", `{"a": 1, "b": 2, "c": {"d": 3, "e": 4}}`, small, plant.ReasonTooManyValues},
		{"ts 11 min ahead", "m/v", fmt.Sprintf(`{"value": 1, "ts": %d}`, recv+11*60_000), DefaultLimits(), plant.ReasonFutureTimestamp},
		{"multi ts a day ahead", "m", fmt.Sprintf(`{"a": 1, "timestamp_ms": %d}`, recv+86_400_000), DefaultLimits(), plant.ReasonFutureTimestamp},
		{"ts older than kept", "m/v", fmt.Sprintf(`{"value": 1, "ts": %d}`, recv-25*3_600_000), dayOld, plant.ReasonOldTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rej := Parse(tt.topic, []byte(tt.payload), recv, tt.lim)
			if len(got) != 0 {
				t.Errorf("readings %+v, want none", got)
			}
			if rej == nil {
				t.Fatalf("no reject, want %s", tt.want)
			}
			if rej.Reason != tt.want {
				t.Errorf("reason %q, want %q (detail %q)", rej.Reason, tt.want, rej.Detail)
			}
			if rej.TS != recv || rej.Topic != tt.topic {
				t.Errorf("reject ts/topic = %d/%q, want %d/%q", rej.TS, rej.Topic, recv, tt.topic)
			}
			if rej.Detail == "" || !strings.HasSuffix(rej.Detail, ".") {
				t.Errorf("detail %q is not a sentence", rej.Detail)
			}
			if len(rej.Payload) > 256 || !strings.HasPrefix(tt.payload, string(rej.Payload)) {
				t.Errorf("reject payload %q is not a prefix of at most 256 bytes", rej.Payload)
			}
		})
	}
}

func TestParseRejectPayloadIsBoundedCopy(t *testing.T) {
	payload := []byte(strings.Repeat("x", 1000))
	_, rej := Parse("m/v", payload, recv, DefaultLimits())
	if rej == nil {
		t.Fatal("no reject")
	}
	if len(rej.Payload) != 256 {
		t.Fatalf("payload kept %d bytes, want 256", len(rej.Payload))
	}
	// The broker reuses its buffers, so the reject must own its bytes.
	payload[0] = 'y'
	if rej.Payload[0] != 'x' {
		t.Error("reject payload aliases the message buffer")
	}
}

func TestParseSysTopics(t *testing.T) {
	for _, topic := range []string{"$SYS/broker/uptime", "$share/x", "$"} {
		t.Run(topic, func(t *testing.T) {
			rs, rej := Parse(topic, []byte("garbage!"), recv, DefaultLimits())
			if rs != nil || rej != nil {
				t.Errorf("got %v, %v; want nil, nil", rs, rej)
			}
		})
	}
}

func TestParseZeroLimitsUseDefaults(t *testing.T) {
	rs, rej := Parse("m/v", []byte("1"), recv, Limits{})
	if rej != nil || len(rs) != 1 {
		t.Fatalf("got %v, %v", rs, rej)
	}
}

func TestParseManySkippedDetailIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"ok": 1`)
	for i := range 50 {
		b.WriteString(`, "n` + strings.Repeat("x", i) + `": null`)
	}
	b.WriteString("}")
	rs, rej := Parse("m", []byte(b.String()), recv, DefaultLimits())
	if len(rs) != 1 || rej == nil {
		t.Fatalf("got %v, %v", rs, rej)
	}
	if !strings.Contains(rej.Detail, "and 40 more") {
		t.Errorf("detail %q does not bound the names", rej.Detail)
	}
}

// FuzzParse checks that no message makes Parse panic or produce a reading
// the store could not take.
func FuzzParse(f *testing.F) {
	seeds := []struct{ topic, payload string }{
		{"acme/hall/line1/cnc/temp", "23.5"},
		{"line1/press3/state", "running"},
		{"m/v", `{"value": 1, "ts": 1732450000123, "unit": "C"}`},
		{"umh/v1/acme/hall/line1/cnc/_historian", `{"a": {"b": 1}, "c": true, "timestamp_ms": 1732450000123}`},
		{"m/v", "NaN"},
		{"a//b", "1"},
		{"$SYS/x", "1"},
		{"m", `{"a": [1], "b": null, "c": "idle"}`},
	}
	for _, s := range seeds {
		f.Add(s.topic, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		rs, rej := Parse(topic, payload, recv, DefaultLimits())
		if rej != nil {
			if rej.Reason == "" || rej.Detail == "" || len(rej.Payload) > 256 || rej.TS != recv {
				t.Fatalf("malformed reject %+v", rej)
			}
		}
		for _, r := range rs {
			if r.Metric == "" || r.Path.Machine == "" {
				t.Fatalf("reading without metric or machine: %+v", r)
			}
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("non-finite value: %+v", r)
			}
			for _, s := range []string{r.Metric, r.Path.Site, r.Path.Area, r.Path.Line, r.Path.Machine, r.Word, r.Unit} {
				if !utf8.ValidString(s) || !plant.ValidName(s) {
					t.Fatalf("invalid name %q in %+v", s, r)
				}
			}
			if r.TS < minTS || r.TS > maxTS {
				// Only the receive time may lie outside the plausible range.
				if r.TS != recv {
					t.Fatalf("timestamp %d out of range", r.TS)
				}
			}
		}
	})
}

// statesTime says whether a test payload carries its own timestamp (a
// top-level time key of a JSON object); readings of one that does not are
// stamped on arrival.
func statesTime(payload string) bool {
	var obj map[string]any
	if json.Unmarshal([]byte(payload), &obj) != nil {
		return false
	}
	for _, k := range tsKeys {
		if _, ok := obj[k]; ok {
			return true
		}
	}
	return false
}

// TestParseTimestampWindow: readings a little ahead (clocks drift) or long
// past (a backlog) are kept unless a maximum age is set.
func TestParseTimestampWindow(t *testing.T) {
	for _, ts := range []int64{recv + 9*60_000, recv - 30*86_400_000, recv} {
		got, rej := Parse("m/v", []byte(fmt.Sprintf(`{"value": 2, "ts": %d}`, ts)), recv, DefaultLimits())
		if rej != nil || len(got) != 1 || got[0].TS != ts {
			t.Errorf("ts %+d ms from arrival: readings %+v, reject %+v; want it kept", ts-recv, got, rej)
		}
	}
	dayOld := DefaultLimits()
	dayOld.MaxAge = 24 * time.Hour
	if got, rej := Parse("m/v", []byte(fmt.Sprintf(`{"value": 2, "ts": %d}`, recv-23*3_600_000)), recv, dayOld); rej != nil || len(got) != 1 {
		t.Errorf("a reading 23 h old with a 24 h maximum age: %+v, %+v; want it kept", got, rej)
	}
}

// A deeply nested object stops being walked where its dotted name passes
// the limit: one field is named in the reject, not thousands of levels.
func TestParseDeepNesting(t *testing.T) {
	payload := strings.Repeat(`{"level":`, 5000) + "1" + strings.Repeat("}", 5000)
	rs, rej := Parse("line-1/press-1", []byte(payload), 1_796_400_000_000, DefaultLimits())
	if len(rs) != 0 || rej == nil || rej.Reason != plant.ReasonNameInvalid || !strings.Contains(rej.Detail, "No field could be read") {
		t.Fatalf("readings %v, reject %+v; want one unreadable field", rs, rej)
	}
}
