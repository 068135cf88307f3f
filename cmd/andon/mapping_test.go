package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"andon/plant"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "andon.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestReadMappingSection(t *testing.T) {
	file := writeConfig(t, `
http: "127.0.0.1:0"
plant:
  currency: CHF
mapping:
  - pattern: "tele/{machine}/LWT"
    availability: true
    online: Online
    offline: Offline
    note: Tasmota's last will
  - pattern: " tele/{machine}/SENSOR "
    value: ENERGY.Power
    timestamp: Time
    unit: W
  - pattern: "factory/{line}/{machine}/{metric}"
    scale: 0.1
    offset: -40
    metric: "{metric}_c"
`)
	got, err := readMappingSection(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []plant.MappingRule{
		{Pattern: "tele/{machine}/LWT", Scale: 1, Availability: true, Online: "Online", Offline: "Offline",
			Note: "Tasmota's last will", Source: plant.RuleFromConfig},
		{Pattern: "tele/{machine}/SENSOR", Value: "ENERGY.Power", Timestamp: "Time", Unit: "W", Scale: 1, Source: plant.RuleFromConfig},
		{Pattern: "factory/{line}/{machine}/{metric}", Metric: "{metric}_c", Scale: 0.1, Offset: -40, Source: plant.RuleFromConfig},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestReadMappingSectionNone(t *testing.T) {
	for name, text := range map[string]string{
		"no mapping key": "http: \":8080\"\n",
		"empty list":     "mapping: []\n",
		"null":           "mapping:\n",
		"empty file":     "",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := readMappingSection(writeConfig(t, text))
			if err != nil || len(got) != 0 {
				t.Errorf("got %+v, %v; want no rules", got, err)
			}
		})
	}
	if got, err := readMappingSection(""); err != nil || got != nil {
		t.Errorf("no file: %+v, %v", got, err)
	}
}

func TestReadMappingSectionErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // parts of the error, in any order
	}{
		{"no machine", `
mapping:
  - pattern: "a/{line}"
`, []string{"line 3: mapping[0]", `pattern "a/{line}"`, "pattern: needs a {machine} segment"}},
		{"second rule's path", `
mapping:
  - pattern: "a/{machine}/{metric}"
  - pattern: "b/{machine}"
    value: "data..temp"
`, []string{"line 4: mapping[1]", "value: a name is missing"}},
		{"every wrong rule is named", `
mapping:
  - pattern: "a/{machine}"
    scale: 0
  - pattern: "b/#/{machine}"
`, []string{"mapping[0]", "scale: must not be 0", "mapping[1]", "pattern: '#' must be the last level"}},
		{"misspelt key", `
mapping:
  - pattern: "a/{machine}"
    scael: 2
`, []string{"mapping", "scael"}},
		{"wrong type", `
mapping:
  - pattern: "a/{machine}"
    scale: ten
`, []string{"mapping", "line 4", "ten"}},
		{"not a list", `
mapping:
  pattern: "a/{machine}"
`, []string{"mapping"}},
		{"metric on an availability rule", `
mapping:
  - pattern: "a/{machine}/LWT"
    availability: true
    metric: up
`, []string{"mapping[0]", "metric: an availability rule"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfig(t, tc.yaml)
			rules, err := readMappingSection(file)
			if err == nil {
				t.Fatalf("read %+v, want an error", rules)
			}
			msg := err.Error()
			if !strings.Contains(msg, file) {
				t.Errorf("%q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
}
