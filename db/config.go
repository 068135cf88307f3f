package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"andon/plant"
)

// Limits on what admins type. They keep lists readable and rows small; the
// pages show the same limits in their forms.
const (
	maxNameLen     = 80  // reason, shift, break and machine display names
	maxCommentLen  = 500 // a stop's comment
	maxByLen       = 80  // who coded a stop
	maxCurrencyLen = 8
	dayMS          = 24 * 60 * 60 * 1000
)

// Keys of the settings table.
const (
	keyReasonsSeeded = "reasons_seeded"
	keyMicroStopMS   = "micro_stop_ms"
	keyNoReasonMS    = "no_reason_ms"
	keyCurrency      = "currency"
	keyHeartbeatMS   = "heartbeat_ms"
	keyStateCodes    = "state_codes" // JSON object: code (as text) -> state
	keyStateWords    = "state_words" // JSON object: word -> state
)

// invalid wraps plant.ErrInvalid with a message an admin or operator can act
// on; handlers show the message and answer 4xx.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), plant.ErrInvalid)
}

// notFound wraps plant.ErrNotFound the same way.
func notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), plant.ErrNotFound)
}

// checkName trims a name and checks it is not empty and not too long.
func checkName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("%s: a name is needed", what)
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", invalid("%s: the name is longer than %d characters", what, maxNameLen)
	}
	return name, nil
}

// seedReasons gives a new plant the default reason tree, once: the key
// records that it was done, so a tree an admin deleted does not come back
// on the next start.
func (s *Store) seedReasons(ctx context.Context) (err error) {
	// Already seeded is the rule: a plain read says so without the write
	// lock, which a command opening the database beside a busy server
	// (andon backup, andon export) would otherwise wait for.
	var v string
	err = s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, keyReasonsSeeded).Scan(&v)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("seed reasons: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed reasons: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	err = tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, keyReasonsSeeded).Scan(&v)
	switch {
	case err == nil:
		return tx.Rollback()
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("seed reasons: %w", err)
	}
	// DefaultReasons numbers its nodes from 1; the rows get their own ids,
	// so parents are mapped from the default's ids to the inserted ones.
	ids := make(map[int64]int64)
	for _, r := range plant.DefaultReasons() {
		var parent sql.NullInt64
		if r.ParentID != 0 {
			parent = sql.NullInt64{Int64: ids[r.ParentID], Valid: true}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO reasons(parent_id, name, planned, sort, hidden) VALUES (?, ?, ?, ?, ?)`,
			parent, r.Name, r.Planned, r.Sort, r.Hidden)
		if err != nil {
			return fmt.Errorf("seed reasons: %s: %w", r.Name, err)
		}
		if ids[r.ID], err = res.LastInsertId(); err != nil {
			return fmt.Errorf("seed reasons: %s: %w", r.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES (?, '1')`, keyReasonsSeeded); err != nil {
		return fmt.Errorf("seed reasons: mark seeded: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed reasons: commit: %w", err)
	}
	s.log.Info("default reason tree created", "reasons", len(ids))
	return nil
}

// Reasons returns the whole reason tree, hidden nodes included: each
// category (by sort, then name) followed by its reasons (by sort, then name).
func (s *Store) Reasons(ctx context.Context) ([]plant.Reason, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT r.id, COALESCE(r.parent_id, 0), r.name, r.planned, r.sort, r.hidden
		FROM reasons r LEFT JOIN reasons c ON c.id = r.parent_id
		ORDER BY COALESCE(c.sort, r.sort), COALESCE(c.name, r.name), COALESCE(c.id, r.id),
			r.parent_id IS NOT NULL, r.sort, r.name, r.id`)
	if err != nil {
		return nil, fmt.Errorf("db: reasons: %w", err)
	}
	defer rows.Close()
	var out []plant.Reason
	for rows.Next() {
		var r plant.Reason
		if err := rows.Scan(&r.ID, &r.ParentID, &r.Name, &r.Planned, &r.Sort, &r.Hidden); err != nil {
			return nil, fmt.Errorf("db: reasons: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: reasons: %w", err)
	}
	return out, nil
}

// SaveReason inserts r when its ID is 0 and updates it otherwise, returning
// its id. A reason's parent must be a category; a category that has reasons
// cannot become a reason itself, and a reason that codes stops cannot become
// a category, because either would leave stops or reasons hanging off a node
// of the wrong kind.
func (s *Store) SaveReason(ctx context.Context, r plant.Reason) (id int64, err error) {
	name, err := checkName("reason", r.Name)
	if err != nil {
		return 0, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: save reason: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if r.ID != 0 {
		var isCat bool
		err := tx.QueryRowContext(ctx, `SELECT parent_id IS NULL FROM reasons WHERE id = ?`, r.ID).Scan(&isCat)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, notFound("reason %d", r.ID)
		}
		if err != nil {
			return 0, fmt.Errorf("db: save reason %d: %w", r.ID, err)
		}
		if isCat && r.ParentID != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM reasons WHERE parent_id = ?`, r.ID).Scan(&n); err != nil {
				return 0, fmt.Errorf("db: save reason %d: %w", r.ID, err)
			}
			if n > 0 {
				return 0, invalid("category %q has reasons; it cannot be moved under another category", name)
			}
		}
		if !isCat && r.ParentID == 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM stops WHERE reason_id = ?`, r.ID).Scan(&n); err != nil {
				return 0, fmt.Errorf("db: save reason %d: %w", r.ID, err)
			}
			if n > 0 {
				return 0, invalid("reason %q codes stops; it cannot become a category", name)
			}
		}
	}
	var parent sql.NullInt64
	if r.ParentID != 0 {
		if r.ParentID == r.ID {
			return 0, invalid("reason %q cannot be its own category", name)
		}
		var isCat bool
		err := tx.QueryRowContext(ctx, `SELECT parent_id IS NULL FROM reasons WHERE id = ?`, r.ParentID).Scan(&isCat)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, notFound("category %d", r.ParentID)
		}
		if err != nil {
			return 0, fmt.Errorf("db: save reason: parent %d: %w", r.ParentID, err)
		}
		if !isCat {
			return 0, invalid("reason %q: %d is a reason, not a category", name, r.ParentID)
		}
		parent = sql.NullInt64{Int64: r.ParentID, Valid: true}
	}
	if r.ID == 0 {
		res, err := tx.ExecContext(ctx, `INSERT INTO reasons(parent_id, name, planned, sort, hidden) VALUES (?, ?, ?, ?, ?)`,
			parent, name, r.Planned, r.Sort, r.Hidden)
		if err != nil {
			return 0, fmt.Errorf("db: save reason %q: %w", name, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, fmt.Errorf("db: save reason %q: %w", name, err)
		}
	} else {
		id = r.ID
		if _, err := tx.ExecContext(ctx, `UPDATE reasons SET parent_id = ?, name = ?, planned = ?, sort = ?, hidden = ? WHERE id = ?`,
			parent, name, r.Planned, r.Sort, r.Hidden, r.ID); err != nil {
			return 0, fmt.Errorf("db: save reason %d: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: save reason %q: commit: %w", name, err)
	}
	s.log.Info("reason saved", "id", id, "name", name, "parent", r.ParentID, "planned", r.Planned, "hidden", r.Hidden)
	return id, nil
}

// shiftBreak is a break as stored in shifts.breaks.
type shiftBreak struct {
	Name  string `json:"name"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// Calendar returns the shifts (by start, then name) and the days without
// production ("2006-01-02" → true). Shifts and holidays are wall-clock times
// and dates in the plant's zone, so they are stored as such and need no
// conversion; loc is accepted so callers state the zone they will apply.
func (s *Store) Calendar(ctx context.Context, loc *time.Location) ([]plant.Shift, map[string]bool, error) {
	_ = loc
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, start_min, end_min, days, breaks FROM shifts ORDER BY start_min, name, id`)
	if err != nil {
		return nil, nil, fmt.Errorf("db: calendar: %w", err)
	}
	defer rows.Close()
	var shifts []plant.Shift
	for rows.Next() {
		var (
			sh     plant.Shift
			days   int
			breaks string
		)
		if err := rows.Scan(&sh.ID, &sh.Name, &sh.Start, &sh.End, &days, &breaks); err != nil {
			return nil, nil, fmt.Errorf("db: calendar: %w", err)
		}
		for d := range 7 {
			sh.Days[d] = days&(1<<d) != 0
		}
		var bs []shiftBreak
		if err := json.Unmarshal([]byte(breaks), &bs); err != nil {
			return nil, nil, fmt.Errorf("db: calendar: shift %d: breaks: %w", sh.ID, err)
		}
		for _, b := range bs {
			sh.Breaks = append(sh.Breaks, plant.Break{Name: b.Name, Start: plant.Clock(b.Start), End: plant.Clock(b.End)})
		}
		shifts = append(shifts, sh)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("db: calendar: %w", err)
	}
	hrows, err := s.r.QueryContext(ctx, `SELECT day FROM holidays`)
	if err != nil {
		return nil, nil, fmt.Errorf("db: calendar: holidays: %w", err)
	}
	defer hrows.Close()
	holidays := make(map[string]bool)
	for hrows.Next() {
		var d string
		if err := hrows.Scan(&d); err != nil {
			return nil, nil, fmt.Errorf("db: calendar: holidays: %w", err)
		}
		holidays[d] = true
	}
	if err := hrows.Err(); err != nil {
		return nil, nil, fmt.Errorf("db: calendar: holidays: %w", err)
	}
	return shifts, holidays, nil
}

// validShift checks a shift and returns it with trimmed names. Breaks are
// checked in minutes from the shift's start, so a night shift's break after
// midnight (22:00–06:00 with a break at 02:00) is inside it.
func validShift(sh plant.Shift) (plant.Shift, error) {
	name, err := checkName("shift", sh.Name)
	if err != nil {
		return sh, err
	}
	sh.Name = name
	if sh.Start < 0 || sh.Start > 1440 || sh.End < 0 || sh.End > 1440 {
		return sh, invalid("shift %q: times must be between 00:00 and 24:00", name)
	}
	// 24:00 as a start is the next day's 00:00.
	start := sh.Start % 1440
	length := (int(sh.End) - int(start) + 1440) % 1440
	if length == 0 {
		length = 1440 // start == end: a shift around the clock
	}
	anyDay := false
	for _, d := range sh.Days {
		anyDay = anyDay || d
	}
	if !anyDay {
		return sh, invalid("shift %q: choose at least one day", name)
	}
	type span struct{ from, to int }
	var spans []span
	for i, b := range sh.Breaks {
		bname := strings.TrimSpace(b.Name)
		if bname == "" {
			bname = "Break"
		}
		if utf8.RuneCountInString(bname) > maxNameLen {
			return sh, invalid("shift %q: break name is longer than %d characters", name, maxNameLen)
		}
		sh.Breaks[i].Name = bname
		if b.Start < 0 || b.Start > 1440 || b.End < 0 || b.End > 1440 {
			return sh, invalid("shift %q: break %q: times must be between 00:00 and 24:00", name, bname)
		}
		from := (int(b.Start) - int(start) + 1440) % 1440
		to := (int(b.End) - int(start) + 1440) % 1440
		if to == 0 {
			to = 1440 // ends at the shift's start: only possible at the end of a 24 h shift
		}
		if from >= to || to > length {
			return sh, invalid("shift %q: break %q must lie inside the shift", name, bname)
		}
		for _, o := range spans {
			if from < o.to && o.from < to {
				return sh, invalid("shift %q: break %q overlaps another break", name, bname)
			}
		}
		spans = append(spans, span{from, to})
	}
	return sh, nil
}

// SaveShift inserts sh when its ID is 0 and updates it otherwise, returning
// its id.
func (s *Store) SaveShift(ctx context.Context, sh plant.Shift) (int64, error) {
	sh.Breaks = append([]plant.Break(nil), sh.Breaks...) // validShift trims names; the caller's slice stays as it was
	sh, err := validShift(sh)
	if err != nil {
		return 0, err
	}
	days := 0
	for d, on := range sh.Days {
		if on {
			days |= 1 << d
		}
	}
	bs := make([]shiftBreak, 0, len(sh.Breaks))
	for _, b := range sh.Breaks {
		bs = append(bs, shiftBreak{Name: b.Name, Start: int(b.Start), End: int(b.End)})
	}
	breaks, err := json.Marshal(bs)
	if err != nil {
		return 0, fmt.Errorf("db: save shift %q: %w", sh.Name, err)
	}
	if sh.ID == 0 {
		res, err := s.w.ExecContext(ctx, `INSERT INTO shifts(name, start_min, end_min, days, breaks) VALUES (?, ?, ?, ?, ?)`,
			sh.Name, int(sh.Start), int(sh.End), days, string(breaks))
		if err != nil {
			return 0, fmt.Errorf("db: save shift %q: %w", sh.Name, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return 0, fmt.Errorf("db: save shift %q: %w", sh.Name, err)
		}
		s.log.Info("shift saved", "id", id, "name", sh.Name)
		return id, nil
	}
	res, err := s.w.ExecContext(ctx, `UPDATE shifts SET name = ?, start_min = ?, end_min = ?, days = ?, breaks = ? WHERE id = ?`,
		sh.Name, int(sh.Start), int(sh.End), days, string(breaks), sh.ID)
	if err := affectedOne(res, err); err != nil {
		return 0, fmt.Errorf("db: save shift %d: %w", sh.ID, err)
	}
	s.log.Info("shift saved", "id", sh.ID, "name", sh.Name)
	return sh.ID, nil
}

// affectedOne turns an update or delete that touched no row into
// plant.ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return plant.ErrNotFound
	}
	return nil
}

// DeleteShift removes a shift from the calendar.
func (s *Store) DeleteShift(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM shifts WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("db: delete shift %d: %w", id, err)
	}
	s.log.Info("shift deleted", "id", id)
	return nil
}

// SetHoliday marks day ("2006-01-02") as a day without production, or
// clears the mark.
func (s *Store) SetHoliday(ctx context.Context, day string, on bool) error {
	if t, err := time.Parse(time.DateOnly, day); err != nil || t.Format(time.DateOnly) != day {
		return invalid("holiday %q: want a date like 2026-12-24", day)
	}
	q := `DELETE FROM holidays WHERE day = ?`
	if on {
		q = `INSERT OR IGNORE INTO holidays(day) VALUES (?)`
	}
	if _, err := s.w.ExecContext(ctx, q, day); err != nil {
		return fmt.Errorf("db: holiday %s: %w", day, err)
	}
	s.log.Info("holiday set", "day", day, "on", on)
	return nil
}

// Settings returns the plant-wide settings, with plant.DefaultSettings()
// for keys never saved.
func (s *Store) Settings(ctx context.Context) (plant.Settings, error) {
	st := plant.DefaultSettings()
	rows, err := s.r.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return st, fmt.Errorf("db: settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return st, fmt.Errorf("db: settings: %w", err)
		}
		if err := setSetting(&st, k, v); err != nil {
			return st, fmt.Errorf("db: settings: %s: %w", k, err)
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("db: settings: %w", err)
	}
	return st, nil
}

// setSetting reads one stored key into st; unknown keys belong to others
// (reasons_seeded) and are skipped.
func setSetting(st *plant.Settings, k, v string) error {
	var err error
	switch k {
	case keyMicroStopMS:
		st.MicroStopMS, err = strconv.ParseInt(v, 10, 64)
	case keyNoReasonMS:
		st.NoReasonMS, err = strconv.ParseInt(v, 10, 64)
	case keyHeartbeatMS:
		st.HeartbeatMS, err = strconv.ParseInt(v, 10, 64)
	case keyCurrency:
		st.Currency = v
	case keyStateCodes:
		var m map[string]plant.State
		if err = json.Unmarshal([]byte(v), &m); err != nil {
			return err
		}
		st.StateCodes = make(map[float64]plant.State, len(m))
		for code, state := range m {
			f, err := strconv.ParseFloat(code, 64)
			if err != nil {
				return err
			}
			st.StateCodes[f] = state
		}
	case keyStateWords:
		err = json.Unmarshal([]byte(v), &st.StateWords)
	}
	return err
}

// mappable says whether a device may be mapped to s: offline and unknown are
// Andon's conclusions, never a device's word.
func mappable(s plant.State) bool {
	switch s {
	case plant.Running, plant.Idle, plant.Down, plant.Changeover, plant.PlannedStop:
		return true
	}
	return false
}

// SaveSettings validates and stores every setting. State words are stored
// as given; matching them case-insensitively is the reader's choice.
func (s *Store) SaveSettings(ctx context.Context, st plant.Settings) (err error) {
	for _, th := range []struct {
		name string
		ms   int64
	}{{"micro-stop threshold", st.MicroStopMS}, {"no-reason threshold", st.NoReasonMS}} {
		if th.ms < 0 || th.ms >= dayMS {
			return invalid("%s must be at least 0 and less than a day", th.name)
		}
	}
	if st.HeartbeatMS < 1000 || st.HeartbeatMS >= dayMS {
		return invalid("heartbeat must be at least 1 s and less than a day")
	}
	cur := strings.TrimSpace(st.Currency)
	if utf8.RuneCountInString(cur) > maxCurrencyLen {
		return invalid("currency must be at most %d characters", maxCurrencyLen)
	}
	codes := make(map[string]plant.State, len(st.StateCodes))
	for code, state := range st.StateCodes {
		if math.IsNaN(code) || math.IsInf(code, 0) {
			return invalid("state code %v is not a number", code)
		}
		if !mappable(state) {
			return invalid("state code %v: %q is not a state a machine can report", code, state)
		}
		codes[strconv.FormatFloat(code, 'g', -1, 64)] = state
	}
	for w, state := range st.StateWords {
		if strings.TrimSpace(w) == "" || utf8.RuneCountInString(w) > maxNameLen {
			return invalid("state word %q must have 1 to %d characters", w, maxNameLen)
		}
		if !mappable(state) {
			return invalid("state word %q: %q is not a state a machine can report", w, state)
		}
	}
	codesJSON, err := json.Marshal(codes)
	if err != nil {
		return fmt.Errorf("db: save settings: %w", err)
	}
	words := st.StateWords
	if words == nil {
		words = map[string]plant.State{}
	}
	wordsJSON, err := json.Marshal(words)
	if err != nil {
		return fmt.Errorf("db: save settings: %w", err)
	}
	kv := [][2]string{
		{keyMicroStopMS, strconv.FormatInt(st.MicroStopMS, 10)},
		{keyNoReasonMS, strconv.FormatInt(st.NoReasonMS, 10)},
		{keyHeartbeatMS, strconv.FormatInt(st.HeartbeatMS, 10)},
		{keyCurrency, cur},
		{keyStateCodes, string(codesJSON)},
		{keyStateWords, string(wordsJSON)},
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: save settings: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, p := range kv {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES (?, ?)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value`, p[0], p[1]); err != nil {
			return fmt.Errorf("db: save settings: %s: %w", p[0], err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: save settings: commit: %w", err)
	}
	s.log.Info("settings saved", "micro_stop_ms", st.MicroStopMS, "no_reason_ms", st.NoReasonMS,
		"heartbeat_ms", st.HeartbeatMS, "currency", cur, "state_codes", len(codes), "state_words", len(words))
	return nil
}

// MachineConfigs returns the configuration of every machine, by id; values
// never set are 0.
func (s *Store) MachineConfigs(ctx context.Context) (map[int64]plant.MachineConfig, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, COALESCE(ideal_cycle_s, 0), COALESCE(cost_per_hour, 0), COALESCE(margin_per_unit, 0), bottleneck
		FROM assets WHERE kind = 'machine'`)
	if err != nil {
		return nil, fmt.Errorf("db: machine configs: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]plant.MachineConfig)
	for rows.Next() {
		var (
			id int64
			c  plant.MachineConfig
		)
		if err := rows.Scan(&id, &c.IdealCycleS, &c.CostPerHour, &c.MarginPerUnit, &c.Bottleneck); err != nil {
			return nil, fmt.Errorf("db: machine configs: %w", err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: machine configs: %w", err)
	}
	return out, nil
}

// StateRules returns the stored state rule (JSON, validated by whoever
// saved it) of every machine that has one, by id.
func (s *Store) StateRules(ctx context.Context) (map[int64]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, state_rule FROM assets WHERE kind = 'machine' AND state_rule != ''`)
	if err != nil {
		return nil, fmt.Errorf("db: state rules: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]string)
	for rows.Next() {
		var (
			id   int64
			rule string
		)
		if err := rows.Scan(&id, &rule); err != nil {
			return nil, fmt.Errorf("db: state rules: %w", err)
		}
		out[id] = rule
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: state rules: %w", err)
	}
	return out, nil
}

// validConfig rejects values no KPI can use. Zero means "not set".
func validConfig(c plant.MachineConfig) error {
	for _, v := range []struct {
		name string
		x    float64
	}{{"ideal cycle time", c.IdealCycleS}, {"cost per hour", c.CostPerHour}, {"margin per unit", c.MarginPerUnit}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) || v.x < 0 {
			return invalid("%s must be a number of at least 0", v.name)
		}
	}
	return nil
}

// orNull stores a zero ("not set") as NULL, as the first migration did.
func orNull(x float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: x, Valid: x != 0}
}

// SetMachineConfig sets a machine's ideal cycle time, costs, bottleneck
// flag and display name ("" = its path's machine level).
func (s *Store) SetMachineConfig(ctx context.Context, id int64, c plant.MachineConfig, displayName string) error {
	if err := validConfig(c); err != nil {
		return fmt.Errorf("machine %d: %w", id, err)
	}
	displayName = strings.TrimSpace(displayName)
	if utf8.RuneCountInString(displayName) > maxNameLen {
		return invalid("machine %d: the name is longer than %d characters", id, maxNameLen)
	}
	err := s.writeMachineConfig(ctx, "id", id, c, &displayName)
	if errors.Is(err, plant.ErrInvalid) {
		return fmt.Errorf("machine %d: %w", id, err) // a message for the admin, as validConfig's
	}
	if err != nil {
		return fmt.Errorf("db: machine %d: config: %w", id, err)
	}
	s.log.Info("machine configured", "id", id, "ideal_cycle_s", c.IdealCycleS, "cost_per_hour", c.CostPerHour,
		"margin_per_unit", c.MarginPerUnit, "bottleneck", c.Bottleneck, "display_name", displayName)
	return nil
}

// SetMachineConfigByPath sets the configuration of the machine at path
// ("site/area/line/machine"), for the demo and the config file; its display
// name stays as it is. It creates nothing: a machine that has not published
// yet is plant.ErrNotFound.
func (s *Store) SetMachineConfigByPath(ctx context.Context, path string, c plant.MachineConfig) error {
	if err := validConfig(c); err != nil {
		return fmt.Errorf("machine %q: %w", path, err)
	}
	err := s.writeMachineConfig(ctx, "path", path, c, nil)
	if errors.Is(err, plant.ErrInvalid) {
		return fmt.Errorf("machine %q: %w", path, err) // a message for the admin, as validConfig's
	}
	if err != nil {
		return fmt.Errorf("db: machine %q: config: %w", path, err)
	}
	s.log.Info("machine configured", "path", path, "ideal_cycle_s", c.IdealCycleS, "cost_per_hour", c.CostPerHour,
		"margin_per_unit", c.MarginPerUnit, "bottleneck", c.Bottleneck)
	return nil
}

// writeMachineConfig stores c for the machine whose column col ("id" or
// "path", never user text) is key, and its display name unless that is nil.
// Making a machine its line's bottleneck clears the flag of the line's other
// machines in the same transaction, so a line never has two and never, even
// for a moment, loses the old one without gaining the new one.
func (s *Store) writeMachineConfig(ctx context.Context, col string, key any, c plant.MachineConfig, displayName *string) (err error) {
	if col != "id" && col != "path" {
		return fmt.Errorf("machine config by %q: not a key", col)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var (
		id         int64
		parent     sql.NullInt64
		parentKind string
	)
	err = tx.QueryRowContext(ctx, `SELECT a.id, a.parent_id, COALESCE(p.kind, '')
		FROM assets a LEFT JOIN assets p ON p.id = a.parent_id
		WHERE a.`+col+` = ? AND a.kind = 'machine'`, key).Scan(&id, &parent, &parentKind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return plant.ErrNotFound
	case err != nil:
		return err
	}
	if c.Bottleneck {
		// A machine's line is its parent: no level sits between the two.
		if parentKind != "line" {
			return invalid("only a machine on a line can be its line's bottleneck")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE assets SET bottleneck = 0
			WHERE parent_id = ? AND kind = 'machine' AND id != ? AND bottleneck != 0`, parent.Int64, id); err != nil {
			return fmt.Errorf("clear the line's bottleneck: %w", err)
		}
	}
	if displayName != nil {
		_, err = tx.ExecContext(ctx, `UPDATE assets SET ideal_cycle_s = ?, cost_per_hour = ?, margin_per_unit = ?, bottleneck = ?, display_name = ?
			WHERE id = ?`, orNull(c.IdealCycleS), orNull(c.CostPerHour), orNull(c.MarginPerUnit), c.Bottleneck, *displayName, id)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE assets SET ideal_cycle_s = ?, cost_per_hour = ?, margin_per_unit = ?, bottleneck = ?
			WHERE id = ?`, orNull(c.IdealCycleS), orNull(c.CostPerHour), orNull(c.MarginPerUnit), c.Bottleneck, id)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// SetStateRule stores a machine's state rule as JSON ("" = none). The
// caller validates it; the store only keeps it.
func (s *Store) SetStateRule(ctx context.Context, machineID int64, rule string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE assets SET state_rule = ? WHERE id = ? AND kind = 'machine'`, rule, machineID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("db: machine %d: state rule: %w", machineID, err)
	}
	s.log.Info("state rule set", "machine", machineID, "rule", rule)
	return nil
}
