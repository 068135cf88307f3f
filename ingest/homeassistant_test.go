package ingest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"andon/plant"
)

func TestHomeAssistantFixtures(t *testing.T) {
	ha := newHomeAssistant(100)
	runDialectCases(t, "homeassistant", func(m Message, _ *time.Location) ([]plant.Reading, *plant.Reject, bool) {
		return ha.decode(m, DefaultLimits())
	})
}

// haStep is one message to a registry and what it must give.
type haStep struct {
	topic, payload string
	reason         string // the reject's reason, "" for none
	detail         string // a part of the reject's detail
	mine           bool
	want           []plant.Reading // Topic and TS are filled in
}

func runHASteps(t *testing.T, ha *homeAssistant, steps []haStep) {
	t.Helper()
	const recv = 1_796_400_005_000
	lim := DefaultLimits()
	for i, s := range steps {
		rs, rej, ok := ha.decode(Message{Topic: s.topic, Payload: []byte(s.payload), RecvMS: recv}, lim)
		if ok != s.mine {
			t.Fatalf("step %d (%s): ok = %v, want %v", i, s.topic, ok, s.mine)
		}
		switch {
		case s.reason == "" && rej != nil:
			t.Fatalf("step %d (%s): reject %+v", i, s.topic, rej)
		case s.reason != "" && (rej == nil || rej.Reason != s.reason || !strings.Contains(rej.Detail, s.detail)):
			t.Fatalf("step %d (%s): reject %+v, want %s containing %q", i, s.topic, rej, s.reason, s.detail)
		}
		want := slices.Clone(s.want)
		for j := range want {
			want[j].Topic, want[j].TS = s.topic, recv
			want[j].Arrival = !want[j].Offline
		}
		for _, r := range rs {
			checkReading(t, r, lim)
		}
		if !slices.Equal(rs, want) {
			t.Errorf("step %d (%s): readings\n got %+v\nwant %+v", i, s.topic, rs, want)
		}
	}
}

func haConfig(name, state string, extra string) string {
	return fmt.Sprintf(`{"name": %q, "state_topic": %q%s}`, name, state, extra)
}

func TestHomeAssistantEdges(t *testing.T) {
	lim := DefaultLimits()
	long := strings.Repeat("ü", lim.MaxName) // two bytes each: twice the limit
	tests := []struct {
		name  string
		steps []haStep
	}{
		{"unknown components are remembered as nothing", []haStep{
			{topic: "homeassistant/camera/gate/cam/config", payload: haConfig("Cam", "gate/cam", ""), mine: true},
			{topic: "homeassistant/alarm_control_panel/x/config", payload: haConfig("Alarm", "x/alarm", ""), mine: true},
			{topic: "homeassistant/device_automation/x/y/config", payload: `{"automation_type": "trigger", "topic": "x/y/action"}`, mine: true},
			{topic: "gate/cam", payload: "1"},
			{topic: "x/alarm", payload: "armed_home"},
		}},
		{"a '/' in a device name is replaced", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("Temp", "s/t", `, "device": {"name": "Press 7/2"}`), mine: true},
			{topic: "s/t", payload: "20", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "Press 7-2"}, Metric: "Temp", Value: 20}}},
		}},
		{"a device name with a control character gives way to the node id", []haStep{
			{topic: "homeassistant/sensor/node-4/o/config", payload: haConfig("Temp", "s/t", `, "device": {"name": "bad\u0007name"}`), mine: true},
			{topic: "s/t", payload: "20", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "node-4"}, Metric: "Temp", Value: 20}}},
		}},
		{"without device or node, the object id is the machine", []haStep{
			{topic: "homeassistant/sensor/boiler_temperature/config", payload: `{"state_topic": "boiler/t", "device_class": "temperature"}`, mine: true},
			{topic: "boiler/t", payload: "71", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "boiler_temperature"}, Metric: "temperature", Value: 71}}},
		}},
		{"names over the limit are cut on a character boundary", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig(long, "s/t", `, "device": {"name": "`+long+`", "suggested_area": "`+long+`"}`), mine: true},
			{topic: "s/t", payload: "1", mine: true, want: []plant.Reading{{Path: plant.Path{Line: strings.Repeat("ü", lim.MaxName/2), Machine: strings.Repeat("ü", lim.MaxName/2)}, Metric: strings.Repeat("ü", lim.MaxName/2), Value: 1}}},
		}},
		{"invalid UTF-8 in a config becomes U+FFFD", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: "{\"name\": \"T\xff\", \"state_topic\": \"s/t\", \"device\": {\"name\": \"m\"}}", mine: true},
			{topic: "s/t", payload: "1", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "T\uFFFD", Value: 1}}},
		}},
		{"a unit over the limit is dropped, a name of spaces gives way", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("  ", "s/t", `, "object_id": "oven_temp", "unit_of_measurement": "`+strings.Repeat("u", 40)+`", "device": {"name": "m"}`), mine: true},
			{topic: "s/t", payload: "1", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "oven_temp", Value: 1}}},
		}},
		{"a state topic over the topic limit", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("T", strings.Repeat("s/", 130), ""), mine: true, reason: plant.ReasonNameInvalid, detail: "state_topic"},
		}},
		{"a config that is a JSON array", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: `[1]`, mine: true, reason: plant.ReasonBadJSON},
		}},
		{"a removal of what was never configured", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: ``, mine: true},
			{topic: "homeassistant/sensor/n/o/config", payload: " \n", mine: true},
		}},
		{"a new config moves the entity to its new state topic", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("T", "old/t", `, "device": {"name": "m"}`), mine: true},
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("T", "new/t", `, "device": {"name": "m"}`), mine: true},
			{topic: "old/t", payload: "1"},
			{topic: "new/t", payload: "2", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "T", Value: 2}}},
		}},
		{"states: words, booleans, numbers as text, rejects", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("Mode", "m/mode", `, "device": {"name": "m"}`), mine: true},
			{topic: "m/mode", payload: "running", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "Mode", Word: "running"}}},
			{topic: "m/mode", payload: " 42.5 ", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "Mode", Value: 42.5}}},
			{topic: "m/mode", payload: "NaN", mine: true, reason: plant.ReasonNotFinite},
			{topic: "m/mode", payload: "a\x01b", mine: true, reason: plant.ReasonNotANumber},
			{topic: "m/mode", payload: strings.Repeat("w", 100), mine: true, reason: plant.ReasonNotANumber},
		}},
		{"a binary sensor's default words, others as words", []haStep{
			{topic: "homeassistant/binary_sensor/n/o/config", payload: haConfig("Motion", "m/motion", `, "device": {"name": "m"}`), mine: true},
			{topic: "m/motion", payload: "ON", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "Motion", Value: 1}}},
			{topic: "m/motion", payload: "OFF", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "Motion", Value: 0}}},
			{topic: "m/motion", payload: "true", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "Motion", Value: 1}}},
		}},
		{"a template into JSON that is not JSON", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("T", "s/t", `, "value_template": "{{ value_json.t }}", "device": {"name": "m"}`), mine: true},
			{topic: "s/t", payload: "21", mine: true, reason: plant.ReasonNotANumber, detail: "not the JSON object"},
			{topic: "s/t", payload: `{"t": [1, 2]}`, mine: true, reason: plant.ReasonNotANumber, detail: "array"},
			{topic: "s/t", payload: `{"t": null}`, mine: true},
			{topic: "s/t", payload: `{"other": 1}`, mine: true},
		}},
		{"availability list with its own words; the default words otherwise", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: haConfig("T", "s/t", `, "device": {"name": "m"}, "avty": [{"t": "m/alive", "pl_avail": "1", "pl_not_avail": "0"}, {"topic": "gw/state"}]`), mine: true},
			{topic: "m/alive", payload: "0", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Offline: true}}},
			{topic: "m/alive", payload: "offline", mine: true},
			{topic: "gw/state", payload: "offline", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Offline: true}}},
			{topic: "gw/state", payload: "Offline", mine: true}, // HA compares payloads exactly
		}},
		{"a trailing ~", []haStep{
			{topic: "homeassistant/sensor/n/o/config", payload: `{"~": "press-7", "name": "T", "stat_t": "states/~", "dev": {"name": "m"}}`, mine: true},
			{topic: "states/press-7", payload: "5", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "T", Value: 5}}},
		}},
		{"config topics are recognised by shape only", []haStep{
			{topic: "homeassistant/sensor/config", payload: haConfig("T", "s/t", ""), mine: false},
			{topic: "homeassistant/sensor/a/b/c/config", payload: haConfig("T", "s/t", ""), mine: false},
			{topic: "homeassistant/sensor/a/b/configs", payload: haConfig("T", "s/t", ""), mine: false},
			{topic: "homeassistant2/sensor/a/config", payload: haConfig("T", "s/t", ""), mine: false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runHASteps(t, newHomeAssistant(10), tc.steps)
		})
	}
}

func TestHomeAssistantEntityLimit(t *testing.T) {
	cfg := func(i int) string { return haConfig("T", fmt.Sprintf("s/%d", i), `, "device": {"name": "m"}`) }
	runHASteps(t, newHomeAssistant(2), []haStep{
		{topic: "homeassistant/sensor/a/config", payload: cfg(1), mine: true},
		{topic: "homeassistant/sensor/b/config", payload: cfg(2), mine: true},
		{topic: "homeassistant/sensor/c/config", payload: cfg(3), mine: true, reason: plant.ReasonTagLimit, detail: "at most 2"},
		{topic: "s/3", payload: "1"},
		// Replacing a known entity at the limit is no new entity.
		{topic: "homeassistant/sensor/b/config", payload: cfg(4), mine: true},
		{topic: "s/4", payload: "4", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "T", Value: 4}}},
		// An unknown component does not count, nor does a removal of nothing.
		{topic: "homeassistant/button/d/config", payload: cfg(5), mine: true},
		{topic: "homeassistant/sensor/e/config", payload: "", mine: true},
		{topic: "homeassistant/sensor/a/config", payload: "", mine: true},
		{topic: "homeassistant/sensor/c/config", payload: cfg(3), mine: true},
		{topic: "s/3", payload: "3", mine: true, want: []plant.Reading{{Path: plant.Path{Machine: "m"}, Metric: "T", Value: 3}}},
	})
}

func TestHomeAssistantTemplateForms(t *testing.T) {
	tests := []struct {
		tmpl, payload string
		want          float64
		word          string
		unsupported   bool
	}{
		{tmpl: "{{value_json.a}}", payload: `{"a": 1.5}`, want: 1.5},
		{tmpl: `{{ value_json["a"]["b"] }}`, payload: `{"a": {"b": 2}}`, want: 2},
		{tmpl: "{{ value_json['a b'].c }}", payload: `{"a b": {"c": 3}}`, want: 3},
		{tmpl: "{{ value_json.a[2] }}", payload: `{"a": [0, 1, 4]}`, want: 4},
		{tmpl: "{{ value | int }}", payload: "7.9", want: 7},
		{tmpl: "{{ value | round(2) }}", payload: "1.23456", want: 1.23},
		{tmpl: "{{ value_json.state }}", payload: `{"state": "idle"}`, word: "idle"},
		{tmpl: "{{ value_json.a | int }}", payload: `{"a": -2.7}`, want: -2},
		{tmpl: "{{ value_json.a | default(0) }}", unsupported: true},
		{tmpl: "{{ value_json.a if value_json.a else 0 }}", unsupported: true},
		{tmpl: "{{ (value_json.a) }}", unsupported: true},
		{tmpl: "{{ value_json.a }} °C", unsupported: true},
		{tmpl: "{{ value_json }}", unsupported: true},
		{tmpl: "{{ value_json.a | round(99) }}", unsupported: true},
		{tmpl: "{{ value_json[-1] }}", unsupported: true},
		{tmpl: "{{ value_json['a }}", unsupported: true},
		{tmpl: "{{ value_json." + strings.Repeat("a.", 20) + "a }}", unsupported: true},
		{tmpl: "{{ now() }}", unsupported: true},
		{tmpl: "{{ value_json.a.__class__ }}", payload: `{"a": {"__class__": 5}}`, want: 5}, // a key, never Python
	}
	for _, tc := range tests {
		t.Run(tc.tmpl, func(t *testing.T) {
			ha := newHomeAssistant(10)
			lim := DefaultLimits()
			cfg := fmt.Sprintf(`{"name": "v", "state_topic": "s/v", "device": {"name": "m"}, "value_template": %q}`, tc.tmpl)
			if _, rej, _ := ha.decode(Message{Topic: "homeassistant/sensor/m/v/config", Payload: []byte(cfg)}, lim); rej != nil {
				t.Fatalf("config: %+v", rej)
			}
			payload := cmp.Or(tc.payload, `{"a": 1}`)
			rs, rej, ok := ha.decode(Message{Topic: "s/v", Payload: []byte(payload), RecvMS: 1_796_400_005_000}, lim)
			if !ok {
				t.Fatal("state topic not taken")
			}
			if tc.unsupported {
				if rej == nil || rej.Reason != plant.ReasonNotANumber || !strings.Contains(rej.Detail, "not one Andon reads") || len(rs) != 0 {
					t.Errorf("got %+v %+v, want a reject naming the template", rs, rej)
				}
				return
			}
			if rej != nil || len(rs) != 1 || rs[0].Value != tc.want || rs[0].Word != tc.word {
				t.Errorf("got %+v %+v, want %v %q", rs, rej, tc.want, tc.word)
			}
		})
	}
}

// TestHomeAssistantConcurrent configures, reads and removes entities from
// several goroutines at once; run with -race it checks the registry's
// locking, and each goroutine checks it reads its own entity.
func TestHomeAssistantConcurrent(t *testing.T) {
	ha := newHomeAssistant(1000)
	lim := DefaultLimits()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				cfgTopic := fmt.Sprintf("homeassistant/sensor/g%d/e%d/config", g, i)
				state := fmt.Sprintf("g%d/e%d", g, i)
				cfg := haConfig("T", state, fmt.Sprintf(`, "device": {"name": "m%d"}`, g))
				if _, rej, ok := ha.decode(Message{Topic: cfgTopic, Payload: []byte(cfg)}, lim); !ok || rej != nil {
					errs <- fmt.Sprintf("config %s: %v %+v", cfgTopic, ok, rej)
					return
				}
				rs, rej, ok := ha.decode(Message{Topic: state, Payload: []byte("1"), RecvMS: 1_796_400_005_000}, lim)
				if !ok || rej != nil || len(rs) != 1 || rs[0].Path.Machine != fmt.Sprintf("m%d", g) {
					errs <- fmt.Sprintf("state %s: %v %+v %+v", state, ok, rej, rs)
					return
				}
				if i%2 == 0 {
					ha.decode(Message{Topic: cfgTopic}, lim)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := ha.entities.Load(); got != 8*25 {
		t.Errorf("%d entities, want %d", got, 8*25)
	}
}

// FuzzHomeAssistant sends an arbitrary discovery config, then an arbitrary
// payload to every topic the config registered. Nothing may panic, every
// reading must be one the writer stores, and removing the config must
// leave the registry empty.
func FuzzHomeAssistant(f *testing.F) {
	f.Add(uint8(0), `{"name":"T","stat_t":"~/s","~":"dev/1","dev":{"name":"m","sa":"l"},"val_tpl":"{{ value_json.a[0] | round(2) }}","avty_t":"~/avail"}`, []byte(`{"a":[1.234]}`))
	f.Add(uint8(1), `{"name":null,"state_topic":"z/x","device_class":"door","pl_on":"open","availability":[{"topic":"z/bridge","payload_not_available":"down"}]}`, []byte(`open`))
	f.Add(uint8(2), `{"name":"S","state_topic":"a/b","value_template":"{{ value }}"}`, []byte(`unavailable`))
	f.Add(uint8(4), `{"schema":"json","name":"L","stat_t":"l/s"}`, []byte(`{"state":"ON"}`))
	f.Add(uint8(0), `{"name":"X","state_topic":"x/y","value_template":"{{ value_json.t * 2 }}"}`, []byte(`{"t":1}`))
	components := []string{"sensor", "binary_sensor", "switch", "number", "light", "button"}
	f.Fuzz(func(t *testing.T, component uint8, config string, payload []byte) {
		lim := DefaultLimits()
		if len(config) > lim.MaxPayload || len(payload) > lim.MaxPayload {
			return // the router refuses these before any decoder
		}
		ha := newHomeAssistant(4)
		cfgTopic := "homeassistant/" + components[int(component)%len(components)] + "/node/obj/config"
		_, rej, ok := ha.decode(Message{Topic: cfgTopic, Payload: []byte(config), RecvMS: 1_796_400_005_000}, lim)
		if !ok {
			t.Fatal("a config topic was not taken")
		}
		checkReject(t, rej)
		ha.mu.RLock()
		var topics []string
		for k := range ha.byState {
			topics = append(topics, k)
		}
		for k := range ha.byAvail {
			topics = append(topics, k)
		}
		ha.mu.RUnlock()
		for _, topic := range topics {
			rs, rej, ok := ha.decode(Message{Topic: topic, Payload: payload, RecvMS: 1_796_400_005_000}, lim)
			if !ok {
				t.Fatalf("registered topic %q not taken", topic)
			}
			checkReject(t, rej)
			for _, r := range rs {
				checkReading(t, r, lim)
				if r.Topic != topic {
					t.Fatalf("reading %+v of topic %q", r, topic)
				}
			}
		}
		ha.decode(Message{Topic: cfgTopic, RecvMS: 1_796_400_005_000}, lim)
		if n := ha.entities.Load(); n != 0 || len(ha.byConfig) != 0 || len(ha.byState) != 0 || len(ha.byAvail) != 0 {
			t.Fatalf("after removal: %d entities, %d/%d/%d index entries", n, len(ha.byConfig), len(ha.byState), len(ha.byAvail))
		}
	})
}

// checkReject fails t unless rej is nil or an admin can read it: a reason
// and a bounded, valid sentence.
func checkReject(t testing.TB, rej *plant.Reject) {
	t.Helper()
	if rej == nil {
		return
	}
	if rej.Reason == "" || rej.Detail == "" || !utf8.ValidString(rej.Detail) || len(rej.Detail) > 2000 || len(rej.Payload) > maxRejectPayload {
		t.Fatalf("unreadable reject: %+v", rej)
	}
}
