package db

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"andon/plant"
)

func weekdays() [7]bool {
	return [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
}

func TestShifts(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	early := plant.Shift{Name: "Early", Start: 6 * 60, End: 14 * 60, Days: weekdays(),
		Breaks: []plant.Break{{Name: "Lunch", Start: 10 * 60, End: 10*60 + 30}}}
	night := plant.Shift{Name: "Night", Start: 22 * 60, End: 6 * 60, Days: [7]bool{time.Sunday: true},
		Breaks: []plant.Break{{Name: "Midnight", Start: 23*60 + 45, End: 15}, {Name: "Late", Start: 2 * 60, End: 2*60 + 30}}}
	var err error
	if early.ID, err = s.SaveShift(ctx, early); err != nil {
		t.Fatal(err)
	}
	if night.ID, err = s.SaveShift(ctx, night); err != nil {
		t.Fatalf("night shift with breaks across midnight: %v", err)
	}
	shifts, _, err := s.Calendar(ctx, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if want := []plant.Shift{early, night}; !reflect.DeepEqual(shifts, want) {
		t.Errorf("calendar = %+v, want %+v", shifts, want)
	}

	// Update, then delete.
	early.Name, early.End, early.Breaks = "Early shift", 13*60, nil
	if id, err := s.SaveShift(ctx, early); err != nil || id != early.ID {
		t.Fatalf("update = %d, %v", id, err)
	}
	if err := s.DeleteShift(ctx, night.ID); err != nil {
		t.Fatal(err)
	}
	shifts, _, err = s.Calendar(ctx, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(shifts) != 1 || shifts[0].Name != "Early shift" || shifts[0].End != 13*60 || len(shifts[0].Breaks) != 0 {
		t.Errorf("after update and delete: %+v", shifts)
	}
	if err := s.DeleteShift(ctx, night.ID); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("delete twice = %v, want ErrNotFound", err)
	}
	if _, err := s.SaveShift(ctx, plant.Shift{ID: 99999, Name: "x", Start: 0, End: 60, Days: weekdays()}); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("update unknown = %v, want ErrNotFound", err)
	}

	bad := []struct {
		name string
		sh   plant.Shift
	}{
		{"no name", plant.Shift{Name: " ", Start: 0, End: 60, Days: weekdays()}},
		{"long name", plant.Shift{Name: strings.Repeat("n", 81), Start: 0, End: 60, Days: weekdays()}},
		{"no day", plant.Shift{Name: "x", Start: 0, End: 60}},
		{"start out of range", plant.Shift{Name: "x", Start: -1, End: 60, Days: weekdays()}},
		{"end out of range", plant.Shift{Name: "x", Start: 0, End: 1441, Days: weekdays()}},
		{"break outside", plant.Shift{Name: "x", Start: 6 * 60, End: 14 * 60, Days: weekdays(),
			Breaks: []plant.Break{{Start: 15 * 60, End: 15*60 + 10}}}},
		{"break across the end", plant.Shift{Name: "x", Start: 6 * 60, End: 14 * 60, Days: weekdays(),
			Breaks: []plant.Break{{Start: 13*60 + 50, End: 14*60 + 10}}}},
		{"night break outside", plant.Shift{Name: "x", Start: 22 * 60, End: 6 * 60, Days: weekdays(),
			Breaks: []plant.Break{{Start: 12 * 60, End: 12*60 + 10}}}},
		{"empty break", plant.Shift{Name: "x", Start: 6 * 60, End: 14 * 60, Days: weekdays(),
			Breaks: []plant.Break{{Start: 7 * 60, End: 7 * 60}}}},
		{"overlapping breaks", plant.Shift{Name: "x", Start: 6 * 60, End: 14 * 60, Days: weekdays(),
			Breaks: []plant.Break{{Start: 7 * 60, End: 8 * 60}, {Start: 7*60 + 30, End: 9 * 60}}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SaveShift(ctx, tt.sh); !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("SaveShift = %v, want ErrInvalid", err)
			}
			if n := countRows(t, s, "shifts"); n != 1 {
				t.Errorf("shifts = %d rows, want 1", n)
			}
		})
	}
	// Around the clock, with a break ending at 24:00.
	if _, err := s.SaveShift(ctx, plant.Shift{Name: "All day", Start: 0, End: 0, Days: weekdays(),
		Breaks: []plant.Break{{Start: 23 * 60, End: 1440}}}); err != nil {
		t.Errorf("24 h shift: %v", err)
	}
}

func TestHolidays(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	for _, d := range []string{"2026-12-24", "2026-12-25", "2026-12-24"} {
		if err := s.SetHoliday(ctx, d, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetHoliday(ctx, "2026-12-25", false); err != nil {
		t.Fatal(err)
	}
	_, hol, err := s.Calendar(ctx, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"2026-12-24": true}; !reflect.DeepEqual(hol, want) {
		t.Errorf("holidays = %v, want %v", hol, want)
	}
	for _, d := range []string{"", "2026-13-01", "2026-02-30", "24.12.2026", "2026-1-5", "2026-12-24' OR 1=1"} {
		t.Run(d, func(t *testing.T) {
			if err := s.SetHoliday(ctx, d, true); !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("SetHoliday(%q) = %v, want ErrInvalid", d, err)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	got, err := s.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, plant.DefaultSettings()) {
		t.Errorf("fresh settings = %+v, want the defaults %+v", got, plant.DefaultSettings())
	}
	want := plant.Settings{MicroStopMS: 90_000, NoReasonMS: 0, Currency: "CHF", HeartbeatMS: 60_000,
		StateCodes: map[float64]plant.State{1: plant.Running, 2.5: plant.Down, -1: plant.Idle},
		StateWords: map[string]plant.State{"störung": plant.Down, "Rüsten": plant.Changeover}}
	if err := s.SaveSettings(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Settings(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings = %+v, want %+v", got, want)
	}

	bad := []struct {
		name string
		edit func(*plant.Settings)
	}{
		{"negative micro-stop", func(st *plant.Settings) { st.MicroStopMS = -1 }},
		{"micro-stop a day", func(st *plant.Settings) { st.MicroStopMS = 24 * 3600 * 1000 }},
		{"negative no-reason", func(st *plant.Settings) { st.NoReasonMS = -5 }},
		{"heartbeat under 1 s", func(st *plant.Settings) { st.HeartbeatMS = 999 }},
		{"long currency", func(st *plant.Settings) { st.Currency = "123456789" }},
		{"NaN code", func(st *plant.Settings) { st.StateCodes = map[float64]plant.State{math.NaN(): plant.Down} }},
		{"code to offline", func(st *plant.Settings) { st.StateCodes = map[float64]plant.State{7: plant.Offline} }},
		{"word to nonsense", func(st *plant.Settings) { st.StateWords = map[string]plant.State{"x": "exploded"} }},
		{"empty word", func(st *plant.Settings) { st.StateWords = map[string]plant.State{" ": plant.Down} }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			st := plant.DefaultSettings()
			tt.edit(&st)
			if err := s.SaveSettings(ctx, st); !errors.Is(err, plant.ErrInvalid) {
				t.Fatalf("SaveSettings = %v, want ErrInvalid", err)
			}
			if got, err := s.Settings(ctx); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("settings changed to %+v (%v)", got, err)
			}
		})
	}
	// An eight-character currency (in characters, not bytes) is fine.
	st := want
	st.Currency = "€€€€€€€€"
	if err := s.SaveSettings(ctx, st); err != nil {
		t.Errorf("8-character currency: %v", err)
	}
}

func TestSaveReason(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.s
	cat, err := s.SaveReason(ctx, plant.Reason{Name: "Utilities", Sort: 99})
	if err != nil {
		t.Fatal(err)
	}
	air, err := s.SaveReason(ctx, plant.Reason{ParentID: cat, Name: "Compressed air", Sort: 1})
	if err != nil {
		t.Fatal(err)
	}
	power, err := s.SaveReason(ctx, plant.Reason{ParentID: cat, Name: "Power cut", Sort: 0, Planned: false})
	if err != nil {
		t.Fatal(err)
	}
	// Rename and hide one; the tree lists it still.
	if _, err := s.SaveReason(ctx, plant.Reason{ID: air, ParentID: cat, Name: "Air", Sort: 1, Hidden: true}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tail := rs[len(rs)-3:]
	want := []plant.Reason{
		{ID: cat, Name: "Utilities", Sort: 99},
		{ID: power, ParentID: cat, Name: "Power cut", Sort: 0},
		{ID: air, ParentID: cat, Name: "Air", Sort: 1, Hidden: true},
	}
	if !reflect.DeepEqual(tail, want) {
		t.Errorf("tree ends with %+v, want %+v", tail, want)
	}
	// Every reason follows its category.
	current := int64(0)
	for _, r := range rs {
		if r.ParentID == 0 {
			current = r.ID
		} else if r.ParentID != current {
			t.Errorf("reason %q is not listed under its category", r.Name)
		}
	}

	stop := f.stop(t, f.m1, plant.Down, 1, 2)
	if _, err := s.CodeStop(ctx, plant.Coding{StopID: stop, ReasonID: power}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name  string
		r     plant.Reason
		isErr error
	}{
		{"empty name", plant.Reason{Name: "  "}, plant.ErrInvalid},
		{"long name", plant.Reason{Name: strings.Repeat("r", 81)}, plant.ErrInvalid},
		{"parent is a reason", plant.Reason{ParentID: power, Name: "x"}, plant.ErrInvalid},
		{"unknown parent", plant.Reason{ParentID: 99999, Name: "x"}, plant.ErrNotFound},
		{"unknown id", plant.Reason{ID: 99999, Name: "x"}, plant.ErrNotFound},
		{"category with reasons under another", plant.Reason{ID: cat, ParentID: f.category, Name: "Utilities"}, plant.ErrInvalid},
		{"coding reason to category", plant.Reason{ID: power, Name: "Power cut"}, plant.ErrInvalid},
		{"own parent", plant.Reason{ID: cat, ParentID: cat, Name: "Utilities"}, plant.ErrInvalid},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SaveReason(ctx, tt.r); !errors.Is(err, tt.isErr) {
				t.Fatalf("SaveReason = %v, want %v", err, tt.isErr)
			}
			after, err := s.Reasons(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, rs) {
				t.Error("the tree changed")
			}
		})
	}
}

func TestMachineConfig(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.s
	c := plant.MachineConfig{IdealCycleS: 2.5, CostPerHour: 120, MarginPerUnit: 0.8}
	if err := s.SetMachineConfig(ctx, f.m1, c, " Big press "); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMachineConfigByPath(ctx, "line-2/saw-1", plant.MachineConfig{IdealCycleS: 10}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.MachineConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]plant.MachineConfig{f.m1: c, f.m2: {}, f.m3: {IdealCycleS: 10}}
	if !reflect.DeepEqual(cs, want) {
		t.Errorf("configs = %+v, want %+v", cs, want)
	}
	m, err := s.Machine(ctx, f.m1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Big press" {
		t.Errorf("display name = %q, want %q", m.Name, "Big press")
	}
	id := f.stop(t, f.m1, plant.Down, 1, 2)
	if st, err := s.Stop(ctx, id); err != nil || st.Machine != "Big press" {
		t.Errorf("stop's machine = %q, %v; want the display name", st.Machine, err)
	}

	bad := []struct {
		name  string
		err   error
		isErr error
	}{
		{"unknown id", s.SetMachineConfig(ctx, 99999, c, ""), plant.ErrNotFound},
		{"a line is not a machine", s.SetMachineConfig(ctx, f.line1, c, ""), plant.ErrNotFound},
		{"negative", s.SetMachineConfig(ctx, f.m1, plant.MachineConfig{CostPerHour: -1}, ""), plant.ErrInvalid},
		{"NaN", s.SetMachineConfig(ctx, f.m1, plant.MachineConfig{IdealCycleS: math.NaN()}, ""), plant.ErrInvalid},
		{"infinite", s.SetMachineConfig(ctx, f.m1, plant.MachineConfig{MarginPerUnit: math.Inf(1)}, ""), plant.ErrInvalid},
		{"long name", s.SetMachineConfig(ctx, f.m1, c, strings.Repeat("n", 81)), plant.ErrInvalid},
		{"unknown path", s.SetMachineConfigByPath(ctx, "line-9/nothing", c), plant.ErrNotFound},
		{"path of a line", s.SetMachineConfigByPath(ctx, "line-1", c), plant.ErrNotFound},
		{"negative by path", s.SetMachineConfigByPath(ctx, "line-1/press-1", plant.MachineConfig{IdealCycleS: -2}), plant.ErrInvalid},
		{"rule of unknown machine", s.SetStateRule(ctx, 99999, `{}`), plant.ErrNotFound},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.isErr) {
				t.Errorf("err = %v, want %v", tt.err, tt.isErr)
			}
		})
	}
	if cs, err := s.MachineConfigs(ctx); err != nil || !reflect.DeepEqual(cs, want) {
		t.Errorf("configs after refused changes = %+v, %v; want %+v", cs, err, want)
	}
	if n := countRows(t, s, "assets"); n != 5 {
		t.Errorf("assets = %d, want 5 (nothing created)", n)
	}

	rule := `{"kind":"counter","metric":"good","factor":3}`
	if err := s.SetStateRule(ctx, f.m2, rule); err != nil {
		t.Fatal(err)
	}
	rules, err := s.StateRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64]string{f.m2: rule}; !reflect.DeepEqual(rules, want) {
		t.Errorf("rules = %v, want %v", rules, want)
	}
	// Clearing the display name falls back to the path's machine level.
	if err := s.SetMachineConfig(ctx, f.m1, c, ""); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Machine(ctx, f.m1); m.Name != "press-1" {
		t.Errorf("name after clearing = %q, want press-1", m.Name)
	}
}

func TestMachineBottleneck(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.s
	// A machine with a site but no line: its parent is not a line.
	res, err := s.w.ExecContext(ctx, `INSERT INTO assets(parent_id, kind, name, path, created_ms) VALUES (NULL, 'machine', 'lathe', 'lathe', 1)`)
	if err != nil {
		t.Fatal(err)
	}
	loose, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	on := plant.MachineConfig{IdealCycleS: 3, Bottleneck: true}
	steps := []struct {
		name  string
		do    func() error
		isErr error
		want  map[int64]bool // the machines that are bottlenecks afterwards
	}{
		{"none at first", func() error { return nil }, nil, map[int64]bool{}},
		{"set by id", func() error { return s.SetMachineConfig(ctx, f.m1, on, "") }, nil, map[int64]bool{f.m1: true}},
		{"another line keeps its own", func() error { return s.SetMachineConfigByPath(ctx, "line-2/saw-1", on) }, nil,
			map[int64]bool{f.m1: true, f.m3: true}},
		{"setting a second on a line clears the first", func() error { return s.SetMachineConfig(ctx, f.m2, on, "") }, nil,
			map[int64]bool{f.m2: true, f.m3: true}},
		{"by path clears the first too", func() error { return s.SetMachineConfigByPath(ctx, "line-1/press-1", on) }, nil,
			map[int64]bool{f.m1: true, f.m3: true}},
		{"saving the bottleneck again keeps it", func() error { return s.SetMachineConfig(ctx, f.m1, on, "Press") }, nil,
			map[int64]bool{f.m1: true, f.m3: true}},
		{"saving another machine unflagged leaves the line's alone", func() error {
			return s.SetMachineConfig(ctx, f.m2, plant.MachineConfig{IdealCycleS: 4}, "")
		}, nil, map[int64]bool{f.m1: true, f.m3: true}},
		{"a machine without a line is refused", func() error { return s.SetMachineConfig(ctx, loose, on, "") }, plant.ErrInvalid,
			map[int64]bool{f.m1: true, f.m3: true}},
		{"a refused config changes nothing", func() error {
			return s.SetMachineConfig(ctx, f.m2, plant.MachineConfig{IdealCycleS: -1, Bottleneck: true}, "")
		}, plant.ErrInvalid, map[int64]bool{f.m1: true, f.m3: true}},
		{"unknown machine", func() error { return s.SetMachineConfig(ctx, 99999, on, "") }, plant.ErrNotFound,
			map[int64]bool{f.m1: true, f.m3: true}},
		{"cleared", func() error { return s.SetMachineConfig(ctx, f.m1, plant.MachineConfig{IdealCycleS: 3}, "") }, nil,
			map[int64]bool{f.m3: true}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			if st.isErr == nil && err != nil || st.isErr != nil && !errors.Is(err, st.isErr) {
				t.Fatalf("err = %v, want %v", err, st.isErr)
			}
			cs, err := s.MachineConfigs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[int64]bool{}
			for id, c := range cs {
				if c.Bottleneck {
					got[id] = true
				}
			}
			if !reflect.DeepEqual(got, st.want) {
				t.Errorf("bottlenecks = %v, want %v", got, st.want)
			}
		})
	}
	// The rest of the configuration travels with the flag.
	cs, err := s.MachineConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (plant.MachineConfig{IdealCycleS: 3, Bottleneck: true}); cs[f.m3] != want {
		t.Errorf("saw-1 = %+v, want %+v", cs[f.m3], want)
	}
	// The index holds the rule even against a write that skips the store.
	if _, err := s.w.ExecContext(ctx, `UPDATE assets SET bottleneck = 1 WHERE id IN (?, ?)`, f.m1, f.m2); err == nil {
		t.Error("two bottlenecks on one line were stored")
	}
}
