package ingest

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"andon/plant"
)

// Tasmota publishes telemetry under its default FullTopic %prefix%/%topic%/
// (tele/<device>/SENSOR) or the alternative %topic%/%prefix%/
// (<device>/tele/SENSOR).
const tasmotaTele = "tele"

// tasmotaSkip are SENSOR fields that are settings or descriptions, not values.
var tasmotaSkip = map[string]bool{"Time": true, "TempUnit": true, "PressureUnit": true, "SpeedUnit": true}

// tasmotaUnits are the units Tasmota's sensor and energy fields are in, by
// their last name; temperature and pressure follow TempUnit and PressureUnit.
var tasmotaUnits = map[string]string{
	"Humidity": "%", "DewPoint": "", "Illuminance": "lx", "Power": "W", "ApparentPower": "VA",
	"ReactivePower": "var", "Voltage": "V", "Current": "A", "Total": "kWh", "Today": "kWh",
	"Yesterday": "kWh", "Frequency": "Hz", "CO2": "ppm", "eCO2": "ppm", "TVOC": "ppb",
	"Distance": "cm", "Gas": "kΩ",
}

// tasmotaState are the STATE fields worth a chart: uptime, memory, load,
// Wi-Fi signal and the relays (ON/OFF as 1/0: a relay is not a machine
// state).
var tasmotaState = map[string]bool{"UptimeSec": true, "Heap": true, "LoadAvg": true, "Wifi.RSSI": true, "Wifi.Signal": true}

// decodeTasmota reads Tasmota's telemetry: SENSOR readings (nested sensors
// flattened to dotted names, with units; its Time, written without a zone,
// read in the plant's zone loc), a few STATE fields, and LWT Online/Offline
// as the device's availability. Other telemetry (INFO1..3, RESULT,
// MARGINS) is understood and stored as nothing.
func decodeTasmota(m Message, lim Limits, loc *time.Location) ([]plant.Reading, *plant.Reject, bool) {
	// Three levels, read without allocating: every message passes here.
	first, rest, _ := strings.Cut(m.Topic, "/")
	second, kind, _ := strings.Cut(rest, "/")
	if strings.Contains(kind, "/") {
		return nil, nil, false
	}
	var device string
	switch {
	case first == tasmotaTele:
		device = second
	case second == tasmotaTele:
		device = first
	default:
		return nil, nil, false
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
	case !validName(device):
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
	if ahead := time.Duration(ms-m.RecvMS) * time.Millisecond; ahead > lim.MaxFuture {
		return 0, false, rejectOf(m, plant.ReasonFutureTimestamp,
			fmt.Sprintf("Tasmota's Time is %s ahead of the time the message arrived; check the device's clock and time zone.", ahead.Round(time.Second)))
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
			t.walk(name, v)
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
	if len(name) > t.lim.MaxName || !validName(name) {
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
		case tasmotaState[name]:
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
		Unit: t.unit(key), Topic: t.m.Topic})
}

func (t *tasmotaReader) unit(key string) string {
	switch key {
	case "Temperature", "DewPoint":
		if u, _ := t.obj["TempUnit"].(string); u == "F" {
			return "°F"
		}
		return "°C"
	case "Pressure", "SeaPressure":
		if u, _ := t.obj["PressureUnit"].(string); u != "" && len(u) <= maxUnitLen && validName(u) {
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

// sortedKeys returns obj's keys in order, so readings come in a stable order.
func sortedKeys(obj map[string]any) []string {
	return slices.Sorted(maps.Keys(obj))
}
