package db

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"andon/plant"
)

// reloadEveryMS is how often the engine re-reads state rules, ideal cycle
// times and tag roles even when nobody called Reload, so an edit made
// behind its back (another process, a forgotten call) takes effect within a
// minute. A reload reads one row per machine and per tag: tens of
// milliseconds for a large plant, once a minute.
const reloadEveryMS = 60_000

// EngineConfig configures NewEngine.
type EngineConfig struct {
	Settings plant.Settings // heartbeat, state words and codes
	Logger   *slog.Logger   // nil = discard
	// Notify is called after a commit that changed spans or stops of these
	// machines (sorted ids), on the writer goroutine. It must not block; nil
	// is fine.
	Notify func(machineIDs []int64)
}

// Engine derives machine states from committed readings: it keeps
// state_spans and the stops that mirror them in step, inside the writer's
// transactions (it implements BatchHook). All its state lives in memory and
// is rebuilt from the tables by NewEngine, so a restart resumes where the
// last commit left off. On the ingest path it costs a few map lookups per
// reading (about 0.2 µs with the commit's share, BenchmarkEngineApply) and
// writes only when a machine's state changes (a few statements, tens of µs).
//
// Except for Reload and SetSettings, its methods must be called on one
// goroutine (the writer's).
type Engine struct {
	log    *slog.Logger
	notify func([]int64)
	st     engineStmts

	// Set from other goroutines, picked up by the next Apply or Tick.
	reload      atomic.Bool
	mu          sync.Mutex
	newSettings *plant.Settings

	// Touched only by the writer goroutine.
	settings   plant.Settings
	machines   map[int64]*engineMachine
	tags       map[int64]engineTag
	reloadedAt int64

	// Changes since the last Commit, to undo on Rollback or report on Commit.
	undo     map[int64]machineSnapshot
	fresh    []int64 // machines first met since the last Commit
	newTags  []int64
	changed  map[int64]struct{}
	sortBuf  []plant.Stored
	ruleOf   map[int64]machineRule // the rules read by the last reload
	ruleWarn map[int64]string      // rules already warned about, so a bad one is logged once
}

// engineStmts are prepared once, when the write connection is free: a
// transaction holds the only connection, so nothing can be prepared on the
// pool while one is open. tx.StmtContext then reuses them on that connection.
type engineStmts struct {
	selTag, openSpan, openStop, closeSpan, closeStop *sql.Stmt
	dropSpan, restateStop, dropCodings, dropStop     *sql.Stmt
	all                                              []*sql.Stmt
}

// engineMachine is what the engine knows about one machine.
type engineMachine struct {
	id   int64
	tr   plant.StateTracker
	rule *plant.RuleState // nil without a state rule
}

// machineSnapshot is a machine as it was before a transaction changed it.
// Trackers and rule states hold no references, so copies are snapshots.
type machineSnapshot struct {
	tr      plant.StateTracker
	rule    plant.RuleState
	hasRule bool
}

type machineRule struct {
	rule   plant.Rule
	idealS float64
}

// engineTag is what the engine needs of a tag: whether it carries the
// machine's state, and its metric for state rules.
type engineTag struct {
	role, metric string
}

// queryer is what loading needs: the read pool at start, a transaction later.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// NewEngine loads, from s, each machine's open span, the time of its newest
// reading (max tags.last_ts_ms), and its state rule and ideal cycle time. It
// must run before the writer that will call it starts writing.
func NewEngine(ctx context.Context, s *Store, cfg EngineConfig) (*Engine, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		log:      logger,
		notify:   cfg.Notify,
		settings: normalSettings(cfg.Settings),
		machines: make(map[int64]*engineMachine),
		tags:     make(map[int64]engineTag),
		undo:     make(map[int64]machineSnapshot),
		changed:  make(map[int64]struct{}),
		ruleOf:   make(map[int64]machineRule),
		ruleWarn: make(map[int64]string),
	}
	open := make(map[int64]plant.Span)
	err := scanRows(ctx, s.r, `SELECT machine_id, state, start_ms FROM state_spans WHERE end_ms IS NULL`, func(rows *sql.Rows) error {
		var sp plant.Span
		if err := rows.Scan(&sp.MachineID, &sp.State, &sp.Start); err != nil {
			return err
		}
		// At most one span per machine is open; should an old bug have left
		// two, the newer one is the machine's present.
		if prev, ok := open[sp.MachineID]; !ok || sp.Start > prev.Start {
			open[sp.MachineID] = sp
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("db: engine: open spans: %w", err)
	}
	seen := make(map[int64]int64)
	err = scanRows(ctx, s.r, `SELECT machine_id, MAX(last_ts_ms) FROM tags WHERE last_ts_ms IS NOT NULL GROUP BY machine_id`, func(rows *sql.Rows) error {
		var id, ts int64
		if err := rows.Scan(&id, &ts); err != nil {
			return err
		}
		seen[id] = ts
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("db: engine: last seen: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(seen)) {
		sp, ok := open[id]
		e.machines[id] = &engineMachine{id: id, tr: *plant.NewStateTracker(id, sp, ok, seen[id])}
	}
	for id, sp := range open {
		if _, ok := e.machines[id]; !ok {
			e.machines[id] = &engineMachine{id: id, tr: *plant.NewStateTracker(id, sp, true, 0)}
		}
	}
	if err := e.load(ctx, s.r); err != nil {
		return nil, err
	}
	if err := e.prepare(ctx, s.w); err != nil {
		return nil, err
	}
	e.log.Info("state engine loaded", "machines", len(e.machines), "open_spans", len(open), "rules", len(e.ruleOf))
	return e, nil
}

func (e *Engine) prepare(ctx context.Context, db *sql.DB) error {
	for _, d := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&e.st.selTag, `SELECT role, metric FROM tags WHERE id = ?`},
		{&e.st.openSpan, `INSERT INTO state_spans(machine_id, state, start_ms) VALUES (?, ?, ?)
		ON CONFLICT (machine_id, start_ms) DO UPDATE SET state = excluded.state, end_ms = NULL`},
		{&e.st.openStop, `INSERT INTO stops(machine_id, state, start_ms) VALUES (?, ?, ?)`},
		{&e.st.closeSpan, `UPDATE state_spans SET end_ms = ? WHERE machine_id = ? AND start_ms = ? AND end_ms IS NULL`},
		{&e.st.closeStop, `UPDATE stops SET end_ms = ? WHERE machine_id = ? AND end_ms IS NULL`},
		{&e.st.dropSpan, `DELETE FROM state_spans WHERE machine_id = ? AND start_ms = ?`},
		{&e.st.restateStop, `UPDATE stops SET state = ? WHERE machine_id = ? AND start_ms = ? AND end_ms IS NULL`},
		{&e.st.dropCodings, `DELETE FROM codings WHERE stop_id IN
		(SELECT id FROM stops WHERE machine_id = ? AND start_ms = ? AND end_ms IS NULL)`},
		{&e.st.dropStop, `DELETE FROM stops WHERE machine_id = ? AND start_ms = ? AND end_ms IS NULL`},
	} {
		st, err := db.PrepareContext(ctx, d.query)
		if err != nil {
			e.Close()
			return fmt.Errorf("db: engine: prepare %q: %w", d.query, err)
		}
		*d.dst = st
		e.st.all = append(e.st.all, st)
	}
	return nil
}

// Close releases the engine's prepared statements. Call it after the
// writer's Run has returned and before the store closes.
func (e *Engine) Close() error {
	var errs []error
	for _, st := range e.st.all {
		errs = append(errs, st.Close())
	}
	e.st.all = nil
	return errors.Join(errs...)
}

// stmt binds a prepared statement to the transaction.
func (e *Engine) stmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	return tx.StmtContext(ctx, st)
}

// Reload asks the engine to re-read state rules, ideal cycle times and tag
// roles at its next tick: call it after an admin changed them. Safe from any
// goroutine.
func (e *Engine) Reload() { e.reload.Store(true) }

// SetSettings replaces the heartbeat and state mappings from the next batch
// or tick on. Safe from any goroutine.
func (e *Engine) SetSettings(st plant.Settings) {
	st = normalSettings(st)
	e.mu.Lock()
	e.newSettings = &st
	e.mu.Unlock()
}

// normalSettings fills in what the engine cannot work without.
func normalSettings(st plant.Settings) plant.Settings {
	if st.HeartbeatMS <= 0 {
		st.HeartbeatMS = plant.DefaultHeartbeatMS
	}
	return st
}

// takeSettings applies settings set by SetSettings since the last call.
func (e *Engine) takeSettings() {
	e.mu.Lock()
	st := e.newSettings
	e.newSettings = nil
	e.mu.Unlock()
	if st != nil {
		e.settings = *st
	}
}

// Apply derives states from a batch of committed readings, inside the
// batch's transaction. Readings are taken in time order, whatever order the
// batch has, because spans follow time: a machine's temperature at 10:00:01
// must not open an unknown span that its state reading of 10:00:00 then
// comes too late for.
func (e *Engine) Apply(ctx context.Context, tx *sql.Tx, rs []plant.Stored, nowMS int64) error {
	e.takeSettings()
	if !slices.IsSortedFunc(rs, byTS) {
		// rs belongs to the writer (and OnCommit after us); sort a copy.
		e.sortBuf = append(e.sortBuf[:0], rs...)
		slices.SortStableFunc(e.sortBuf, byTS)
		rs = e.sortBuf
	}
	for i := range rs {
		r := &rs[i]
		m := e.machine(r.MachineID)
		e.remember(m)
		if r.Offline {
			// The device said it left: offline now, not after the heartbeat.
			if err := e.write(ctx, tx, m.tr.Leave(r.TS)); err != nil {
				return err
			}
			continue
		}
		if err := e.write(ctx, tx, m.tr.Seen(r.TS)); err != nil {
			return err
		}
		tag, err := e.tag(ctx, tx, r.TagID)
		if err != nil {
			return err
		}
		if tag.role == "state" {
			s := plant.MapState(r.Word, r.Value, r.Word != "", e.settings)
			if err := e.write(ctx, tx, m.tr.Observe(r.TS, s)); err != nil {
				return err
			}
		}
		// A word's value is its id in words, meaningless to a rule.
		if m.rule != nil && r.Word == "" {
			if s, ok := m.rule.Observe(tag.metric, r.TS, r.Value); ok {
				if err := e.ruleState(ctx, tx, m, s); err != nil {
					return err
				}
			}
		}
	}
	if len(e.sortBuf) > 0 {
		clear(e.sortBuf) // drop the words it holds until the next unsorted batch
		e.sortBuf = e.sortBuf[:0]
	}
	return nil
}

func byTS(a, b plant.Stored) int { return cmp.Compare(a.TS, b.TS) }

// Tick applies time: machines silent for longer than the heartbeat go
// offline, and counters that stood still (or metrics that stayed low) long
// enough make their machines down. It also re-reads rules when asked to or
// once a minute.
func (e *Engine) Tick(ctx context.Context, tx *sql.Tx, nowMS int64) error {
	e.takeSettings()
	if e.reload.Swap(false) || nowMS-e.reloadedAt >= reloadEveryMS {
		if err := e.load(ctx, tx); err != nil {
			return err
		}
		e.reloadedAt = nowMS
	}
	for _, id := range slices.Sorted(maps.Keys(e.machines)) {
		m := e.machines[id]
		before := e.snapshot(m)
		spans := m.tr.Tick(nowMS, e.settings.HeartbeatMS)
		if err := e.write(ctx, tx, spans); err != nil {
			e.keep(m, before)
			return err
		}
		if m.rule != nil {
			if s, ok := m.rule.At(nowMS); ok {
				if err := e.ruleState(ctx, tx, m, s); err != nil {
					e.keep(m, before)
					return err
				}
			}
		}
		if e.snapshot(m) != before {
			e.keep(m, before)
		}
	}
	return nil
}

// ruleState applies a state a rule derived. The rule dates it (a stop found
// by time began before it was noticed), but never before the open span: spans
// follow time. An offline machine stays offline until a reading arrives: a
// rule's conclusion is no reading.
func (e *Engine) ruleState(ctx context.Context, tx *sql.Tx, m *engineMachine, s plant.State) error {
	at := m.rule.Since()
	if open, ok := m.tr.Open(); ok {
		if open.State == plant.Offline {
			return nil
		}
		at = max(at, open.Start)
	}
	return e.write(ctx, tx, m.tr.Observe(at, s))
}

// Commit keeps the changes of the transaction that just committed and tells
// Notify which machines' spans changed.
func (e *Engine) Commit() {
	clear(e.undo)
	e.fresh = e.fresh[:0]
	e.newTags = e.newTags[:0]
	if len(e.changed) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(e.changed))
	clear(e.changed)
	if e.notify != nil {
		e.notify(ids)
	}
}

// Rollback forgets the changes of the transaction that failed: machines go
// back to where the last commit left them, and machines and tags first met
// in it are forgotten, because their ids may be given to others next time.
func (e *Engine) Rollback() {
	for id, snap := range e.undo {
		if m, ok := e.machines[id]; ok {
			m.restore(snap)
		}
	}
	for _, id := range e.fresh {
		delete(e.machines, id)
	}
	for _, id := range e.newTags {
		delete(e.tags, id)
	}
	clear(e.undo)
	clear(e.changed)
	e.fresh = e.fresh[:0]
	e.newTags = e.newTags[:0]
}

// machine returns the engine's record of a machine, making one for a
// machine first met (it has no span yet).
func (e *Engine) machine(id int64) *engineMachine {
	if m, ok := e.machines[id]; ok {
		return m
	}
	m := &engineMachine{id: id, tr: *plant.NewStateTracker(id, plant.Span{}, false, 0)}
	if r, ok := e.ruleOf[id]; ok {
		m.rule = plant.NewRuleState(r.rule, r.idealS)
	}
	e.machines[id] = m
	e.fresh = append(e.fresh, id)
	return m
}

func (e *Engine) snapshot(m *engineMachine) machineSnapshot {
	snap := machineSnapshot{tr: m.tr}
	if m.rule != nil {
		snap.rule, snap.hasRule = *m.rule, true
	}
	return snap
}

// remember keeps m as it is now, unless it was already kept in this
// transaction: the first snapshot is the committed one.
func (e *Engine) remember(m *engineMachine) {
	if _, ok := e.undo[m.id]; !ok {
		e.undo[m.id] = e.snapshot(m)
	}
}

// keep is remember with a snapshot taken earlier.
func (e *Engine) keep(m *engineMachine, snap machineSnapshot) {
	if _, ok := e.undo[m.id]; !ok {
		e.undo[m.id] = snap
	}
}

func (m *engineMachine) restore(snap machineSnapshot) {
	m.tr = snap.tr
	if m.rule != nil && snap.hasRule {
		*m.rule = snap.rule
	}
}

// tag returns a tag's role and metric, from the cache or the transaction.
func (e *Engine) tag(ctx context.Context, tx *sql.Tx, id int64) (engineTag, error) {
	if t, ok := e.tags[id]; ok {
		return t, nil
	}
	var t engineTag
	err := e.stmt(ctx, tx, e.st.selTag).QueryRowContext(ctx, id).Scan(&t.role, &t.metric)
	if err != nil {
		return t, fmt.Errorf("db: engine: tag %d: %w", id, err)
	}
	e.tags[id] = t
	e.newTags = append(e.newTags, id)
	return t, nil
}

// load reads what the engine caches from configuration: every machine's
// state rule and ideal cycle time, and every tag's role and metric (so the
// ingest path asks the database only about tags created since). A machine
// whose rule or cycle time changed starts its rule afresh; one whose rule is
// unchanged keeps what its rule has seen. A rule that cannot be read is
// logged (once) and ignored rather than stopping ingest. Machines that no
// longer exist are forgotten, so no span is ever written for them.
func (e *Engine) load(ctx context.Context, q queryer) error {
	rules := make(map[int64]machineRule)
	exists := make(map[int64]bool, len(e.machines))
	err := scanRows(ctx, q, `SELECT id, state_rule, COALESCE(ideal_cycle_s, 0) FROM assets WHERE kind = 'machine'`,
		func(rows *sql.Rows) error {
			var (
				id     int64
				text   string
				idealS float64
			)
			if err := rows.Scan(&id, &text, &idealS); err != nil {
				return err
			}
			exists[id] = true
			if text == "" {
				return nil
			}
			r, err := plant.ParseRule(text)
			if err != nil {
				if e.ruleWarn[id] != text {
					e.ruleWarn[id] = text
					e.log.Warn("state rule ignored", "machine", id, "err", err)
				}
				return nil
			}
			delete(e.ruleWarn, id)
			if r.Kind != "" {
				rules[id] = machineRule{rule: r, idealS: idealS}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("db: engine: machines: %w", err)
	}
	tags := make(map[int64]engineTag, len(e.tags))
	err = scanRows(ctx, q, `SELECT id, role, metric FROM tags`, func(rows *sql.Rows) error {
		var (
			id int64
			t  engineTag
		)
		if err := rows.Scan(&id, &t.role, &t.metric); err != nil {
			return err
		}
		tags[id] = t
		return nil
	})
	if err != nil {
		return fmt.Errorf("db: engine: tags: %w", err)
	}
	e.tags = tags
	e.newTags = e.newTags[:0]
	for id := range e.machines {
		if !exists[id] {
			delete(e.machines, id)
		}
	}
	var fresh []*engineMachine
	for id, m := range e.machines {
		r, ok := rules[id]
		switch {
		case !ok:
			m.rule = nil
		case m.rule == nil || e.ruleOf[id] != r:
			m.rule = plant.NewRuleState(r.rule, r.idealS)
			fresh = append(fresh, m)
		}
	}
	e.ruleOf = rules
	for _, m := range fresh {
		if err := e.seedRule(ctx, q, m); err != nil {
			return err
		}
	}
	return nil
}

// seedRule gives a rule that starts afresh its metric's newest stored value,
// so that a counter standing still through a restart or a rule change is
// still noticed, without waiting for its next reading.
func (e *Engine) seedRule(ctx context.Context, q queryer, m *engineMachine) error {
	metric := m.rule.Rule().Metric
	err := scanRows(ctx, q, `SELECT last_ts_ms, last_value FROM tags
		WHERE machine_id = ? AND metric = ? AND text = 0 AND last_ts_ms IS NOT NULL AND last_value IS NOT NULL`,
		func(rows *sql.Rows) error {
			var (
				ts int64
				v  float64
			)
			if err := rows.Scan(&ts, &v); err != nil {
				return err
			}
			m.rule.Observe(metric, ts, v)
			return nil
		}, m.id, metric)
	if err != nil {
		return fmt.Errorf("db: engine: seed the state rule of machine %d: %w", m.id, err)
	}
	return nil
}

// write stores the spans a tracker returned and mirrors stop states into
// stops: a stop opens with its span and ends with it. A span dropped for
// zero length is deleted, and so is its stop, unless the state replacing it
// is a stop too: then the stop (and whatever an operator already said about
// it) stays and only its state changes.
func (e *Engine) write(ctx context.Context, tx *sql.Tx, spans []plant.Span) error {
	replaced := false // the previous span was a dropped stop kept for its replacement
	for i, sp := range spans {
		e.changed[sp.MachineID] = struct{}{}
		var err error
		switch {
		case sp.Dropped():
			replaced = false
			err = e.drop(ctx, tx, sp, spans[i+1:], &replaced)
		case sp.End == 0:
			err = e.open(ctx, tx, sp, replaced)
			replaced = false
		default:
			replaced = false
			err = e.close(ctx, tx, sp)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) open(ctx context.Context, tx *sql.Tx, sp plant.Span, stopKept bool) error {
	// The upsert makes reopening a span that somehow still exists at the
	// same start (a restart between two writes of an old version) harmless.
	_, err := e.stmt(ctx, tx, e.st.openSpan).ExecContext(ctx,
		sp.MachineID, string(sp.State), sp.Start)
	if err != nil {
		return fmt.Errorf("db: engine: machine %d: open %s span at %d: %w", sp.MachineID, sp.State, sp.Start, err)
	}
	e.log.Debug("machine state", "machine", sp.MachineID, "state", sp.State, "start_ms", sp.Start)
	if !sp.State.IsStop() || stopKept {
		return nil
	}
	if _, err := e.stmt(ctx, tx, e.st.openStop).ExecContext(ctx,
		sp.MachineID, string(sp.State), sp.Start); err != nil {
		return fmt.Errorf("db: engine: machine %d: open %s stop at %d: %w", sp.MachineID, sp.State, sp.Start, err)
	}
	return nil
}

func (e *Engine) close(ctx context.Context, tx *sql.Tx, sp plant.Span) error {
	if _, err := e.stmt(ctx, tx, e.st.closeSpan).ExecContext(ctx,
		sp.End, sp.MachineID, sp.Start); err != nil {
		return fmt.Errorf("db: engine: machine %d: close span at %d: %w", sp.MachineID, sp.Start, err)
	}
	if !sp.State.IsStop() {
		return nil
	}
	if _, err := e.stmt(ctx, tx, e.st.closeStop).ExecContext(ctx,
		sp.End, sp.MachineID); err != nil {
		return fmt.Errorf("db: engine: machine %d: end stop at %d: %w", sp.MachineID, sp.End, err)
	}
	return nil
}

func (e *Engine) drop(ctx context.Context, tx *sql.Tx, sp plant.Span, rest []plant.Span, kept *bool) error {
	if _, err := e.stmt(ctx, tx, e.st.dropSpan).ExecContext(ctx,
		sp.MachineID, sp.Start); err != nil {
		return fmt.Errorf("db: engine: machine %d: drop span at %d: %w", sp.MachineID, sp.Start, err)
	}
	if !sp.State.IsStop() {
		return nil
	}
	if len(rest) > 0 && rest[0].End == 0 && rest[0].Start == sp.Start && rest[0].State.IsStop() {
		if _, err := e.stmt(ctx, tx, e.st.restateStop).ExecContext(ctx,
			string(rest[0].State), sp.MachineID, sp.Start); err != nil {
			return fmt.Errorf("db: engine: machine %d: restate stop at %d: %w", sp.MachineID, sp.Start, err)
		}
		*kept = true
		return nil
	}
	// The stop never was: its codings go with it (the foreign key needs it).
	if _, err := e.stmt(ctx, tx, e.st.dropCodings).ExecContext(ctx,
		sp.MachineID, sp.Start); err != nil {
		return fmt.Errorf("db: engine: machine %d: drop codings of stop at %d: %w", sp.MachineID, sp.Start, err)
	}
	if _, err := e.stmt(ctx, tx, e.st.dropStop).ExecContext(ctx,
		sp.MachineID, sp.Start); err != nil {
		return fmt.Errorf("db: engine: machine %d: drop stop at %d: %w", sp.MachineID, sp.Start, err)
	}
	return nil
}

// scanRows runs a query and calls scan for each row.
func scanRows(ctx context.Context, q queryer, query string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

var _ BatchHook = (*Engine)(nil)
