package sparkplug

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"andon/plant"
)

// TestFixtures plays the session in testdata (see testdata/README.md), made
// by other encoders than Andon's: the npm sparkplug-payload package and
// bytes written by hand from the wire format.
func TestFixtures(t *testing.T) {
	const T = int64(1_750_000_000_000)
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("fixture: %v", err)
		}
		return b
	}
	node := plant.Path{Site: "Plant1", Line: "Edge1", Machine: "Edge1"}
	press := plant.Path{Site: "Plant1", Line: "Edge1", Machine: "Press3"}
	const (
		nb = "spBv1.0/Plant1/NBIRTH/Edge1"
		nd = "spBv1.0/Plant1/NDATA/Edge1"
		db = "spBv1.0/Plant1/DBIRTH/Edge1/Press3"
		dd = "spBv1.0/Plant1/DDATA/Edge1/Press3"
		nx = "spBv1.0/Plant1/NDEATH/Edge1"
	)
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	run(t, h, []step{
		{
			name: "nbirth_npm.bin", topic: nb, payload: read("nbirth_npm.bin"), recv: T + 500,
			want: []plant.Reading{
				{Path: node, Metric: "Temperature", TS: T, Value: 21.5, Unit: "°C", Topic: nb},
				{Path: node, Metric: "State", TS: T, Word: "running", Topic: nb},
				{Path: node, Metric: "Offset", TS: T, Value: -12, Topic: nb},
				{Path: node, Metric: "Count", TS: T, Value: 4_000_000_000, Topic: nb},
			},
		},
		{
			name: "ndata_hand.bin", topic: nd, payload: read("ndata_hand.bin"), recv: T + 1500,
			want: []plant.Reading{
				{Path: node, Metric: "Temperature", TS: T + 1000, Value: 22.25, Unit: "°C", Topic: nd},
				{Path: node, Metric: "Offset", TS: T + 1000, Value: -3, Topic: nd},
			},
		},
		{
			name: "dbirth_npm.bin", topic: db, payload: read("dbirth_npm.bin"), recv: T + 2500,
			want: []plant.Reading{
				{Path: press, Metric: "Pressure", TS: T + 2000, Value: 3.25, Topic: db},
				{Path: press, Metric: "Running", TS: T + 2000, Value: 1, Topic: db},
				{Path: press, Metric: "Total", TS: T + 2000, Value: math.MaxUint64, Topic: db},
			},
		},
		{
			name: "ddata_npm.bin", topic: dd, payload: read("ddata_npm.bin"), recv: T + 3500,
			want: []plant.Reading{
				{Path: press, Metric: "Pressure", TS: T + 3000, Value: 3.5, Topic: dd},
				{Path: press, Metric: "Running", TS: T + 3000, Value: 0, Topic: dd},
				{Path: press, Metric: "Total", TS: T + 3000, Value: 5, Topic: dd},
			},
		},
		{
			name: "ndeath_npm.bin", topic: nx, payload: read("ndeath_npm.bin"), recv: T + 4500,
			want: []plant.Reading{
				{Path: node, TS: T + 4500, Offline: true, Topic: nx},
				{Path: press, TS: T + 4500, Offline: true, Topic: nx},
			},
		},
	})
	c := h.Counts()
	if c.Births != 2 || c.Deaths != 1 || c.SeqGaps != 0 || c.StaleDeaths != 0 || c.Unsupported != 1 || c.UnsupportedByType["DataSet"] != 1 {
		t.Errorf("counts = %+v, want 2 births, 1 death, no gap, the DataSet counted", c)
	}
	if msgs := out.take(); len(msgs) != 0 {
		t.Errorf("published %d messages, want none", len(msgs))
	}
}
