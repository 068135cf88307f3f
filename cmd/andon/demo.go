package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"andon/ingest/sim"
)

// demoCosts are believable hourly costs (labour and overhead while stopped)
// and margins per part for the demo plant's kinds of machine.
var demoCosts = map[string]struct{ perHour, margin float64 }{
	"press":   {perHour: 180, margin: 2.5},
	"cnc":     {perHour: 140, margin: 9},
	"weld":    {perHour: 110, margin: 4},
	"pack":    {perHour: 70, margin: 0.8},
	"inspect": {perHour: 85, margin: 1.5},
}

// demoPlant completes a plant section for --demo: the demo machines' ideal
// cycle times and costs, and, unless the config file sets shifts, three
// shifts a day with a break each, so the reports have shifts to show. What
// the config file says wins. seed must be the simulator's, whose ideal cycle
// times it reads.
func demoPlant(p *plantSection, machines int, seed int64) *plantSection {
	if p == nil {
		p = &plantSection{}
	}
	if len(p.Shifts) == 0 {
		every := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
		p.Shifts = []shiftYAML{
			{Name: "Early", Start: "06:00", End: "14:00", Days: every, Breaks: []breakYAML{{Name: "Break", Start: "10:00", End: "10:30"}}},
			{Name: "Late", Start: "14:00", End: "22:00", Days: every, Breaks: []breakYAML{{Name: "Break", Start: "18:00", End: "18:30"}}},
			{Name: "Night", Start: "22:00", End: "06:00", Days: every, Breaks: []breakYAML{{Name: "Break", Start: "02:00", End: "02:30"}}},
		}
	}
	named := map[string]bool{}
	for _, m := range p.Machines {
		named[m.Path] = true
	}
	for _, spec := range sim.NewPlant(sim.Config{Machines: machines, Seed: seed}, time.Now()).Machines() {
		path := spec.Path.String()
		if named[path] {
			continue
		}
		c := demoCosts[spec.Kind]
		p.Machines = append(p.Machines, machineYAML{Path: path, IdealCycle: spec.IdealCycle, CostPerHour: c.perHour, MarginPerUnit: c.margin})
	}
	return p
}

// keptSeed is the demo plant's seed, made once and kept in the data dir
// like the MQTT client id.
func keptSeed(dir string) (int64, error) {
	path := filepath.Join(dir, "demo-seed")
	if b, err := os.ReadFile(path); err == nil {
		if seed, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && seed != 0 {
			return seed, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("demo seed: %w", err)
	}
	seed := time.Now().UnixNano()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("demo seed: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.FormatInt(seed, 10)+"\n"), 0o640); err != nil {
		return 0, fmt.Errorf("demo seed: %w", err)
	}
	return seed, nil
}
