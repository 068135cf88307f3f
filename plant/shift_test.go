package plant

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// wallMS is a local wall-clock time in loc as epoch ms, for writing test times.
func wallMS(t *testing.T, loc *time.Location, s string) int64 {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return tm.UnixMilli()
}

func berlinZone(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

func shiftDays(ds ...time.Weekday) [7]bool {
	var d [7]bool
	for _, w := range ds {
		d[w] = true
	}
	return d
}

// Monday to Friday, and every day, as Shift.Days.
const (
	monToFri = iota
	everyDay
)

func shiftDaysOf(which int) [7]bool {
	if which == everyDay {
		return [7]bool{true, true, true, true, true, true, true}
	}
	return shiftDays(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)
}

func mustClock(t *testing.T, s string) Clock {
	t.Helper()
	c, err := ParseClock(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// threeShifts is the classic plan: early, late and night, Monday to Friday,
// each with a 30 min break in its middle.
func threeShifts(t *testing.T, which int) []Shift {
	c := func(s string) Clock { return mustClock(t, s) }
	d := shiftDaysOf(which)
	return []Shift{
		{ID: 1, Name: "Early", Start: c("06:00"), End: c("14:00"), Days: d, Breaks: []Break{{"Lunch", c("10:00"), c("10:30")}}},
		{ID: 2, Name: "Late", Start: c("14:00"), End: c("22:00"), Days: d, Breaks: []Break{{"Dinner", c("18:00"), c("18:30")}}},
		{ID: 3, Name: "Night", Start: c("22:00"), End: c("06:00"), Days: d, Breaks: []Break{{"Night break", c("02:00"), c("02:30")}}},
	}
}

func TestCalendarRuns(t *testing.T) {
	utc := time.UTC
	be := berlinZone(t)
	at := func(loc *time.Location, s string) int64 { return wallMS(t, loc, s) }
	run := func(loc *time.Location, id int64, name, from, to string, breaks ...string) ShiftRun {
		r := ShiftRun{ShiftID: id, Name: name, Start: at(loc, from), End: at(loc, to)}
		for i := 0; i+1 < len(breaks); i += 2 {
			r.Breaks = append(r.Breaks, Interval{at(loc, breaks[i]), at(loc, breaks[i+1])})
		}
		return r
	}
	night := []Shift{{ID: 3, Name: "Night", Start: 22 * 60, End: 6 * 60, Days: shiftDaysOf(everyDay)}}

	tests := []struct {
		name     string
		cal      Calendar
		from, to int64
		want     []ShiftRun
		wantLen  []time.Duration // if set, the runs' lengths
	}{
		{
			// Monday 23 November: the night shift of Sunday (22:00, not a
			// weekday, so absent) and Monday's three shifts, the night one
			// clipped at midnight. The night break at 02:00 belongs to the
			// next day and is cut off with it.
			name: "a weekday, night shift crossing midnight clipped",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)},
			from: at(utc, "2026-11-23 00:00"), to: at(utc, "2026-11-24 00:00"),
			want: []ShiftRun{
				run(utc, 1, "Early", "2026-11-23 06:00", "2026-11-23 14:00", "2026-11-23 10:00", "2026-11-23 10:30"),
				run(utc, 2, "Late", "2026-11-23 14:00", "2026-11-23 22:00", "2026-11-23 18:00", "2026-11-23 18:30"),
				run(utc, 3, "Night", "2026-11-23 22:00", "2026-11-24 00:00"),
			},
		},
		{
			// Tuesday: Monday's night shift runs on until 06:00 with its
			// break at 02:00.
			name: "the night shift of the day before reaches in",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)},
			from: at(utc, "2026-11-24 00:00"), to: at(utc, "2026-11-24 12:00"),
			want: []ShiftRun{
				run(utc, 3, "Night", "2026-11-24 00:00", "2026-11-24 06:00", "2026-11-24 02:00", "2026-11-24 02:30"),
				run(utc, 1, "Early", "2026-11-24 06:00", "2026-11-24 12:00", "2026-11-24 10:00", "2026-11-24 10:30"),
			},
		},
		{
			name: "unclipped night run with its break after midnight",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)[2:]},
			from: at(utc, "2026-11-23 12:00"), to: at(utc, "2026-11-24 12:00"),
			want: []ShiftRun{
				run(utc, 3, "Night", "2026-11-23 22:00", "2026-11-24 06:00", "2026-11-24 02:00", "2026-11-24 02:30"),
			},
		},
		{
			// The period starts inside the lunch break: the break is cut.
			name: "run and break clipped by the period",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)[:1]},
			from: at(utc, "2026-11-25 10:15"), to: at(utc, "2026-11-25 12:00"),
			want: []ShiftRun{
				run(utc, 1, "Early", "2026-11-25 10:15", "2026-11-25 12:00", "2026-11-25 10:15", "2026-11-25 10:30"),
			},
		},
		{
			name: "period within a break",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)[:1]},
			from: at(utc, "2026-11-25 10:05"), to: at(utc, "2026-11-25 10:10"),
			want: []ShiftRun{
				run(utc, 1, "Early", "2026-11-25 10:05", "2026-11-25 10:10", "2026-11-25 10:05", "2026-11-25 10:10"),
			},
		},
		{
			// Saturday and Sunday have no shifts; Friday's night shift runs
			// into Saturday morning, Sunday's does not exist.
			name: "weekend off",
			cal:  Calendar{Shifts: threeShifts(t, monToFri)},
			from: at(utc, "2026-11-28 00:00"), to: at(utc, "2026-11-30 00:00"),
			want: []ShiftRun{
				run(utc, 3, "Night", "2026-11-28 00:00", "2026-11-28 06:00", "2026-11-28 02:00", "2026-11-28 02:30"),
			},
		},
		{
			// 24 December (a Thursday) is a holiday: its own runs are skipped,
			// but the night shift that started on the 23rd ends normally.
			name: "holiday",
			cal:  Calendar{Shifts: threeShifts(t, monToFri), Holidays: map[string]bool{"2026-12-24": true}},
			from: at(utc, "2026-12-24 00:00"), to: at(utc, "2026-12-25 00:00"),
			want: []ShiftRun{
				run(utc, 3, "Night", "2026-12-24 00:00", "2026-12-24 06:00", "2026-12-24 02:00", "2026-12-24 02:30"),
			},
		},
		{
			// Night of 28 to 29 March 2026 in Berlin: clocks jump from 02:00
			// to 03:00, so 22:00–06:00 lasts 7 h.
			name: "DST forward: night shift lasts 7 h",
			cal:  Calendar{Shifts: night, Location: be},
			from: at(be, "2026-03-28 12:00"), to: at(be, "2026-03-29 12:00"),
			want:    []ShiftRun{run(be, 3, "Night", "2026-03-28 22:00", "2026-03-29 06:00")},
			wantLen: []time.Duration{7 * time.Hour},
		},
		{
			// Night of 24 to 25 October 2026 in Berlin: clocks go back from
			// 03:00 to 02:00, so 22:00–06:00 lasts 9 h.
			name: "DST back: night shift lasts 9 h",
			cal:  Calendar{Shifts: night, Location: be},
			from: at(be, "2026-10-24 12:00"), to: at(be, "2026-10-25 12:00"),
			want:    []ShiftRun{run(be, 3, "Night", "2026-10-24 22:00", "2026-10-25 06:00")},
			wantLen: []time.Duration{9 * time.Hour},
		},
		{
			name: "24:00 as an end",
			cal:  Calendar{Shifts: []Shift{{ID: 9, Name: "Late", Start: 16 * 60, End: 1440, Days: shiftDaysOf(everyDay)}}},
			from: at(utc, "2026-11-25 00:00"), to: at(utc, "2026-11-26 00:00"),
			want: []ShiftRun{run(utc, 9, "Late", "2026-11-25 16:00", "2026-11-26 00:00")},
		},
		{
			// Start == End is a 24 h shift: every day at 06:00 until the next.
			name: "a 24 h shift",
			cal:  Calendar{Shifts: []Shift{{ID: 5, Name: "Day", Start: 6 * 60, End: 6 * 60, Days: shiftDaysOf(everyDay)}}},
			from: at(utc, "2026-11-25 00:00"), to: at(utc, "2026-11-26 00:00"),
			want: []ShiftRun{
				run(utc, 5, "Day", "2026-11-25 00:00", "2026-11-25 06:00"),
				run(utc, 5, "Day", "2026-11-25 06:00", "2026-11-26 00:00"),
			},
		},
		{
			name: "a break outside its shift is dropped",
			cal: Calendar{Shifts: []Shift{{ID: 1, Name: "Early", Start: 6 * 60, End: 14 * 60, Days: shiftDaysOf(everyDay),
				Breaks: []Break{{"wrong", 15 * 60, 16 * 60}, {"half", 13*60 + 45, 14*60 + 15}}}}},
			from: at(utc, "2026-11-25 00:00"), to: at(utc, "2026-11-26 00:00"),
			want: []ShiftRun{run(utc, 1, "Early", "2026-11-25 06:00", "2026-11-25 14:00", "2026-11-25 13:45", "2026-11-25 14:00")},
		},
		{name: "no shifts", cal: Calendar{}, from: at(utc, "2026-11-25 00:00"), to: at(utc, "2026-11-26 00:00")},
		{name: "empty period", cal: Calendar{Shifts: threeShifts(t, everyDay)}, from: at(utc, "2026-11-25 08:00"), to: at(utc, "2026-11-25 08:00")},
		{name: "reversed period", cal: Calendar{Shifts: threeShifts(t, everyDay)}, from: at(utc, "2026-11-25 09:00"), to: at(utc, "2026-11-25 08:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cal.Runs(tt.from, tt.to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Runs:\n got %s\nwant %s", fmtRuns(got), fmtRuns(tt.want))
			}
			for i, l := range tt.wantLen {
				if i < len(got) {
					if d := time.Duration(got[i].End-got[i].Start) * time.Millisecond; d != l {
						t.Errorf("run %d lasts %v, want %v", i, d, l)
					}
				}
			}
		})
	}
}

func fmtRuns(rs []ShiftRun) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("\n  " + r.Name + " " + time.UnixMilli(r.Start).UTC().Format(time.DateTime) + " – " +
			time.UnixMilli(r.End).UTC().Format(time.DateTime))
		for _, br := range r.Breaks {
			b.WriteString(" [" + time.UnixMilli(br.Start).UTC().Format(time.TimeOnly) + "–" +
				time.UnixMilli(br.End).UTC().Format(time.TimeOnly) + "]")
		}
	}
	return b.String()
}

func TestCalendarRunAt(t *testing.T) {
	utc := time.UTC
	cal := Calendar{Shifts: threeShifts(t, monToFri), Holidays: map[string]bool{"2026-12-24": true}}
	at := func(s string) int64 { return wallMS(t, utc, s) }
	tests := []struct {
		name      string
		t         int64
		wantOK    bool
		wantName  string
		wantStart string
		wantEnd   string
	}{
		{"start is inclusive", at("2026-11-25 06:00"), true, "Early", "2026-11-25 06:00", "2026-11-25 14:00"},
		{"inside, unclipped", at("2026-11-25 09:17"), true, "Early", "2026-11-25 06:00", "2026-11-25 14:00"},
		{"end is exclusive: the next shift has begun", at("2026-11-25 14:00"), true, "Late", "2026-11-25 14:00", "2026-11-25 22:00"},
		{"last millisecond of a shift", at("2026-11-25 14:00") - 1, true, "Early", "2026-11-25 06:00", "2026-11-25 14:00"},
		{"night shift after midnight", at("2026-11-26 03:00"), true, "Night", "2026-11-25 22:00", "2026-11-26 06:00"},
		{"Friday's night shift on Saturday", at("2026-11-28 05:59"), true, "Night", "2026-11-27 22:00", "2026-11-28 06:00"},
		{"Saturday morning after it", at("2026-11-28 06:00"), false, "", "", ""},
		{"Sunday", at("2026-11-29 12:00"), false, "", "", ""},
		{"holiday", at("2026-12-24 09:00"), false, "", "", ""},
		{"the night before a holiday still ends", at("2026-12-24 05:00"), true, "Night", "2026-12-23 22:00", "2026-12-24 06:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := cal.RunAt(tt.t)
			if ok != tt.wantOK {
				t.Fatalf("RunAt ok = %v, want %v (%s)", ok, tt.wantOK, fmtRuns([]ShiftRun{r}))
			}
			if !ok {
				return
			}
			if r.Name != tt.wantName || r.Start != at(tt.wantStart) || r.End != at(tt.wantEnd) {
				t.Errorf("RunAt = %s, want %s %s – %s", fmtRuns([]ShiftRun{r}), tt.wantName, tt.wantStart, tt.wantEnd)
			}
		})
	}
	if _, ok := (Calendar{}).RunAt(at("2026-11-25 09:00")); ok {
		t.Error("RunAt without shifts found a run")
	}
}

func TestCalendarScheduled(t *testing.T) {
	utc := time.UTC
	at := func(s string) int64 { return wallMS(t, utc, s) }
	overlap := []Shift{
		{ID: 1, Name: "A", Start: 6 * 60, End: 14*60 + 30, Days: shiftDaysOf(everyDay)},
		{ID: 2, Name: "B", Start: 14 * 60, End: 22 * 60, Days: shiftDaysOf(everyDay), Breaks: []Break{{"b", 18 * 60, 19 * 60}}},
	}
	tests := []struct {
		name     string
		cal      Calendar
		from, to string
		want     []Interval
	}{
		{"no shifts: 24/7", Calendar{}, "2026-11-25 00:00", "2026-11-26 00:00",
			[]Interval{{at("2026-11-25 00:00"), at("2026-11-26 00:00")}}},
		{"no shifts, empty period", Calendar{}, "2026-11-25 00:00", "2026-11-25 00:00", nil},
		{"overlapping shifts merge, breaks stay in", Calendar{Shifts: overlap}, "2026-11-25 00:00", "2026-11-26 00:00",
			[]Interval{{at("2026-11-25 06:00"), at("2026-11-25 22:00")}}},
		{"holiday: nothing scheduled", Calendar{Shifts: overlap, Holidays: map[string]bool{"2026-11-25": true}}, "2026-11-25 00:00", "2026-11-26 00:00",
			[]Interval{}},
		{"three shifts a weekday", Calendar{Shifts: threeShifts(t, monToFri)}, "2026-11-25 00:00", "2026-11-26 00:00",
			[]Interval{{at("2026-11-25 00:00"), at("2026-11-26 00:00")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cal.Scheduled(at(tt.from), at(tt.to))
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("Scheduled = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in      string
		want    Clock
		wantErr string
	}{
		{"06:00", 360, ""},
		{"6:30", 390, ""},
		{" 22:15 ", 1335, ""},
		{"00:00", 0, ""},
		{"23:59", 1439, ""},
		{"24:00", 1440, ""},
		{"24:01", 0, "hours go from 00 to 23"},
		{"25:00", 0, "hours go from 00 to 23"},
		{"12:60", 0, "minutes from 00 to 59"},
		{"6", 0, "want hours:minutes"},
		{"6:3", 0, "want hours:minutes"},
		{"", 0, "want hours:minutes"},
		{"ab:cd", 0, "want hours:minutes"},
		{"-1:00", 0, "want hours:minutes"},
		{"+6:00", 0, "want hours:minutes"},
		{"006:00", 0, "want hours:minutes"},
		{"06:00:00", 0, "want hours:minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseClock(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClock(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseClock(%q) = %v, %v; want %v", tt.in, int(got), err, int(tt.want))
			}
			if s := got.String(); strings.TrimLeft(s, "0") != strings.TrimLeft(strings.TrimSpace(tt.in), "0") {
				t.Errorf("round trip %q -> %q", tt.in, s)
			}
		})
	}
}

func TestClockString(t *testing.T) {
	for c, want := range map[Clock]string{0: "00:00", 360: "06:00", 390: "06:30", 1439: "23:59", 1440: "24:00"} {
		if got := c.String(); got != want {
			t.Errorf("Clock(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestDayAndWeek(t *testing.T) {
	be := berlinZone(t)
	tests := []struct {
		name             string
		loc              *time.Location
		t                string
		dayFrom, dayTo   string
		dayLen           time.Duration
		weekFrom, weekTo string
	}{
		{"ordinary Wednesday, UTC", nil, "2026-11-25 13:00", "2026-11-25 00:00", "2026-11-26 00:00", 24 * time.Hour, "2026-11-23 00:00", "2026-11-30 00:00"},
		{"Monday midnight starts its week", nil, "2026-11-23 00:00", "2026-11-23 00:00", "2026-11-24 00:00", 24 * time.Hour, "2026-11-23 00:00", "2026-11-30 00:00"},
		{"Sunday ends its week", nil, "2026-11-29 23:59", "2026-11-29 00:00", "2026-11-30 00:00", 24 * time.Hour, "2026-11-23 00:00", "2026-11-30 00:00"},
		{"week across a year end", nil, "2027-01-01 10:00", "2027-01-01 00:00", "2027-01-02 00:00", 24 * time.Hour, "2026-12-28 00:00", "2027-01-04 00:00"},
		{"Berlin spring forward: 23 h day", be, "2026-03-29 12:00", "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour, "2026-03-23 00:00", "2026-03-30 00:00"},
		{"Berlin fall back: 25 h day", be, "2026-10-25 12:00", "2026-10-25 00:00", "2026-10-26 00:00", 25 * time.Hour, "2026-10-19 00:00", "2026-10-26 00:00"},
		{"Berlin late evening is still that day", be, "2026-11-25 23:30", "2026-11-25 00:00", "2026-11-26 00:00", 24 * time.Hour, "2026-11-23 00:00", "2026-11-30 00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			at := func(s string) int64 { return wallMS(t, loc, s) }
			from, to := Day(at(tt.t), tt.loc)
			if from != at(tt.dayFrom) || to != at(tt.dayTo) {
				t.Errorf("Day = %v – %v, want %s – %s", time.UnixMilli(from).In(loc), time.UnixMilli(to).In(loc), tt.dayFrom, tt.dayTo)
			}
			if got := time.Duration(to-from) * time.Millisecond; got != tt.dayLen {
				t.Errorf("day lasts %v, want %v", got, tt.dayLen)
			}
			from, to = Week(at(tt.t), tt.loc)
			if from != at(tt.weekFrom) || to != at(tt.weekTo) {
				t.Errorf("Week = %v – %v, want %s – %s", time.UnixMilli(from).In(loc), time.UnixMilli(to).In(loc), tt.weekFrom, tt.weekTo)
			}
		})
	}
}
