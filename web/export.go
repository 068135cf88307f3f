package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// ExportStore is what CSV exports, the JSON API and the backup download need
// beyond the pages' queries; *db.Store implements it.
type ExportStore interface {
	ExportTags(ctx context.Context, ids []int64) ([]plant.Tag, error)
	EachReading(ctx context.Context, q db.ReadingQuery, fn func(db.ReadingRow) error) error
	EachStop(ctx context.Context, f db.StopFilter, fn func(plant.Stop) error) error
	BackupTo(ctx context.Context, w io.Writer) (int64, error)
}

// Export kinds.
const (
	ExportReadings = "readings"
	ExportDowntime = "downtime"
	ExportKPIs     = "kpis"
	ExportTags     = "tags"
	ExportRejects  = "rejects"
)

// Export limits: every number a caller sends is bounded.
const (
	// maxExportMS bounds a readings or downtime range: ten years.
	maxExportMS = int64(10 * 366 * 24 * time.Hour / time.Millisecond)
	// maxKPIExportMS bounds a KPI export: each day or shift is a KPI
	// computation of every machine.
	maxKPIExportMS = int64(400 * 24 * time.Hour / time.Millisecond)
	// maxExportIDs bounds the ids in one filter.
	maxExportIDs = db.MaxExportTags
)

// Export says what to export; the web's handlers and `andon export` fill it
// from their parameters, so both write the same files.
type Export struct {
	Kind string // ExportReadings, ExportDowntime, ExportKPIs or ExportTags

	// Readings: the tags (in column order), the range [From, To) in epoch
	// ms, the resolution and long (default) or wide format.
	TagIDs []int64
	Res    db.Resolution
	Wide   bool

	// Downtime: machines and/or one line (Line set; line 0 is the machines
	// without a line), only stops without a reason of at least the
	// no-reason threshold (Uncoded), overlapping [From, To) when set.
	MachineIDs []int64
	Line       *int64
	Uncoded    bool

	// KPIs: per "period" (one row per plant, line and machine), "day" or
	// "shift", over [From, To); Line limits it to one line.
	By string

	From, To int64

	// Progress, if set, is told every few thousand rows how far the export
	// has come (0 to 1 where known, -1 where not) and how many rows it wrote.
	Progress func(done float64, rows int64)
}

// CSVOptions are how a CSV is written.
type CSVOptions struct {
	// BOM starts the file with a UTF-8 byte order mark, without which Excel
	// reads UTF-8 names as its local code page (Ã¼ for ü). On by default in
	// the web and the CLI; bom=0 / --bom=false leaves it out.
	BOM   bool
	Flush func() // called every few thousand rows; may be nil
}

// WriteCSV writes an export as CSV to w and returns the rows written (the
// header not counted). It is what `andon export` runs.
func (s *Server) WriteCSV(ctx context.Context, w io.Writer, x Export, opt CSVOptions) (int64, error) {
	t := newCSVTable(w, s.loc, opt.BOM, opt.Flush)
	if err := s.export(ctx, t, x); err != nil {
		return t.rows, err
	}
	return t.rows, t.finish()
}

// export writes x into t.
func (s *Server) export(ctx context.Context, t table, x Export) error {
	switch x.Kind {
	case ExportReadings:
		return s.exportReadings(ctx, t, x)
	case ExportDowntime:
		return s.exportDowntime(ctx, t, x)
	case ExportKPIs:
		return s.exportKPIs(ctx, t, x)
	case ExportTags:
		return s.exportTags(ctx, t)
	case ExportRejects:
		return s.exportRejects(ctx, t)
	}
	return fmt.Errorf("web: export %q: want readings, downtime, kpis, tags or rejects: %w", x.Kind, plant.ErrInvalid)
}

// checkRange validates [from, to) against a bound.
func checkRange(from, to, limit int64) error {
	switch {
	case to <= from:
		return fmt.Errorf("web: export: the start must be before the end: %w", plant.ErrInvalid)
	case to-from > limit:
		return fmt.Errorf("web: export: the range is longer than %d days: %w", limit/86_400_000, plant.ErrInvalid)
	}
	return nil
}

// tagLabel names a tag in a wide export's header: its machine's path and
// metric, with the unit.
func tagLabel(t plant.Tag) string {
	l := t.Machine + "/" + t.Metric
	if t.Unit != "" {
		l += " (" + t.Unit + ")"
	}
	return l
}

// exportReadings writes readings (or rollups) of the chosen tags.
//
// Long format: one row per reading, time then machine path, metric, the
// value(s) and the unit. Wide format: one row per instant (per bucket for
// rollups), a column per tag, empty where that tag has no reading at that
// instant; for rollups the column holds the average (the last word for text
// tags): the long format has min, max, count and last too.
func (s *Server) exportReadings(ctx context.Context, t table, x Export) error {
	es := s.store
	if len(x.TagIDs) == 0 {
		return fmt.Errorf("web: export readings: choose at least one tag: %w", plant.ErrInvalid)
	}
	if len(x.TagIDs) > maxExportIDs {
		return fmt.Errorf("web: export readings: at most %d tags at once: %w", maxExportIDs, plant.ErrInvalid)
	}
	if err := checkRange(x.From, x.To, maxExportMS); err != nil {
		return err
	}
	ids := dedupe(x.TagIDs)
	tags, err := es.ExportTags(ctx, ids)
	if err != nil {
		return fmt.Errorf("web: export readings: %w", err)
	}
	rollup := x.Res.Rollup()
	q := db.ReadingQuery{TagIDs: ids, From: x.From, To: x.To, Res: x.Res}
	progress := func(ts, rows int64) {
		if x.Progress != nil {
			x.Progress(float64(ts-x.From)/float64(x.To-x.From), rows)
		}
	}
	var rows int64

	if x.Wide {
		cols := make([]string, 0, len(tags)+1)
		cols = append(cols, "time")
		for _, tg := range tags {
			cols = append(cols, tagLabel(tg))
		}
		if err := t.header(cols); err != nil {
			return err
		}
		cur := make([]cell, len(tags)+1)
		var at int64
		have := false
		emit := func() error {
			cur[0] = timeCell(at)
			if err := t.row(cur); err != nil {
				return err
			}
			rows++
			if rows%exportFlushRows == 0 {
				progress(at, rows)
			}
			clear(cur)
			return nil
		}
		err := es.EachReading(ctx, q, func(r db.ReadingRow) error {
			if have && r.TS != at {
				if err := emit(); err != nil {
					return err
				}
			}
			at, have = r.TS, true
			switch {
			case r.Text:
				cur[r.Tag+1] = textCell(r.Word)
			case rollup:
				cur[r.Tag+1] = numCell(r.Avg)
			default:
				cur[r.Tag+1] = numCell(r.Value)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("web: export readings: %w", err)
		}
		if have {
			if err := emit(); err != nil {
				return err
			}
		}
		return nil
	}

	if rollup {
		err = t.header([]string{"time", "machine", "tag", "min", "max", "avg", "count", "last", "unit"})
	} else {
		err = t.header([]string{"time", "machine", "tag", "value", "unit"})
	}
	if err != nil {
		return err
	}
	cells := make([]cell, 0, 9)
	err = es.EachReading(ctx, q, func(r db.ReadingRow) error {
		tg := tags[r.Tag]
		cells = append(cells[:0], timeCell(r.TS), textCell(tg.Machine), textCell(tg.Metric))
		switch {
		case rollup && r.Text:
			// Min, max and average of state words mean nothing.
			cells = append(cells, cell{}, cell{}, cell{}, intCell(r.Count), textCell(r.Word))
		case rollup:
			cells = append(cells, numCell(r.Min), numCell(r.Max), numCell(r.Avg), intCell(r.Count), numCell(r.Last))
		case r.Text:
			cells = append(cells, textCell(r.Word))
		default:
			cells = append(cells, numCell(r.Value))
		}
		cells = append(cells, textCell(tg.Unit))
		if err := t.row(cells); err != nil {
			return err
		}
		rows++
		if rows%exportFlushRows == 0 {
			progress(r.TS, rows)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("web: export readings: %w", err)
	}
	return nil
}

// dedupe keeps the first of each id, in order.
func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// exportDowntime writes stops, oldest first, with what the downtime list
// shows of each and its cost as the list prices it.
func (s *Server) exportDowntime(ctx context.Context, t table, x Export) error {
	es := s.store
	if len(x.MachineIDs) > maxExportIDs {
		return fmt.Errorf("web: export downtime: at most %d machines at once: %w", maxExportIDs, plant.ErrInvalid)
	}
	if x.From != 0 || x.To != 0 {
		if err := checkRange(x.From, x.To, maxExportMS); err != nil {
			return err
		}
	}
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	f := db.StopFilter{MachineIDs: x.MachineIDs, From: x.From, To: x.To, Now: now}
	if x.Uncoded {
		f.Uncoded, f.MinMS = true, cs.settings.NoReasonMS
	}
	if x.Line != nil {
		l, ok := lineByID(lines, *x.Line)
		if !ok {
			return fmt.Errorf("web: export downtime: line %d: %w", *x.Line, plant.ErrNotFound)
		}
		if l.ID != 0 {
			f.LineID = l.ID
		} else {
			// Machines without a line share line 0, which the store cannot
			// filter by; name them instead (within any machine filter).
			var ids []int64
			for _, m := range l.Machines {
				if len(x.MachineIDs) == 0 || contains(x.MachineIDs, m.ID) {
					ids = append(ids, m.ID)
				}
			}
			if len(ids) == 0 {
				ids = []int64{-1} // none: an empty IN would mean "any"
			}
			f.MachineIDs = ids
		}
	}
	lineOfMachine := map[int64]string{}
	for _, l := range lines {
		for _, m := range l.Machines {
			lineOfMachine[m.ID] = lineLabel(l)
		}
	}
	microMS := cmp.Or(cs.settings.MicroStopMS, plant.DefaultSettings().MicroStopMS)
	if err := t.header([]string{
		"machine", "line", "state", "start", "end", "duration_s", "reason", "category", "planned",
		"micro_stop", "cost", "currency", "comment", "coded_by", "coded_at",
	}); err != nil {
		return err
	}
	var rows int64
	cells := make([]cell, 0, 15)
	err = es.EachStop(ctx, f, func(st plant.Stop) error {
		dur := st.Duration(now)
		cost, _, costOK, _ := plant.StopCost(st, cs.configs[st.MachineID], now)
		costCell := cell{}
		if costOK {
			costCell = numCell(roundTo(cost, 2))
		}
		cells = append(cells[:0],
			textCell(st.Machine), textCell(lineOfMachine[st.MachineID]), textCell(string(st.State)),
			timeCell(st.Start), timeCell(st.End), numCell(float64(dur)/1000),
			textCell(st.Reason), textCell(st.Category), boolCell(st.Planned),
			boolCell(!st.Planned && dur < microMS), costCell, textCell(cs.settings.Currency),
			textCell(st.Comment), textCell(st.CodedBy), timeCell(st.CodedAt),
		)
		if err := t.row(cells); err != nil {
			return err
		}
		rows++
		if x.Progress != nil && rows%exportFlushRows == 0 {
			x.Progress(-1, rows)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("web: export downtime: %w", err)
	}
	return nil
}

func contains(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// exportTags writes the tag list of /admin/tags.
func (s *Server) exportTags(ctx context.Context, t table) error {
	tags, err := s.store.Tags(ctx)
	if err != nil {
		return fmt.Errorf("web: tags: %w", err)
	}
	if err := t.header([]string{"id", "machine", "tag", "topic", "type", "unit", "role", "hidden", "last_time", "last_value"}); err != nil {
		return err
	}
	for _, tg := range tags {
		kind, last := "number", cell{}
		if tg.Text {
			kind = "text"
			if tg.LastTS != 0 {
				last = textCell(tg.LastWord)
			}
		} else if tg.LastTS != 0 {
			last = numCell(tg.LastValue)
		}
		if err := t.row([]cell{
			intCell(tg.ID), textCell(tg.Machine), textCell(tg.Metric), textCell(tg.Topic), textCell(kind),
			textCell(tg.Unit), textCell(tg.Role), boolCell(tg.Hidden), timeCell(tg.LastTS), last,
		}); err != nil {
			return err
		}
	}
	return nil
}

// exportRejects writes the messages of /admin/rejects, newest first. A
// payload is bytes from a device: it is written as text, with what is not
// UTF-8 replaced, so the file stays valid UTF-8.
func (s *Server) exportRejects(ctx context.Context, t table) error {
	rejects, err := s.store.Rejects(ctx, 0)
	if err != nil {
		return fmt.Errorf("web: rejects: %w", err)
	}
	if err := t.header([]string{"time", "topic", "reason", "detail", "payload"}); err != nil {
		return err
	}
	for _, r := range rejects {
		if err := t.row([]cell{
			timeCell(r.TS), textCell(strings.ToValidUTF8(r.Topic, "\uFFFD")), textCell(r.Reason), textCell(r.Detail),
			textCell(strings.ToValidUTF8(string(r.Payload), "\uFFFD")),
		}); err != nil {
			return err
		}
	}
	return nil
}

// --- HTTP ---

// exportRoutes registers the CSV downloads, the JSON API and the backup.
// Each download needs the access of the page it comes from.
func (s *Server) exportRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/export/readings.csv", s.csvHandler(ExportReadings), viewer)
	s.handle(e, http.MethodGet, "/export/downtime.csv", s.csvHandler(ExportDowntime), viewer)
	s.handle(e, http.MethodGet, "/export/kpis.csv", s.csvHandler(ExportKPIs), viewer)
	s.handle(e, http.MethodGet, "/export/tags.csv", s.csvHandler(ExportTags), admin)
	s.handle(e, http.MethodGet, "/export/rejects.csv", s.csvHandler(ExportRejects), admin)
	s.handle(e, http.MethodGet, "/admin/backup", s.adminBackup, admin)
	s.apiV1Routes(e)
}

// csvHandler serves one kind of CSV download.
func (s *Server) csvHandler(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		x, err := s.parseExport(c, kind)
		if err != nil {
			return err
		}
		return s.serveCSV(c, x)
	}
}

// serveCSV streams an export as a CSV download. Parameters are checked
// before the first byte; a failure after it cannot become an error page, so
// the connection is cut and the download shows as failed rather than as a
// complete file with rows missing.
func (s *Server) serveCSV(c echo.Context, x Export) error {
	ctx := c.Request().Context()
	if err := s.precheck(ctx, x); err != nil {
		return err
	}
	bom := c.QueryParam("bom") != "0"
	name := "andon-" + x.Kind + "-" + s.now().In(s.loc).Format("2006-01-02-1504") + ".csv"
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	noStore(c)
	c.Response().WriteHeader(http.StatusOK)
	rows, err := s.WriteCSV(ctx, c.Response(), x, CSVOptions{BOM: bom, Flush: streamFlusher(c.Response())})
	if err != nil {
		s.abortStream(c, x.Kind, rows, err)
	}
	return nil
}

// abortStream logs a failure in a response already under way and cuts the
// connection (net/http's ErrAbortHandler), so the client sees a broken
// download instead of a short one that looks whole.
func (s *Server) abortStream(c echo.Context, kind string, rows int64, err error) {
	if c.Request().Context().Err() != nil {
		s.log.Info("export cancelled by the client", "kind", kind, "rows", rows)
	} else {
		s.log.Error("export failed after the response started", "kind", kind, "rows", rows, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// precheck runs the checks that can fail before anything is written (a
// range, unknown tags), so a bad request is a clean 400 or 404.
func (s *Server) precheck(ctx context.Context, x Export) error {
	switch x.Kind {
	case ExportReadings:
		if len(x.TagIDs) == 0 {
			return fmt.Errorf("web: export readings: choose at least one tag (tags=1,2): %w", plant.ErrInvalid)
		}
		if len(x.TagIDs) > maxExportIDs {
			return fmt.Errorf("web: export readings: at most %d tags at once: %w", maxExportIDs, plant.ErrInvalid)
		}
		if err := checkRange(x.From, x.To, maxExportMS); err != nil {
			return err
		}
		if _, err := s.store.ExportTags(ctx, dedupe(x.TagIDs)); err != nil {
			return fmt.Errorf("web: export readings: %w", err)
		}
	case ExportDowntime:
		if x.From != 0 || x.To != 0 {
			if err := checkRange(x.From, x.To, maxExportMS); err != nil {
				return err
			}
		}
	case ExportKPIs:
		if err := checkRange(x.From, x.To, maxKPIExportMS); err != nil {
			return err
		}
	}
	if x.Line != nil {
		lines, err := s.store.Lines(ctx)
		if err != nil {
			return fmt.Errorf("web: lines: %w", err)
		}
		if _, ok := lineByID(lines, *x.Line); !ok {
			return fmt.Errorf("web: export: line %d: %w", *x.Line, plant.ErrNotFound)
		}
	}
	return nil
}

// parseExport reads an export's parameters from the query string:
//
//	readings: tags=1,2 | machine=ID (its charted tags), range=1h|8h|24h|7d or
//	          from=&to= (epoch ms or ISO 8601), res=raw|1m|1h, format=long|wide
//	downtime: line=ID, machine=ID, show=uncoded|all, from=&to=
//	kpis:     period=shift|today|...|month or from=&to= days, line=ID, by=period|day|shift
func (s *Server) parseExport(c echo.Context, kind string) (Export, error) {
	q := c.QueryParams()
	x := Export{Kind: kind}
	now := s.now()
	var err error
	bad := func(msg string) (Export, error) {
		return Export{}, echo.NewHTTPError(http.StatusBadRequest, msg)
	}
	switch kind {
	case ExportReadings:
		if x.TagIDs, err = parseIDs(q.Get("tags")); err != nil {
			return bad("tags must be a comma-separated list of tag ids")
		}
		if raw := q.Get("machine"); raw != "" && len(x.TagIDs) == 0 {
			id, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || id <= 0 {
				return bad("machine must be a machine id")
			}
			m, err := s.store.Machine(c.Request().Context(), id)
			if err != nil {
				return Export{}, fmt.Errorf("web: export machine %d: %w", id, err)
			}
			for _, t := range m.Tags {
				if !t.Text {
					x.TagIDs = append(x.TagIDs, t.ID) // what its charts show
				}
			}
		}
		if x.Res, err = db.ParseResolution(q.Get("res")); err != nil {
			return bad("res must be raw, 1m or 1h")
		}
		if x.Res == db.ResAuto {
			x.Res = db.ResRaw // an export gives what was asked, raw by default
		}
		switch q.Get("format") {
		case "", "long":
		case "wide":
			x.Wide = true
		default:
			return bad("format must be long or wide")
		}
		if x.From, x.To, err = parseExportRange(q.Get("range"), q.Get("from"), q.Get("to"), now, s.loc); err != nil {
			return bad(err.Error())
		}
	case ExportDowntime:
		if raw := q.Get("line"); raw != "" {
			id, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || id < 0 {
				return bad("line must be a line id")
			}
			x.Line = &id
		}
		if x.MachineIDs, err = parseIDs(q.Get("machine")); err != nil {
			return bad("machine must be a comma-separated list of machine ids")
		}
		x.Uncoded = q.Get("show") == showUncoded
		if q.Get("range") != "" || q.Get("from") != "" || q.Get("to") != "" {
			if x.From, x.To, err = parseExportRange(q.Get("range"), q.Get("from"), q.Get("to"), now, s.loc); err != nil {
				return bad(err.Error())
			}
		}
	case ExportKPIs:
		ctx := c.Request().Context()
		b, err := s.kpiBase(ctx)
		if err != nil {
			return Export{}, err
		}
		p, err := parsePeriod(q.Get("period"), q.Get("from"), q.Get("to"), now.UnixMilli(), b.cal, s.loc)
		if err != nil {
			return Export{}, echo.NewHTTPError(http.StatusBadRequest, userMessage(err)).SetInternal(err)
		}
		x.From, x.To = p.From, p.To
		if raw := q.Get("line"); raw != "" && raw != "0" {
			id, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || id <= 0 {
				return bad("line must be a line id")
			}
			x.Line = &id
		}
		switch x.By = cmp.Or(q.Get("by"), "period"); x.By {
		case "period", "day", "shift":
		default:
			return bad("by must be period, day or shift")
		}
	}
	return x, nil
}

// parseIDs reads "1,2,3"; "" is none.
func parseIDs(s string) ([]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxExportIDs {
		return nil, fmt.Errorf("more than %d ids", maxExportIDs)
	}
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not an id", p)
		}
		out = append(out, id)
	}
	return out, nil
}

// parseExportRange resolves a range: a key of the machine page's picker (1h, 8h,
// 24h, 7d) ending now, or from/to as epoch ms, RFC 3339 or a day
// (2026-11-25, midnight in the plant's zone; a day as "to" includes that
// day). Without either it is the last hour.
func parseExportRange(key, from, to string, now time.Time, loc *time.Location) (int64, int64, error) {
	if key != "" {
		for _, r := range views.Ranges() {
			if r.Key == key {
				return now.Add(-r.Dur).UnixMilli(), now.UnixMilli() + 1, nil
			}
		}
		return 0, 0, errors.New("range must be 1h, 8h, 24h or 7d")
	}
	t := now.UnixMilli() + 1 // the reading of this very millisecond included
	if to != "" {
		v, err := parseInstant(to, loc, true)
		if err != nil {
			return 0, 0, fmt.Errorf("to: %w", err)
		}
		t = v
	}
	f := t - int64(time.Hour/time.Millisecond)
	if from != "" {
		v, err := parseInstant(from, loc, false)
		if err != nil {
			return 0, 0, fmt.Errorf("from: %w", err)
		}
		f = v
	}
	if t <= f {
		return 0, 0, errors.New("from must be before to")
	}
	if t-f > maxExportMS {
		return 0, 0, fmt.Errorf("the range is longer than %d days", maxExportMS/86_400_000)
	}
	return f, t, nil
}

// ParseInstant reads epoch milliseconds, RFC 3339 or a day (YYYY-MM-DD in
// loc); end says a day means its end (the next midnight), so "to=2026-11-25"
// includes the 25th. `andon export` reads --from and --to with it.
func ParseInstant(s string, loc *time.Location, end bool) (int64, error) {
	return parseInstant(s, loc, end)
}

func parseInstant(s string, loc *time.Location, end bool) (int64, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > 1<<53 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return ms, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%q is not epoch milliseconds, RFC 3339 (2026-11-25T06:00:00+01:00) or a day (2026-11-25)", s)
}

// adminBackup is GET /admin/backup: a consistent copy of the database as a
// download, made while ingest goes on.
func (s *Server) adminBackup(c echo.Context) error {
	es := s.store
	ctx := c.Request().Context()
	name := "andon-backup-" + s.now().In(s.loc).Format("2006-01-02-1504") + ".db"
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/vnd.sqlite3")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	noStore(c)
	// The copy is made before the first byte is sent, so a failure to make
	// it is still a clean error; only the transfer of a large file needs the
	// write deadline moved on as it goes.
	w := &deadlineWriter{w: c.Response(), flush: streamFlusher(c.Response())}
	// Making the copy of a large database can outlast the server's write
	// timeout before the first byte; the transfer then moves it on per MB.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(time.Hour))
	// The copy holds every user's password hash and the token hashes:
	// who took one belongs in the audit log.
	s.audit(c, "backup.download", "database", "")
	n, err := es.BackupTo(ctx, w)
	if err != nil {
		if c.Response().Committed {
			s.abortStream(c, "backup", n, err)
		}
		return fmt.Errorf("web: backup: %w", err)
	}
	s.log.Info("backup downloaded", "bytes", n)
	return nil
}

// deadlineWriter moves the write deadline on every megabyte written.
type deadlineWriter struct {
	w       io.Writer
	flush   func()
	written int64
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// Written through echo's response first, so echo sends the headers it
	// set; the flush only moves the deadline and pushes the bytes.
	n, err := d.w.Write(p)
	if d.written == 0 || d.written/(1<<20) != (d.written+int64(n))/(1<<20) {
		d.flush()
	}
	d.written += int64(n)
	return n, err
}

// roundTo rounds to n decimals, so a cost reads 12.35, not 12.349999999.
func roundTo(f float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(f*p) / p
}
