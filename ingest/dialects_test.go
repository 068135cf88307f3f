package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

const dialectRecv = 1_796_400_005_000 // 2026-12-04, a few seconds after the fixtures' times

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "dialects", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// byMetric indexes readings by metric, so tests say what they expect of
// each without caring for order.
func byMetric(rs []plant.Reading) map[string]plant.Reading {
	out := make(map[string]plant.Reading, len(rs))
	for _, r := range rs {
		out[r.Metric] = r
	}
	return out
}

func TestDecodeUMH(t *testing.T) {
	lim := DefaultLimits()
	hist := fixture(t, "umh_classic_historian.json")
	cell := plant.Path{Site: "dallas", Area: "hall-1", Line: "line-4", Machine: "cnc-2"}
	tests := []struct {
		name, topic string
		payload     []byte
		want        map[string]float64 // metric -> value
		words       map[string]string
		path        plant.Path
		reason      string
		notMine     bool
	}{
		{name: "classic historian, nested objects", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/_historian", payload: hist,
			want: map[string]float64{"temperature": 72.5, "spindle.speed": 1200, "spindle.load": 0.42}, words: map[string]string{"state": "running"}, path: cell},
		{name: "classic tag group prefixes names", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/_historian/axis/x", payload: []byte(`{"timestamp_ms": 1796400000000, "position": 3}`),
			want: map[string]float64{"axis.x.position": 3}, path: cell},
		{name: "classic value under a tag path", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/_historian/oil/pressure", payload: []byte(`{"timestamp_ms": 1796400000000, "value": 4.5}`),
			want: map[string]float64{"oil.pressure": 4.5}, path: cell},
		{name: "classic with fewer levels", topic: "umh/v1/acme/dallas/press-1/_historian", payload: []byte(`{"t": 1}`),
			want: map[string]float64{"t": 1}, path: plant.Path{Site: "dallas", Machine: "press-1"}},
		{name: "classic deeper than the work cell", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/plc-7/_historian", payload: []byte(`{"t": 1}`),
			want: map[string]float64{"t": 1}, path: cell},
		{name: "classic analytics is no historian", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/_analytics/work-order/create", payload: []byte(`{}`), reason: plant.ReasonTopicInvalid},
		{name: "classic without schema is the default layout's", topic: "umh/v1/acme/dallas/hall-1/line-4/cnc-2/temp", payload: []byte(`1`), notMine: true},
		{name: "core value", topic: "umh.v1.acme.dallas.hall-1.line-4.cnc-2._historian.spindle.rpm", payload: fixture(t, "umh_core_value.json"),
			want: map[string]float64{"spindle.rpm": 3.25}, path: cell},
		{name: "core raw contract", topic: "umh.v1.acme.dallas.hall-1.line-4.cnc-2._raw.temperature", payload: []byte(`{"value": 21, "timestamp_ms": 1796400000000}`),
			want: map[string]float64{"temperature": 21}, path: cell},
		{name: "core state word", topic: "umh.v1.acme.dallas.hall-1.line-4.cnc-2._historian.state", payload: []byte(`{"value": "down", "timestamp_ms": 1796400000000}`),
			words: map[string]string{"state": "down"}, path: cell},
		{name: "core object payload", topic: "umh.v1.acme.dallas.hall-1.line-4.cnc-2._historian", payload: hist,
			want: map[string]float64{"temperature": 72.5}, path: cell},
		{name: "core without contract", topic: "umh.v1.acme.dallas", payload: []byte(`{"value": 1}`), reason: plant.ReasonTopicInvalid},
		{name: "core empty location level", topic: "umh.v1.acme..cnc._historian.x", payload: []byte(`{"value": 1}`), reason: plant.ReasonTopicInvalid},
		{name: "core control character", topic: "umh.v1.acme.c\x01nc._historian.x", payload: []byte(`{"value": 1}`), reason: plant.ReasonNameInvalid},
		{name: "core bare payload", topic: "umh.v1.acme.cnc._historian.x", payload: []byte(`1`), reason: plant.ReasonBadJSON},
		{name: "level over the name limit", topic: "umh.v1.acme." + strings.Repeat("c", 200) + "._historian.x", payload: []byte(`{"value": 1}`), reason: plant.ReasonNameInvalid},
		{name: "other topics", topic: "acme/line-1/press/temp", payload: []byte(`1`), notMine: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, ok := decodeUMH(Message{Topic: tc.topic, Payload: tc.payload, RecvMS: dialectRecv}, lim)
			if ok == tc.notMine {
				t.Fatalf("ok = %v, want %v", ok, !tc.notMine)
			}
			if tc.notMine {
				return
			}
			if tc.reason != "" {
				if rej == nil || rej.Reason != tc.reason || len(rs) != 0 {
					t.Fatalf("got %v readings and reject %+v, want reason %s", len(rs), rej, tc.reason)
				}
				return
			}
			if rej != nil {
				t.Fatalf("reject %+v", rej)
			}
			got := byMetric(rs)
			for m, v := range tc.want {
				if r, ok := got[m]; !ok || r.Value != v || r.Word != "" || r.Path != tc.path || r.Topic != tc.topic {
					t.Errorf("%s = %+v, want %v at %v", m, r, v, tc.path)
				}
			}
			for m, w := range tc.words {
				if got[m].Word != w {
					t.Errorf("%s = %+v, want word %s", m, got[m], w)
				}
			}
			if bytesHasTS := strings.Contains(string(tc.payload), "timestamp_ms"); bytesHasTS && rs[0].TS != 1_796_400_000_000 {
				t.Errorf("ts = %d, want the payload's", rs[0].TS)
			}
		})
	}
}

func TestDecodeTasmota(t *testing.T) {
	lim := DefaultLimits()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("energy monitor on the day clocks go forward", func(t *testing.T) {
		rs, rej, ok := decodeTasmota(Message{Topic: "tele/press-7-plug/SENSOR", Payload: fixture(t, "tasmota_pow_SENSOR.json"), RecvMS: dialectRecv}, lim, berlin)
		if !ok || rej != nil {
			t.Fatalf("ok %v reject %+v", ok, rej)
		}
		got := byMetric(rs)
		// 03:30 on 2026-03-29 in Berlin is summer time, UTC+2.
		want := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC).UnixMilli()
		for metric, unit := range map[string]string{"ENERGY.Power": "W", "ENERGY.Voltage": "V", "ENERGY.Current": "A", "ENERGY.Total": "kWh", "ENERGY.Factor": ""} {
			r, ok := got[metric]
			if !ok || r.Unit != unit || r.TS != want || r.Arrival || r.Path != (plant.Path{Machine: "press-7-plug"}) {
				t.Errorf("%s = %+v, want unit %q at %d", metric, r, unit, want)
			}
		}
		if got["ENERGY.Power"].Value != 45 {
			t.Errorf("power = %v", got["ENERGY.Power"].Value)
		}
		if _, ok := got["ENERGY.TotalStartTime"]; ok {
			t.Error("TotalStartTime, a date, became a reading")
		}
	})
	t.Run("temperature unit follows TempUnit", func(t *testing.T) {
		rs, _, _ := decodeTasmota(Message{Topic: "tele/hall/SENSOR", Payload: fixture(t, "tasmota_bme280_SENSOR.json"), RecvMS: dialectRecv}, lim, berlin)
		got := byMetric(rs)
		if got["BME280.Temperature"].Unit != "°F" || got["BME280.Humidity"].Unit != "%" || got["BME280.Pressure"].Unit != "hPa" {
			t.Errorf("units: %+v", got)
		}
		if _, ok := got["TempUnit"]; ok {
			t.Error("TempUnit became a reading")
		}
	})
	t.Run("three phases", func(t *testing.T) {
		rs, _, _ := decodeTasmota(Message{Topic: "tele/mains/SENSOR", Payload: fixture(t, "tasmota_3phase_SENSOR.json"), RecvMS: dialectRecv}, lim, berlin)
		got := byMetric(rs)
		if got["ENERGY.Power.2"].Value != 121 || got["ENERGY.Voltage.0"].Unit != "V" {
			t.Errorf("phases: %+v", got)
		}
	})
	t.Run("state: relays as numbers, signal", func(t *testing.T) {
		rs, _, ok := decodeTasmota(Message{Topic: "press-7-plug/tele/STATE", Payload: fixture(t, "tasmota_STATE.json"), RecvMS: dialectRecv}, lim, berlin)
		got := byMetric(rs)
		if !ok || got["POWER"].Value != 1 || got["POWER"].Word != "" || got["Wifi.RSSI"].Value != 72 || got["UptimeSec"].Value != 18764 {
			t.Errorf("state readings: %+v", got)
		}
		if _, ok := got["Wifi.Channel"]; ok || len(rs) != 6 {
			t.Errorf("state keeps only the useful fields, got %d: %+v", len(rs), got)
		}
	})
	t.Run("LWT", func(t *testing.T) {
		rs, rej, ok := decodeTasmota(Message{Topic: "tele/press-7-plug/LWT", Payload: []byte("Offline"), RecvMS: dialectRecv}, lim, berlin)
		want := []plant.Reading{{Path: plant.Path{Machine: "press-7-plug"}, TS: dialectRecv, Offline: true, Topic: "tele/press-7-plug/LWT"}}
		if !ok || rej != nil || !slices.Equal(rs, want) {
			t.Errorf("offline LWT = %+v %+v, want %+v", rs, rej, want)
		}
		if rs, rej, ok := decodeTasmota(Message{Topic: "tele/press-7-plug/LWT", Payload: []byte("Online"), RecvMS: dialectRecv}, lim, berlin); !ok || rej != nil || len(rs) != 0 {
			t.Errorf("online LWT = %+v %+v", rs, rej)
		}
	})
	for _, tc := range []struct{ name, topic, payload, reason string }{
		{"bad JSON", "tele/x/SENSOR", "{", plant.ReasonBadJSON},
		{"time in the future", "tele/x/SENSOR", `{"Time":"2027-01-01T00:00:00","A":{"Temperature":1}}`, plant.ReasonFutureTimestamp},
		{"bad time", "tele/x/SENSOR", `{"Time":"yesterday","A":{"Temperature":1}}`, plant.ReasonBadTimestamp},
		{"nothing numeric", "tele/x/SENSOR", `{"Time":"2026-12-04T12:00:00","A":{"Id":"abc"}}`, plant.ReasonEmpty},
		{"control character in the device", "tele/x\x02/SENSOR", `{}`, plant.ReasonNameInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rej, ok := decodeTasmota(Message{Topic: tc.topic, Payload: []byte(tc.payload), RecvMS: dialectRecv}, lim, berlin)
			if !ok || rej == nil || rej.Reason != tc.reason {
				t.Errorf("ok %v reject %+v, want %s", ok, rej, tc.reason)
			}
		})
	}
	for _, topic := range []string{"tele/x/INFO1", "tele/x/RESULT"} {
		if rs, rej, ok := decodeTasmota(Message{Topic: topic, Payload: []byte(`{}`)}, lim, berlin); !ok || rs != nil || rej != nil {
			t.Errorf("%s: want understood and stored as nothing", topic)
		}
	}
	for _, topic := range []string{"line-1/press/SENSOR", "tele/x/temperature", "tele/a/b/SENSOR"} {
		if _, _, ok := decodeTasmota(Message{Topic: topic, Payload: []byte(`{}`)}, lim, berlin); ok {
			t.Errorf("%s taken for Tasmota", topic)
		}
	}
}

func TestHomeAssistantDiscovery(t *testing.T) {
	lim := DefaultLimits()
	ha := newHomeAssistant(3)
	send := func(topic string, payload []byte) ([]plant.Reading, *plant.Reject, bool) {
		return ha.decode(Message{Topic: topic, Payload: payload, RecvMS: dialectRecv}, lim)
	}
	for _, c := range []struct{ topic, file string }{
		{"homeassistant/sensor/0x00158d0001a2b3c4/temperature/config", "z2m_temp_config.json"},
		{"homeassistant/sensor/0x00158d0001a2b3c4/humidity/config", "z2m_humidity_config.json"},
		{"homeassistant/sensor/press-7/spindle_load/config", "esphome_config.json"},
	} {
		if rs, rej, ok := send(c.topic, fixture(t, c.file)); !ok || rej != nil || rs != nil {
			t.Fatalf("config %s: %v %+v %v", c.file, rs, rej, ok)
		}
	}

	// zigbee2mqtt: two entities on one state topic, one reading each.
	rs, rej, ok := send("zigbee2mqtt/hall-climate", fixture(t, "z2m_state.json"))
	if !ok || rej != nil {
		t.Fatalf("state: %v %+v", ok, rej)
	}
	climate := plant.Path{Line: "line-2", Machine: "hall-climate"}
	got := byMetric(rs)
	if len(rs) != 2 || got["Temperature"].Value != 22.65 || got["Temperature"].Unit != "°C" || got["Temperature"].Path != climate ||
		got["Humidity"].Value != 41.3 || !got["Humidity"].Arrival {
		t.Errorf("zigbee2mqtt readings = %+v", rs)
	}

	// ESPHome: abbreviations, a ~ base topic, an availability topic.
	rs, _, _ = send("press-7/sensor/spindle_load/state", []byte("63.5"))
	press := plant.Path{Line: "line-1", Machine: "press-7"}
	if len(rs) != 1 || rs[0].Metric != "Spindle load" || rs[0].Value != 63.5 || rs[0].Unit != "%" || rs[0].Path != press {
		t.Errorf("esphome reading = %+v", rs)
	}
	if rs, _, _ := send("press-7/sensor/spindle_load/state", []byte("unavailable")); len(rs) != 0 {
		t.Errorf("unavailable became %+v", rs)
	}
	rs, _, ok = send("press-7/status", []byte("offline"))
	if want := []plant.Reading{{Path: press, TS: dialectRecv, Offline: true, Topic: "press-7/status"}}; !ok || !slices.Equal(rs, want) {
		t.Errorf("availability offline = %+v, want %+v", rs, want)
	}
	if rs, _, ok := send("press-7/status", []byte("online")); !ok || len(rs) != 0 {
		t.Errorf("availability online = %+v", rs)
	}
	// zigbee2mqtt's bridge says it in JSON.
	if rs, _, _ := send("zigbee2mqtt/bridge/state", []byte(`{"state":"offline"}`)); len(rs) != 1 || rs[0].Path != climate || !rs[0].Offline {
		t.Errorf("bridge offline = %+v", rs)
	}

	// The entity limit (3) refuses a fourth; a removal makes room.
	_, rej, _ = send("homeassistant/binary_sensor/door-3/config", fixture(t, "shelly_binary_config.json"))
	if rej == nil || rej.Reason != plant.ReasonTagLimit {
		t.Errorf("fourth entity: reject %+v, want tag_limit", rej)
	}
	if _, rej, ok := send("homeassistant/sensor/press-7/spindle_load/config", nil); !ok || rej != nil {
		t.Errorf("removal: %+v", rej)
	}
	if _, _, ok := send("press-7/sensor/spindle_load/state", []byte("1")); ok {
		t.Error("a removed entity's state topic is still taken")
	}
	if _, rej, _ := send("homeassistant/binary_sensor/door-3/config", fixture(t, "shelly_binary_config.json")); rej != nil {
		t.Fatalf("binary sensor after a removal: %+v", rej)
	}
	rs, _, _ = send("shellies/door-3/sensor/state", []byte("open"))
	if len(rs) != 1 || rs[0].Value != 1 || rs[0].Metric != "Door open" || rs[0].Path.Machine != "dock-door-3" {
		t.Errorf("binary sensor open = %+v", rs)
	}

	for _, tc := range []struct{ name, topic, payload, reason string }{
		{"not JSON", "homeassistant/sensor/a/config", "{", plant.ReasonBadJSON},
		{"no state topic", "homeassistant/sensor/a/config", `{"name": "x"}`, plant.ReasonNameInvalid},
		{"wildcard state topic", "homeassistant/sensor/a/config", `{"name": "x", "state_topic": "a/#"}`, plant.ReasonNameInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rej, ok := send(tc.topic, []byte(tc.payload))
			if !ok || rej == nil || rej.Reason != tc.reason {
				t.Errorf("ok %v reject %+v, want %s", ok, rej, tc.reason)
			}
		})
	}
	if _, rej, ok := send("homeassistant/button/a/config", []byte(`{"command_topic": "x"}`)); !ok || rej != nil {
		t.Errorf("a button: %v %+v, want understood and ignored", ok, rej)
	}
	if _, _, ok := send("line-1/press/temp", []byte("1")); ok {
		t.Error("an ordinary topic was taken")
	}
}

func TestHomeAssistantTemplates(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		tmpl, payload string
		want          float64
		reject        bool
	}{
		{"", "21.5", 21.5, false},
		{"{{ value }}", "21.5", 21.5, false},
		{"{{ value | float }}", "21.5", 21.5, false},
		{"{{ value_json.a.b }}", `{"a": {"b": 7}}`, 7, false},
		{"{{ value_json['a'][1] }}", `{"a": [1, 8]}`, 8, false},
		{`{{ value_json["x y"] | int }}`, `{"x y": 9.9}`, 9, false},
		{"{{ value_json.t | round(1) }}", `{"t": 1.26}`, 1.3, false},
		{"{{ value_json.t | float(0) | round }}", `{"t": 1.6}`, 2, false},
		{"{{ value_json.t * 10 }}", `{"t": 1}`, 0, true},
		{"{% if value %}1{% endif %}", "1", 0, true},
		{"{{ states('sensor.x') }}", "1", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.tmpl, func(t *testing.T) {
			ha := newHomeAssistant(10)
			cfg := `{"name": "v", "state_topic": "s/v", "device": {"name": "m"}, "value_template": ` + strconvQuote(tc.tmpl) + `}`
			if _, rej, _ := ha.decode(Message{Topic: "homeassistant/sensor/m/v/config", Payload: []byte(cfg)}, lim); rej != nil {
				t.Fatal(rej)
			}
			rs, rej, ok := ha.decode(Message{Topic: "s/v", Payload: []byte(tc.payload), RecvMS: dialectRecv}, lim)
			if !ok {
				t.Fatal("state topic not taken")
			}
			if tc.reject {
				if rej == nil || !strings.Contains(rej.Detail, "not one Andon reads") || len(rs) != 0 {
					t.Errorf("got %+v %+v, want a reject naming the template", rs, rej)
				}
				return
			}
			if rej != nil || len(rs) != 1 || rs[0].Value != tc.want {
				t.Errorf("got %+v %+v, want %v", rs, rej, tc.want)
			}
		})
	}
}

func strconvQuote(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		if r == '"' || r == '\\' {
			b = append(b, '\\')
		}
		b = append(b, string(r)...)
	}
	return string(append(b, '"'))
}

func TestDecodeAvailability(t *testing.T) {
	lim := DefaultLimits()
	p := plant.Path{Line: "line-1", Machine: "press-3"}
	tests := []struct {
		topic, payload string
		offline        bool
		mine           bool
	}{
		{"line-1/press-3/status", "offline", true, true},
		{"line-1/press-3/status", "OFFLINE", true, true},
		{"line-1/press-3/availability", "disconnected", true, true},
		{"line-1/press-3/LWT", `{"status": "offline"}`, true, true},
		{"line-1/press-3/connection", `{"value": "Offline"}`, true, true},
		{"line-1/press-3/status", "online", false, true},
		{"line-1/press-3/status", "running", false, false}, // a machine state, not availability
		{"line-1/press-3/temperature", "offline", false, false},
		{"status", "offline", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.topic+"="+tc.payload, func(t *testing.T) {
			rs, rej, ok := decodeAvailability(Message{Topic: tc.topic, Payload: []byte(tc.payload), RecvMS: dialectRecv}, lim)
			if ok != tc.mine || rej != nil {
				t.Fatalf("ok %v reject %+v, want ok %v", ok, rej, tc.mine)
			}
			var want []plant.Reading
			if tc.offline {
				want = []plant.Reading{{Path: p, TS: dialectRecv, Offline: true, Topic: tc.topic}}
			}
			if !slices.Equal(rs, want) {
				t.Errorf("readings = %+v, want %+v", rs, want)
			}
		})
	}
}

// The router tries the admin's rules first, then the dialects, then the
// default layout.
func TestDialectOrder(t *testing.T) {
	rules, err := CompileRules([]plant.MappingRule{{Pattern: "tele/{machine}/SENSOR", Value: "ENERGY.Power", Metric: "watts", Scale: 1}})
	if err != nil {
		t.Fatal(err)
	}
	d := newDialects(DialectConfig{Mapping: NewMapping(rules), Location: time.UTC}, DefaultLimits(), nil, nil)
	decode := func(topic, payload string) []plant.Reading {
		rs, rej := d.decode(Message{Topic: topic, Payload: []byte(payload), RecvMS: dialectRecv})
		if rej != nil {
			t.Fatalf("%s: %+v", topic, rej)
		}
		return rs
	}
	if rs := decode("tele/plug/SENSOR", `{"ENERGY": {"Power": 5, "Voltage": 230}}`); len(rs) != 1 || rs[0].Metric != "watts" {
		t.Errorf("a rule did not win over Tasmota: %+v", rs)
	}
	if rs := decode("tele/plug/LWT", "Offline"); len(rs) != 1 || !rs[0].Offline {
		t.Errorf("Tasmota LWT: %+v", rs)
	}
	if rs := decode("line-1/press/status", "running"); len(rs) != 1 || rs[0].Word != "running" || rs[0].Metric != "status" {
		t.Errorf("the default layout: %+v", rs)
	}
	if _, rej := d.decode(Message{Topic: "a/b", Payload: make([]byte, 70_000)}); rej == nil || rej.Reason != plant.ReasonTooLarge {
		t.Errorf("a huge payload reached a decoder: %+v", rej)
	}
	if rs, rej := d.decode(Message{Topic: "$SYS/broker/uptime", Payload: []byte("1")}); rs != nil || rej != nil {
		t.Errorf("a broker topic was decoded: %+v %+v", rs, rej)
	}
}

// A gateway's birth certificate is larger than any one reading's payload
// may be: 3,000 metrics with properties pass the router and are stored.
func TestSparkplugBigBirth(t *testing.T) {
	d := newDialects(DialectConfig{Location: time.UTC}, DefaultLimits(), nil, nil)
	bd := uint64(0)
	ms := []*sparkplugpb.Payload_Metric{{Name: proto.String("bdSeq"), Datatype: proto.Uint32(uint32(sparkplugpb.DataType_UInt64)),
		Value: &sparkplugpb.Payload_Metric_LongValue{LongValue: bd}}}
	for i := range 3000 {
		ms = append(ms, &sparkplugpb.Payload_Metric{
			Name: proto.String(fmt.Sprintf("Area 1/PLC 7/Tag %04d", i)), Alias: proto.Uint64(uint64(i + 1)),
			Datatype: proto.Uint32(uint32(sparkplugpb.DataType_Double)), Value: &sparkplugpb.Payload_Metric_DoubleValue{DoubleValue: float64(i)},
			Properties: &sparkplugpb.Payload_PropertySet{Keys: []string{"engUnit"}, Values: []*sparkplugpb.Payload_PropertyValue{{
				Type: proto.Uint32(uint32(sparkplugpb.DataType_String)), Value: &sparkplugpb.Payload_PropertyValue_StringValue{StringValue: "mm"}}}},
		})
	}
	b, err := proto.Marshal(&sparkplugpb.Payload{Timestamp: proto.Uint64(1_796_400_000_000), Seq: proto.Uint64(0), Metrics: ms})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) <= DefaultLimits().MaxPayload {
		t.Fatalf("birth is only %d bytes; the test needs one over the plain payload limit", len(b))
	}
	rs, rej := d.decode(Message{Topic: "spBv1.0/g/NBIRTH/e", Payload: b, RecvMS: dialectRecv})
	if rej != nil || len(rs) != 3000 {
		t.Fatalf("%d readings, reject %+v; want 3000", len(rs), rej)
	}
	if rs[0].Unit != "mm" {
		t.Errorf("unit = %q, want the birth's engUnit", rs[0].Unit)
	}
}

// BenchmarkDialectsPlain is what the dialects cost a plain reading, the
// common case: every decoder must say "not mine" cheaply.
func BenchmarkDialectsPlain(b *testing.B) {
	d := newDialects(DialectConfig{Location: time.UTC}, DefaultLimits(), nil, nil)
	m := Message{Topic: "acme/hall-1/line-1/press-01/temperature", Payload: []byte("23.5"), RecvMS: dialectRecv}
	b.ReportAllocs()
	for b.Loop() {
		d.decode(m)
	}
}

// BenchmarkParsePlain is the default decoder alone, BenchmarkDialectsPlain's baseline.
func BenchmarkParsePlain(b *testing.B) {
	m := Message{Topic: "acme/hall-1/line-1/press-01/temperature", Payload: []byte("23.5"), RecvMS: dialectRecv}
	b.ReportAllocs()
	for b.Loop() {
		Parse(m.Topic, m.Payload, m.RecvMS, DefaultLimits())
	}
}
