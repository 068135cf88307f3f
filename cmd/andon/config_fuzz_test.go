package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile: a config file, however broken, is read without a panic,
// and an error names the file so that an ops engineer knows where to look.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("http: \":8080\"\nmqtt_url: mqtt://broker:1883\ndemo: true\n"))
	f.Add([]byte("plant:\n  currency: EUR\n  micro_stop: 2m\n  shifts:\n    - {name: Early, start: \"06:00\", end: \"14:00\", days: [mon, tue]}\n"))
	f.Add([]byte("plant:\n  machines:\n    line-1/press:\n      ideal_cycle: 2s\n      cost_per_hour: 120\n"))
	f.Add([]byte("plant:\n  reasons:\n    - category: Breakdown\n      planned: false\n      reasons: [Mechanical, Electrical]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("http: [1, 2]\nplant: 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "andon.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readConfigFile(path); err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
		if _, err := readPlantSection(path); err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}
