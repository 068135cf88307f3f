package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"andon/ingest"
	"andon/plant"
)

// TestReadmeMappingExample reads the mapping rules the README shows and
// checks they do what it says.
func TestReadmeMappingExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(readme), "```yaml\nmapping:")
	if start < 0 {
		t.Fatal("README has no mapping example")
	}
	block := string(readme)[start+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	file := filepath.Join(t.TempDir(), "andon.yaml")
	if err := os.WriteFile(file, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := readMappingSection(file)
	if err != nil {
		t.Fatal(err)
	}
	lim := ingest.DefaultLimits()
	rs, rej, err := ingest.PreviewRule(rules[0], ingest.Message{Topic: "plc/line-2/oven-1/ai/temp",
		Payload: []byte(`{"data": {"raw": 655, "ts": 1796400000000}}`), RecvMS: 1796400001000}, lim)
	if err != nil || rej != nil || len(rs) != 1 {
		t.Fatalf("rule 1: %+v %+v %v", rs, rej, err)
	}
	want := plant.Reading{Path: plant.Path{Line: "line-2", Machine: "oven-1"}, Metric: "temp", TS: 1796400000000, Value: 25.5, Unit: "°C", Topic: "plc/line-2/oven-1/ai/temp"}
	if got := rs[0]; got.Path != want.Path || got.Metric != want.Metric || got.TS != want.TS || got.Value < 25.49 || got.Value > 25.51 || got.Unit != want.Unit {
		t.Errorf("rule 1 = %+v, want %+v", got, want)
	}
	rs, rej, err = ingest.PreviewRule(rules[1], ingest.Message{Topic: "gw/press-4/online", Payload: []byte("false"), RecvMS: 1796400001000}, lim)
	if err != nil || rej != nil || len(rs) != 1 || !rs[0].Offline || rs[0].Path.Machine != "press-4" {
		t.Errorf("rule 2 = %+v %+v %v, want press-4 offline", rs, rej, err)
	}
}
