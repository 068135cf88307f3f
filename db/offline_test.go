package db

import (
	"context"
	"testing"

	"andon/plant"
)

// An announcement that a machine's device left makes the machine offline at
// once, in the store, in its spans and for every page, until a reading
// brings it back; an old reading (a backlog) does not.
func TestOfflineAnnouncement(t *testing.T) {
	s := OpenTest(t)
	st := plant.Settings{HeartbeatMS: 60_000}
	r := newEngRig(t, s, st, 0)
	ctx := context.Background()
	const t0 = 1_700_000_000_000

	r.write(t, word(engM1, "state", t0, "running"), reading(engM1, "temp", t0, 21))
	id := machineID(t, s, engM1)

	left := plant.Reading{Path: engM1, TS: t0 + 5_000, Offline: true, Topic: "spBv1.0/g/NDEATH/line-1"}
	unknown := plant.Reading{Path: plant.Path{Machine: "never-seen"}, TS: t0 + 5_000, Offline: true}
	r.write(t, left, unknown)

	m, err := s.Machine(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.OfflineSince != t0+5_000 {
		t.Errorf("OfflineSince = %d, want %d", m.OfflineSince, t0+5_000)
	}
	// Well within the heartbeat, yet offline: the device said so.
	if got := plant.CurrentState(m, t0+6_000, st.HeartbeatMS); got != plant.Offline {
		t.Errorf("state = %s, want offline", got)
	}
	checkRows(t, "spans after the announcement", spansOf(t, s, id), []engSpan{
		{plant.Running, t0, t0 + 5_000}, {plant.Offline, t0 + 5_000, 0},
	})
	if n := countRows(t, s, "assets"); n != 2 { // line-1 and m1; never-seen is not created
		t.Errorf("assets = %d, want 2", n)
	}
	// A second announcement keeps the first time.
	r.write(t, plant.Reading{Path: engM1, TS: t0 + 9_000, Offline: true})
	if m, _ := s.Machine(ctx, id); m.OfflineSince != t0+5_000 {
		t.Errorf("after a second announcement OfflineSince = %d, want %d", m.OfflineSince, t0+5_000)
	}

	// A backlog reading from long before does not bring it back.
	r.write(t, reading(engM1, "temp", t0-3_600_000, 19))
	if m, _ := s.Machine(ctx, id); m.OfflineSince == 0 {
		t.Error("an hour-old reading brought the machine back")
	}

	// The next live reading does, in the store and in the spans.
	r.write(t, word(engM1, "state", t0+20_000, "running"))
	m, err = s.Machine(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.OfflineSince != 0 {
		t.Errorf("OfflineSince after the rebirth = %d, want 0", m.OfflineSince)
	}
	if got := plant.CurrentState(m, t0+21_000, st.HeartbeatMS); got != plant.Running {
		t.Errorf("state after the rebirth = %s, want running", got)
	}
	checkRows(t, "spans after the rebirth", spansOf(t, s, id), []engSpan{
		{plant.Running, t0, t0 + 5_000}, {plant.Offline, t0 + 5_000, t0 + 20_000}, {plant.Running, t0 + 20_000, 0},
	})

	// Lines, which the overview reads, carries the flag too.
	r.write(t, plant.Reading{Path: engM1, TS: t0 + 30_000, Offline: true})
	lines, err := s.Lines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := lines[0].Machines[0].OfflineSince; got != t0+30_000 {
		t.Errorf("Lines: OfflineSince = %d, want %d", got, t0+30_000)
	}
}

// A writer started on a store where a machine is offline by announcement
// knows it: the first reading after the restart brings the machine back.
func TestOfflineSurvivesRestart(t *testing.T) {
	s := OpenTest(t)
	const t0 = 1_700_000_000_000
	w := NewWriter(s, WriterConfig{})
	stop := runWriter(t, w)
	ctx := context.Background()
	if err := w.Write(ctx, []plant.Reading{reading(engM1, "temp", t0, 1), {Path: engM1, TS: t0 + 1, Offline: true}}); err != nil {
		t.Fatal(err)
	}
	stopAndCheck(t, stop)

	w = NewWriter(s, WriterConfig{})
	stop = runWriter(t, w)
	defer stopAndCheck(t, stop)
	id := machineID(t, s, engM1)
	if m, _ := s.Machine(ctx, id); m.OfflineSince != t0+1 {
		t.Fatalf("OfflineSince after restart = %d, want %d", m.OfflineSince, t0+1)
	}
	if err := w.Write(ctx, []plant.Reading{reading(engM1, "temp", t0+2, 2)}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Machine(ctx, id); m.OfflineSince != 0 {
		t.Errorf("OfflineSince after a reading = %d, want 0", m.OfflineSince)
	}
}
