package web

import (
	"context"
	"fmt"
	"time"

	"andon/plant"
)

// kpiBucket is one row group of a KPI export: the whole period, a day or a
// shift run.
type kpiBucket struct {
	label    string
	from, to int64
	runs     []plant.ShiftRun // the run itself for a shift bucket
}

// kpiBuckets cuts [from, to) into the export's rows: one bucket for "period",
// calendar days in the plant's zone for "day", the shift runs for "shift"
// (days when no shifts are set up: every hour is scheduled then).
func (s *Server) kpiBuckets(b kpiBase, by string, from, to int64) []kpiBucket {
	switch {
	case by == "shift" && len(b.cal.Shifts) > 0:
		var out []kpiBucket
		for _, r := range b.cal.Runs(from, to) {
			out = append(out, kpiBucket{
				label: r.Name + " " + time.UnixMilli(r.Start).In(s.loc).Format("2006-01-02"),
				from:  max(r.Start, from), to: min(r.End, to), runs: []plant.ShiftRun{r},
			})
		}
		return out
	case by == "day" || by == "shift":
		var out []kpiBucket
		for at := from; at < to; {
			d0, d1 := plant.Day(at, s.loc)
			if d1 <= at { // a broken zone must not loop forever
				break
			}
			out = append(out, kpiBucket{
				label: time.UnixMilli(d0).In(s.loc).Format("2006-01-02"),
				from:  max(d0, from), to: min(d1, to),
			})
			at = d1
		}
		return out
	}
	return []kpiBucket{{label: "period", from: from, to: to}}
}

// exportKPIs writes KPIs per bucket for the plant (unless one line is
// chosen), each line and each machine. It is the /reports computation: the
// same kpiBase, machineKPI, line rules and sums as kpis and runKPIs, with
// each machine's spans and stops loaded once for the whole range and
// clipped per bucket, as runKPIs does.
func (s *Server) exportKPIs(ctx context.Context, t table, x Export) error {
	if err := checkRange(x.From, x.To, maxKPIExportMS); err != nil {
		return err
	}
	now := s.now().UnixMilli()
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	if x.Line != nil {
		l, ok := lineByID(lines, *x.Line)
		if !ok {
			return fmt.Errorf("web: export kpis: line %d: %w", *x.Line, plant.ErrNotFound)
		}
		lines = []plant.Line{l}
	}
	b, err := s.kpiBase(ctx)
	if err != nil {
		return err
	}
	end := min(x.To, now)
	data := map[int64]machineData{}
	if end > x.From {
		for _, l := range lines {
			for _, m := range l.Machines {
				d, err := s.machineData(ctx, m.ID, x.From, end, now)
				if err != nil {
					return err
				}
				data[m.ID] = d
			}
		}
	}
	if err := t.header([]string{
		"from", "to", "period", "scope", "line", "machine",
		"availability", "performance", "quality", "oee", "mtbf_s", "mttr_s",
		"output", "good", "scrap", "stops", "micro_stops", "down_s", "offline_s", "downtime_cost", "currency",
	}); err != nil {
		return err
	}
	cur := b.settings.Currency
	if cur == "" {
		cur = plant.DefaultSettings().Currency
	}
	row := func(bk kpiBucket, to int64, scope, line, machine string, k plant.KPI) error {
		cost := cell{}
		if k.CostOK {
			cost = numCell(roundTo(k.Cost, 2))
		}
		return t.row([]cell{
			timeCell(bk.from), timeCell(to), textCell(bk.label), textCell(scope), textCell(line), textCell(machine),
			ratioCell(k.Availability), ratioCell(k.Performance), ratioCell(k.Quality), ratioCell(k.OEE),
			durationCell(k.MTBF), durationCell(k.MTTR),
			numCell(k.Total), numCell(k.Good), numCell(k.Scrap), intCell(int64(k.Stops)), intCell(int64(k.MicroStops)),
			numCell(float64(k.DownMS) / 1000), numCell(float64(k.OfflineMS) / 1000), cost, textCell(cur),
		})
	}
	buckets := s.kpiBuckets(b, x.By, x.From, x.To)
	for i, bk := range buckets {
		to := min(bk.to, now)
		if to <= bk.from {
			continue // not begun yet
		}
		var plantKs []plant.KPI
		var plantIdeal []float64
		type lineOut struct {
			l  plant.Line
			k  plant.KPI
			ms []plant.KPI
		}
		var outs []lineOut
		for _, l := range lines {
			var ks []plant.KPI
			var ideal []float64
			byID := map[int64]plant.KPI{}
			for _, m := range l.Machines {
				var k plant.KPI
				var err error
				if bk.runs != nil {
					// A shift's KPI is of that run alone, as in runKPIs.
					k, err = s.runKPI(ctx, b, m.ID, data[m.ID], bk.runs, bk.from, to)
				} else {
					k, err = s.machineKPI(ctx, b, m.ID, data[m.ID], bk.from, to)
				}
				if err != nil {
					return err
				}
				byID[m.ID] = k
				it := idealTotal(k, b.configs[m.ID])
				ks, ideal = append(ks, k), append(ideal, it)
				plantKs, plantIdeal = append(plantKs, k), append(plantIdeal, it)
			}
			lk := plant.SumKPI(bk.from, to, ks, ideal)
			if r := ruleOf(l, b.configs); r.Bottleneck != nil {
				lk = fromBottleneck(lk, byID[r.Bottleneck.ID])
			}
			outs = append(outs, lineOut{l: l, k: lk, ms: ks})
		}
		if x.Line == nil {
			if err := row(bk, to, "plant", "", "", plant.SumKPI(bk.from, to, plantKs, plantIdeal)); err != nil {
				return err
			}
		}
		for _, o := range outs {
			if len(o.l.Machines) == 0 {
				continue
			}
			if err := row(bk, to, "line", lineLabel(o.l), "", o.k); err != nil {
				return err
			}
			for j, m := range o.l.Machines {
				if err := row(bk, to, "machine", lineLabel(o.l), machineName(m), o.ms[j]); err != nil {
					return err
				}
			}
		}
		if x.Progress != nil {
			x.Progress(float64(i+1)/float64(len(buckets)), -1)
		}
	}
	return nil
}

// runKPI is one machine's KPI over one shift run, with the run given as
// runKPIs gives it rather than looked up again in the calendar.
func (s *Server) runKPI(ctx context.Context, b kpiBase, id int64, d machineData, runs []plant.ShiftRun, from, to int64) (plant.KPI, error) {
	good, scrap, err := s.store.Counts(ctx, id, from, to)
	if err != nil {
		return plant.KPI{}, fmt.Errorf("web: counts of machine %d: %w", id, err)
	}
	return plant.ComputeKPI(plant.KPIInput{
		From: from, To: to, Runs: runs,
		Spans: d.spans, Stops: d.stops,
		Good: good, Scrap: scrap,
		Config: b.configs[id], Settings: b.settings,
	}), nil
}

// ratioCell is a KPI fraction (0.748 for 74.8 %), empty when n/a.
func ratioCell(r plant.Ratio) cell {
	if !r.OK {
		return cell{}
	}
	return numCell(roundTo(r.Value, 6))
}

// durationCell is MTBF or MTTR in seconds, empty when n/a.
func durationCell(d plant.Duration) cell {
	if !d.OK {
		return cell{}
	}
	return numCell(float64(d.MS) / 1000)
}
