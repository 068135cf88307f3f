package plant

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Calendar is the plant's shift plan: which shifts run on which weekdays, the
// dates without production, and the zone the times of day are in.
type Calendar struct {
	Shifts   []Shift
	Holidays map[string]bool // "2026-12-24": dates (in the plant's zone) without production
	Location *time.Location  // nil = UTC
}

// holidayLayout is how Holidays spells a date.
const holidayLayout = "2006-01-02"

// minutesPerDay is the number of minutes in a day on the clock face; Clock
// 1440 is midnight at the end of a day.
const minutesPerDay = 24 * 60

func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// Runs is every shift occurrence overlapping [from, to), ordered by start,
// clipped to the period, with its breaks clipped too. A run belongs to the
// date it starts on, so a holiday skips the runs starting that day: the night
// shift of 24 December (22:00–06:00) does not run, the one of 23 December still
// ends at 06:00 on the 24th.
func (c Calendar) Runs(from, to int64) []ShiftRun {
	return c.runs(from, to, true)
}

// RunAt is the shift running at t ("this shift so far"), unclipped. A run
// covers [Start, End): a shift ending at 14:00 is over at 14:00 and the next one
// has begun. Where shifts overlap (a handover), the one that started last wins,
// because that is the crew now in charge.
func (c Calendar) RunAt(t int64) (ShiftRun, bool) {
	var best ShiftRun
	found := false
	for _, r := range c.runs(t, t+1, false) {
		if r.Start <= t && t < r.End && (!found || r.Start >= best.Start) {
			best, found = r, true
		}
	}
	return best, found
}

// Scheduled is the production windows within [from, to): the shift runs,
// merged where shifts overlap, breaks included (they are planned stops, which
// the KPIs take off separately). With no shifts configured the plant is taken
// to run around the clock, so the whole period is one window.
func (c Calendar) Scheduled(from, to int64) []Interval {
	if to <= from {
		return nil
	}
	if len(c.Shifts) == 0 {
		return []Interval{{from, to}}
	}
	runs := c.runs(from, to, true)
	ivs := make([]Interval, 0, len(runs))
	for _, r := range runs {
		ivs = append(ivs, Interval{r.Start, r.End})
	}
	return ivUnion(ivs)
}

// runs builds the shift occurrences overlapping [from, to). Every time is made
// with time.Date in the plant's zone from a calendar date and a time of day, so
// a run's length follows daylight saving: a 22:00–06:00 shift lasts 9 h on the
// night the clocks go back and 7 h on the night they go forward.
func (c Calendar) runs(from, to int64, clip bool) []ShiftRun {
	if to <= from || len(c.Shifts) == 0 {
		return nil
	}
	loc := c.loc()
	first := time.UnixMilli(from).In(loc)
	last := time.UnixMilli(to - 1).In(loc)
	// A run starting the day before from can reach into the period (a night
	// shift, or a 24 h shift), but none reaches two days on, because a shift
	// ends at most one day after it starts.
	day := time.Date(first.Year(), first.Month(), first.Day()-1, 0, 0, 0, 0, loc)
	lastDay := time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, loc)
	var out []ShiftRun
	for i := 0; ; i++ {
		d := time.Date(day.Year(), day.Month(), day.Day()+i, 0, 0, 0, 0, loc)
		if civilAfter(d, lastDay) {
			break
		}
		if c.Holidays[d.Format(holidayLayout)] {
			continue
		}
		for _, s := range c.Shifts {
			if !s.Days[d.Weekday()] {
				continue
			}
			r := occurrence(s, d, loc)
			if r.End <= from || r.Start >= to {
				continue
			}
			if clip {
				r = clipRun(r, from, to)
			}
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b ShiftRun) int {
		if a.Start != b.Start {
			return cmp.Compare(a.Start, b.Start)
		}
		return cmp.Compare(a.End, b.End)
	})
	return out
}

// civilAfter says whether calendar date a is after calendar date b.
func civilAfter(a, b time.Time) bool {
	if a.Year() != b.Year() {
		return a.Year() > b.Year()
	}
	return a.YearDay() > b.YearDay()
}

// occurrence is shift s starting on date d (local midnight), with its breaks
// placed within it and cut to it.
func occurrence(s Shift, d time.Time, loc *time.Location) ShiftRun {
	start := clockAt(d, 0, s.Start, loc)
	endDay := 0
	if s.End <= s.Start {
		endDay = 1
	}
	end := clockAt(d, endDay, s.End, loc)
	r := ShiftRun{ShiftID: s.ID, Name: s.Name, Start: start, End: end}
	for _, b := range s.Breaks {
		// A break's time of day falls on the shift's first date if it is at or
		// after the shift's start, else on the next one: 02:00 in a 22:00–06:00
		// shift is after midnight.
		bDay := 0
		if b.Start < s.Start {
			bDay = 1
		}
		bEnd := bDay
		if b.End <= b.Start {
			bEnd++
		}
		iv := Interval{clockAt(d, bDay, b.Start, loc), clockAt(d, bEnd, b.End, loc)}
		iv = Interval{max(iv.Start, start), min(iv.End, end)}
		if iv.Len() > 0 {
			r.Breaks = append(r.Breaks, iv)
		}
	}
	slices.SortFunc(r.Breaks, func(a, b Interval) int { return cmp.Compare(a.Start, b.Start) })
	return r
}

// clockAt is the time of day c on the date days after d, in ms. time.Date
// normalises 24:00 to the next midnight.
func clockAt(d time.Time, days int, c Clock, loc *time.Location) int64 {
	m := int(c)
	return time.Date(d.Year(), d.Month(), d.Day()+days, m/60, m%60, 0, 0, loc).UnixMilli()
}

// clipRun cuts a run and its breaks to [from, to).
func clipRun(r ShiftRun, from, to int64) ShiftRun {
	r.Start, r.End = max(r.Start, from), min(r.End, to)
	var breaks []Interval
	for _, b := range r.Breaks {
		b = Interval{max(b.Start, r.Start), min(b.End, r.End)}
		if b.Len() > 0 {
			breaks = append(breaks, b)
		}
	}
	r.Breaks = breaks
	return r
}

// ParseClock reads a time of day such as "06:00" or "6:30". "24:00" is
// accepted as midnight at the end of a day, which only makes sense as the end
// of a shift or break.
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("time of day %q: want hours:minutes, e.g. 06:00", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || strings.ContainsAny(h+m, "+-") {
		return 0, fmt.Errorf("time of day %q: want hours:minutes, e.g. 06:00", s)
	}
	if hh == 24 && mm == 0 {
		return minutesPerDay, nil
	}
	if hh > 23 || mm > 59 {
		return 0, fmt.Errorf("time of day %q: hours go from 00 to 23 and minutes from 00 to 59 (24:00 for midnight at the end)", s)
	}
	return Clock(hh*60 + mm), nil
}

// String is the time of day as "06:00" ("24:00" for the end of a day).
func (c Clock) String() string {
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// Day is the calendar day containing t in loc: local midnight to the next
// local midnight, which is 23 h or 25 h on the days daylight saving changes.
func Day(t int64, loc *time.Location) (from, to int64) {
	if loc == nil {
		loc = time.UTC
	}
	lt := time.UnixMilli(t).In(loc)
	d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	return d.UnixMilli(), time.Date(lt.Year(), lt.Month(), lt.Day()+1, 0, 0, 0, 0, loc).UnixMilli()
}

// Week is the ISO week containing t in loc: Monday 00:00 to the next Monday
// 00:00, local time.
func Week(t int64, loc *time.Location) (from, to int64) {
	if loc == nil {
		loc = time.UTC
	}
	lt := time.UnixMilli(t).In(loc)
	back := (int(lt.Weekday()) + 6) % 7 // days since Monday
	mon := lt.Day() - back
	return time.Date(lt.Year(), lt.Month(), mon, 0, 0, 0, 0, loc).UnixMilli(),
		time.Date(lt.Year(), lt.Month(), mon+7, 0, 0, 0, 0, loc).UnixMilli()
}
