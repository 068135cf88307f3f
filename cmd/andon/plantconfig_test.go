package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

const plantYAML = `
http: "127.0.0.1:0"
plant:
  currency: "CHF"
  micro_stop: 3m
  state_map: {"Störung": down, "7": running}
  shifts:
    - name: Early
      start: "06:00"
      end: "14:00"
      days: [mon, tue, wed, thu, fri]
      breaks: [{name: Lunch, start: "10:00", end: "10:30"}]
    - name: Night
      start: "22:00"
      end: "06:00"
  holidays: ["2026-12-24"]
  machines:
    - path: acme/hall-1/line-1/press-01
      ideal_cycle: 12s
      cost_per_hour: 180
      margin_per_unit: 2.5
      state_rule: {kind: counter, metric: good, factor: 4}
  reasons:
    - category: Tooling
      reasons: [Die change, Punch broken]
    - category: Planned
      planned: true
      reasons: [Inventory count]
`

// TestConfigFilePlant starts the real server with a config file's plant
// section and finds it on the admin pages, including the settings of a
// machine that publishes only after the start.
func TestConfigFilePlant(t *testing.T) {
	file := filepath.Join(t.TempDir(), "andon.yaml")
	if err := os.WriteFile(file, []byte(plantYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--config", file)
	admin := s.login(t, "admin")
	for page, wants := range map[string][]string{
		"/admin/shifts":   {"Early", "06:00", "14:00", "Lunch", "Night", "2026-12-24"},
		"/admin/settings": {"CHF", "7 = running", "störung = down"},
		"/admin/reasons":  {"Tooling", "Die change", "Punch broken", "Inventory count", "Breakdown"},
	} {
		code, body := getWith(t, admin, s.url(page))
		if code != 200 {
			t.Fatalf("GET %s = %d", page, code)
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s does not show %q from the config file", page, w)
			}
		}
	}
	_, body := getWith(t, admin, s.url("/admin/settings"))
	if !strings.Contains(body, `value="3"`) {
		t.Errorf("/admin/settings does not show the 3 min micro-stop threshold")
	}

	// The machine publishes after the start: its settings follow.
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/good", []byte("10"), 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := getWith(t, admin, s.url("/admin/machines"))
		if strings.Contains(body, `value="12"`) && strings.Contains(body, `value="180"`) && strings.Contains(body, `value="2.5"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the config file's settings for press-01 never reached the machine:\n%s", body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestReadPlantSection(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"none", "http: \":8080\"\n", ""},
		{"empty file", "", ""},
		{"valid", plantYAML, ""},
		{"misspelt key", "plant:\n  curency: EUR\n", "curency"},
		{"bad clock", "plant:\n  shifts: [{name: A, start: \"25:00\", end: \"06:00\"}]\n", "start"},
		{"bad day", "plant:\n  shifts: [{name: A, start: \"06:00\", end: \"14:00\", days: [someday]}]\n", "someday"},
		{"no shift name", "plant:\n  shifts: [{start: \"06:00\", end: \"14:00\"}]\n", "name"},
		{"negative cost", "plant:\n  machines: [{path: a/b, cost_per_hour: -5}]\n", "negative"},
		{"bad rule", "plant:\n  machines: [{path: a/b, state_rule: {kind: magic}}]\n", "state_rule"},
		{"bad state map", "plant:\n  state_map: {Störung: broken}\n", "broken"},
		{"bad holiday", "plant:\n  holidays: [\"24.12.2026\"]\n", "24.12.2026"},
		{"two bottlenecks on a line", "plant:\n  machines: [{path: s/a/l1/m1, bottleneck: true}, {path: s/a/l1/m2, bottleneck: true}]\n", "bottleneck"},
		{"bottlenecks on two lines", "plant:\n  machines: [{path: s/a/l1/m1, bottleneck: true}, {path: s/a/l2/m2, bottleneck: true}]\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "andon.yaml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := readPlantSection(file)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
