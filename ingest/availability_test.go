package ingest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

// dialectCaseFile is testdata/dialects/<dialect>/cases.json: real-world
// shaped messages, each with its topic and the readings or reject it must
// give. The payload is a file beside it or inline.
type dialectCaseFile struct {
	Recv  time.Time // when every message arrives
	Zone  string    // the plant's time zone; "" is UTC
	Cases []dialectCase
}

type dialectCase struct {
	Name, Topic, File, Payload string
	Reject                     string // the reject's reason, "" for none
	Detail                     string // a part of the reject's detail
	NotMine                    bool   `json:"not_mine"`
	Want                       []caseReading
}

// caseReading is a reading as a case file writes it: TS in RFC 3339,
// defaulting to the file's recv.
type caseReading struct {
	Site, Area, Line, Machine, Metric, Word, Unit string
	Value                                         float64
	TS                                            string `json:"ts"`
	Arrival, Offline                              bool
}

func caseReadingOf(r plant.Reading) caseReading {
	return caseReading{Site: r.Path.Site, Area: r.Path.Area, Line: r.Path.Line, Machine: r.Path.Machine,
		Metric: r.Metric, Word: r.Word, Unit: r.Unit, Value: r.Value,
		TS: time.UnixMilli(r.TS).UTC().Format(time.RFC3339Nano), Arrival: r.Arrival, Offline: r.Offline}
}

func sortCaseReadings(rs []caseReading) {
	slices.SortFunc(rs, func(a, b caseReading) int {
		return strings.Compare(a.Site+"/"+a.Area+"/"+a.Line+"/"+a.Machine+"\x00"+a.Metric,
			b.Site+"/"+b.Area+"/"+b.Line+"/"+b.Machine+"\x00"+b.Metric)
	})
}

// runDialectCases runs the cases of testdata/dialects/<dir>/cases.json in
// order, as subtests, through decode (which may keep state between them,
// as Home Assistant's registry does).
func runDialectCases(t *testing.T, dir string, decode func(Message, *time.Location) ([]plant.Reading, *plant.Reject, bool)) {
	t.Helper()
	base := filepath.Join("testdata", "dialects", dir)
	b, err := os.ReadFile(filepath.Join(base, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f dialectCaseFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s/cases.json: %v", base, err)
	}
	loc := time.UTC
	if f.Zone != "" {
		if loc, err = time.LoadLocation(f.Zone); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Cases) == 0 || f.Recv.IsZero() {
		t.Fatalf("%s/cases.json has no cases or no recv", base)
	}
	lim := DefaultLimits()
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			payload := []byte(c.Payload)
			if c.File != "" {
				if payload, err = os.ReadFile(filepath.Join(base, c.File)); err != nil {
					t.Fatal(err)
				}
			}
			m := Message{Topic: c.Topic, Payload: payload, Retained: strings.HasSuffix(c.Topic, "/config"), RecvMS: f.Recv.UnixMilli()}
			rs, rej, ok := decode(m, loc)
			if ok == c.NotMine {
				t.Fatalf("ok = %v, want %v (readings %+v, reject %+v)", ok, !c.NotMine, rs, rej)
			}
			if c.NotMine {
				if rs != nil || rej != nil {
					t.Errorf("not mine, yet readings %+v and reject %+v", rs, rej)
				}
				return
			}
			switch {
			case c.Reject == "" && rej != nil:
				t.Errorf("reject %+v, want none", rej)
			case c.Reject != "" && rej == nil:
				t.Errorf("no reject, want %s", c.Reject)
			case c.Reject != "" && (rej.Reason != c.Reject || !strings.Contains(rej.Detail, c.Detail) || rej.Topic != c.Topic):
				t.Errorf("reject %s %q on %q, want %s containing %q", rej.Reason, rej.Detail, rej.Topic, c.Reject, c.Detail)
			}
			got := make([]caseReading, 0, len(rs))
			for _, r := range rs {
				checkReading(t, r, lim)
				if r.Topic != c.Topic {
					t.Errorf("reading %+v has topic %q, want %q", r, r.Topic, c.Topic)
				}
				got = append(got, caseReadingOf(r))
			}
			want := make([]caseReading, 0, len(c.Want))
			for _, w := range c.Want {
				ts := f.Recv
				if w.TS != "" {
					if ts, err = time.Parse(time.RFC3339Nano, w.TS); err != nil {
						t.Fatal(err)
					}
				}
				w.TS = ts.UTC().Format(time.RFC3339Nano)
				want = append(want, w)
			}
			sortCaseReadings(got)
			sortCaseReadings(want)
			if !slices.Equal(got, want) {
				t.Errorf("readings:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// checkReading fails t unless r is something the writer stores: a machine
// named by valid, bounded levels without '/', and (but for an
// announcement) a valid metric with a finite value or a state word, at a
// plausible time.
func checkReading(t testing.TB, r plant.Reading, lim Limits) {
	t.Helper()
	if r.Path.Machine == "" {
		t.Fatalf("reading without a machine: %+v", r)
	}
	for _, l := range []string{r.Path.Site, r.Path.Area, r.Path.Line, r.Path.Machine} {
		if len(l) > lim.MaxName || !plant.ValidName(l) || strings.Contains(l, "/") {
			t.Fatalf("asset level %q of %+v is not storable", l, r)
		}
	}
	if r.TS < minTS || r.TS > maxTS {
		t.Fatalf("time out of bounds: %+v", r)
	}
	if r.Offline {
		return
	}
	if r.Metric == "" || len(r.Metric) > lim.MaxName || !plant.ValidName(r.Metric) {
		t.Fatalf("bad metric name: %+v", r)
	}
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		t.Fatalf("non-finite value: %+v", r)
	}
	if r.Word != "" && !isWord(r.Word, lim.MaxWordLen) {
		t.Fatalf("bad state word: %+v", r)
	}
	if len(r.Unit) > maxUnitLen || !plant.ValidName(r.Unit) {
		t.Fatalf("bad unit: %+v", r)
	}
}

func TestAvailabilityFixtures(t *testing.T) {
	runDialectCases(t, "availability", func(m Message, _ *time.Location) ([]plant.Reading, *plant.Reject, bool) {
		return decodeAvailability(m, DefaultLimits())
	})
}

func TestAvailabilityEdges(t *testing.T) {
	const recv = 1_796_400_005_000
	lim := DefaultLimits()
	tests := []struct {
		name, topic, payload string
		offline, mine        bool
		reason               string
	}{
		{name: "payload padded", topic: "press-3/status", payload: " offline\r\n", offline: true, mine: true},
		{name: "level in capitals", topic: "press-3/STATUS", payload: "offline", offline: true, mine: true},
		{name: "invalid JSON", topic: "press-3/status", payload: `{"status":`, mine: false},
		{name: "JSON status not a string", topic: "press-3/status", payload: `{"status": 0}`, mine: false},
		{name: "JSON array", topic: "press-3/status", payload: `["offline"]`, mine: false},
		{name: "empty payload", topic: "press-3/status", payload: "", mine: false},
		{name: "level over the name limit", topic: strings.Repeat("p", 200) + "/status", payload: "offline", mine: true, reason: plant.ReasonNameInvalid},
		{name: "invalid UTF-8 level", topic: "press-\xff/status", payload: "offline", mine: true, reason: plant.ReasonTopicInvalid},
		{name: "control character", topic: "press-\x013/status", payload: "offline", mine: true, reason: plant.ReasonTopicInvalid},
		{name: "online with a bad level says nothing either", topic: "press-\xff/status", payload: "online", mine: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, rej, ok := decodeAvailability(Message{Topic: tc.topic, Payload: []byte(tc.payload), RecvMS: recv}, lim)
			if ok != tc.mine {
				t.Fatalf("ok = %v, want %v", ok, tc.mine)
			}
			switch {
			case tc.reason != "":
				if rej == nil || rej.Reason != tc.reason || rs != nil {
					t.Errorf("got %+v %+v, want reject %s", rs, rej, tc.reason)
				}
			case rej != nil:
				t.Errorf("reject %+v", rej)
			case tc.offline:
				if len(rs) != 1 || !rs[0].Offline || rs[0].TS != recv || rs[0].Path != (plant.Path{Machine: "press-3"}) {
					t.Errorf("got %+v, want one announcement for press-3", rs)
				}
			case rs != nil:
				t.Errorf("got %+v, want nothing", rs)
			}
		})
	}
}
