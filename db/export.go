package db

import (
	"container/heap"
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"

	"andon/plant"
)

// Resolution, its constants and ParseResolution live in rollup.go (shared
// with the chart queries). An export reads ResAuto ("") as raw: it gives
// exactly what was asked for, never a level chosen for it.

// Rollup says whether the resolution reads a rollup table.
func (r Resolution) Rollup() bool { return r == Res1m || r == Res1h }

// MaxExportTags bounds the tags of one readings export: each is a cursor
// open at once (and a column of the wide format).
const MaxExportTags = 500

// ReadingQuery selects readings for EachReading: the tags, in the order their
// rows should tie-break, and [From, To) in epoch ms. For a rollup resolution
// the buckets that start in the range are returned.
type ReadingQuery struct {
	TagIDs   []int64
	From, To int64
	Res      Resolution
}

// ReadingRow is one exported reading, or one rollup bucket.
type ReadingRow struct {
	Tag  int   // index into ReadingQuery.TagIDs
	TS   int64 // the reading's time, or the bucket's start
	Text bool  // a text tag: Word holds the value (raw) or the last value (rollups)
	Word string

	Value float64 // raw: the value

	// Rollups only.
	Min, Max, Avg float64
	Count         int64
	Last          float64
}

// ExportTags returns the tags with these ids in the order asked, hidden ones
// included. An unknown id is plant.ErrNotFound.
func (s *Store) ExportTags(ctx context.Context, ids []int64) ([]plant.Tag, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MaxExportTags {
		return nil, invalid("export: %d tags at once; at most %d", len(ids), MaxExportTags)
	}
	// One placeholder per id: the ids are bound, never spliced.
	ph := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	tags, err := queryTags(ctx, s.r, "WHERE t.id IN ("+ph+")", args...)
	if err != nil {
		return nil, fmt.Errorf("db: export tags: %w", err)
	}
	byID := make(map[int64]plant.Tag, len(tags))
	for _, t := range tags {
		byID[t.ID] = t
	}
	out := make([]plant.Tag, 0, len(ids))
	for _, id := range ids {
		t, ok := byID[id]
		if !ok {
			return nil, notFound("export: tag %d", id)
		}
		out = append(out, t)
	}
	return out, nil
}

// cursor is one tag's rows in time order, the head already scanned.
type cursor struct {
	tag  int
	text bool
	rows *sql.Rows
	head ReadingRow
}

// next scans the cursor's next row into head; false at the end.
func (c *cursor) next(rollup bool) (bool, error) {
	if !c.rows.Next() {
		return false, c.rows.Err()
	}
	r := ReadingRow{Tag: c.tag, Text: c.text}
	var word sql.NullString
	var err error
	if rollup {
		var sum float64
		err = c.rows.Scan(&r.TS, &r.Min, &r.Max, &sum, &r.Count, &r.Last, &word)
		if r.Count > 0 {
			r.Avg = sum / float64(r.Count)
		} else {
			r.Avg = math.NaN()
		}
	} else {
		err = c.rows.Scan(&r.TS, &r.Value, &word)
	}
	r.Word = word.String
	c.head = r
	return err == nil, err
}

// cursors is a min-heap of cursors by (time, tag order).
type cursors []*cursor

func (h cursors) Len() int { return len(h) }
func (h cursors) Less(i, j int) bool {
	if h[i].head.TS != h[j].head.TS {
		return h[i].head.TS < h[j].head.TS
	}
	return h[i].tag < h[j].tag
}
func (h cursors) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursors) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursors) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// EachReading calls fn with every reading (or rollup bucket) of the query's
// tags in [From, To), in time order and, at the same instant, in the order
// of q.TagIDs. It streams: one cursor per tag, each in primary-key order,
// merged in Go, so memory does not grow with the number of rows (a single
// ORDER BY over all tags would make SQLite sort them all first). All cursors
// share one read connection and one read transaction, so the export is a
// consistent snapshot while ingest goes on. An error from fn stops the
// iteration and is returned as it is.
func (s *Store) EachReading(ctx context.Context, q ReadingQuery, fn func(ReadingRow) error) (err error) {
	if len(q.TagIDs) > MaxExportTags {
		return invalid("export: %d tags at once; at most %d", len(q.TagIDs), MaxExportTags)
	}
	if len(q.TagIDs) == 0 || q.To <= q.From {
		return nil
	}
	// Every piece of these queries is a constant chosen here, never text
	// from the caller.
	var sel, table, tsCol, wordOf string
	rollup := q.Res.Rollup()
	switch q.Res {
	case ResRaw, "":
		sel, table, tsCol, wordOf = "r.ts_ms, r.value", "readings", "ts_ms", "r.value"
	case Res1m, Res1h:
		sel, tsCol, wordOf = "r.bucket_ms, r.min, r.max, r.sum, r.count, r.last", "bucket_ms", "r.last"
		table = "rollups_1m"
		if q.Res == Res1h {
			table = "rollups_1h"
		}
	default:
		return invalid("resolution %q: want raw, 1m or 1h", q.Res)
	}
	where := " WHERE r.tag_id = ? AND r." + tsCol + " >= ? AND r." + tsCol + " < ? ORDER BY r." + tsCol
	// Text tags store the id of their word as the value; numeric tags skip
	// the join, which costs a lookup per row.
	numQuery := "SELECT " + sel + ", NULL FROM " + table + " r" + where
	textQuery := "SELECT " + sel + ", w.word FROM " + table + " r LEFT JOIN words w ON w.id = CAST(" + wordOf + " AS INTEGER)" + where
	tags, err := s.ExportTags(ctx, q.TagIDs)
	if err != nil {
		return err
	}

	conn, err := s.r.Conn(ctx)
	if err != nil {
		return fmt.Errorf("db: export readings: %w", err)
	}
	defer conn.Close()
	// A deferred transaction takes its snapshot at the first read and keeps
	// it until the end, so every cursor sees the same committed readings.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("db: export readings: begin: %w", err)
	}
	h := make(cursors, 0, len(tags))
	defer func() {
		for _, c := range h {
			c.rows.Close()
		}
		// Read only: ending it cannot lose anything; an error here matters
		// only if nothing else went wrong.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && err == nil {
			err = fmt.Errorf("db: export readings: end: %w", rerr)
		}
	}()
	for i, t := range tags {
		query := numQuery
		if t.Text {
			query = textQuery
		}
		rows, err := conn.QueryContext(ctx, query, t.ID, q.From, q.To)
		if err != nil {
			return fmt.Errorf("db: export readings of tag %d: %w", t.ID, err)
		}
		c := &cursor{tag: i, text: t.Text, rows: rows}
		ok, err := c.next(rollup)
		if err != nil {
			rows.Close()
			return fmt.Errorf("db: export readings of tag %d: %w", t.ID, err)
		}
		if !ok {
			rows.Close()
			continue
		}
		h = append(h, c)
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := h[0]
		if err := fn(c.head); err != nil {
			return err
		}
		ok, err := c.next(rollup)
		if err != nil {
			return fmt.Errorf("db: export readings of tag %d: %w", tags[c.tag].ID, err)
		}
		if ok {
			heap.Fix(&h, 0)
			continue
		}
		c.rows.Close()
		heap.Pop(&h)
	}
	return nil
}

// StopFilter selects stops for EachStop. Zero fields do not filter.
type StopFilter struct {
	MachineIDs []int64 // any of these machines; nil = any
	LineID     int64   // machines whose parent is this line asset
	From, To   int64   // stops overlapping [From, To)
	Uncoded    bool    // only stops without a reason
	MinMS      int64   // only stops at least this long (ongoing ones measured to Now)
	Now        int64
}

// where is the WHERE clause (empty for no filter) and its arguments, over
// stopSelect's aliases: s the stop, a its machine.
func (f StopFilter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	if len(f.MachineIDs) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?,", len(f.MachineIDs)), ",")
		conds = append(conds, "s.machine_id IN ("+ph+")")
		for _, id := range f.MachineIDs {
			args = append(args, id)
		}
	}
	if f.LineID != 0 {
		conds = append(conds, "a.parent_id = ?")
		args = append(args, f.LineID)
	}
	if f.From != 0 {
		conds = append(conds, "(s.end_ms IS NULL OR s.end_ms > ?)")
		args = append(args, f.From)
	}
	if f.To != 0 {
		conds = append(conds, "s.start_ms < ?")
		args = append(args, f.To)
	}
	if f.Uncoded {
		conds = append(conds, "s.reason_id IS NULL")
	}
	if f.MinMS > 0 {
		now := f.Now
		if now == 0 {
			now = math.MaxInt64 / 2
		}
		conds = append(conds, "COALESCE(s.end_ms, ?) - s.start_ms >= ?")
		args = append(args, now, f.MinMS)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// EachStop calls fn with every stop the filter selects, oldest first,
// streamed from the read pool without a limit: the export of a year of stops
// holds one at a time. An error from fn stops it and is returned as it is.
func (s *Store) EachStop(ctx context.Context, f StopFilter, fn func(plant.Stop) error) error {
	where, args := f.where()
	rows, err := s.r.QueryContext(ctx, stopSelect+" "+where+" ORDER BY s.start_ms, s.id", args...)
	if err != nil {
		return fmt.Errorf("db: export stops: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		st, err := scanStop(rows)
		if err != nil {
			return fmt.Errorf("db: export stops: %w", err)
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: export stops: %w", err)
	}
	return nil
}

// scanStop reads one row of stopSelect.
func scanStop(rows *sql.Rows) (plant.Stop, error) {
	var (
		st      plant.Stop
		state   string
		planned sql.NullBool
	)
	if err := rows.Scan(&st.ID, &st.MachineID, &st.Machine, &state, &st.Start, &st.End, &st.ReasonID,
		&st.Reason, &st.Category, &planned, &st.Comment, &st.CodedBy, &st.CodedAt); err != nil {
		return st, err
	}
	st.State = plant.State(state)
	// Before an operator codes it, only a planned_stop state says a stop
	// was planned; once coded, the reason decides.
	if st.ReasonID != 0 {
		st.Planned = planned.Bool
	} else {
		st.Planned = st.State == plant.PlannedStop
	}
	return st, nil
}
