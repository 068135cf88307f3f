package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

func TestUMHFixtures(t *testing.T) {
	runDialectCases(t, "umh", func(m Message, _ *time.Location) ([]plant.Reading, *plant.Reject, bool) {
		return decodeUMH(m, DefaultLimits())
	})
}

// TestUMHEdges feeds UMH topics what a broken or hostile device might
// send: every one must end in a reject or valid readings, never a panic.
func TestUMHEdges(t *testing.T) {
	const recv = 1_796_400_005_000
	lim := DefaultLimits()
	many := make([]string, 0, lim.MaxValues+1)
	for i := range lim.MaxValues + 1 {
		many = append(many, fmt.Sprintf(`"t%d": %d`, i, i))
	}
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	long := strings.Repeat("x", lim.MaxName+1)
	tests := []struct {
		name, topic, payload string
		reason               string // "" for readings
		metrics              []string
	}{
		{name: "more values than the limit", topic: "umh/v1/acme/cnc/_historian", payload: "{" + strings.Join(many, ",") + "}", reason: plant.ReasonTooManyValues},
		{name: "deep nesting", topic: "umh/v1/acme/cnc/_historian", payload: deep, reason: plant.ReasonNameInvalid},
		{name: "a field name over the limit is skipped", topic: "umh/v1/acme/cnc/_historian", payload: `{"` + long + `": 1, "ok": 2}`, reason: plant.ReasonNameInvalid, metrics: []string{"ok"}},
		{name: "a control character in a field name is skipped", topic: "umh/v1/acme/cnc/_historian", payload: `{"a\u0007b": 1, "ok": 2}`, reason: plant.ReasonNameInvalid, metrics: []string{"ok"}},
		{name: "invalid UTF-8 in a field name is replaced by the JSON decoder", topic: "umh/v1/acme/cnc/_historian", payload: "{\"a\xffb\": 1}", metrics: []string{"a\uFFFDb"}},
		{name: "a control character in a tag group", topic: "umh/v1/acme/cnc/_historian/ax\x01is", payload: `{"x": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "an empty tag group", topic: "umh/v1/acme/cnc/_historian//x", payload: `{"x": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "a tag group over the name limit", topic: "umh/v1/acme/cnc/_historian/" + long, payload: `{"x": 1}`, reason: plant.ReasonNameInvalid},
		{name: "a location level over the name limit", topic: "umh/v1/acme/" + long + "/_historian", payload: `{"x": 1}`, reason: plant.ReasonNameInvalid},
		{name: "invalid UTF-8 in a location level", topic: "umh/v1/acme/cn\xffc/_historian", payload: `{"x": 1}`, reason: plant.ReasonNameInvalid},
		{name: "an empty location level", topic: "umh/v1/acme//cnc/_historian", payload: `{"x": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "an array payload", topic: "umh/v1/acme/cnc/_historian", payload: `[1, 2]`, reason: plant.ReasonBadJSON},
		{name: "an empty object", topic: "umh/v1/acme/cnc/_historian", payload: `{}`, reason: plant.ReasonEmpty},
		{name: "a timestamp in the future", topic: "umh/v1/acme/cnc/_historian", payload: `{"timestamp_ms": 1796500000000, "x": 1}`, reason: plant.ReasonFutureTimestamp},
		{name: "a timestamp that is no time", topic: "umh/v1/acme/cnc/_historian", payload: `{"timestamp_ms": "soon", "x": 1}`, reason: plant.ReasonBadTimestamp},
		{name: "Core: a value that overflows", topic: "umh.v1.acme.cnc._historian.x", payload: `{"value": 1e999}`, reason: plant.ReasonNotFinite},
		{name: "Core: a value that is an object", topic: "umh.v1.acme.cnc._historian.x", payload: `{"value": {"a": 1}}`, reason: plant.ReasonNotANumber},
		{name: "Core: a tag over the name limit", topic: "umh.v1.acme.cnc._historian." + long, payload: `{"value": 1}`, reason: plant.ReasonNameInvalid},
		{name: "Core: a control character in the tag", topic: "umh.v1.acme.cnc._historian.a\x02b", payload: `{"value": 1}`, reason: plant.ReasonNameInvalid},
		{name: "Core: an empty contract", topic: "umh.v1.acme.cnc._.x", payload: `{"value": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "Core: no location", topic: "umh.v1._historian.x", payload: `{"value": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "Core: nothing after the prefix", topic: "umh.v1.", payload: `{"value": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "Core: a tag of dots", topic: "umh.v1.acme.cnc._historian...", payload: `{"value": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "Core: a tag with an empty part", topic: "umh.v1.acme.cnc._historian.a..b", payload: `{"value": 1}`, reason: plant.ReasonTopicInvalid},
		{name: "Core: a virtual path", topic: "umh.v1.acme.cnc._historian.axis.x.position", payload: `{"value": 1}`, metrics: []string{"axis.x.position"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, ok := decodeUMH(Message{Topic: tc.topic, Payload: []byte(tc.payload), RecvMS: recv}, lim)
			if !ok {
				t.Fatal("not taken for UMH")
			}
			if tc.reason == "" && rej != nil {
				t.Fatalf("reject %+v", rej)
			}
			if tc.reason != "" && (rej == nil || rej.Reason != tc.reason) {
				t.Fatalf("reject %+v, want %s", rej, tc.reason)
			}
			var got []string
			for _, r := range rs {
				checkReading(t, r, lim)
				got = append(got, r.Metric)
			}
			if strings.Join(got, "|") != strings.Join(tc.metrics, "|") {
				t.Errorf("metrics %q, want %q", got, tc.metrics)
			}
		})
	}
}

// A UMH topic is no longer refused by the writer: its asset levels hold
// no '/' even when the default layout reads it (no schema level).
func TestUMHDeepTopicDefaultLayout(t *testing.T) {
	rs, rej := Parse("umh/v1/acme/dresden/molding/line-3/injection-07/temperature", []byte("21.5"), 1_796_400_005_000, DefaultLimits())
	if rej != nil || len(rs) != 1 {
		t.Fatalf("got %+v %+v", rs, rej)
	}
	want := plant.Path{Site: "umh.v1.acme.dresden", Area: "molding", Line: "line-3", Machine: "injection-07"}
	if rs[0].Path != want {
		t.Errorf("path = %+v, want %+v", rs[0].Path, want)
	}
	checkReading(t, rs[0], DefaultLimits())
}
