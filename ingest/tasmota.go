package ingest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"andon/plant"
)

// Tasmota publishes telemetry under its default FullTopic %prefix%/%topic%/
// (tele/<device>/SENSOR) or the alternative %topic%/%prefix%/
// (<device>/tele/SENSOR).
const (
	tasmotaTele = "tele"
	tasmotaStat = "stat"
	tasmotaCmnd = "cmnd"
)

// tasmotaSkip are SENSOR fields that are settings or descriptions, not values.
var tasmotaSkip = map[string]bool{"Time": true, "TempUnit": true, "PressureUnit": true, "SpeedUnit": true}

// tasmotaUnits are the units Tasmota's sensor and energy fields are in, by
// their last name; temperature and pressure follow TempUnit and PressureUnit.
var tasmotaUnits = map[string]string{
	"Humidity": "%", "DewPoint": "", "Illuminance": "lx", "Power": "W", "ApparentPower": "VA",
	"ReactivePower": "var", "Voltage": "V", "Current": "A", "Total": "kWh", "Today": "kWh", "Period": "Wh",
	"Yesterday": "kWh", "Frequency": "Hz", "CO2": "ppm", "eCO2": "ppm", "TVOC": "ppb",
	"Distance": "cm", "Gas": "kΩ",
}

// tasmotaState are the STATE fields worth a chart, with their units:
// uptime, free memory, loop load, Wi-Fi quality (Tasmota's RSSI is a
// percentage) and signal. The relays (POWER, POWER1..) are read too, ON/OFF
// as 1/0: a relay is not a machine state.
var tasmotaState = map[string]string{"UptimeSec": "s", "Heap": "kB", "LoadAvg": "%", "Wifi.RSSI": "%", "Wifi.Signal": "dBm"}

// decodeTasmota reads Tasmota's telemetry: SENSOR readings (nested sensors
// flattened to dotted names, with units; its Time, written without a zone,
// read in the plant's zone loc), a few STATE fields, and LWT Online/Offline
// as the device's availability. Other telemetry (INFO1..3, RESULT,
// MARGINS, UPTIME), commands and status replies are understood and stored
// as nothing, but a relay's POWER reply (see decodeTasmotaStat). Tasmota's
// default FullTopic is %prefix%/%topic%/ and the other common one
// %topic%/%prefix%/; both are read.
func decodeTasmota(m Message, lim Limits, loc *time.Location) ([]plant.Reading, *plant.Reject, bool) {
	// Three levels, read without allocating: every message passes here.
	first, rest, _ := strings.Cut(m.Topic, "/")
	second, kind, _ := strings.Cut(rest, "/")
	if strings.Contains(kind, "/") {
		return nil, nil, false
	}
	var prefix, device string
	switch {
	case isTasmotaPrefix(first):
		prefix, device = first, second
	case isTasmotaPrefix(second):
		prefix, device = second, first
	default:
		return nil, nil, false
	}
	if prefix != tasmotaTele {
		return decodeTasmotaStat(m, prefix, device, kind, lim)
	}
	switch kind {
	case "SENSOR", "STATE", "LWT":
	case "INFO1", "INFO2", "INFO3", "RESULT", "MARGINS", "UPTIME":
		return nil, nil, true
	default:
		return nil, nil, false
	}
	switch {
	case device == "" || len(device) > lim.MaxName:
		return nil, rejectOf(m, plant.ReasonNameInvalid, fmt.Sprintf("The device name is empty or longer than %d bytes.", lim.MaxName)), true
	case !plant.ValidName(device):
		return nil, rejectOf(m, plant.ReasonNameInvalid, "The device name holds a control character."), true
	}
	path := plant.Path{Machine: device}
	if kind == "LWT" {
		if strings.EqualFold(string(bytes.TrimSpace(m.Payload)), "offline") {
			return []plant.Reading{{Path: path, TS: m.RecvMS, Offline: true, Topic: m.Topic}}, nil, true
		}
		return nil, nil, true
	}
	obj, err := decodeJSON(bytes.TrimSpace(m.Payload))
	if err != nil {
		return nil, rejectOf(m, plant.ReasonBadJSON, "Tasmota's "+kind+" is a JSON object; this payload is not: "+err.Error()+"."), true
	}
	ts, arrival, rej := tasmotaTime(m, obj, lim, loc)
	if rej != nil {
		return nil, rej, true
	}
	t := tasmotaReader{m: m, path: path, ts: ts, arrival: arrival, lim: lim, state: kind == "STATE", obj: obj}
	t.walk("", obj)
	if t.tooMany {
		return nil, rejectOf(m, plant.ReasonTooManyValues, fmt.Sprintf("The payload holds more than %d values.", lim.MaxValues)), true
	}
	if len(t.rs) == 0 && kind == "SENSOR" {
		return nil, rejectOf(m, plant.ReasonEmpty, "The SENSOR message holds no numeric values."), true
	}
	return t.rs, nil, true
}

// isTasmotaPrefix reports Tasmota's three %prefix% levels: tele for
// telemetry, stat for status and command results, cmnd for commands.
func isTasmotaPrefix(l string) bool {
	return l == tasmotaTele || l == tasmotaStat || l == tasmotaCmnd
}

// decodeTasmotaStat reads stat/<device>/<KIND> and cmnd/<device>/<Command>.
// Commands are what someone asked of a device, and status replies echo
// settings: neither is a reading, so both are understood and stored as
// nothing, except stat/<device>/POWER[n], the relay's new state after a
// command, which is the same 1/0 as STATE's POWER. Tasmota writes stat
// kinds in capitals (RESULT, POWER, STATUS5, UPGRADE), so a stat topic
// whose last level is not all capitals and digits is no Tasmota's and
// falls through.
func decodeTasmotaStat(m Message, prefix, device, kind string, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	if kind == "" || device == "" {
		return nil, nil, false
	}
	if prefix == tasmotaCmnd {
		return nil, nil, true
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return nil, nil, false
		}
	}
	if !strings.HasPrefix(kind, "POWER") || !isRelayIndex(kind[len("POWER"):]) {
		return nil, nil, true
	}
	if len(device) > lim.MaxName || !plant.ValidName(device) {
		return nil, rejectOf(m, plant.ReasonNameInvalid, fmt.Sprintf("The device name holds a control character or is longer than %d bytes.", lim.MaxName)), true
	}
	var v float64
	switch w := string(bytes.TrimSpace(m.Payload)); {
	case strings.EqualFold(w, "ON"):
		v = 1
	case strings.EqualFold(w, "OFF"):
		v = 0
	default:
		return nil, nil, true // TOGGLE, BLINK: a command's echo, not a state
	}
	return []plant.Reading{{Path: plant.Path{Machine: device}, Metric: kind, TS: m.RecvMS, Arrival: true, Value: v, Topic: m.Topic}}, nil, true
}

// isRelayIndex reports whether s is a relay's index after POWER: "" (the
// only relay) or ASCII digits (POWER1, POWER2, ..).
func isRelayIndex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// tasmotaTime reads Time: local time without a zone (Tasmota's default,
// in the plant's zone), RFC 3339 (SetOption52), or epoch seconds.
func tasmotaTime(m Message, obj map[string]any, lim Limits, loc *time.Location) (int64, bool, *plant.Reject) {
	raw, ok := obj["Time"]
	if !ok {
		return m.RecvMS, true, nil
	}
	ms, ok := parseTS(raw)
	if s, isStr := raw.(string); !ok && isStr {
		if t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc); err == nil {
			ms, ok = t.UnixMilli(), t.UnixMilli() >= minTS && t.UnixMilli() <= maxTS
		}
	}
	if !ok {
		return 0, false, rejectOf(m, plant.ReasonBadTimestamp, "Tasmota's Time is not a time between 2000 and 2200.")
	}
	// A zoneless Time runs ahead when the device's zone is east of the
	// plant's: the reject says to check the zone too.
	if _, reason, detail := boundTS(ms, "Tasmota's Time (check the device's time zone too)", m.RecvMS, lim); reason != "" {
		return 0, false, rejectOf(m, reason, detail)
	}
	return ms, false, nil
}

// tasmotaReader walks a SENSOR or STATE object.
type tasmotaReader struct {
	m       Message
	path    plant.Path
	ts      int64
	arrival bool
	lim     Limits
	state   bool
	obj     map[string]any
	rs      []plant.Reading
	tooMany bool
}

func (t *tasmotaReader) walk(prefix string, obj map[string]any) {
	for _, k := range sortedKeys(obj) {
		if t.tooMany || (prefix == "" && tasmotaSkip[k]) {
			continue
		}
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch v := obj[k].(type) {
		case map[string]any:
			// A name already too long only grows: stop here, so a deeply
			// nested payload costs its size, not its depth squared.
			if len(name) <= t.lim.MaxName {
				t.walk(name, v)
			}
		case []any:
			if t.state {
				continue
			}
			// Three-phase meters report Voltage, Current, Power as arrays.
			for i, e := range v {
				t.add(name+"."+strconv.Itoa(i), k, e)
			}
		default:
			t.add(name, k, v)
		}
	}
}

// add stores one numeric field; strings (descriptions, start times) are
// skipped, except a STATE relay's ON/OFF.
func (t *tasmotaReader) add(name, key string, raw any) {
	if len(name) > t.lim.MaxName || !plant.ValidName(name) {
		return
	}
	var v float64
	if t.state {
		isPower := strings.HasPrefix(name, "POWER")
		s, isStr := raw.(string)
		switch {
		case isPower && isStr && strings.EqualFold(s, "ON"):
			v = 1
		case isPower && isStr && strings.EqualFold(s, "OFF"):
			v = 0
		case tasmotaState[name] != "":
			f, ok := tasmotaNumber(raw)
			if !ok {
				return
			}
			v = f
		default:
			return
		}
	} else {
		f, ok := tasmotaNumber(raw)
		if !ok {
			return
		}
		v = f
	}
	if len(t.rs) >= t.lim.MaxValues {
		t.tooMany = true
		return
	}
	t.rs = append(t.rs, plant.Reading{Path: t.path, Metric: name, TS: t.ts, Arrival: t.arrival, Value: v,
		Unit: t.unit(name, key), Topic: t.m.Topic})
}

// unit is the unit of a field by its dotted name (STATE) or its last key
// (SENSOR, where sensors differ only in their prefix).
func (t *tasmotaReader) unit(name, key string) string {
	if t.state {
		return tasmotaState[name]
	}
	switch key {
	case "Temperature", "DewPoint":
		if u, _ := t.obj["TempUnit"].(string); u == "F" {
			return "°F"
		}
		return "°C"
	case "Pressure", "SeaPressure":
		if u, _ := t.obj["PressureUnit"].(string); u != "" && len(u) <= maxUnitLen && plant.ValidName(u) {
			return u
		}
		return "hPa"
	}
	return tasmotaUnits[key]
}

// tasmotaNumber reads a finite JSON number.
func tasmotaNumber(raw any) (float64, bool) {
	n, ok := raw.(interface{ Float64() (float64, error) })
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
