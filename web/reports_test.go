package web

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/plant"
	"andon/views"
)

// reportNow is the fixed "now" of the report tests: noon on a Wednesday, UTC.
var reportNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// at is a time on the report day, h hours after midnight.
func at(h float64) int64 {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	return day.Add(time.Duration(h * float64(time.Hour))).UnixMilli()
}

// fixture is a small plant written by hand: press-01 on line-1 with an
// ideal cycle time, press-02 on line-2 without one.
type fixture struct {
	e                *env
	p1, p2           int64 // machine ids
	line1, line2     int64
	uncoded, shorted int64 // stop ids
}

// newReportEnv builds the fixture on a real store at reportNow, with no
// shifts (so the plant counts as running 24/7). Spans and stops go straight
// into SQLite, as the engine would write them.
//
// press-01, today 00:00–12:00 (720 min scheduled, nothing planned):
//   - down 08:00–09:00, uncoded (60 min)
//   - down 10:00–10:30, coded "Material shortage" (30 min)
//   - good 0 → 1000, scrap 0 → 20; ideal 30 s, € 600/h, € 2/unit margin
//
// press-02, today: one 20 min stop 06:00–06:20 coded "Jam", € 6,000/h, no
// ideal cycle time, no parts.
func newReportEnv(t *testing.T) fixture {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return reportNow } })
	yesterday := at(-0.5)
	e.write(t,
		reading("line-1", "press-01", "good", yesterday, 0),
		reading("line-1", "press-01", "scrap", yesterday, 0),
		reading("line-1", "press-01", "good", at(11), 1000),
		reading("line-1", "press-01", "scrap", at(11), 20),
		reading("line-2", "press-02", "speed", at(11.9), 50),
	)
	f := fixture{e: e, p1: e.machineID(t, "press-01"), p2: e.machineID(t, "press-02")}
	ids := e.lineIDs(t)
	f.line1, f.line2 = ids["line-1"], ids["line-2"]
	ctx := e.ctx
	if err := e.store.SetMachineConfig(ctx, f.p1, plant.MachineConfig{IdealCycleS: 30, CostPerHour: 600, MarginPerUnit: 2}, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetMachineConfig(ctx, f.p2, plant.MachineConfig{CostPerHour: 6000}, ""); err != nil {
		t.Fatal(err)
	}
	reasons := reasonIDs(t, e)

	sdb := openRaw(t, e)
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := sdb.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	span := `INSERT INTO state_spans(machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`
	exec(span, f.p1, "running", yesterday, at(8))
	exec(span, f.p1, "down", at(8), at(9))
	exec(span, f.p1, "running", at(9), at(10))
	exec(span, f.p1, "down", at(10), at(10.5))
	exec(span, f.p1, "running", at(10.5), nil)
	exec(span, f.p2, "running", yesterday, at(6))
	exec(span, f.p2, "down", at(6), at(6+20.0/60))
	exec(span, f.p2, "running", at(6+20.0/60), nil)
	stop := `INSERT INTO stops(machine_id, state, start_ms, end_ms, reason_id, coded_by, coded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`
	f.uncoded = exec(stop, f.p1, "down", at(8), at(9), nil, "", nil)
	f.shorted = exec(stop, f.p1, "down", at(10), at(10.5), reasons["Material shortage"], "test", at(11))
	exec(stop, f.p2, "down", at(6), at(6+20.0/60), reasons["Jam"], "test", at(11))
	return f
}

// openRaw opens the store's SQLite file for fixtures the store has no
// method to write (spans and stops come from the engine).
func openRaw(t *testing.T, e *env) *sql.DB {
	t.Helper()
	sdb, err := sql.Open("sqlite", "file:"+e.store.Path()+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	return sdb
}

func reasonIDs(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	rs, err := e.store.Reasons(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rs {
		out[r.Name] = r.ID
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestKPIServiceMatchesHandWork(t *testing.T) {
	f := newReportEnv(t)
	ctx := context.Background()
	b, err := f.e.srv.kpiBase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := f.e.store.Lines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, to := at(0), at(24)
	set, err := f.e.srv.kpis(ctx, b, from, to, reportNow.UnixMilli(), lines)
	if err != nil {
		t.Fatal(err)
	}
	if set.To != reportNow.UnixMilli() {
		t.Errorf("period end = %d, want now %d: a period still going ends now", set.To, reportNow.UnixMilli())
	}
	k := set.Machines[f.p1]
	// Planned 720 min; unplanned 60 + 30 = 90 min; run 630 min.
	// A = 630/720 = 0.875. P = 30 s × 1020 / 37,800 s = 0.8095.
	// Q = 1000/1020. OEE = 1000 × 30 s / 43,200 s = 0.69444.
	// Cost = 1 h × 600 + 120 units × 2 + 0.5 h × 600 + 60 units × 2 = 1,260.
	checks := []struct {
		name      string
		got, want float64
	}{
		{"planned ms", float64(k.PlannedMS), 720 * 60_000},
		{"down ms", float64(k.DownMS), 90 * 60_000},
		{"run ms", float64(k.RunMS), 630 * 60_000},
		{"stops", float64(k.Stops), 2},
		{"good", k.Good, 1000},
		{"scrap", k.Scrap, 20},
		{"availability", k.Availability.Value, 0.875},
		{"performance", k.Performance.Value, 30.0 * 1020 / (630 * 60)},
		{"quality", k.Quality.Value, 1000.0 / 1020},
		{"oee", k.OEE.Value, 1000.0 * 30 / 43200},
		{"mtbf ms", float64(k.MTBF.MS), 315 * 60_000},
		{"mttr ms", float64(k.MTTR.MS), 45 * 60_000},
		{"cost", k.Cost, 1260},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !near(c.got, c.want) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		})
	}

	// The service must hand ComputeKPI exactly what the store holds.
	spans, _ := f.e.store.Spans(ctx, f.p1, from, set.To)
	stops := []plant.Stop{
		{MachineID: f.p1, State: plant.Down, Start: at(8), End: at(9)},
		{MachineID: f.p1, State: plant.Down, Start: at(10), End: at(10.5), ReasonID: 1},
	}
	want := plant.ComputeKPI(plant.KPIInput{
		From: from, To: set.To, NoCalendar: true, Spans: spans, Stops: stops, Good: 1000, Scrap: 20,
		Config: plant.MachineConfig{IdealCycleS: 30, CostPerHour: 600, MarginPerUnit: 2}, Settings: plant.DefaultSettings(),
	})
	if want.OEE != k.OEE || want.Cost != k.Cost || want.RunMS != k.RunMS {
		t.Errorf("service KPI %+v differs from ComputeKPI %+v", k, want)
	}

	// press-02 has no ideal cycle time: performance and OEE are n/a with the
	// reason, and so is the plant's, which must not understate it.
	k2 := set.Machines[f.p2]
	if k2.Performance.OK || k2.Performance.Why != "no ideal cycle time set" {
		t.Errorf("press-02 performance = %+v, want n/a with reason", k2.Performance)
	}
	if set.Plant.Performance.OK || set.Plant.OEE.OK {
		t.Errorf("plant performance %+v, OEE %+v: want n/a", set.Plant.Performance, set.Plant.OEE)
	}
	if l1 := set.Lines[f.line1]; !near(l1.OEE.Value, k.OEE.Value) {
		t.Errorf("line-1 OEE = %v, want its one machine's %v", l1.OEE.Value, k.OEE.Value)
	}
	if !near(set.Plant.Cost, 1260+2000) {
		t.Errorf("plant cost = %v, want 3,260 (press-02: 1/3 h × 6,000)", set.Plant.Cost)
	}
}

func TestReportsPage(t *testing.T) {
	f := newReportEnv(t)
	e := f.e

	t.Run("line KPIs by hand", func(t *testing.T) {
		d := e.doc(t, fmt.Sprintf("/reports?period=today&line=%d", f.line1), http.StatusOK)
		want := map[string]string{
			"kpi-oee-value":          "69.4 %",
			"kpi-availability-value": "87.5 %",
			"kpi-performance-value":  "81.0 %",
			"kpi-quality-value":      "98.0 %",
		}
		for id, w := range want {
			if got := strings.TrimSpace(d.Find(`[data-testid="` + id + `"]`).Text()); got != w {
				t.Errorf("%s = %q, want %q", id, got, w)
			}
		}
		if got := strings.TrimSpace(d.Find(`[data-testid="kpi-cost"] dd`).Text()); got != "€ 1,260" {
			t.Errorf("cost = %q, want € 1,260", got)
		}
		if got := strings.TrimSpace(d.Find(`[data-testid="kpi-mtbf"] dd`).Text()); got != "5 h 15 min" {
			t.Errorf("MTBF = %q", got)
		}
		if d.Find(`[data-testid="performance-warning"]`).Length() != 0 {
			t.Error("performance warning shown below 100 %")
		}
	})

	t.Run("n/a with reason", func(t *testing.T) {
		d := e.doc(t, "/reports?period=today", http.StatusOK)
		if got := d.Find(`[data-testid="kpi-performance-value"]`).Text(); got != "n/a" {
			t.Errorf("plant performance = %q, want n/a", got)
		}
		if got := d.Find(`[data-testid="kpi-performance-why"]`).Text(); !strings.Contains(got, "no ideal cycle time") {
			t.Errorf("reason = %q", got)
		}
		row := d.Find(fmt.Sprintf(`[data-testid="machines-table-row-%d"]`, f.p2))
		if got := strings.TrimSpace(row.Find(`[data-testid="oee"]`).Text()); got != "n/a" {
			t.Errorf("press-02 OEE cell = %q, want n/a", got)
		}
		if got, _ := row.Find(`[data-testid="oee"] .na`).Attr("title"); got == "" {
			t.Error("n/a without a reason")
		}
	})

	t.Run("paretos", func(t *testing.T) {
		d := e.doc(t, "/reports?period=today", http.StatusOK)
		names := func(id string) []string {
			var out []string
			d.Find(`[data-testid="` + id + `"] .pareto-name`).Each(func(_ int, s *goquery.Selection) { out = append(out, s.Text()) })
			return out
		}
		// By cost: Jam 2,000 > uncoded 840 > Material shortage 420; by
		// duration: uncoded 60 min > Material shortage 30 > Jam 20.
		if got, want := strings.Join(names("pareto-cost"), ","), "Jam,Not coded yet,Material shortage"; got != want {
			t.Errorf("by cost = %q, want %q", got, want)
		}
		if got, want := strings.Join(names("pareto-duration"), ","), "Not coded yet,Material shortage,Jam"; got != want {
			t.Errorf("by duration = %q, want %q", got, want)
		}
		if got := d.Find(`[data-testid="pareto-cost"] [data-testid="pareto-value"]`).First().Text(); got != "€ 2,000" {
			t.Errorf("top cost = %q", got)
		}
		if w, _ := d.Find(`[data-testid="pareto-cost"] rect`).First().Attr("width"); w != "100.0" {
			t.Errorf("top bar width = %q, want 100.0", w)
		}
	})

	t.Run("fragment", func(t *testing.T) {
		resp, body := e.get(t, "/reports?period=today&fragment=1")
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, `id="report"`) {
			t.Errorf("fragment: status %d, body starts %.80q", resp.StatusCode, body)
		}
	})

	t.Run("periods", func(t *testing.T) {
		for _, p := range []string{"shift", "today", "yesterday", "week", "lastweek", "month", "bogus"} {
			d := e.doc(t, "/reports?period="+p, http.StatusOK)
			if d.Find(`[data-testid="kpi-header"]`).Length() != 1 {
				t.Errorf("%s: no KPI header", p)
			}
		}
		d := e.doc(t, "/reports?from=2026-11-20&to=2026-11-25", http.StatusOK)
		if got := d.Find(`[data-testid="report-title"]`).Text(); !strings.Contains(got, "20 Nov 2026 – 25 Nov 2026") {
			t.Errorf("custom title = %q", got)
		}
	})

	t.Run("with shifts", func(t *testing.T) {
		// Early 06:00–14:00 every day: at noon "this shift" is Early so far,
		// and today's per-shift table has the one run.
		if _, err := e.store.SaveShift(e.ctx, plant.Shift{Name: "Early", Start: 360, End: 840, Days: [7]bool{true, true, true, true, true, true, true}}); err != nil {
			t.Fatal(err)
		}
		d := e.doc(t, "/reports?period=shift", http.StatusOK)
		if got := d.Find(`[data-testid="report-title"]`).Text(); !strings.Contains(got, "Early so far") {
			t.Errorf("title = %q", got)
		}
		d = e.doc(t, "/reports?period=today", http.StatusOK)
		rows := d.Find(`[data-testid="shifts-table"] tbody tr`)
		if rows.Length() != 1 || !strings.Contains(rows.Text(), "Early") {
			t.Errorf("per-shift rows = %d: %q", rows.Length(), rows.Text())
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{"from=2026-13-01&to=2026-11-25", "from=2026-11-25&to=2026-11-20", "from=abc", "from=2020-01-01&to=2026-01-01"} {
			resp, _ := e.get(t, "/reports?"+q)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
			}
		}
		resp, _ := e.get(t, "/reports?line=99999")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown line: status %d, want 404", resp.StatusCode)
		}
	})
}

func TestLinePage(t *testing.T) {
	f := newReportEnv(t)
	d := f.e.doc(t, fmt.Sprintf("/lines/%d", f.line1), http.StatusOK)
	if got := d.Find(`[data-testid="line-name"]`).Text(); got != "line-1" {
		t.Errorf("name = %q", got)
	}
	tile := d.Find(fmt.Sprintf(`[data-testid="line-machine-%d"]`, f.p1))
	if tile.Length() != 1 {
		t.Fatal("no tile for press-01")
	}
	// No shifts: "this shift" is today so far, the hand-worked figures.
	if got := tile.Find(`[data-testid="machine-oee"]`).Text(); got != "69.4 %" {
		t.Errorf("tile OEE = %q", got)
	}
	if got := tile.Find(`[data-testid="machine-cost"]`).Text(); got != "€ 1,260" {
		t.Errorf("tile cost = %q", got)
	}
	segs := d.Find(fmt.Sprintf(`[data-testid="line-timeline-%d"] [data-testid="timeline-segment"]`, f.p1))
	if segs.Length() != 5 {
		t.Errorf("timeline segments = %d, want 5", segs.Length())
	}
	if d.Find(`[data-testid="pareto-cost"] .pareto-row`).Length() != 2 {
		t.Error("line Pareto should list the line's two reasons only")
	}
	for _, path := range []string{"/lines/99999", "/lines/abc", "/lines/0"} {
		if resp, _ := f.e.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
	ov := f.e.doc(t, "/", http.StatusOK)
	if href, _ := ov.Find(`[data-testid="line-link"]`).First().Attr("href"); href != fmt.Sprintf("/lines/%d", f.line1) {
		t.Errorf("overview links the line to %q", href)
	}
	resp, body := f.e.get(t, fmt.Sprintf("/lines/%d?fragment=1", f.line1))
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "<html") {
		t.Errorf("fragment: status %d", resp.StatusCode)
	}
}

func TestReportRoutesOnEmptyDatabase(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{
		"/reports", "/reports?period=today", "/reports?period=week&fragment=1", "/reports?period=month",
		"/reports?from=2026-11-20&to=2026-11-21", "/reports?planned=1",
		"/admin/machines", "/admin/reasons", "/admin/shifts", "/admin/settings",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := e.get(t, path)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d; body %.200s", resp.StatusCode, body)
			}
		})
	}
	if resp, _ := e.get(t, "/lines/1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/lines/1 on an empty plant: %d, want 404", resp.StatusCode)
	}
}

func TestMoneyAndParetoBars(t *testing.T) {
	// Money is tested here because the views package has no store; the
	// formats are the ones the reports show.
	tests := []struct {
		v    float64
		want string
	}{{1880.4, "€ 1,880"}, {42.5, "€ 42.50"}, {0, "€ 0.00"}, {123456.7, "€ 123,457"}}
	for _, tc := range tests {
		if got := views.Money(tc.v, "€"); got != tc.want {
			t.Errorf("Money(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	var rows []plant.ParetoRow
	for i := range 13 {
		rows = append(rows, plant.ParetoRow{Reason: fmt.Sprint("r", i), Cost: float64(100 - i), DurationMS: 1})
	}
	bars := views.ParetoBars(rows, true, "€")
	if len(bars) != 11 || !bars[10].Other || bars[10].Stops != 0 || !strings.Contains(bars[10].Reason, "3 reasons") {
		t.Errorf("bars = %+v, want top 10 and one other of 3", bars)
	}
	// Other sums 90 + 89 + 88 = 267, the longest bar; the top reason's 100
	// is 37.5 % of it.
	if bars[10].Pct != 100 || bars[0].Pct != 37.5 {
		t.Errorf("pcts = %v, %v", bars[0].Pct, bars[10].Pct)
	}
}

// TestLineBottleneck adds press-03 to line-1 and checks the line's KPIs
// both ways: summed over its two machines, and from press-03 once it is
// the line's bottleneck. press-03, today 00:00–12:00: down 07:00–07:15
// uncoded, 400 good parts, ideal 60 s, € 300/h, € 1/unit.
//
//	press-03 alone: OEE = 400 × 60 s / 43,200 s = 55.6 %;
//	  A = 705/720 = 97.9 %; cost = 0.25 h × 300 + 15 units × 1 = 90.
//	line-1 summed: OEE = (30 × 1020 + 60 × 400) s / 86,400 s × 1400/1420
//	  = 62.3 %; A = 1335/1440 = 92.7 %.
//	Both ways the line's cost is 1,260 + 90 = 1,350 and its stops 3;
//	the plant's availability (2035/2160 = 94.2 %) and cost (3,350) stay sums.
func TestLineBottleneck(t *testing.T) {
	f := newReportEnv(t)
	e := f.e
	e.write(t,
		reading("line-1", "press-03", "good", at(-0.5), 0),
		reading("line-1", "press-03", "good", at(11), 400),
	)
	p3 := e.machineID(t, "press-03")
	sdb := openRaw(t, e)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO state_spans(machine_id, state, start_ms, end_ms) VALUES (?, 'running', ?, ?)`, []any{p3, at(-0.5), at(7)}},
		{`INSERT INTO state_spans(machine_id, state, start_ms, end_ms) VALUES (?, 'down', ?, ?)`, []any{p3, at(7), at(7.25)}},
		{`INSERT INTO state_spans(machine_id, state, start_ms, end_ms) VALUES (?, 'running', ?, NULL)`, []any{p3, at(7.25)}},
		{`INSERT INTO stops(machine_id, state, start_ms, end_ms) VALUES (?, 'down', ?, ?)`, []any{p3, at(7), at(7.25)}},
	} {
		if _, err := sdb.ExecContext(e.ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	text := func(s *goquery.Selection) string { return strings.TrimSpace(s.Text()) }

	cases := []struct {
		name       string
		bottleneck bool
		oee, avail string // line-1's
		rule       string
	}{
		{"summed", false, "62.3 %", "92.7 %", "Line OEE summed over 2 machines"},
		{"from the bottleneck", true, "55.6 %", "97.9 %", "Line OEE from its bottleneck, press-03"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := plant.MachineConfig{IdealCycleS: 60, CostPerHour: 300, MarginPerUnit: 1, Bottleneck: tc.bottleneck}
			if err := e.store.SetMachineConfig(e.ctx, p3, cfg, ""); err != nil {
				t.Fatal(err)
			}

			// The plant report: line-1's row follows the rule, the plant sums.
			d := e.doc(t, "/reports?period=today", http.StatusOK)
			row := d.Find(fmt.Sprintf(`[data-testid="lines-table-row-%d"]`, f.line1))
			if got := text(row.Find(`[data-testid="oee"]`)); got != tc.oee {
				t.Errorf("lines table: line-1 OEE = %q, want %q", got, tc.oee)
			}
			if got := text(row.Find(`[data-testid="cost"]`)); got != "€ 1,350" {
				t.Errorf("lines table: line-1 cost = %q, want € 1,350 either way", got)
			}
			if got := text(row.Find(`[data-testid="line-rule"]`)); got != tc.rule {
				t.Errorf("lines table: line-1 rule = %q, want %q", got, tc.rule)
			}
			row2 := d.Find(fmt.Sprintf(`[data-testid="lines-table-row-%d"]`, f.line2))
			if got := text(row2.Find(`[data-testid="line-rule"]`)); got != "Line OEE summed over 1 machine" {
				t.Errorf("lines table: line-2 rule = %q", got)
			}
			marked := d.Find(fmt.Sprintf(`[data-testid="machines-table-row-%d"] [data-testid="bottleneck"]`, p3)).Length() == 1
			if marked != tc.bottleneck {
				t.Errorf("machines table marks press-03 as bottleneck: %v, want %v", marked, tc.bottleneck)
			}
			if got := text(d.Find(`[data-testid="kpi-availability-value"]`)); got != "94.2 %" {
				t.Errorf("plant availability = %q, want the sum's 94.2 %%", got)
			}
			if got := text(d.Find(`[data-testid="kpi-cost"] dd`)); got != "€ 3,350" {
				t.Errorf("plant cost = %q, want € 3,350", got)
			}

			// The line page and the line's report agree with the table.
			for _, path := range []string{
				fmt.Sprintf("/lines/%d", f.line1),
				fmt.Sprintf("/reports?period=today&line=%d", f.line1),
			} {
				d := e.doc(t, path, http.StatusOK)
				want := map[string]string{
					`[data-testid="kpi-oee-value"]`:          tc.oee,
					`[data-testid="kpi-availability-value"]`: tc.avail,
					`[data-testid="kpi-cost"] dd`:            "€ 1,350",
					`[data-testid="kpi-stops"] dd`:           "3",
					`[data-testid="line-rule"]`:              tc.rule,
				}
				for sel, w := range want {
					if got := text(d.Find(sel)); got != w {
						t.Errorf("%s: %s = %q, want %q", path, sel, got, w)
					}
				}
			}
			d = e.doc(t, fmt.Sprintf("/lines/%d", f.line1), http.StatusOK)
			tile := d.Find(fmt.Sprintf(`[data-testid="line-machine-%d"] [data-testid="bottleneck"]`, p3)).Length() == 1
			if tile != tc.bottleneck {
				t.Errorf("line page marks press-03's tile: %v, want %v", tile, tc.bottleneck)
			}
		})
	}
}
