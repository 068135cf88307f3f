package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"andon/plant"
)

// plantSection is the `plant:` part of the config file: what an admin can
// also edit in the UI. It is applied at every start; what it names wins over
// edits made in the UI since (the file is the plant's declared set-up), and
// what it does not name is left as the UI left it.
type plantSection struct {
	Currency  string            `yaml:"currency"`
	MicroStop time.Duration     `yaml:"micro_stop"`
	NoReason  time.Duration     `yaml:"no_reason"`
	Heartbeat time.Duration     `yaml:"heartbeat"`
	StateMap  map[string]string `yaml:"state_map"` // the machines' own words and codes: {"Störung": down, "7": running}
	Shifts    []shiftYAML       `yaml:"shifts"`
	Holidays  []string          `yaml:"holidays"`
	Machines  []machineYAML     `yaml:"machines"`
	Reasons   []categoryYML     `yaml:"reasons"`
}

type shiftYAML struct {
	Name   string      `yaml:"name"`
	Start  string      `yaml:"start"`
	End    string      `yaml:"end"`
	Days   []string    `yaml:"days"`
	Breaks []breakYAML `yaml:"breaks"`
}

type breakYAML struct {
	Name  string `yaml:"name"`
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

type machineYAML struct {
	Path          string         `yaml:"path"`
	IdealCycle    time.Duration  `yaml:"ideal_cycle"`
	CostPerHour   float64        `yaml:"cost_per_hour"`
	MarginPerUnit float64        `yaml:"margin_per_unit"`
	Bottleneck    bool           `yaml:"bottleneck"` // the line's KPIs are this machine's
	StateRule     map[string]any `yaml:"state_rule"`
}

type categoryYML struct {
	Category string   `yaml:"category"`
	Planned  bool     `yaml:"planned"`
	Reasons  []string `yaml:"reasons"`
}

// readPlantSection reads the `plant:` section of the config file, strictly:
// a misspelt key is an error naming it, not a setting silently ignored.
func readPlantSection(path string) (*plantSection, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc struct {
		Plant *plantSection  `yaml:"plant"`
		Rest  map[string]any `yaml:",inline"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("config %s: plant: %w", path, err)
	}
	if doc.Plant != nil {
		if err := doc.Plant.validate(); err != nil {
			return nil, fmt.Errorf("config %s: plant: %w", path, err)
		}
	}
	return doc.Plant, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (p *plantSection) validate() error {
	var errs []error
	for i, sh := range p.Shifts {
		if _, err := sh.shift(); err != nil {
			errs = append(errs, fmt.Errorf("shifts[%d]: %w", i, err))
		}
	}
	// One bottleneck per line: applied in order, a second would silently
	// take the first one's place. A machine's line is its path minus the
	// machine level.
	bottlenecks := map[string]string{}
	for i, m := range p.Machines {
		if m.Bottleneck {
			line := m.Path[:max(strings.LastIndex(m.Path, "/"), 0)]
			if other, ok := bottlenecks[line]; ok {
				errs = append(errs, fmt.Errorf("machines[%d] %s: bottleneck: %s is already its line's bottleneck", i, m.Path, other))
			}
			bottlenecks[line] = m.Path
		}
		if m.Path == "" {
			errs = append(errs, fmt.Errorf("machines[%d]: path is required", i))
		}
		if m.IdealCycle < 0 || m.CostPerHour < 0 || m.MarginPerUnit < 0 {
			errs = append(errs, fmt.Errorf("machines[%d] %s: values must not be negative", i, m.Path))
		}
		if _, err := m.rule(); err != nil {
			errs = append(errs, fmt.Errorf("machines[%d] %s: state_rule: %w", i, m.Path, err))
		}
	}
	for key, state := range p.StateMap {
		if err := plant.AddStateMapping(map[float64]plant.State{}, map[string]plant.State{}, key, state); err != nil {
			errs = append(errs, fmt.Errorf("state_map: %w", err))
		}
	}
	for i, d := range p.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			errs = append(errs, fmt.Errorf("holidays[%d]: %q is not a date like 2026-12-24", i, d))
		}
	}
	for i, c := range p.Reasons {
		if strings.TrimSpace(c.Category) == "" {
			errs = append(errs, fmt.Errorf("reasons[%d]: category is required", i))
		}
	}
	return errors.Join(errs...)
}

func (s shiftYAML) shift() (plant.Shift, error) {
	sh := plant.Shift{Name: strings.TrimSpace(s.Name)}
	if sh.Name == "" {
		return sh, errors.New("name is required")
	}
	var err error
	if sh.Start, err = plant.ParseClock(s.Start); err != nil {
		return sh, fmt.Errorf("%s: start: %w", sh.Name, err)
	}
	if sh.End, err = plant.ParseClock(s.End); err != nil {
		return sh, fmt.Errorf("%s: end: %w", sh.Name, err)
	}
	days := s.Days
	if len(days) == 0 {
		days = []string{"mon", "tue", "wed", "thu", "fri"}
	}
	for _, d := range days {
		wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))[:min(3, len(strings.TrimSpace(d)))]]
		if !ok {
			return sh, fmt.Errorf("%s: day %q: want mon, tue, wed, thu, fri, sat or sun", sh.Name, d)
		}
		sh.Days[wd] = true
	}
	for _, b := range s.Breaks {
		start, err := plant.ParseClock(b.Start)
		if err != nil {
			return sh, fmt.Errorf("%s: break start: %w", sh.Name, err)
		}
		end, err := plant.ParseClock(b.End)
		if err != nil {
			return sh, fmt.Errorf("%s: break end: %w", sh.Name, err)
		}
		name := b.Name
		if name == "" {
			name = "Break"
		}
		sh.Breaks = append(sh.Breaks, plant.Break{Name: name, Start: start, End: end})
	}
	return sh, nil
}

// rule is the machine's state rule as the JSON the store keeps ("" for none).
func (m machineYAML) rule() (string, error) {
	if len(m.StateRule) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m.StateRule)
	if err != nil {
		return "", err
	}
	if _, err := plant.ParseRule(string(b)); err != nil {
		return "", err
	}
	return string(b), nil
}

// plantStore is what applying the plant section needs from the store.
type plantStore interface {
	Settings(ctx context.Context) (plant.Settings, error)
	SaveSettings(ctx context.Context, st plant.Settings) error
	Calendar(ctx context.Context, loc *time.Location) ([]plant.Shift, map[string]bool, error)
	SaveShift(ctx context.Context, sh plant.Shift) (int64, error)
	SetHoliday(ctx context.Context, day string, on bool) error
	Reasons(ctx context.Context) ([]plant.Reason, error)
	SaveReason(ctx context.Context, r plant.Reason) (int64, error)
	SetMachineConfigByPath(ctx context.Context, path string, c plant.MachineConfig) error
	MachineIDByPath(ctx context.Context, path string) (int64, error)
	SetStateRule(ctx context.Context, machineID int64, rule string) error
}

// applyPlant writes the plant section into the store. Machines that have not
// published yet do not exist in the store; they are returned, to be applied
// once their first reading has arrived.
func applyPlant(ctx context.Context, st plantStore, p *plantSection, loc *time.Location) (pending []machineYAML, err error) {
	if p == nil {
		return nil, nil
	}
	set, err := st.Settings(ctx)
	if err != nil {
		return nil, err
	}
	if p.Currency != "" {
		set.Currency = p.Currency
	}
	if p.MicroStop > 0 {
		set.MicroStopMS = p.MicroStop.Milliseconds()
	}
	if p.NoReason > 0 {
		set.NoReasonMS = p.NoReason.Milliseconds()
	}
	if p.Heartbeat > 0 {
		set.HeartbeatMS = p.Heartbeat.Milliseconds()
	}
	if len(p.StateMap) > 0 {
		if set.StateCodes == nil {
			set.StateCodes = map[float64]plant.State{}
		}
		if set.StateWords == nil {
			set.StateWords = map[string]plant.State{}
		}
		for key, state := range p.StateMap {
			_ = plant.AddStateMapping(set.StateCodes, set.StateWords, key, state) // validated when read
		}
	}
	if err := st.SaveSettings(ctx, set); err != nil {
		return nil, fmt.Errorf("plant settings: %w", err)
	}

	shifts, _, err := st.Calendar(ctx, loc)
	if err != nil {
		return nil, err
	}
	byName := map[string]int64{}
	for _, sh := range shifts {
		byName[strings.ToLower(sh.Name)] = sh.ID
	}
	for _, y := range p.Shifts {
		sh, _ := y.shift() // validated when read
		sh.ID = byName[strings.ToLower(sh.Name)]
		if _, err := st.SaveShift(ctx, sh); err != nil {
			return nil, fmt.Errorf("shift %s: %w", sh.Name, err)
		}
	}
	for _, d := range p.Holidays {
		if err := st.SetHoliday(ctx, d, true); err != nil {
			return nil, fmt.Errorf("holiday %s: %w", d, err)
		}
	}
	if err := applyReasons(ctx, st, p.Reasons); err != nil {
		return nil, err
	}
	return applyMachines(ctx, st, p.Machines)
}

// applyReasons makes sure every category and reason the file names exists,
// with the file's planned flag; reasons it does not name are left alone.
func applyReasons(ctx context.Context, st plantStore, cats []categoryYML) error {
	if len(cats) == 0 {
		return nil
	}
	all, err := st.Reasons(ctx)
	if err != nil {
		return err
	}
	key := func(parent int64, name string) string { return fmt.Sprintf("%d/%s", parent, strings.ToLower(name)) }
	have := map[string]plant.Reason{}
	for _, r := range all {
		have[key(r.ParentID, r.Name)] = r
	}
	save := func(r plant.Reason) (int64, error) {
		if old, ok := have[key(r.ParentID, r.Name)]; ok {
			if old.Planned == r.Planned && !old.Hidden {
				return old.ID, nil
			}
			r.ID, r.Sort = old.ID, old.Sort
		}
		id, err := st.SaveReason(ctx, r)
		if err != nil {
			return 0, fmt.Errorf("reason %s: %w", r.Name, err)
		}
		return id, nil
	}
	for i, c := range cats {
		cat, err := save(plant.Reason{Name: strings.TrimSpace(c.Category), Planned: c.Planned, Sort: i})
		if err != nil {
			return err
		}
		for j, name := range c.Reasons {
			if _, err := save(plant.Reason{ParentID: cat, Name: strings.TrimSpace(name), Planned: c.Planned, Sort: j}); err != nil {
				return err
			}
		}
	}
	return nil
}

func applyMachines(ctx context.Context, st plantStore, ms []machineYAML) (pending []machineYAML, err error) {
	for _, m := range ms {
		cfg := plant.MachineConfig{IdealCycleS: m.IdealCycle.Seconds(), CostPerHour: m.CostPerHour, MarginPerUnit: m.MarginPerUnit, Bottleneck: m.Bottleneck}
		if err := st.SetMachineConfigByPath(ctx, m.Path, cfg); err != nil {
			if errors.Is(err, plant.ErrNotFound) {
				pending = append(pending, m)
				continue
			}
			return nil, fmt.Errorf("machine %s: %w", m.Path, err)
		}
		rule, _ := m.rule() // validated when read
		id, err := st.MachineIDByPath(ctx, m.Path)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %w", m.Path, err)
		}
		if err := st.SetStateRule(ctx, id, rule); err != nil {
			return nil, fmt.Errorf("machine %s: state rule: %w", m.Path, err)
		}
	}
	return pending, nil
}

// applyPending retries machines that had not published yet, every few
// seconds, until all are configured or ctx ends.
func applyPending(ctx context.Context, st plantStore, pending []machineYAML, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for len(pending) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		pending, err = applyMachines(ctx, st, pending)
		if err != nil {
			log.Warn("config: machine settings not applied", "error", err)
			return
		}
	}
}
