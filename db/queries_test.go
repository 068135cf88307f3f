package db

import (
	"context"
	"errors"
	"slices"
	"testing"

	"andon/plant"
)

func TestAssetTreeAndLines(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)

	press2 := plant.Path{Site: "acme", Area: "hall1", Line: "line-1", Machine: "press-2"}
	press10 := plant.Path{Site: "acme", Area: "hall1", Line: "line-1", Machine: "press-10"}
	robot := plant.Path{Line: "line-0", Machine: "robot"}
	lonely := plant.Path{Machine: "lonely"}
	rs := []plant.Reading{
		reading(press10, "temp", 100, 1),
		reading(press3, "temp", 200, 1),
		reading(press3, "secret", 900, 1),
		reading(press2, "temp", 300, 1),
		reading(robot, "speed", 400, 1),
		reading(lonely, "speed", 500, 1),
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE tags SET hidden = 1 WHERE metric = 'secret'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE assets SET display_name = 'Robot Arm' WHERE path = 'line-0/robot'`); err != nil {
		t.Fatal(err)
	}

	t.Run("asset rows", func(t *testing.T) {
		rows, err := s.r.QueryContext(ctx, `SELECT a.path, a.kind, COALESCE(p.path, '') FROM assets a
			LEFT JOIN assets p ON p.id = a.parent_id ORDER BY a.path`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got [][3]string
		for rows.Next() {
			var r [3]string
			if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		want := [][3]string{
			{"acme", "site", ""},
			{"acme/hall1", "area", "acme"},
			{"acme/hall1/line-1", "line", "acme/hall1"},
			{"acme/hall1/line-1/press-10", "machine", "acme/hall1/line-1"},
			{"acme/hall1/line-1/press-2", "machine", "acme/hall1/line-1"},
			{"acme/hall1/line-1/press-3", "machine", "acme/hall1/line-1"},
			{"line-0", "line", ""},
			{"line-0/robot", "machine", "line-0"},
			{"lonely", "machine", ""},
		}
		if !slices.Equal(got, want) {
			t.Errorf("assets =\n%v\nwant\n%v", got, want)
		}
	})

	lines, err := s.Lines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type lineView struct {
		name, path string
		zeroID     bool
		machines   []string
	}
	var got []lineView
	for _, l := range lines {
		v := lineView{name: l.Name, path: l.Path, zeroID: l.ID == 0}
		for _, m := range l.Machines {
			v.machines = append(v.machines, m.Name)
		}
		got = append(got, v)
	}
	want := []lineView{
		{name: "line-1", path: "acme/hall1/line-1", machines: []string{"press-2", "press-3", "press-10"}},
		{name: "line-0", path: "line-0", machines: []string{"Robot Arm"}},
		{name: "", path: "", zeroID: true, machines: []string{"lonely"}},
	}
	if len(got) != len(want) {
		t.Fatalf("lines = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].path != want[i].path || got[i].zeroID != want[i].zeroID ||
			!slices.Equal(got[i].machines, want[i].machines) {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	t.Run("machine detail", func(t *testing.T) {
		p3 := lines[0].Machines[1]
		if p3.Path != press3 {
			t.Errorf("Path = %+v, want %+v", p3.Path, press3)
		}
		if len(p3.Tags) != 1 || p3.Tags[0].Metric != "temp" {
			t.Errorf("tags = %+v, want only temp (secret is hidden)", p3.Tags)
		}
		if p3.LastSeen != 900 {
			t.Errorf("LastSeen = %d, want 900 (hidden tags still show the machine is alive)", p3.LastSeen)
		}
		m, err := s.Machine(ctx, p3.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != p3.ID || m.Path != press3 || m.Name != "press-3" || m.LastSeen != 900 || len(m.Tags) != 1 {
			t.Errorf("Machine = %+v, want press-3 with one tag", m)
		}
		r, err := s.Machine(ctx, lines[1].Machines[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != robot || r.Name != "Robot Arm" {
			t.Errorf("robot = %+v, want path %+v named Robot Arm", r, robot)
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, id := range []int64{lines[0].ID, 99999} {
			if _, err := s.Machine(ctx, id); !errors.Is(err, plant.ErrNotFound) {
				t.Errorf("Machine(%d) err = %v, want plant.ErrNotFound", id, err)
			}
		}
	})

	t.Run("all tags", func(t *testing.T) {
		tags, err := s.Tags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tag := range tags {
			names = append(names, tag.Machine+" "+tag.Metric)
		}
		want := []string{
			"acme/hall1/line-1/press-10 temp",
			"acme/hall1/line-1/press-2 temp",
			"acme/hall1/line-1/press-3 secret",
			"acme/hall1/line-1/press-3 temp",
			"line-0/robot speed",
			"lonely speed",
		}
		if !slices.Equal(names, want) {
			t.Errorf("Tags = %v, want %v", names, want)
		}
	})
}

func TestLinesEmpty(t *testing.T) {
	s := OpenTest(t)
	lines, err := s.Lines(context.Background())
	if err != nil || len(lines) != 0 {
		t.Errorf("Lines on an empty store = %v, %v; want none", lines, err)
	}
}

func TestSeries(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	runWriter(t, w)
	// 1,000 readings at 1 s intervals, a flat 10 with one spike to 500 and
	// one dip to -7.
	var rs []plant.Reading
	for i := range 1000 {
		v := 10.0
		switch i {
		case 437:
			v = 500
		case 811:
			v = -7
		}
		rs = append(rs, reading(press3, "temp", int64(i)*1000, v))
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx)
	if err != nil || len(tags) != 1 {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	id := tags[0].ID

	tests := []struct {
		name      string
		from, to  int64
		maxPoints int
		wantLen   int // -1: at most maxPoints
		wantSpike bool
		wantDip   bool
	}{
		{name: "raw, all", from: 0, to: 999_000, maxPoints: 0, wantLen: 1000, wantSpike: true, wantDip: true},
		{name: "raw, under the limit", from: 430_000, to: 440_000, maxPoints: 100, wantLen: 11, wantSpike: true},
		{name: "bounds are inclusive", from: 437_000, to: 437_000, maxPoints: 10, wantLen: 1, wantSpike: true},
		{name: "bucketed keeps the spike", from: 0, to: 999_000, maxPoints: 100, wantLen: -1, wantSpike: true, wantDip: true},
		{name: "bucketed into one bucket", from: 0, to: 999_000, maxPoints: 2, wantLen: 2, wantSpike: true, wantDip: true},
		{name: "odd limit", from: 0, to: 999_000, maxPoints: 1, wantLen: 2, wantSpike: true, wantDip: true},
		{name: "empty range", from: 2_000_000, to: 3_000_000, maxPoints: 10, wantLen: 0},
		{name: "reversed range", from: 10, to: 0, maxPoints: 10, wantLen: 0},
	}
	if _, err := s.Series(ctx, id+1000, 0, 1, 10); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("Series of an unknown tag: err = %v, want plant.ErrNotFound", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts, err := s.Series(ctx, id, tt.from, tt.to, tt.maxPoints)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantLen >= 0 && len(pts) != tt.wantLen:
				t.Errorf("len = %d, want %d", len(pts), tt.wantLen)
			case tt.wantLen < 0 && (len(pts) > tt.maxPoints || len(pts) < tt.maxPoints/2):
				t.Errorf("len = %d, want between %d and %d", len(pts), tt.maxPoints/2, tt.maxPoints)
			}
			var spike, dip bool
			for i, p := range pts {
				if p.TS < tt.from || p.TS > tt.to+1 {
					t.Errorf("point %d at %d outside [%d, %d]", i, p.TS, tt.from, tt.to)
				}
				if i > 0 && p.TS <= pts[i-1].TS {
					t.Errorf("point %d at %d not after %d", i, p.TS, pts[i-1].TS)
				}
				spike = spike || p.Value == 500
				dip = dip || p.Value == -7
			}
			if spike != tt.wantSpike || dip != tt.wantDip {
				t.Errorf("spike %v dip %v, want %v %v", spike, dip, tt.wantSpike, tt.wantDip)
			}
		})
	}
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"press-2", "press-10", -1},
		{"press-10", "press-2", 1},
		{"press-2", "press-2", 0},
		{"a", "b", -1},
		{"a", "a1", -1},
		{"line-02", "line-1", 1},
		{"x99999999999999999999999", "x100000000000000000000000", -1},
		{"", "a", -1},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			if got := naturalCompare(tt.a, tt.b); got != tt.want {
				t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
