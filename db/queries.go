package db

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"andon/plant"
)

// asset is one row of the asset tree as the queries need it.
type asset struct {
	id       int64
	parentID int64 // 0 for a root
	kind     string
	name     string
	path     string
	display  string
	// offlineMS is when a machine's device announced it left; 0 if it
	// has not, or came back since.
	offlineMS int64
}

// tagColumns and scanTag go together: every tag query selects these, with
// the tag table as t, its machine as a and the last word as w.
const tagColumns = `t.id, t.machine_id, a.path, t.metric, t.topic, t.unit, t.role, t.text, t.hidden,
	t.last_ts_ms, t.last_value, w.word, t.created_ms`

// tagFrom joins the last word of text tags. last_value holds the word's id
// for them; a number stored later for a text tag may name an unrelated word,
// the price of the text flag following the tag's first reading.
const tagFrom = `FROM tags t
	JOIN assets a ON a.id = t.machine_id
	LEFT JOIN words w ON t.text = 1 AND w.id = CAST(t.last_value AS INTEGER)`

func scanTag(rows *sql.Rows) (plant.Tag, error) {
	var (
		t       plant.Tag
		lastTS  sql.NullInt64
		lastVal sql.NullFloat64
		word    sql.NullString
	)
	err := rows.Scan(&t.ID, &t.MachineID, &t.Machine, &t.Metric, &t.Topic, &t.Unit, &t.Role, &t.Text, &t.Hidden,
		&lastTS, &lastVal, &word, &t.Created)
	t.LastTS, t.LastValue = lastTS.Int64, lastVal.Float64
	if t.Text {
		t.LastWord = word.String
	}
	return t, err
}

func queryTags(ctx context.Context, q *sql.DB, where string, args ...any) ([]plant.Tag, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+tagColumns+" "+tagFrom+" "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tags []plant.Tag
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, rows.Err()
}

// Lines returns every line with its machines, each machine with its
// non-hidden tags and LastSeen (over all its tags, hidden ones included: a
// hidden tag still shows the machine is alive). Lines come in path order,
// machines in natural name order ("press-2" before "press-10"). Machines
// published without a line level come last, in a Line with ID 0.
func (s *Store) Lines(ctx context.Context) ([]plant.Line, error) {
	assets, err := s.assets(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: lines: %w", err)
	}
	tags, err := queryTags(ctx, s.r, "ORDER BY t.machine_id, t.metric")
	if err != nil {
		return nil, fmt.Errorf("db: lines: tags: %w", err)
	}
	byMachine := make(map[int64][]plant.Tag)
	lastSeen := make(map[int64]int64)
	for _, t := range tags {
		lastSeen[t.MachineID] = max(lastSeen[t.MachineID], t.LastTS)
		if !t.Hidden {
			byMachine[t.MachineID] = append(byMachine[t.MachineID], t)
		}
	}

	lineIndex := make(map[int64]int) // line asset id -> index in lines
	var lines []plant.Line
	for _, a := range assets {
		if a.kind == "line" {
			lineIndex[a.id] = len(lines)
			lines = append(lines, plant.Line{ID: a.id, Name: a.name, Path: a.path})
		}
	}
	slices.SortFunc(lines, func(x, y plant.Line) int { return cmp.Compare(x.Path, y.Path) })
	for i, l := range lines {
		lineIndex[l.ID] = i
	}
	var noLine plant.Line
	for _, a := range assets {
		if a.kind != "machine" {
			continue
		}
		m := machineOf(a, assets)
		m.LastSeen = lastSeen[a.id]
		m.Tags = byMachine[a.id]
		if lineID := ancestorOfKind(a, assets, "line"); lineID != 0 {
			l := &lines[lineIndex[lineID]]
			l.Machines = append(l.Machines, m)
		} else {
			noLine.Machines = append(noLine.Machines, m)
		}
	}
	if len(noLine.Machines) > 0 {
		lines = append(lines, noLine)
	}
	for i := range lines {
		slices.SortFunc(lines[i].Machines, func(x, y plant.Machine) int {
			return cmp.Or(naturalCompare(x.Name, y.Name), cmp.Compare(x.Path.String(), y.Path.String()))
		})
	}
	return lines, nil
}

func (s *Store) assets(ctx context.Context) (map[int64]asset, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, COALESCE(parent_id, 0), kind, name, path, display_name, offline_ms FROM assets`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]asset)
	for rows.Next() {
		var a asset
		if err := rows.Scan(&a.id, &a.parentID, &a.kind, &a.name, &a.path, &a.display, &a.offlineMS); err != nil {
			return nil, err
		}
		out[a.id] = a
	}
	return out, rows.Err()
}

// machineOf builds a machine from its asset and its ancestors' kinds. The
// loop is bounded by the tree's four levels so a damaged parent chain cannot
// spin.
func machineOf(a asset, assets map[int64]asset) plant.Machine {
	m := plant.Machine{ID: a.id, Name: cmp.Or(a.display, a.name), OfflineSince: a.offlineMS}
	for i, cur := 0, a; i < 4; i++ {
		switch cur.kind {
		case "site":
			m.Path.Site = cur.name
		case "area":
			m.Path.Area = cur.name
		case "line":
			m.Path.Line = cur.name
		case "machine":
			if i == 0 {
				m.Path.Machine = cur.name
			}
		}
		p, ok := assets[cur.parentID]
		if !ok {
			break
		}
		cur = p
	}
	return m
}

func ancestorOfKind(a asset, assets map[int64]asset, kind string) int64 {
	cur := a
	for range 4 {
		p, ok := assets[cur.parentID]
		if !ok {
			return 0
		}
		if p.kind == kind {
			return p.id
		}
		cur = p
	}
	return 0
}

// Machine returns one machine with all its non-hidden tags, ordered by metric.
func (s *Store) Machine(ctx context.Context, id int64) (plant.Machine, error) {
	rows, err := s.r.QueryContext(ctx, `
		WITH RECURSIVE up(id, parent_id, kind, name, path, display_name, offline_ms, depth) AS (
			SELECT id, parent_id, kind, name, path, display_name, offline_ms, 0 FROM assets WHERE id = ?
			UNION ALL
			SELECT a.id, a.parent_id, a.kind, a.name, a.path, a.display_name, a.offline_ms, up.depth + 1
			FROM assets a JOIN up ON a.id = up.parent_id WHERE up.depth < 4
		)
		SELECT id, COALESCE(parent_id, 0), kind, name, path, display_name, offline_ms FROM up ORDER BY depth`, id)
	if err != nil {
		return plant.Machine{}, fmt.Errorf("db: machine %d: %w", id, err)
	}
	chain := make(map[int64]asset)
	var self asset
	for rows.Next() {
		var a asset
		if err := rows.Scan(&a.id, &a.parentID, &a.kind, &a.name, &a.path, &a.display, &a.offlineMS); err != nil {
			rows.Close()
			return plant.Machine{}, fmt.Errorf("db: machine %d: %w", id, err)
		}
		if a.id == id {
			self = a
		}
		chain[a.id] = a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return plant.Machine{}, fmt.Errorf("db: machine %d: %w", id, err)
	}
	if self.id == 0 || self.kind != "machine" {
		return plant.Machine{}, fmt.Errorf("db: machine %d: %w", id, plant.ErrNotFound)
	}
	m := machineOf(self, chain)

	var lastSeen sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(last_ts_ms) FROM tags WHERE machine_id = ?`, id).Scan(&lastSeen); err != nil {
		return plant.Machine{}, fmt.Errorf("db: machine %d: last seen: %w", id, err)
	}
	m.LastSeen = lastSeen.Int64
	m.Tags, err = queryTags(ctx, s.r, "WHERE t.machine_id = ? AND t.hidden = 0 ORDER BY t.metric", id)
	if err != nil {
		return plant.Machine{}, fmt.Errorf("db: machine %d: tags: %w", id, err)
	}
	return m, nil
}

// Tags returns every tag, hidden ones included, ordered by machine path and
// metric, for the admin tag list.
func (s *Store) Tags(ctx context.Context) ([]plant.Tag, error) {
	tags, err := queryTags(ctx, s.r, "ORDER BY a.path, t.metric")
	if err != nil {
		return nil, fmt.Errorf("db: tags: %w", err)
	}
	return tags, nil
}

// Series returns the points of one tag in [fromMS, toMS] as SeriesAt does
// with the resolution chosen for the range.
func (s *Store) Series(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int) ([]plant.Point, error) {
	sr, err := s.SeriesAt(ctx, tagID, fromMS, toMS, maxPoints, ResAuto)
	return sr.Points, err
}

// SeriesResult is a chart's data and where it came from.
type SeriesResult struct {
	Points   []plant.Point
	Res      Resolution // the table read: raw, 1m or 1h
	BucketMS int64      // envelope bucket width; 0 when Points are the readings themselves
}

// maxSeriesRows bounds the rows an automatic chart reads, since reading
// them is nearly all of its cost (~20 ms for 50,000 rows on a small
// machine): a level that would need more is passed over for the next
// coarser one, which draws nearly the same chart from far fewer rows. At the default
// 2,000 points a 1 Hz tag comes near it only at the top of the raw and
// minute ranges; a denser tag, or a chart with many more points, goes past.
const maxSeriesRows = 50_000

// SeriesAt returns the points of one tag in [fromMS, toMS], ascending, read
// from res (ResAuto: chosen by the range). Auto picks the coarsest
// resolution whose buckets are still finer than the chart's: with
// maxPoints/2 envelope buckets over the range, raw while a bucket is under a
// minute, the minute rollups while under an hour, else the hour rollups.
// So a 30-day chart reads ~43,000 minute rows instead of 2.6 million
// readings. A level with more than maxSeriesRows rows in the range is passed
// over for the next coarser one (a dense tag, or a chart of many points).
// When a resolution has nothing in the range (retention removed it), the
// next coarser one is tried, and a level passed over for its size last.
//
// When there are more than maxPoints, the range is cut into maxPoints/2
// equal time buckets and each non-empty bucket gives its minimum and its
// maximum, at its first row's time and one millisecond later: an envelope
// that keeps spikes visible however far the chart is zoomed out (rollups
// keep each minute's and hour's min and max for that). maxPoints <= 0 means
// no limit. An unknown tag is plant.ErrNotFound.
func (s *Store) SeriesAt(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int, res Resolution) (SeriesResult, error) {
	var exists int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM tags WHERE id = ?`, tagID).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return SeriesResult{}, fmt.Errorf("db: series of tag %d: %w", tagID, plant.ErrNotFound)
	}
	if err != nil {
		return SeriesResult{}, fmt.Errorf("db: series of tag %d: %w", tagID, err)
	}
	if toMS < fromMS {
		return SeriesResult{Res: ResRaw}, nil
	}
	buckets := int64(max(maxPoints/2, 1))
	// Ceiling division so that buckets × width covers the whole range.
	width := max((toMS-fromMS+1+buckets-1)/buckets, 1)
	tries := []Resolution{res}
	if res == ResAuto {
		if tries, err = s.autoResolutions(ctx, tagID, fromMS, toMS, maxPoints, width); err != nil {
			return SeriesResult{}, fmt.Errorf("db: series of tag %d: %w", tagID, err)
		}
	}
	var sr SeriesResult
	for _, r := range tries {
		if sr, err = s.seriesFrom(ctx, tagID, fromMS, toMS, maxPoints, r, width); err != nil || len(sr.Points) > 0 {
			break
		}
	}
	return sr, err
}

// autoResolutions lists the levels an automatic chart tries, in order: the
// coarsest whose rows are still finer than the chart's buckets of width and
// the coarser ones after it, with any level of more than maxSeriesRows rows
// in the range moved to the end, tried only if the others are empty.
func (s *Store) autoResolutions(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int, width int64) ([]Resolution, error) {
	levels := Resolutions
	switch {
	case maxPoints <= 0:
		// No limit: every reading is wanted, however many.
		return slices.Clone(levels), nil
	case width < Res1m.Width():
	case width < Res1h.Width():
		levels = levels[1:]
	default:
		levels = levels[2:]
	}
	var dense []Resolution
	for len(levels) > 1 {
		n, err := s.rowsAtMost(ctx, tagID, fromMS, toMS, levels[0], levels[1])
		if err != nil {
			return nil, err
		}
		if n <= maxSeriesRows {
			break
		}
		dense = append(dense, levels[0])
		levels = levels[1:]
	}
	return append(slices.Clone(levels), dense...), nil
}

// rowsAtMost bounds the rows res holds for the tag in [fromMS, toMS]
// cheaply: a rollup level has at most one row per bucket the range touches,
// and no level has more rows than there were readings, which the coarser
// level's counts tell by reading far fewer rows. A raw level cut by
// retention is overestimated, which only hands the chart to the minute
// rollups that would be its fallback anyway.
func (s *Store) rowsAtMost(ctx context.Context, tagID, fromMS, toMS int64, res, coarser Resolution) (int64, error) {
	buckets := int64(-1) // unbounded for raw readings
	if w := res.Width(); w > 0 {
		if buckets = (toMS-bucketOf(fromMS, w))/w + 1; buckets <= maxSeriesRows {
			return buckets, nil
		}
	}
	var readings int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(count), 0) FROM `+coarser.table()+`
		WHERE tag_id = ? AND bucket_ms BETWEEN ? AND ?`, tagID, bucketOf(fromMS, coarser.Width()), toMS).Scan(&readings)
	if err != nil {
		return 0, fmt.Errorf("rows of %s: %w", res, err)
	}
	if buckets >= 0 {
		return min(buckets, readings), nil
	}
	return readings, nil
}

// seriesFrom reads one resolution in a single pass: its rows as points when
// they fit in maxPoints, else the min/max envelope of width-wide buckets
// (see seriesBuilder).
func (s *Store) seriesFrom(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int, res Resolution, width int64) (SeriesResult, error) {
	out := SeriesResult{Res: res}
	b := newSeriesBuilder(fromMS, width, maxPoints)
	var err error
	if res == ResRaw {
		err = s.eachRow(ctx, `SELECT ts_ms, value FROM readings
			WHERE tag_id = ? AND ts_ms BETWEEN ? AND ? ORDER BY ts_ms`, []driver.Value{tagID, fromMS, toMS},
			func(row []driver.Value) error {
				ts, err := driverInt(row[0])
				if err != nil {
					return err
				}
				v, err := driverFloat(row[1])
				if err != nil {
					return err
				}
				b.add(ts, v, v)
				return nil
			})
	} else {
		// A rollup row stands for its whole bucket, so one that starts
		// before fromMS but reaches into the range belongs to it, unless
		// its readings all came before the range (last_ts_ms; only such a
		// first bucket needs the test).
		err = s.eachRow(ctx, `SELECT bucket_ms, min, max FROM `+res.table()+`
			WHERE tag_id = ?1 AND bucket_ms BETWEEN ?2 AND ?3 AND (bucket_ms >= ?4 OR last_ts_ms >= ?4) ORDER BY bucket_ms`,
			[]driver.Value{tagID, bucketOf(fromMS, res.Width()), toMS, fromMS},
			func(row []driver.Value) error {
				ts, err := driverInt(row[0])
				if err != nil {
					return err
				}
				mn, err := driverFloat(row[1])
				if err != nil {
					return err
				}
				mx, err := driverFloat(row[2])
				if err != nil {
					return err
				}
				b.add(ts, mn, mx)
				return nil
			})
	}
	if err != nil {
		return out, fmt.Errorf("db: series of tag %d from %s: %w", tagID, res, err)
	}
	out.Points, out.BucketMS = b.result()
	return out, nil
}

// Rejects returns the newest stored rejects first; limit <= 0 means the
// default of 1000.
func (s *Store) Rejects(ctx context.Context, limit int) ([]plant.Reject, error) {
	if limit <= 0 {
		limit = defaultMaxRejects
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT ts_ms, topic, reason, detail, payload FROM rejects ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("db: rejects: %w", err)
	}
	defer rows.Close()
	var out []plant.Reject
	for rows.Next() {
		var r plant.Reject
		if err := rows.Scan(&r.TS, &r.Topic, &r.Reason, &r.Detail, &r.Payload); err != nil {
			return nil, fmt.Errorf("db: rejects: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: rejects: %w", err)
	}
	return out, nil
}

// naturalCompare orders strings with runs of digits compared as numbers, so
// "press-2" sorts before "press-10".
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			// Compare the runs without leading zeros by length, then
			// digit by digit: no overflow however long the number.
			ra, rb := trimZeros(a[si:i]), trimZeros(b[sj:j])
			if c := cmp.Compare(len(ra), len(rb)); c != 0 {
				return c
			}
			if c := cmp.Compare(ra, rb); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(ca, cb); c != 0 {
			return c
		}
		i++
		j++
	}
	return cmp.Compare(len(a)-i, len(b)-j)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
