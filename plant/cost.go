package plant

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// StopCost is what one stop cost, up to now while it is ongoing:
//
//	cost = duration h × CostPerHour + lost units × MarginPerUnit
//	lost units = duration s / IdealCycleS
//
// Without an ideal cycle time no units are counted as lost, the hourly part
// still counts and why says so. ok is false only when the machine has neither
// a cost per hour nor a margin, because then no figure means anything.
func StopCost(s Stop, cfg MachineConfig, now int64) (cost, lostUnits float64, ok bool, why string) {
	return costOf(s.Duration(now), cleanConfig(cfg))
}

// costOf is the cost of ms of lost production on a machine configured as cfg
// (already cleaned of negative and non-finite values).
func costOf(ms int64, cfg MachineConfig) (cost, lostUnits float64, ok bool, why string) {
	ms = max(0, ms)
	if cfg.IdealCycleS > 0 {
		lostUnits = finiteOr0(float64(ms) / msPerSecond / cfg.IdealCycleS)
	} else {
		why = whyNoLostUnits
	}
	if cfg.CostPerHour <= 0 && cfg.MarginPerUnit <= 0 {
		return 0, lostUnits, false, whyNoCosts
	}
	cost = finiteOr0(float64(ms)/msPerHour*cfg.CostPerHour + lostUnits*cfg.MarginPerUnit)
	return cost, lostUnits, true, why
}

// finiteOr0 is v, or 0 when v overflowed to infinity (or is NaN), so that an
// absurd configuration shows a zero rather than breaking every page.
func finiteOr0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// Pareto groups stops by reason for the two Pareto charts: by duration and by
// cost, each sorted descending (ties by reason name). Uncoded stops are one
// row, "Not coded yet". Durations are clipped to [from, to), an ongoing stop
// running until now; each stop is costed on its clipped part with its own
// machine's config, so a line's Pareto prices every machine right. Planned
// stops are left out unless includePlanned, and cost nothing when included.
// cfg may be nil (no costs).
//
// The cost here is of the stops' whole time within the period; KPI.Cost only
// counts time within planned production. Use ParetoWithin with the scheduled
// windows to make the two agree.
func Pareto(stops []Stop, cfg func(machineID int64) MachineConfig, from, to, now int64, includePlanned bool) (byDuration, byCost []ParetoRow) {
	var within []Interval
	if to > from {
		within = []Interval{{from, to}}
	}
	return ParetoWithin(stops, cfg, within, now, includePlanned)
}

// ParetoWithin is Pareto with the stops clipped to the given windows (e.g.
// Calendar.Scheduled(from, to)) rather than to one period, so that a stop left
// standing over a weekend without shifts neither lengthens the bars nor costs
// wages nobody paid. within need not be sorted.
func ParetoWithin(stops []Stop, cfg func(machineID int64) MachineConfig, within []Interval, now int64, includePlanned bool) (byDuration, byCost []ParetoRow) {
	windows := ivUnion(within)
	rows := map[int64]*ParetoRow{}
	allPlanned := map[int64]bool{}
	var order []int64
	for _, s := range stops {
		if s.Planned && !includePlanned {
			continue
		}
		part := ivIntersect([]Interval{{s.Start, s.EndOr(now)}}, windows)
		ms := ivTotal(part)
		if ms <= 0 {
			continue
		}
		// Planned stops cost nothing, as in KPI.Cost: the time was never
		// meant for production.
		var cost float64
		if cfg != nil && !s.Planned {
			cost, _, _, _ = costOf(ms, cleanConfig(cfg(s.MachineID)))
		}

		id := max(0, s.ReasonID)
		r, seen := rows[id]
		if !seen {
			r = &ParetoRow{ReasonID: id, Reason: s.Reason, Category: s.Category, Planned: s.Planned}
			switch {
			case id == 0:
				r.Reason, r.Category = uncodedReason, ""
			case r.Reason == "":
				r.Reason = fmt.Sprintf("Reason %d", id)
			}
			rows[id] = r
			allPlanned[id] = true
			order = append(order, id)
		}
		// A row is planned only if all its stops are: uncoded stops mix
		// planned_stop states with unplanned ones.
		allPlanned[id] = allPlanned[id] && s.Planned
		r.Stops++
		r.DurationMS += ms
		r.Cost += cost
	}
	byDuration = make([]ParetoRow, 0, len(order))
	for _, id := range order {
		r := rows[id]
		r.Planned = allPlanned[id]
		byDuration = append(byDuration, *r)
	}
	byCost = slices.Clone(byDuration)
	slices.SortFunc(byDuration, func(a, b ParetoRow) int {
		return cmp.Or(cmp.Compare(b.DurationMS, a.DurationMS), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.ReasonID, b.ReasonID))
	})
	slices.SortFunc(byCost, func(a, b ParetoRow) int {
		return cmp.Or(cmp.Compare(b.Cost, a.Cost), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.ReasonID, b.ReasonID))
	})
	return byDuration, byCost
}
