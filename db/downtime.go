package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"andon/plant"
)

// defaultStopLimit and maxStopLimit bound a stop list: a page shows the
// newest few hundred, and a forged limit must not read the whole table.
const (
	defaultStopLimit = 200
	maxStopLimit     = 10_000
)

// StopQuery selects stops for Stops. Zero fields do not filter.
type StopQuery struct {
	MachineID int64 // 0 = any
	LineID    int64 // 0 = any; machines whose parent is this line asset
	From, To  int64 // stops overlapping [From, To); 0 = unbounded
	Uncoded   bool  // only stops without a reason
	MinMS     int64 // only stops at least this long (ongoing ones measured to Now)
	Now       int64 // ms; 0 counts ongoing stops as long enough for any MinMS
	Limit     int   // default 200
}

// querier is what both the read pool and a transaction offer, so one query
// serves reads and the re-read inside a write.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stopSelect and scanStops go together. The machine's name is its display
// name or, without one, its path's machine level.
const stopSelect = `SELECT s.id, s.machine_id, COALESCE(NULLIF(a.display_name, ''), a.name), s.state, s.start_ms,
		COALESCE(s.end_ms, 0), COALESCE(s.reason_id, 0), COALESCE(r.name, ''), COALESCE(c.name, ''), r.planned,
		s.comment, s.coded_by, COALESCE(s.coded_at_ms, 0)
	FROM stops s
	JOIN assets a ON a.id = s.machine_id
	LEFT JOIN reasons r ON r.id = s.reason_id
	LEFT JOIN reasons c ON c.id = r.parent_id`

func queryStops(ctx context.Context, q querier, where string, args ...any) ([]plant.Stop, error) {
	rows, err := q.QueryContext(ctx, stopSelect+" "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []plant.Stop
	for rows.Next() {
		st, err := scanStop(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func oneStop(ctx context.Context, q querier, where string, args ...any) (plant.Stop, error) {
	stops, err := queryStops(ctx, q, where+" LIMIT 1", args...)
	if err != nil {
		return plant.Stop{}, err
	}
	if len(stops) == 0 {
		return plant.Stop{}, plant.ErrNotFound
	}
	return stops[0], nil
}

// Stops returns the stops q selects, newest first.
func (s *Store) Stops(ctx context.Context, q StopQuery) ([]plant.Stop, error) {
	f := StopFilter{LineID: q.LineID, From: q.From, To: q.To, Uncoded: q.Uncoded, MinMS: q.MinMS, Now: q.Now}
	if q.MachineID != 0 {
		f.MachineIDs = []int64{q.MachineID}
	}
	where, args := f.where()
	limit := q.Limit
	if limit <= 0 {
		limit = defaultStopLimit
	}
	limit = min(limit, maxStopLimit)
	stops, err := queryStops(ctx, s.r, where+" ORDER BY s.start_ms DESC, s.id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("db: stops: %w", err)
	}
	return stops, nil
}

// Stop returns one stop.
func (s *Store) Stop(ctx context.Context, id int64) (plant.Stop, error) {
	st, err := oneStop(ctx, s.r, "WHERE s.id = ?", id)
	if err != nil {
		return st, fmt.Errorf("db: stop %d: %w", id, err)
	}
	return st, nil
}

// LastStop returns a machine's ongoing stop or, when it is not stopped, its
// newest ended one: what an operator at the machine is asked about.
func (s *Store) LastStop(ctx context.Context, machineID int64) (plant.Stop, error) {
	st, err := oneStop(ctx, s.r, "WHERE s.machine_id = ? ORDER BY s.end_ms IS NULL DESC, s.start_ms DESC, s.id DESC", machineID)
	if err != nil {
		return st, fmt.Errorf("db: last stop of machine %d: %w", machineID, err)
	}
	return st, nil
}

// nowOr is at, or the current time when the caller left it 0.
func nowOr(at int64) int64 {
	if at != 0 {
		return at
	}
	return time.Now().UnixMilli()
}

// CodeStop records an operator's reason for a stop, replacing any earlier
// one; every coding is kept in codings. It returns the stop as now stored.
// Forged ids are plant.ErrNotFound, a category or hidden reason or a long
// comment plant.ErrInvalid, and in every such case nothing changes.
func (s *Store) CodeStop(ctx context.Context, c plant.Coding) (st plant.Stop, err error) {
	c.Comment = strings.TrimSpace(c.Comment)
	c.By = strings.TrimSpace(c.By)
	if c.By == "" {
		c.By = "operator"
	}
	switch {
	case utf8.RuneCountInString(c.Comment) > maxCommentLen:
		return st, invalid("stop %d: the comment is longer than %d characters", c.StopID, maxCommentLen)
	case utf8.RuneCountInString(c.By) > maxByLen:
		return st, invalid("stop %d: the name of who coded it is longer than %d characters", c.StopID, maxByLen)
	case c.ReasonID == 0:
		return st, invalid("stop %d: choose a reason", c.StopID)
	}
	c.At = nowOr(c.At)

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("db: code stop %d: begin: %w", c.StopID, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	before, err := oneStop(ctx, tx, "WHERE s.id = ?", c.StopID)
	if err != nil {
		return st, fmt.Errorf("db: code stop %d: %w", c.StopID, err)
	}
	var (
		isCat, hidden bool
		name          string
	)
	err = tx.QueryRowContext(ctx, `SELECT parent_id IS NULL, hidden, name FROM reasons WHERE id = ?`, c.ReasonID).Scan(&isCat, &hidden, &name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, notFound("stop %d: reason %d", c.StopID, c.ReasonID)
	case err != nil:
		return st, fmt.Errorf("db: code stop %d: reason %d: %w", c.StopID, c.ReasonID, err)
	case isCat:
		return st, invalid("stop %d: %q is a category; choose one of its reasons", c.StopID, name)
	case hidden:
		return st, invalid("stop %d: reason %q is no longer offered", c.StopID, name)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stops SET reason_id = ?, comment = ?, coded_by = ?, coded_at_ms = ? WHERE id = ?`,
		c.ReasonID, c.Comment, c.By, c.At, c.StopID); err != nil {
		return st, fmt.Errorf("db: code stop %d: %w", c.StopID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO codings(stop_id, reason_id, comment, by, at_ms, action) VALUES (?, ?, ?, ?, ?, 'code')`,
		c.StopID, c.ReasonID, c.Comment, c.By, c.At); err != nil {
		return st, fmt.Errorf("db: code stop %d: log: %w", c.StopID, err)
	}
	if st, err = oneStop(ctx, tx, "WHERE s.id = ?", c.StopID); err != nil {
		return st, fmt.Errorf("db: code stop %d: re-read: %w", c.StopID, err)
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("db: code stop %d: commit: %w", c.StopID, err)
	}
	s.log.Info("stop coded", "stop", c.StopID, "machine", st.MachineID, "reason", c.ReasonID, "reason_name", name,
		"by", c.By, "recode", before.ReasonID != 0, "previous_reason", before.ReasonID)
	return st, nil
}

// SplitStop splits an ended stop at atMS into two stops that both keep its
// reason and comment, so an operator can then recode one part. An ongoing
// stop cannot be split (its end is not known yet), nor can it be split at
// or outside its ends.
func (s *Store) SplitStop(ctx context.Context, id, atMS int64, by string) (first, second plant.Stop, err error) {
	by = strings.TrimSpace(by)
	if by == "" {
		by = "operator"
	}
	if utf8.RuneCountInString(by) > maxByLen {
		return first, second, invalid("stop %d: the name of who split it is longer than %d characters", id, maxByLen)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return first, second, fmt.Errorf("db: split stop %d: begin: %w", id, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	st, err := oneStop(ctx, tx, "WHERE s.id = ?", id)
	if err != nil {
		return first, second, fmt.Errorf("db: split stop %d: %w", id, err)
	}
	switch {
	case st.Ongoing():
		return first, second, invalid("stop %d is still going on; it can be split once it has ended", id)
	case atMS <= st.Start || atMS >= st.End:
		return first, second, invalid("stop %d: the split must lie strictly between its start and its end", id)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stops SET end_ms = ? WHERE id = ?`, atMS, id); err != nil {
		return first, second, fmt.Errorf("db: split stop %d: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO stops(machine_id, state, start_ms, end_ms, reason_id, comment, coded_by, coded_at_ms)
		SELECT machine_id, state, ?, ?, reason_id, comment, coded_by, coded_at_ms FROM stops WHERE id = ?`, atMS, st.End, id)
	if err != nil {
		return first, second, fmt.Errorf("db: split stop %d: %w", id, err)
	}
	newID, err := res.LastInsertId()
	if err != nil {
		return first, second, fmt.Errorf("db: split stop %d: %w", id, err)
	}
	var reason sql.NullInt64
	if st.ReasonID != 0 {
		reason = sql.NullInt64{Int64: st.ReasonID, Valid: true}
	}
	now := time.Now().UnixMilli()
	for _, sid := range []int64{id, newID} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO codings(stop_id, reason_id, comment, by, at_ms, action) VALUES (?, ?, ?, ?, ?, 'split')`,
			sid, reason, st.Comment, by, now); err != nil {
			return first, second, fmt.Errorf("db: split stop %d: log: %w", id, err)
		}
	}
	if first, err = oneStop(ctx, tx, "WHERE s.id = ?", id); err != nil {
		return first, second, fmt.Errorf("db: split stop %d: re-read: %w", id, err)
	}
	if second, err = oneStop(ctx, tx, "WHERE s.id = ?", newID); err != nil {
		return first, second, fmt.Errorf("db: split stop %d: re-read: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return first, second, fmt.Errorf("db: split stop %d: commit: %w", id, err)
	}
	s.log.Info("stop split", "stop", id, "new_stop", newID, "at_ms", atMS, "by", by, "machine", st.MachineID)
	return first, second, nil
}

// Codings returns what was recorded about a stop, oldest first: codes,
// recodes and splits (a split's entry carries the reason the stop had).
func (s *Store) Codings(ctx context.Context, stopID int64) ([]plant.Coding, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT stop_id, COALESCE(reason_id, 0), comment, by, at_ms FROM codings
		WHERE stop_id = ? ORDER BY id`, stopID)
	if err != nil {
		return nil, fmt.Errorf("db: codings of stop %d: %w", stopID, err)
	}
	defer rows.Close()
	var out []plant.Coding
	for rows.Next() {
		var c plant.Coding
		if err := rows.Scan(&c.StopID, &c.ReasonID, &c.Comment, &c.By, &c.At); err != nil {
			return nil, fmt.Errorf("db: codings of stop %d: %w", stopID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: codings of stop %d: %w", stopID, err)
	}
	return out, nil
}

// Spans returns a machine's state spans overlapping [from, to), by start;
// 0 leaves that end unbounded. An open span has End 0.
func (s *Store) Spans(ctx context.Context, machineID, from, to int64) ([]plant.Span, error) {
	if to == 0 {
		to = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT machine_id, state, start_ms, COALESCE(end_ms, 0) FROM state_spans
		WHERE machine_id = ? AND start_ms < ? AND (end_ms IS NULL OR end_ms > ?)
		ORDER BY start_ms`, machineID, to, from)
	if err != nil {
		return nil, fmt.Errorf("db: spans of machine %d: %w", machineID, err)
	}
	defer rows.Close()
	var out []plant.Span
	for rows.Next() {
		var (
			sp    plant.Span
			state string
		)
		if err := rows.Scan(&sp.MachineID, &state, &sp.Start, &sp.End); err != nil {
			return nil, fmt.Errorf("db: spans of machine %d: %w", machineID, err)
		}
		sp.State = plant.State(state)
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: spans of machine %d: %w", machineID, err)
	}
	return out, nil
}
