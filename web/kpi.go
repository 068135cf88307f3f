package web

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"andon/db"
	"andon/plant"
)

// kpiStopLimit is how many stops one machine's KPI query asks for (the
// store's maximum). The store lists 200 by default, a shift's worth on a bad
// day; a month of a machine with many micro-stops needs more, and a KPI that
// silently dropped stops would be wrong rather than slow.
const kpiStopLimit = 10_000

// kpiSet is what the KPI service computed for one period: each machine, each
// line (its bottleneck machine's where one is set, else the sum of its
// machines) and the plant (always the sum of machines), plus what the pages
// need to draw Paretos and costs without asking the store again.
type kpiSet struct {
	From, To int64 // the period; To is now for a period still going
	Now      int64

	Machines map[int64]plant.KPI // by machine id
	Lines    map[int64]plant.KPI // by line id (0: machines without a line)
	Rules    map[int64]lineRule  // how each line's KPI was made, by line id
	Plant    plant.KPI

	Configs  map[int64]plant.MachineConfig
	Settings plant.Settings
	Stops    []plant.Stop // every machine's stops overlapping the period
}

// config is a machine's configuration, zero when none is stored.
func (k kpiSet) config(id int64) plant.MachineConfig { return k.Configs[id] }

// kpiBase is what every KPI computation of a request shares: the calendar,
// settings and machine configurations, loaded once.
type kpiBase struct {
	cal      plant.Calendar
	settings plant.Settings
	configs  map[int64]plant.MachineConfig
}

// kpiBase loads the calendar, settings and machine configurations.
func (s *Server) kpiBase(ctx context.Context) (kpiBase, error) {
	cal, err := s.calendar(ctx)
	if err != nil {
		return kpiBase{}, err
	}
	st, err := s.store.Settings(ctx)
	if err != nil {
		return kpiBase{}, fmt.Errorf("web: settings: %w", err)
	}
	cfgs, err := s.store.MachineConfigs(ctx)
	if err != nil {
		return kpiBase{}, fmt.Errorf("web: machine configs: %w", err)
	}
	if cfgs == nil {
		cfgs = map[int64]plant.MachineConfig{}
	}
	return kpiBase{cal: cal, settings: st, configs: cfgs}, nil
}

// calendar is the plant's shift calendar in the plant's zone.
func (s *Server) calendar(ctx context.Context) (plant.Calendar, error) {
	shifts, holidays, err := s.store.Calendar(ctx, s.loc)
	if err != nil {
		return plant.Calendar{}, fmt.Errorf("web: calendar: %w", err)
	}
	return plant.Calendar{Shifts: shifts, Holidays: holidays, Location: s.loc}, nil
}

// machineData is one machine's raw material for KPIs over a period.
type machineData struct {
	spans []plant.Span
	stops []plant.Stop
}

// load fetches a machine's spans and stops overlapping [from, to).
func (s *Server) machineData(ctx context.Context, id, from, to, now int64) (machineData, error) {
	spans, err := s.store.Spans(ctx, id, from, to)
	if err != nil {
		return machineData{}, fmt.Errorf("web: spans of machine %d: %w", id, err)
	}
	stops, err := s.store.Stops(ctx, db.StopQuery{MachineID: id, From: from, To: to, Now: now, Limit: kpiStopLimit})
	if err != nil {
		return machineData{}, fmt.Errorf("web: stops of machine %d: %w", id, err)
	}
	return machineData{spans: spans, stops: stops}, nil
}

// machineKPI computes one machine's KPI over [from, to) from data loaded for
// a period that contains it; ComputeKPI clips spans and stops itself.
func (s *Server) machineKPI(ctx context.Context, b kpiBase, id int64, d machineData, from, to int64) (plant.KPI, error) {
	good, scrap, err := s.store.Counts(ctx, id, from, to)
	if err != nil {
		return plant.KPI{}, fmt.Errorf("web: counts of machine %d: %w", id, err)
	}
	in := plant.KPIInput{
		From: from, To: to,
		NoCalendar: len(b.cal.Shifts) == 0,
		Spans:      d.spans,
		Stops:      d.stops,
		Good:       good,
		Scrap:      scrap,
		Config:     b.configs[id],
		Settings:   b.settings,
	}
	if !in.NoCalendar {
		in.Runs = b.cal.Runs(from, to)
	}
	return plant.ComputeKPI(in), nil
}

// lineRule is how a line's KPI is made: from its bottleneck machine where
// an admin set one, else summed over its machines.
type lineRule struct {
	Bottleneck *plant.Machine // nil: summed
	Machines   int
}

// text says the rule on the page: "Line OEE from its bottleneck, cnc-02" or
// "Line OEE summed over 5 machines".
func (r lineRule) text() string {
	if r.Bottleneck != nil {
		return "Line OEE from its bottleneck, " + machineName(*r.Bottleneck)
	}
	if r.Machines == 1 {
		return "Line OEE summed over 1 machine"
	}
	return fmt.Sprintf("Line OEE summed over %d machines", r.Machines)
}

// bottleneckID is the bottleneck machine's id, 0 when the line is summed.
func (r lineRule) bottleneckID() int64 {
	if r.Bottleneck == nil {
		return 0
	}
	return r.Bottleneck.ID
}

// ruleOf finds a line's rule. Machines without a line (id 0) are no line and
// are always summed; the store keeps one bottleneck per line, and should two
// ever be flagged, the first in the line's order wins, so the page is stable.
func ruleOf(l plant.Line, cfgs map[int64]plant.MachineConfig) lineRule {
	r := lineRule{Machines: len(l.Machines)}
	if l.ID == 0 {
		return r
	}
	for i, m := range l.Machines {
		if cfgs[m.ID].Bottleneck {
			r.Bottleneck = &l.Machines[i]
			return r
		}
	}
	return r
}

// fromBottleneck is a line's KPI under the bottleneck rule: the bottleneck
// machine sets the pace of the line, so the line's time buckets,
// availability, performance, quality, OEE, MTBF, MTTR and output are its.
// Money lost anywhere on the line is lost all the same, so downtime cost,
// lost units, stops, micro-stops and the time lost to them stay the sum over
// the line's machines.
func fromBottleneck(sum, b plant.KPI) plant.KPI {
	k := b
	k.From, k.To = sum.From, sum.To
	k.Stops, k.MicroStops = sum.Stops, sum.MicroStops
	k.DownMS, k.MicroStopMS = sum.DownMS, sum.MicroStopMS
	k.Cost, k.LostUnits, k.CostOK, k.CostWhy = sum.Cost, sum.LostUnits, sum.CostOK, sum.CostWhy
	return k
}

// idealTotal is what SumKPI needs for performance: a machine's ideal cycle
// time × its total count.
func idealTotal(k plant.KPI, cfg plant.MachineConfig) float64 { return cfg.IdealCycleS * k.Total }

// kpis computes the KPIs of every machine, line and the plant over [from, to)
// (to is clipped to now), the KPI service behind /reports and the line pages.
func (s *Server) kpis(ctx context.Context, b kpiBase, from, to, now int64, lines []plant.Line) (kpiSet, error) {
	to = min(to, now)
	to = max(to, from)
	set := kpiSet{
		From: from, To: to, Now: now,
		Machines: map[int64]plant.KPI{}, Lines: map[int64]plant.KPI{}, Rules: map[int64]lineRule{},
		Configs: b.configs, Settings: b.settings,
	}
	var plantKs []plant.KPI
	var plantIdeal []float64
	for _, l := range lines {
		var lineKs []plant.KPI
		var lineIdeal []float64
		for _, m := range l.Machines {
			d, err := s.machineData(ctx, m.ID, from, to, now)
			if err != nil {
				return kpiSet{}, err
			}
			k, err := s.machineKPI(ctx, b, m.ID, d, from, to)
			if err != nil {
				return kpiSet{}, err
			}
			set.Machines[m.ID] = k
			set.Stops = append(set.Stops, d.stops...)
			it := idealTotal(k, b.configs[m.ID])
			lineKs, lineIdeal = append(lineKs, k), append(lineIdeal, it)
			plantKs, plantIdeal = append(plantKs, k), append(plantIdeal, it)
		}
		k := plant.SumKPI(from, to, lineKs, lineIdeal)
		r := ruleOf(l, b.configs)
		if r.Bottleneck != nil {
			k = fromBottleneck(k, set.Machines[r.Bottleneck.ID])
		}
		set.Lines[l.ID], set.Rules[l.ID] = k, r
	}
	set.Plant = plant.SumKPI(from, to, plantKs, plantIdeal)
	return set, nil
}

// runKPI is the KPIs of one shift run, for the per-shift table.
type runKPI struct {
	Run  plant.ShiftRun
	KPI  plant.KPI
	Cost float64
}

// maxShiftRows bounds the per-shift table: a month of three shifts a day.
const maxShiftRows = 100

// runKPIs computes the KPI of machines for each shift run within [from, to),
// newest first: their sum, or the machine bottleneck's (with summed costs and
// stops) when it is not 0, as for a line with a bottleneck. Spans and stops
// are loaded once per machine for the whole period and clipped per run by
// ComputeKPI; only counts are asked per run.
func (s *Server) runKPIs(ctx context.Context, b kpiBase, from, to, now int64, machines []plant.Machine, bottleneck int64) ([]runKPI, error) {
	if len(b.cal.Shifts) == 0 {
		return nil, nil
	}
	to = min(to, now)
	runs := b.cal.Runs(from, to)
	if len(runs) > maxShiftRows {
		runs = runs[len(runs)-maxShiftRows:]
	}
	if len(runs) == 0 {
		return nil, nil
	}
	data := make(map[int64]machineData, len(machines))
	for _, m := range machines {
		d, err := s.machineData(ctx, m.ID, runs[0].Start, to, now)
		if err != nil {
			return nil, err
		}
		data[m.ID] = d
	}
	out := make([]runKPI, 0, len(runs))
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		end := min(r.End, now)
		if end <= r.Start {
			continue
		}
		ks := make([]plant.KPI, 0, len(machines))
		ideal := make([]float64, 0, len(machines))
		var bk plant.KPI
		found := false
		for _, m := range machines {
			in := plant.KPIInput{
				From: r.Start, To: end, Runs: []plant.ShiftRun{r},
				Spans: data[m.ID].spans, Stops: data[m.ID].stops,
				Config: b.configs[m.ID], Settings: b.settings,
			}
			good, scrap, err := s.store.Counts(ctx, m.ID, r.Start, end)
			if err != nil {
				return nil, fmt.Errorf("web: counts of machine %d: %w", m.ID, err)
			}
			in.Good, in.Scrap = good, scrap
			k := plant.ComputeKPI(in)
			ks = append(ks, k)
			ideal = append(ideal, idealTotal(k, b.configs[m.ID]))
			if m.ID == bottleneck {
				bk, found = k, true
			}
		}
		k := plant.SumKPI(r.Start, end, ks, ideal)
		if found {
			k = fromBottleneck(k, bk)
		}
		out = append(out, runKPI{Run: r, KPI: k, Cost: k.Cost})
	}
	return out, nil
}

// period is a span of time a report covers.
type period struct {
	Key      string // "shift", "today", ..., "custom"
	Label    string // "This shift so far", "Today", ...
	From, To int64  // To may be in the future for a period still going; KPIs clip it to now
	Note     string // why the period is not what was asked ("no shift is running now: today so far")
	FromDay  string // "2006-01-02" for the custom range form
	ToDay    string
}

// periodChoices are the report's period buttons, in order.
var periodChoices = []struct{ Key, Label string }{
	{"shift", "This shift"},
	{"today", "Today"},
	{"yesterday", "Yesterday"},
	{"week", "This week"},
	{"lastweek", "Last week"},
	{"month", "This month"},
}

// maxCustomDays bounds a custom range, so one request cannot ask for years
// of KPIs.
const maxCustomDays = 92

// parsePeriod resolves a period key (or a custom from/to day range) at now
// in the plant's zone. Unknown keys are the default, "shift"; a bad custom
// range is plant.ErrInvalid with a message for the user.
func parsePeriod(key, fromDay, toDay string, now int64, cal plant.Calendar, loc *time.Location) (period, error) {
	if fromDay != "" || toDay != "" {
		return customPeriod(fromDay, toDay, loc)
	}
	switch key {
	case "today", "yesterday", "week", "lastweek", "month":
	default:
		key = "shift"
	}
	p := period{Key: key}
	for _, c := range periodChoices {
		if c.Key == key {
			p.Label = c.Label
		}
	}
	switch key {
	case "shift":
		if run, ok := cal.RunAt(now); ok && len(cal.Shifts) > 0 {
			p.Label = run.Name + " so far"
			p.From, p.To = run.Start, now
			break
		}
		p.From, _ = plant.Day(now, loc)
		p.To = now
		p.Label = "Today so far"
		if len(cal.Shifts) > 0 {
			p.Note = "No shift is running now, so this shows today so far."
		} else {
			p.Note = "No shifts are set up, so this shows today so far."
		}
	case "today":
		p.From, p.To = plant.Day(now, loc)
	case "yesterday":
		f, _ := plant.Day(now, loc)
		p.From, p.To = plant.Day(f-1, loc)
	case "week":
		p.From, p.To = plant.Week(now, loc)
	case "lastweek":
		f, _ := plant.Week(now, loc)
		p.From, p.To = plant.Week(f-1, loc)
	case "month":
		t := time.UnixMilli(now).In(loc)
		first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		p.From = first.UnixMilli()
		p.To = first.AddDate(0, 1, 0).UnixMilli()
	}
	return p, nil
}

// customPeriod is the days from fromDay to toDay inclusive, local midnight
// to midnight.
func customPeriod(fromDay, toDay string, loc *time.Location) (period, error) {
	if toDay == "" {
		toDay = fromDay
	}
	if fromDay == "" {
		fromDay = toDay
	}
	f, err := time.ParseInLocation("2006-01-02", fromDay, loc)
	if err != nil {
		return period{}, fmt.Errorf("web: report from %q: the start day must be a date like 2026-11-20: %w", fromDay, plant.ErrInvalid)
	}
	t, err := time.ParseInLocation("2006-01-02", toDay, loc)
	if err != nil {
		return period{}, fmt.Errorf("web: report to %q: the end day must be a date like 2026-11-25: %w", toDay, plant.ErrInvalid)
	}
	if t.Before(f) {
		return period{}, fmt.Errorf("web: report %s to %s: the end day is before the start day: %w", fromDay, toDay, plant.ErrInvalid)
	}
	end := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
	if end.Sub(f) > maxCustomDays*24*time.Hour+time.Hour {
		return period{}, fmt.Errorf("web: report %s to %s: at most %d days at once: %w", fromDay, toDay, maxCustomDays, plant.ErrInvalid)
	}
	label := f.Format("2 Jan 2006")
	if toDay != fromDay {
		label += " – " + t.Format("2 Jan 2006")
	}
	return period{
		Key: "custom", Label: label, From: f.UnixMilli(), To: end.UnixMilli(),
		FromDay: f.Format("2006-01-02"), ToDay: t.Format("2006-01-02"),
	}, nil
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }
