package db

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"andon/plant"
)

// engClock is a settable clock for the writer, so ticks happen at chosen times.
type engClock struct{ ms atomic.Int64 }

func (c *engClock) now() time.Time { return time.UnixMilli(c.ms.Load()) }
func (c *engClock) set(ms int64)   { c.ms.Store(ms) }

// engNotes records Notify calls.
type engNotes struct {
	mu  sync.Mutex
	ids []int64
}

func (n *engNotes) notify(ids []int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = append(n.ids, ids...)
}

func (n *engNotes) saw(id int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range n.ids {
		if x == id {
			return true
		}
	}
	return false
}

// engRig is an engine behind a real writer on a real store. The writer's
// own ticker is slowed to an hour unless tickEvery says otherwise, so tests
// tick by hand (tick) at the times they choose.
type engRig struct {
	s     *Store
	e     *Engine
	w     *Writer
	stop  func() error
	clock *engClock
	notes *engNotes
}

func newEngRig(t *testing.T, s *Store, st plant.Settings, tickEvery time.Duration) *engRig {
	t.Helper()
	if tickEvery == 0 {
		tickEvery = time.Hour
	}
	r := &engRig{s: s, clock: &engClock{}, notes: &engNotes{}}
	e, err := NewEngine(context.Background(), s, EngineConfig{Settings: st, Notify: r.notes.notify})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	// Cleanups run last in, first out: the writer stops, then the engine
	// closes, then the store.
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	r.e = e
	r.w = NewWriter(s, WriterConfig{Hook: e, TickEvery: tickEvery, Now: r.clock.now})
	r.stop = runWriter(t, r.w)
	return r
}

func (r *engRig) write(t *testing.T, rs ...plant.Reading) {
	t.Helper()
	if err := r.w.Write(context.Background(), rs); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// tick runs the engine's Tick at now in a transaction of its own, as the
// writer does. It is called only between writes (Write returns after the
// engine's Commit), so the engine is never used by two goroutines at once.
func (r *engRig) tick(t *testing.T, now int64) {
	t.Helper()
	ctx := context.Background()
	tx, err := r.s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.e.Tick(ctx, tx, now); err != nil {
		tx.Rollback()
		r.e.Rollback()
		t.Fatalf("Tick: %v", err)
	}
	if err := tx.Commit(); err != nil {
		r.e.Rollback()
		t.Fatal(err)
	}
	r.e.Commit()
}

var (
	engM1   = plant.Path{Line: "line-1", Machine: "m1"}
	engRule = plant.Path{Line: "line-1", Machine: "counted"}
)

func machineID(t *testing.T, s *Store, p plant.Path) int64 {
	t.Helper()
	var id int64
	if err := s.r.QueryRow(`SELECT id FROM assets WHERE path = ?`, p.String()).Scan(&id); err != nil {
		t.Fatalf("machine %s: %v", p, err)
	}
	return id
}

// engSpan and engStop are rows as tests compare them (End 0 = open).
type engSpan struct {
	State      plant.State
	Start, End int64
}

func spansOf(t *testing.T, s *Store, id int64) []engSpan {
	t.Helper()
	rows, err := s.r.Query(`SELECT state, start_ms, COALESCE(end_ms, 0) FROM state_spans WHERE machine_id = ? ORDER BY start_ms`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []engSpan
	for rows.Next() {
		var sp engSpan
		if err := rows.Scan(&sp.State, &sp.Start, &sp.End); err != nil {
			t.Fatal(err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func stopsOf(t *testing.T, s *Store, id int64) []engSpan {
	t.Helper()
	rows, err := s.r.Query(`SELECT state, start_ms, COALESCE(end_ms, 0) FROM stops WHERE machine_id = ? ORDER BY start_ms`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []engSpan
	for rows.Next() {
		var sp engSpan
		if err := rows.Scan(&sp.State, &sp.Start, &sp.End); err != nil {
			t.Fatal(err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkRows(t *testing.T, what string, got, want []engSpan) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s =\n  %+v\nwant\n  %+v", what, got, want)
	}
}

func TestEngineStates(t *testing.T) {
	state := func(ts int64, w string) plant.Reading { return word(engM1, "state", ts, w) }
	temp := func(ts int64) plant.Reading { return reading(engM1, "temperature", ts, 21.5) }
	settings := plant.DefaultSettings()
	settings.StateWords = map[string]plant.State{"Störung": plant.Down}
	settings.StateCodes = map[float64]plant.State{7: plant.Changeover}
	tests := []struct {
		name      string
		batches   [][]plant.Reading
		wantSpans []engSpan
		wantStops []engSpan
	}{
		{
			name:    "running, down, running: three spans and one ended stop",
			batches: [][]plant.Reading{{state(1000, "running")}, {state(5000, "down")}, {state(9000, "running")}},
			wantSpans: []engSpan{
				{plant.Running, 1000, 5000}, {plant.Down, 5000, 9000}, {plant.Running, 9000, 0},
			},
			wantStops: []engSpan{{plant.Down, 5000, 9000}},
		},
		{
			name:    "one batch out of time order is taken in time order",
			batches: [][]plant.Reading{{state(9000, "running"), temp(1000), state(5000, "idle"), state(1000, "running")}},
			wantSpans: []engSpan{
				{plant.Running, 1000, 5000}, {plant.Idle, 5000, 9000}, {plant.Running, 9000, 0},
			},
			wantStops: []engSpan{{plant.Idle, 5000, 9000}},
		},
		{
			name:      "a reading older than the open span is stored but changes no span",
			batches:   [][]plant.Reading{{state(5000, "running")}, {state(3000, "down")}},
			wantSpans: []engSpan{{plant.Running, 5000, 0}},
		},
		{
			name:      "a stop replaced at the same instant keeps one stop with the new state",
			batches:   [][]plant.Reading{{state(1000, "running")}, {state(5000, "down")}, {word(engM1, "status", 5000, "idle")}},
			wantSpans: []engSpan{{plant.Running, 1000, 5000}, {plant.Idle, 5000, 0}},
			wantStops: []engSpan{{plant.Idle, 5000, 0}},
		},
		{
			name:      "a stop replaced by running at the same instant leaves no stop",
			batches:   [][]plant.Reading{{state(1000, "idle")}, {state(5000, "down")}, {word(engM1, "status", 5000, "running")}},
			wantSpans: []engSpan{{plant.Idle, 1000, 5000}, {plant.Running, 5000, 0}},
			wantStops: []engSpan{{plant.Idle, 1000, 5000}},
		},
		{
			name:      "readings without a state tag give an unknown span",
			batches:   [][]plant.Reading{{temp(1000)}, {temp(2000)}},
			wantSpans: []engSpan{{plant.Unknown, 1000, 0}},
		},
		{
			name:      "an unmapped word is unknown, not a stop",
			batches:   [][]plant.Reading{{state(1000, "running")}, {state(2000, "warming up")}},
			wantSpans: []engSpan{{plant.Running, 1000, 2000}, {plant.Unknown, 2000, 0}},
		},
		{
			name: "configured words and codes",
			batches: [][]plant.Reading{
				{state(1000, "STÖRUNG")},
				{reading(engM1, "state", 2000, 7)}, // a number on a text tag is a code
				{reading(engM1, "state", 3000, 1)},
			},
			wantSpans: []engSpan{{plant.Down, 1000, 2000}, {plant.Changeover, 2000, 3000}, {plant.Running, 3000, 0}},
			wantStops: []engSpan{{plant.Down, 1000, 2000}, {plant.Changeover, 2000, 3000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := OpenTest(t)
			r := newEngRig(t, s, settings, 0)
			n := 0
			for _, b := range tt.batches {
				r.write(t, b...)
				n += len(b)
			}
			id := machineID(t, s, engM1)
			checkRows(t, "spans", spansOf(t, s, id), tt.wantSpans)
			checkRows(t, "stops", stopsOf(t, s, id), tt.wantStops)
			if got := countRows(t, s, "readings"); got != n {
				t.Errorf("readings = %d, want %d: every reading is stored, whatever it does to spans", got, n)
			}
			if !r.notes.saw(id) {
				t.Errorf("Notify never named machine %d", id)
			}
		})
	}
}

func TestEngineOfflineAndBack(t *testing.T) {
	const hb = 30_000
	s := OpenTest(t)
	st := plant.DefaultSettings()
	st.HeartbeatMS = hb
	// The writer's own ticker runs here, fast, on the test's clock.
	r := newEngRig(t, s, st, 5*time.Millisecond)
	r.clock.set(1000)
	r.write(t, word(engM1, "state", 1000, "running"), reading(engM1, "speed", 2000, 1200))
	id := machineID(t, s, engM1)

	r.clock.set(2000 + hb) // exactly the heartbeat: still online
	time.Sleep(50 * time.Millisecond)
	checkRows(t, "spans within the heartbeat", spansOf(t, s, id), []engSpan{{plant.Running, 1000, 0}})

	r.clock.set(2001 + hb)
	want := []engSpan{{plant.Running, 1000, 2000}, {plant.Offline, 2000, 0}}
	deadline := time.Now().Add(waitTimeout)
	for !reflect.DeepEqual(spansOf(t, s, id), want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	checkRows(t, "spans after the heartbeat", spansOf(t, s, id), want)

	// Back: the speed reading ends offline time; the state at the same
	// instant replaces the unknown span it opened.
	r.clock.set(60_000)
	r.write(t, reading(engM1, "speed", 60_000, 1100), word(engM1, "state", 60_000, "idle"))
	checkRows(t, "spans when back", spansOf(t, s, id), []engSpan{
		{plant.Running, 1000, 2000}, {plant.Offline, 2000, 60_000}, {plant.Idle, 60_000, 0},
	})
	checkRows(t, "stops", stopsOf(t, s, id), []engSpan{{plant.Idle, 60_000, 0}})
	if !r.notes.saw(id) {
		t.Errorf("Notify never named machine %d", id)
	}
}

func TestEngineRestart(t *testing.T) {
	s := OpenTest(t)
	st := plant.DefaultSettings()
	r := newEngRig(t, s, st, 0)
	r.write(t, word(engM1, "state", 1000, "running"))
	r.write(t, word(engM1, "state", 5000, "down"), reading(engM1, "speed", 6000, 0))
	stopAndCheck(t, r.stop)
	id := machineID(t, s, engM1)

	// A new engine and writer on the same file resume the open down span
	// and its stop, and the machine's last reading.
	r = newEngRig(t, s, st, 0)
	r.write(t, word(engM1, "state", 4000, "idle")) // older than the open span: ignored
	r.write(t, word(engM1, "state", 9000, "running"))
	checkRows(t, "spans", spansOf(t, s, id), []engSpan{
		{plant.Running, 1000, 5000}, {plant.Down, 5000, 9000}, {plant.Running, 9000, 0},
	})
	checkRows(t, "stops", stopsOf(t, s, id), []engSpan{{plant.Down, 5000, 9000}})
	stopAndCheck(t, r.stop)

	// Restarted long after the last reading: offline from that reading.
	r = newEngRig(t, s, st, 0)
	r.tick(t, 9000+st.HeartbeatMS+1)
	// The running span opened at the last reading closes where it opened,
	// so it is replaced by the offline span rather than kept with no length.
	checkRows(t, "spans after a restart past the heartbeat", spansOf(t, s, id), []engSpan{
		{plant.Running, 1000, 5000}, {plant.Down, 5000, 9000}, {plant.Offline, 9000, 0},
	})
}

func TestEngineRule(t *testing.T) {
	s := OpenTest(t)
	st := plant.DefaultSettings()
	st.HeartbeatMS = 3_600_000 // this test is about the rule, not about silence
	r := newEngRig(t, s, st, 0)
	total := func(ts int64, v float64) plant.Reading { return reading(engRule, "total", ts, v) }

	r.write(t, total(1000, 100))
	id := machineID(t, s, engRule)
	ctx := context.Background()
	if err := s.SetStateRule(ctx, id, `{"kind":"counter","metric":"total","factor":3}`); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMachineConfig(ctx, id, plant.MachineConfig{IdealCycleS: 10}, ""); err != nil {
		t.Fatal(err)
	}
	r.e.Reload()
	r.tick(t, 2000) // loads the rule, seeded with the counter's 100 at 1000

	r.write(t, total(11_000, 101)) // the counter moves: running
	r.tick(t, 40_999)              // 29.999 s without a part: not yet
	checkRows(t, "spans while counting", spansOf(t, s, id), []engSpan{
		{plant.Unknown, 1000, 11_000}, {plant.Running, 11_000, 0},
	})
	r.tick(t, 41_000) // 30 s = 3 × 10 s: down since one cycle after the last part
	checkRows(t, "spans when stalled", spansOf(t, s, id), []engSpan{
		{plant.Unknown, 1000, 11_000}, {plant.Running, 11_000, 21_000}, {plant.Down, 21_000, 0},
	})
	checkRows(t, "stops when stalled", stopsOf(t, s, id), []engSpan{{plant.Down, 21_000, 0}})

	r.write(t, total(50_000, 102))
	checkRows(t, "stops when counting again", stopsOf(t, s, id), []engSpan{{plant.Down, 21_000, 50_000}})
	if !r.notes.saw(id) {
		t.Errorf("Notify never named machine %d", id)
	}

	// Without an ideal cycle time the counter rule cannot decide.
	if err := s.SetMachineConfig(ctx, id, plant.MachineConfig{}, ""); err != nil {
		t.Fatal(err)
	}
	r.e.Reload()
	r.tick(t, 51_000)
	r.write(t, total(60_000, 102))
	r.tick(t, 1_000_000)
	checkRows(t, "spans without an ideal cycle time", spansOf(t, s, id), []engSpan{
		{plant.Unknown, 1000, 11_000}, {plant.Running, 11_000, 21_000}, {plant.Down, 21_000, 50_000}, {plant.Running, 50_000, 0},
	})
}

func TestEngineRollback(t *testing.T) {
	s := OpenTest(t)
	r := newEngRig(t, s, plant.DefaultSettings(), 0)
	r.write(t, word(engM1, "state", 1000, "running"))
	id := machineID(t, s, engM1)
	stopAndCheck(t, r.stop) // from here on the test drives the engine alone

	// A batch whose transaction fails: the engine must forget what it did.
	ctx := context.Background()
	var stateTag int64
	if err := s.r.QueryRow(`SELECT id FROM tags WHERE machine_id = ? AND metric = 'state'`, id).Scan(&stateTag); err != nil {
		t.Fatal(err)
	}
	down := []plant.Stored{{TagID: stateTag, MachineID: id, TS: 5000, Word: "down"}}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.e.Apply(ctx, tx, down, 5000); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	r.e.Rollback()

	// Had it kept the down state, idle at 7000 would close a down span that
	// does not exist.
	idle := []plant.Stored{{TagID: stateTag, MachineID: id, TS: 7000, Word: "idle"}}
	if tx, err = s.w.BeginTx(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.e.Apply(ctx, tx, idle, 7000); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r.e.Commit()
	checkRows(t, "spans", spansOf(t, s, id), []engSpan{{plant.Running, 1000, 7000}, {plant.Idle, 7000, 0}})
	checkRows(t, "stops", stopsOf(t, s, id), []engSpan{{plant.Idle, 7000, 0}})
}

// BenchmarkEngineApply measures the engine's cost per reading on the ingest
// path once its caches are warm: 100 machines, a state tag and nine gauges
// each, a state change per machine now and then. Run it with:
// go test -run '^$' -bench EngineApply ./db/
func BenchmarkEngineApply(b *testing.B) {
	s := OpenTest(b)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	stop := runWriter(b, w)
	const machines, metrics = 100, 10
	var seed []plant.Reading
	for m := range machines {
		p := plant.Path{Line: "bench", Machine: fmt.Sprintf("m%d", m)}
		seed = append(seed, word(p, "state", 1, "running"))
		for i := 1; i < metrics; i++ {
			seed = append(seed, reading(p, fmt.Sprintf("metric-%d", i), 1, 0))
		}
	}
	if err := w.Write(ctx, seed); err != nil {
		b.Fatal(err)
	}
	stopAndCheck(b, stop)
	e, err := NewEngine(ctx, s, EngineConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	rows, err := s.r.Query(`SELECT id, machine_id, metric FROM tags`)
	if err != nil {
		b.Fatal(err)
	}
	var batch []plant.Stored
	for rows.Next() {
		var st plant.Stored
		var metric string
		if err := rows.Scan(&st.TagID, &st.MachineID, &metric); err != nil {
			b.Fatal(err)
		}
		if metric == "state" {
			st.Word = "running"
		}
		batch = append(batch, st)
	}
	rows.Close()
	b.ResetTimer()
	ts := int64(10)
	for i := 0; b.Loop(); i++ {
		ts += 1000
		for j := range batch {
			batch[j].TS = ts
			if batch[j].Word != "" {
				batch[j].Word = "running"
				if i%10 == 0 {
					batch[j].Word = "idle"
				}
			}
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Apply(ctx, tx, batch, ts); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		e.Commit()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/reading")
}
