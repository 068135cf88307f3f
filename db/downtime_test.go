package db

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"andon/plant"
)

// testHook is a BatchHook that writes one settings row per Apply and Tick,
// so the test can see whether its rows committed with the batch.
type testHook struct {
	mu        sync.Mutex
	applied   []plant.Stored
	ticks     int
	commits   int
	rollbacks int
	pending   int // Apply/Tick calls since the last Commit or Rollback
	failOn    float64
}

func (h *testHook) Apply(ctx context.Context, tx *sql.Tx, rs []plant.Stored, nowMS int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending++
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO settings(key, value) VALUES ('hook_ts_' || ?, 'x')`, r.TS); err != nil {
			return err
		}
		if r.Value == h.failOn {
			return errors.New("hook refuses")
		}
	}
	h.applied = append(h.applied, rs...)
	return nil
}

func (h *testHook) Tick(ctx context.Context, tx *sql.Tx, nowMS int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending++
	h.ticks++
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO settings(key, value) VALUES ('hook_tick', ?)`, h.ticks)
	return err
}

func (h *testHook) Commit() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commits++
	h.pending = 0
}

func (h *testHook) Rollback() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rollbacks++
	h.pending = 0
}

func (h *testHook) snapshot() (applied, ticks, commits, rollbacks, pending int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.applied), h.ticks, h.commits, h.rollbacks, h.pending
}

func settingExists(t *testing.T, s *Store, key string) bool {
	t.Helper()
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM settings WHERE key = ?`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestWriterHook(t *testing.T) {
	ctx := context.Background()
	t.Run("apply commits with the batch", func(t *testing.T) {
		s := OpenTest(t)
		h := &testHook{failOn: 666}
		// A tick interval longer than the test keeps ticks out of the counts.
		w := NewWriter(s, WriterConfig{Hook: h, TickEvery: time.Hour})
		runWriter(t, w)
		if err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 10, 1), reading(press3, "temp", 11, 2)}); err != nil {
			t.Fatal(err)
		}
		applied, _, commits, rollbacks, pending := h.snapshot()
		if applied != 2 || commits != 1 || rollbacks != 0 || pending != 0 {
			t.Errorf("after a good batch: applied %d, commits %d, rollbacks %d, pending %d; want 2, 1, 0, 0", applied, commits, rollbacks, pending)
		}
		if !settingExists(t, s, "hook_ts_10") {
			t.Error("the hook's row did not commit with the batch")
		}
		// Duplicates only: nothing inserted, so no Apply.
		if err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 10, 1)}); err != nil {
			t.Fatal(err)
		}
		if applied, _, commits, _, _ := h.snapshot(); applied != 2 || commits != 1 {
			t.Errorf("after duplicates: applied %d, commits %d; want 2, 1", applied, commits)
		}
	})
	t.Run("apply error fails the batch", func(t *testing.T) {
		s := OpenTest(t)
		h := &testHook{failOn: 666}
		w := NewWriter(s, WriterConfig{Hook: h, TickEvery: time.Hour})
		runWriter(t, w)
		err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 20, 1), reading(press3, "temp", 21, 666)})
		if err == nil || !strings.Contains(err.Error(), "hook refuses") {
			t.Fatalf("Write = %v, want the hook's error", err)
		}
		_, _, commits, rollbacks, pending := h.snapshot()
		if commits != 0 || rollbacks != 1 || pending != 0 {
			t.Errorf("commits %d, rollbacks %d, pending %d; want 0, 1, 0", commits, rollbacks, pending)
		}
		if got := countRows(t, s, "readings"); got != 0 {
			t.Errorf("readings = %d after the hook failed, want 0", got)
		}
		if settingExists(t, s, "hook_ts_20") {
			t.Error("the hook's row survived the failed batch")
		}
		// The writer goes on: the next batch commits with its hook rows.
		if err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 22, 1)}); err != nil {
			t.Fatalf("Write after a hook failure: %v", err)
		}
		if !settingExists(t, s, "hook_ts_22") || countRows(t, s, "readings") != 1 {
			t.Error("the batch after a failure did not commit")
		}
	})
	t.Run("ticks in their own transaction", func(t *testing.T) {
		s := OpenTest(t)
		h := &testHook{}
		w := NewWriter(s, WriterConfig{Hook: h, TickEvery: 5 * time.Millisecond})
		runWriter(t, w)
		deadline := time.Now().Add(waitTimeout)
		for {
			_, ticks, commits, _, _ := h.snapshot()
			if ticks >= 3 && commits >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ticks %d, commits %d; want at least 3 each", ticks, commits)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !settingExists(t, s, "hook_tick") {
			t.Error("the tick's row did not commit")
		}
	})
	t.Run("no hook, no ticks", func(t *testing.T) {
		s := OpenTest(t)
		w := NewWriter(s, WriterConfig{TickEvery: time.Millisecond})
		stop := runWriter(t, w)
		if err := w.Write(ctx, []plant.Reading{reading(press3, "temp", 1, 1)}); err != nil {
			t.Fatal(err)
		}
		stopAndCheck(t, stop)
		if got := w.commits.Load(); got != 1 {
			t.Errorf("commits = %d, want 1", got)
		}
	})
}

func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "andon.db")
	// A database as the first release left it, with readings in it.
	raw, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		ms[0].sql,
		"PRAGMA user_version = 1",
		`INSERT INTO assets(id, parent_id, kind, name, path, created_ms) VALUES (1, NULL, 'line', 'l1', 'l1', 1), (2, 1, 'machine', 'm1', 'l1/m1', 1)`,
		`INSERT INTO tags(id, machine_id, metric, topic, created_ms) VALUES (1, 2, 'temp', 'l1/m1/temp', 1)`,
		`INSERT INTO readings(tag_id, ts_ms, value) VALUES (1, 100, 1.5), (1, 200, 2.5)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("open a v1 database: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	var v int
	if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != len(ms) {
		t.Errorf("user_version = %d, want %d", v, len(ms))
	}
	pts, err := s.Series(ctx, 1, 0, 1000, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Value != 1.5 || pts[1].Value != 2.5 {
		t.Errorf("readings after migration = %v, want the two v1 readings", pts)
	}
	var rule string
	if err := s.r.QueryRow("SELECT state_rule FROM assets WHERE id = 2").Scan(&rule); err != nil || rule != "" {
		t.Errorf("state_rule = %q, %v; want an empty rule", rule, err)
	}
	reasons, err := s.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != len(plant.DefaultReasons()) {
		t.Errorf("reasons after migration = %d, want the %d defaults", len(reasons), len(plant.DefaultReasons()))
	}
}

func TestSeedReasonsOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "andon.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := plant.DefaultReasons()
	if len(got) != len(want) {
		t.Fatalf("seeded %d reasons, want %d", len(got), len(want))
	}
	// The tree is kept: each default's parent is the seeded row with the
	// default parent's name, and the order is the default's order.
	byID := make(map[int64]plant.Reason)
	for _, r := range got {
		byID[r.ID] = r
	}
	wantByID := make(map[int64]plant.Reason)
	for _, r := range want {
		wantByID[r.ID] = r
	}
	for i, r := range got {
		w := want[i]
		if r.Name != w.Name || r.Planned != w.Planned || r.Sort != w.Sort || (r.ParentID == 0) != (w.ParentID == 0) {
			t.Errorf("reason %d = %+v, want %+v", i, r, w)
			continue
		}
		if w.ParentID != 0 && byID[r.ParentID].Name != wantByID[w.ParentID].Name {
			t.Errorf("reason %q is under %q, want %q", r.Name, byID[r.ParentID].Name, wantByID[w.ParentID].Name)
		}
	}
	// An admin deletes the tree; it does not come back on the next start.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM reasons WHERE parent_id IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM reasons`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := countRows(t, s, "reasons"); n != 0 {
		t.Errorf("reasons after reopening = %d, want 0 (the admin deleted them)", n)
	}
}

// fixture is a small plant: two lines, machines on them, and the ids of a
// few seeded reasons.
type fixture struct {
	s                  *Store
	line1, line2       int64
	m1, m2, m3         int64 // m1, m2 on line1; m3 on line2
	jam, brk, category int64 // "Jam" (unplanned), "Break" (planned), the "Breakdown" category
	hidden             int64 // a hidden reason
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{s: OpenTest(t)}
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := f.s.w.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	asset := `INSERT INTO assets(parent_id, kind, name, path, created_ms) VALUES (?, ?, ?, ?, 1)`
	f.line1 = exec(asset, nil, "line", "line-1", "line-1")
	f.line2 = exec(asset, nil, "line", "line-2", "line-2")
	f.m1 = exec(asset, f.line1, "machine", "press-1", "line-1/press-1")
	f.m2 = exec(asset, f.line1, "machine", "press-2", "line-1/press-2")
	f.m3 = exec(asset, f.line2, "machine", "saw-1", "line-2/saw-1")
	reasons, err := f.s.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reasons {
		switch r.Name {
		case "Jam":
			f.jam = r.ID
		case "Break":
			f.brk = r.ID
		case "Breakdown":
			f.category = r.ID
		}
	}
	f.hidden, err = f.s.SaveReason(ctx, plant.Reason{ParentID: f.category, Name: "Old reason", Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.jam == 0 || f.brk == 0 || f.category == 0 {
		t.Fatalf("seeded reasons lack Jam, Break or Breakdown: %+v", reasons)
	}
	return f
}

// stop inserts a stop as the engine would; end 0 = ongoing.
func (f fixture) stop(t *testing.T, machine int64, state plant.State, start, end int64) int64 {
	t.Helper()
	var e sql.NullInt64
	if end != 0 {
		e = sql.NullInt64{Int64: end, Valid: true}
	}
	res, err := f.s.w.Exec(`INSERT INTO stops(machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`, machine, string(state), start, e)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

func TestCodeStop(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.stop(t, f.m1, plant.Down, 1000, 5000)

	// Before coding: uncoded, not planned (down), named by its machine.
	st, err := f.s.Stop(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReasonID != 0 || st.Planned || st.Machine != "press-1" || st.State != plant.Down || st.End != 5000 {
		t.Errorf("uncoded stop = %+v", st)
	}

	st, err = f.s.CodeStop(ctx, plant.Coding{StopID: id, ReasonID: f.jam, Comment: " stuck part ", By: "anna", At: 6000})
	if err != nil {
		t.Fatalf("code: %v", err)
	}
	if st.ReasonID != f.jam || st.Reason != "Jam" || st.Category != "Breakdown" || st.Planned ||
		st.Comment != "stuck part" || st.CodedBy != "anna" || st.CodedAt != 6000 {
		t.Errorf("coded stop = %+v", st)
	}
	// A recode overwrites; the log keeps both.
	st, err = f.s.CodeStop(ctx, plant.Coding{StopID: id, ReasonID: f.brk, By: "ben", At: 7000})
	if err != nil {
		t.Fatalf("recode: %v", err)
	}
	if st.ReasonID != f.brk || st.Reason != "Break" || st.Category != "Planned" || !st.Planned || st.Comment != "" || st.CodedBy != "ben" {
		t.Errorf("recoded stop = %+v", st)
	}
	log, err := f.s.Codings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []plant.Coding{
		{StopID: id, ReasonID: f.jam, Comment: "stuck part", By: "anna", At: 6000},
		{StopID: id, ReasonID: f.brk, By: "ben", At: 7000},
	}
	if len(log) != len(want) || log[0] != want[0] || log[1] != want[1] {
		t.Errorf("codings = %+v, want %+v", log, want)
	}

	// Bad codings change nothing.
	bad := []struct {
		name  string
		c     plant.Coding
		isErr error
	}{
		{"forged stop", plant.Coding{StopID: 99999, ReasonID: f.jam}, plant.ErrNotFound},
		{"forged reason", plant.Coding{StopID: id, ReasonID: 99999}, plant.ErrNotFound},
		{"category", plant.Coding{StopID: id, ReasonID: f.category}, plant.ErrInvalid},
		{"hidden reason", plant.Coding{StopID: id, ReasonID: f.hidden}, plant.ErrInvalid},
		{"no reason", plant.Coding{StopID: id}, plant.ErrInvalid},
		{"long comment", plant.Coding{StopID: id, ReasonID: f.jam, Comment: strings.Repeat("x", 501)}, plant.ErrInvalid},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.CodeStop(ctx, tt.c)
			if !errors.Is(err, tt.isErr) {
				t.Fatalf("CodeStop = %v, want %v", err, tt.isErr)
			}
			after, err := f.s.Stop(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if after != st {
				t.Errorf("stop changed to %+v, want %+v", after, st)
			}
			if n := countRows(t, f.s, "codings"); n != 2 {
				t.Errorf("codings = %d rows, want 2", n)
			}
		})
	}
	// A comment of exactly 500 characters (not bytes) is fine.
	if _, err := f.s.CodeStop(ctx, plant.Coding{StopID: id, ReasonID: f.jam, Comment: strings.Repeat("ü", 500)}); err != nil {
		t.Errorf("500-character comment: %v", err)
	}
	if _, err := f.s.Stop(ctx, 99999); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("Stop(unknown) = %v, want ErrNotFound", err)
	}
}

func TestPlannedBeforeCoding(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		state plant.State
		want  bool
	}{
		{plant.PlannedStop, true},
		{plant.Down, false},
		{plant.Idle, false},
		{plant.Changeover, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			st, err := f.s.Stop(ctx, f.stop(t, f.m1, tt.state, 1, 2))
			if err != nil {
				t.Fatal(err)
			}
			if st.Planned != tt.want {
				t.Errorf("Planned = %v, want %v", st.Planned, tt.want)
			}
		})
	}
}

func TestSplitStop(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.stop(t, f.m1, plant.Down, 1000, 9000)
	if _, err := f.s.CodeStop(ctx, plant.Coding{StopID: id, ReasonID: f.jam, Comment: "c", By: "anna", At: 9500}); err != nil {
		t.Fatal(err)
	}
	ongoing := f.stop(t, f.m2, plant.Down, 1000, 0)

	refused := []struct {
		name  string
		id    int64
		at    int64
		isErr error
	}{
		{"ongoing", ongoing, 2000, plant.ErrInvalid},
		{"at start", id, 1000, plant.ErrInvalid},
		{"at end", id, 9000, plant.ErrInvalid},
		{"before", id, 500, plant.ErrInvalid},
		{"after", id, 9500, plant.ErrInvalid},
		{"unknown", 99999, 2000, plant.ErrNotFound},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.s.SplitStop(ctx, tt.id, tt.at, "ben"); !errors.Is(err, tt.isErr) {
				t.Errorf("SplitStop = %v, want %v", err, tt.isErr)
			}
			if n := countRows(t, f.s, "stops"); n != 2 {
				t.Errorf("stops = %d, want 2", n)
			}
		})
	}

	a, b, err := f.s.SplitStop(ctx, id, 4000, "ben")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != id || a.Start != 1000 || a.End != 4000 || b.Start != 4000 || b.End != 9000 || b.ID == id {
		t.Errorf("halves = %+v and %+v, want [1000, 4000) and [4000, 9000)", a, b)
	}
	for _, h := range []plant.Stop{a, b} {
		if h.ReasonID != f.jam || h.Comment != "c" || h.MachineID != f.m1 || h.State != plant.Down {
			t.Errorf("half %+v lost the reason, comment, machine or state", h)
		}
	}
	for _, sid := range []int64{a.ID, b.ID} {
		log, err := f.s.Codings(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		last := log[len(log)-1]
		if last.By != "ben" || last.ReasonID != f.jam {
			t.Errorf("stop %d: last log entry %+v, want ben's split", sid, last)
		}
	}
	var splits int
	if err := f.s.r.QueryRow(`SELECT COUNT(*) FROM codings WHERE action = 'split'`).Scan(&splits); err != nil {
		t.Fatal(err)
	}
	if splits != 2 {
		t.Errorf("split log entries = %d, want 2", splits)
	}
	// One half can be recoded on its own.
	if _, err := f.s.CodeStop(ctx, plant.Coding{StopID: b.ID, ReasonID: f.brk}); err != nil {
		t.Fatal(err)
	}
	if a, _ = f.s.Stop(ctx, a.ID); a.ReasonID != f.jam {
		t.Errorf("recoding the second half changed the first: %+v", a)
	}
}

func TestStopsFilters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const min = 60_000
	s1 := f.stop(t, f.m1, plant.Down, 0, 5*min)             // line 1, 5 min
	s2 := f.stop(t, f.m2, plant.Idle, 10*min, 10*min+30000) // line 1, 30 s
	s3 := f.stop(t, f.m3, plant.Down, 20*min, 30*min)       // line 2, 10 min
	s4 := f.stop(t, f.m1, plant.Changeover, 40*min, 0)      // line 1, ongoing
	if _, err := f.s.CodeStop(ctx, plant.Coding{StopID: s1, ReasonID: f.jam}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    StopQuery
		want []int64
	}{
		{"all, newest first", StopQuery{}, []int64{s4, s3, s2, s1}},
		{"machine", StopQuery{MachineID: f.m1}, []int64{s4, s1}},
		{"line 1", StopQuery{LineID: f.line1}, []int64{s4, s2, s1}},
		{"line 2", StopQuery{LineID: f.line2}, []int64{s3}},
		{"uncoded", StopQuery{Uncoded: true}, []int64{s4, s3, s2}},
		{"uncoded on line 1", StopQuery{LineID: f.line1, Uncoded: true}, []int64{s4, s2}},
		{"at least 1 min, ongoing measured to now", StopQuery{MinMS: min, Now: 45 * min}, []int64{s4, s3, s1}},
		{"at least 10 min, ongoing too short yet", StopQuery{MinMS: 10 * min, Now: 45 * min}, []int64{s3}},
		{"overlap", StopQuery{From: 4 * min, To: 20*min + 1}, []int64{s3, s2, s1}},
		{"ending at from does not overlap", StopQuery{From: 5 * min, To: 20 * min}, []int64{s2}},
		{"ongoing overlaps any later window", StopQuery{From: 100 * min, To: 200 * min}, []int64{s4}},
		{"limit", StopQuery{Limit: 2}, []int64{s4, s3}},
		{"unknown line", StopQuery{LineID: 99999}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.Stops(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, st := range got {
				ids = append(ids, st.ID)
			}
			if !equalIDs(ids, tt.want) {
				t.Errorf("stops = %v, want %v", ids, tt.want)
			}
		})
	}
	// LastStop prefers the ongoing stop, else the newest ended one.
	if st, err := f.s.LastStop(ctx, f.m1); err != nil || st.ID != s4 {
		t.Errorf("LastStop(m1) = %d, %v; want the ongoing %d", st.ID, err, s4)
	}
	later := f.stop(t, f.m3, plant.Down, 50*min, 51*min)
	if st, err := f.s.LastStop(ctx, f.m3); err != nil || st.ID != later {
		t.Errorf("LastStop(m3) = %d, %v; want the newest %d", st.ID, err, later)
	}
	if _, err := f.s.LastStop(ctx, 99999); !errors.Is(err, plant.ErrNotFound) {
		t.Errorf("LastStop(unknown) = %v, want ErrNotFound", err)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSpans(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, sp := range []struct {
		machine    int64
		state      plant.State
		start, end any
	}{
		{f.m1, plant.Running, 0, 100},
		{f.m1, plant.Down, 100, 200},
		{f.m1, plant.Running, 200, nil}, // open
		{f.m2, plant.Idle, 0, 1000},
	} {
		if _, err := f.s.w.Exec(`INSERT INTO state_spans(machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`,
			sp.machine, string(sp.state), sp.start, sp.end); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		from, to int64
		want     []int64 // starts
	}{
		{"everything", 0, 0, []int64{0, 100, 200}},
		{"inside one", 120, 150, []int64{100}},
		{"touching ends do not overlap", 100, 200, []int64{100}},
		{"open span reaches any later time", 5000, 6000, []int64{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.Spans(ctx, f.m1, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			var starts []int64
			for _, sp := range got {
				if sp.MachineID != f.m1 {
					t.Errorf("span of machine %d in m1's list", sp.MachineID)
				}
				starts = append(starts, sp.Start)
			}
			if !equalIDs(starts, tt.want) {
				t.Errorf("span starts = %v, want %v", starts, tt.want)
			}
		})
	}
	if got, err := f.s.Spans(ctx, f.m2, 1000, 3000); err != nil || len(got) != 0 {
		t.Errorf("m2 spans after its last one ended = %+v, %v; want none", got, err)
	}
	got, err := f.s.Spans(ctx, f.m1, 150, 250)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (plant.Span{MachineID: f.m1, State: plant.Down, Start: 100, End: 200}) ||
		got[1] != (plant.Span{MachineID: f.m1, State: plant.Running, Start: 200}) {
		t.Errorf("spans = %+v", got)
	}
}
