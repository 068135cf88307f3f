package ingest

import (
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"andon/plant"
)

// FuzzDialects sends arbitrary messages through every decoder, after a
// Home Assistant config made up of the input too: nothing may panic, and
// every reading must name a machine and carry a finite value or a word.
func FuzzDialects(f *testing.F) {
	for _, s := range []struct{ config, topic, payload string }{
		{`{"name":"t","stat_t":"~/s","~":"dev/1","dev":{"name":"m"},"val_tpl":"{{ value_json.a[0] | round(2) }}"}`, "dev/1/s", `{"a":[1.234]}`},
		{`{"name":null,"state_topic":"z/x","device_class":"humidity"}`, "z/x", `unavailable`},
		{``, "tele/plug/SENSOR", `{"Time":"2026-01-01T00:00:00","ENERGY":{"Power":[1,2]}}`},
		{``, "umh/v1/a/b/c/d/e/_historian/x/y", `{"timestamp_ms":1796400000000,"v":{"w":1}}`},
		{``, "umh.v1.a.b._historian.c.d", `{"value":"running"}`},
		{``, "a/b/status", `{"status":"offline"}`},
		{``, "spBv1.0/g/DDATA/e/d", "\x12\x02\x0a\x00"},
	} {
		f.Add(s.config, s.topic, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, config, topic string, payload []byte) {
		d := newDialects(DialectConfig{Location: time.UTC}, DefaultLimits(), nil, nil)
		d.decode(Message{Topic: "homeassistant/sensor/n/o/config", Payload: []byte(config), RecvMS: dialectRecv})
		rs, _ := d.decode(Message{Topic: topic, Payload: payload, RecvMS: dialectRecv})
		for _, r := range rs {
			if r.Path.Machine == "" || !utf8.ValidString(r.Path.String()) {
				t.Fatalf("reading without a valid machine: %+v", r)
			}
			if r.Offline {
				continue
			}
			if r.Metric == "" || !plant.ValidName(r.Metric) || len(r.Metric) > DefaultLimits().MaxName {
				t.Fatalf("bad metric name: %+v", r)
			}
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("non-finite value: %+v", r)
			}
			if r.TS < minTS || r.TS > maxTS {
				t.Fatalf("time out of bounds: %+v", r)
			}
		}
	})
}
