package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

func TestTasmotaFixtures(t *testing.T) {
	runDialectCases(t, "tasmota", func(m Message, loc *time.Location) ([]plant.Reading, *plant.Reject, bool) {
		return decodeTasmota(m, DefaultLimits(), loc)
	})
}

// Tasmota writes its local time without a zone. Around the autumn change
// in Berlin the same wall clock means different instants a month apart,
// and the plant's zone decides.
func TestTasmotaTimeAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	const recv = 1_796_400_005_000
	tests := []struct {
		local string
		loc   *time.Location
		want  time.Time
	}{
		{"2026-10-24T12:00:00", berlin, time.Date(2026, 10, 24, 10, 0, 0, 0, time.UTC)}, // CEST, UTC+2
		{"2026-10-26T12:00:00", berlin, time.Date(2026, 10, 26, 11, 0, 0, 0, time.UTC)}, // CET, UTC+1
		{"2026-03-29T01:30:00", berlin, time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)},  // before the spring change
		{"2026-03-29T03:30:00", berlin, time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)},  // after it
		{"2026-10-24T12:00:00", time.UTC, time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)},
		{"2026-10-24T12:00:00Z", berlin, time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)},             // a zone of its own wins
		{"2026-10-24T12:00:00-05:00", berlin, time.Date(2026, 10, 24, 17, 0, 0, 0, time.UTC)},        // SetOption52 with a zone
		{"2026-10-24T12:00:00.250+02:00", berlin, time.Date(2026, 10, 24, 10, 0, 0, 25e7, time.UTC)}, // and fractions
	}
	for _, tc := range tests {
		t.Run(tc.local+" in "+tc.loc.String(), func(t *testing.T) {
			payload := fmt.Sprintf(`{"Time":%q,"SI7021":{"Temperature":20}}`, tc.local)
			rs, rej, ok := decodeTasmota(Message{Topic: "tele/hall/SENSOR", Payload: []byte(payload), RecvMS: recv}, DefaultLimits(), tc.loc)
			if !ok || rej != nil || len(rs) != 1 {
				t.Fatalf("ok %v reject %+v readings %+v", ok, rej, rs)
			}
			if got := time.UnixMilli(rs[0].TS).UTC(); !got.Equal(tc.want) || rs[0].Arrival {
				t.Errorf("ts = %s (arrival %v), want %s", got, rs[0].Arrival, tc.want)
			}
		})
	}
}

// TestTasmotaEdges feeds Tasmota topics what a broken or hostile device
// might send: every one must end in a reject or valid readings.
func TestTasmotaEdges(t *testing.T) {
	const recv = 1_796_400_005_000
	lim := DefaultLimits()
	long := strings.Repeat("x", lim.MaxName+1)
	sensors := make([]string, 0, lim.MaxValues+1)
	for i := range lim.MaxValues + 1 {
		sensors = append(sensors, fmt.Sprintf(`"S%d":{"Temperature":%d}`, i, i))
	}
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	tests := []struct {
		name, topic, payload string
		reason               string   // "" for none
		metrics              []string // in order
		mine                 bool
	}{
		{name: "a device name over the limit", topic: "tele/" + long + "/SENSOR", payload: `{"A":{"Temperature":1}}`, reason: plant.ReasonNameInvalid, mine: true},
		{name: "invalid UTF-8 in the device name", topic: "tele/pl\xffug/SENSOR", payload: `{"A":{"Temperature":1}}`, reason: plant.ReasonNameInvalid, mine: true},
		{name: "a control character in the device name", topic: "tele/pl\x7fug/LWT", payload: `Offline`, reason: plant.ReasonNameInvalid, mine: true},
		{name: "an empty device name", topic: "tele//SENSOR", payload: `{"A":{"Temperature":1}}`, reason: plant.ReasonNameInvalid, mine: true},
		{name: "a sensor name over the limit is skipped", topic: "tele/plug/SENSOR", payload: `{"` + long + `":{"Temperature":1},"A":{"Temperature":2}}`, metrics: []string{"A.Temperature"}, mine: true},
		{name: "a control character in a field is skipped", topic: "tele/plug/SENSOR", payload: `{"B\u0000":{"Temperature":1},"A":{"Temperature":2}}`, metrics: []string{"A.Temperature"}, mine: true},
		{name: "more values than the limit", topic: "tele/plug/SENSOR", payload: "{" + strings.Join(sensors, ",") + "}", reason: plant.ReasonTooManyValues, mine: true},
		{name: "deep nesting holds no usable name", topic: "tele/plug/SENSOR", payload: deep, reason: plant.ReasonEmpty, mine: true},
		{name: "overflowing and non-numeric values are skipped", topic: "tele/plug/SENSOR", payload: `{"A":{"Temperature":1e999,"Humidity":"high","Pressure":null,"Illuminance":true},"B":{"Temperature":3}}`, metrics: []string{"B.Temperature"}, mine: true},
		{name: "an array payload", topic: "tele/plug/SENSOR", payload: `[1]`, reason: plant.ReasonBadJSON, mine: true},
		{name: "an epoch Time out of range", topic: "tele/plug/SENSOR", payload: `{"Time":12,"A":{"Temperature":1}}`, reason: plant.ReasonBadTimestamp, mine: true},
		{name: "a state's relay word other than ON/OFF", topic: "tele/plug/STATE", payload: `{"POWER":"BLINK","Heap":20}`, metrics: []string{"Heap"}, mine: true},
		{name: "a state's arrays are skipped", topic: "tele/plug/STATE", payload: `{"Heap":[1,2],"LoadAvg":3}`, metrics: []string{"LoadAvg"}, mine: true},
		{name: "a state of nothing useful", topic: "tele/plug/STATE", payload: `{"Sleep":50}`, mine: true},
		{name: "an LWT of anything else", topic: "tele/plug/LWT", payload: `gone`, mine: true},
		{name: "stat POWER of a toggle", topic: "stat/plug/POWER", payload: `TOGGLE`, mine: true},
		{name: "stat POWER with a letter index is no relay", topic: "stat/plug/POWERX", payload: `ON`, mine: true},
		{name: "a topic of two levels", topic: "tele/SENSOR", payload: `{}`},
		{name: "a topic of one level", topic: "tele", payload: `{}`},
		{name: "an empty topic", topic: "", payload: `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, ok := decodeTasmota(Message{Topic: tc.topic, Payload: []byte(tc.payload), RecvMS: recv}, lim, time.UTC)
			if ok != tc.mine {
				t.Fatalf("ok = %v, want %v", ok, tc.mine)
			}
			switch {
			case tc.reason == "" && rej != nil:
				t.Fatalf("reject %+v", rej)
			case tc.reason != "" && (rej == nil || rej.Reason != tc.reason):
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
