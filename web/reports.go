package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// ReportStore is what the report, line and configuration pages need from the database.
type ReportStore interface {
	Calendar(ctx context.Context, loc *time.Location) ([]plant.Shift, map[string]bool, error)
	Spans(ctx context.Context, machineID, from, to int64) ([]plant.Span, error)
	Stops(ctx context.Context, q db.StopQuery) ([]plant.Stop, error)
	Counts(ctx context.Context, machineID, from, to int64) (good, scrap float64, err error)
	MachineConfigs(ctx context.Context) (map[int64]plant.MachineConfig, error)
	Settings(ctx context.Context) (plant.Settings, error)

	Reasons(ctx context.Context) ([]plant.Reason, error)
	SaveReason(ctx context.Context, r plant.Reason) (int64, error)
	SaveShift(ctx context.Context, sh plant.Shift) (int64, error)
	DeleteShift(ctx context.Context, id int64) error
	SetHoliday(ctx context.Context, day string, on bool) error
	SaveSettings(ctx context.Context, st plant.Settings) error
	SetMachineConfig(ctx context.Context, id int64, c plant.MachineConfig, displayName string) error
	SetStateRule(ctx context.Context, machineID int64, rule string) error
	StateRules(ctx context.Context) (map[int64]string, error)
}

// reportRoutes registers the report, line and configuration pages.
func (s *Server) reportRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/reports", s.reports, viewer)
	s.handle(e, http.MethodGet, "/lines/:id", s.line, viewer)

	// The plant's configuration (admin_config.go). Registered here rather
	// than in adminConfigRoutes so that every route carries its rule.
	s.handle(e, http.MethodGet, "/admin/machines", s.adminMachines, admin)
	s.handle(e, http.MethodPost, "/admin/machines/:id", s.saveMachine, admin)
	s.handle(e, http.MethodGet, "/admin/reasons", s.adminReasons, admin)
	s.handle(e, http.MethodPost, "/admin/reasons", s.saveReason, admin)
	s.handle(e, http.MethodPost, "/admin/reasons/:id", s.saveReason, admin)
	s.handle(e, http.MethodGet, "/admin/shifts", s.adminShifts, admin)
	s.handle(e, http.MethodPost, "/admin/shifts", s.saveShift, admin)
	s.handle(e, http.MethodPost, "/admin/shifts/:id", s.saveShift, admin)
	s.handle(e, http.MethodPost, "/admin/shifts/:id/delete", s.deleteShift, admin)
	s.handle(e, http.MethodPost, "/admin/holidays", s.saveHoliday, admin)
	s.handle(e, http.MethodGet, "/admin/settings", s.adminSettings, admin)
	s.handle(e, http.MethodPost, "/admin/settings", s.saveSettings, admin)
}

// reports is /reports: the plant's (or one line's) KPIs over a period.
func (s *Server) reports(c echo.Context) error {
	ctx := c.Request().Context()
	now := s.now().UnixMilli()
	q := c.QueryParams()
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	b, err := s.kpiBase(ctx)
	if err != nil {
		return err
	}
	p, err := parsePeriod(q.Get("period"), q.Get("from"), q.Get("to"), now, b.cal, s.loc)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, userMessage(err)).SetInternal(err)
	}
	lineID, _ := strconv.ParseInt(q.Get("line"), 10, 64)
	shown := lines
	scope := "Plant"
	if lineID != 0 {
		shown = nil
		for _, l := range lines {
			if l.ID == lineID {
				shown = []plant.Line{l}
				scope = lineLabel(l)
			}
		}
		if shown == nil {
			return fmt.Errorf("web: report of line %d: %w", lineID, plant.ErrNotFound)
		}
	}
	includePlanned := q.Get("planned") == "1"

	set, err := s.kpis(ctx, b, p.From, p.To, now, shown)
	if err != nil {
		return err
	}
	var machines []plant.Machine
	for _, l := range shown {
		machines = append(machines, l.Machines...)
	}
	var runs []runKPI
	if p.Key != "shift" {
		// One line's report follows the line's rule, so its shifts add up
		// the way its total does; the plant's is always the sum.
		bottleneck := int64(0)
		if lineID != 0 {
			bottleneck = set.Rules[lineID].bottleneckID()
		}
		if runs, err = s.runKPIs(ctx, b, p.From, p.To, now, machines, bottleneck); err != nil {
			return err
		}
	}

	base := url.Values{}
	if p.Key == "custom" {
		base.Set("from", p.FromDay)
		base.Set("to", p.ToDay)
	} else {
		base.Set("period", p.Key)
	}
	if lineID != 0 {
		base.Set("line", formatID(lineID))
	}
	if includePlanned {
		base.Set("planned", "1")
	}
	content := s.reportContent(set, p, scope, lineID, shown, runs, includePlanned, base)
	if c.QueryParam("fragment") == "1" {
		return s.render(c, http.StatusOK, views.ReportFragment(content))
	}

	v := views.ReportsPage{
		Page:    s.page(c, "Reports", "plant", "reports"), // live: refreshes as readings are committed
		Custom:  p.Key == "custom",
		FromDay: p.FromDay, ToDay: p.ToDay,
		Period:  p.Key,
		LineID:  lineID,
		Content: content,
	}
	if !v.Custom {
		day := time.UnixMilli(p.From).In(s.loc).Format("2006-01-02")
		v.FromDay, v.ToDay = day, day
	}
	for _, pc := range periodChoices {
		u := url.Values{"period": {pc.Key}}
		if lineID != 0 {
			u.Set("line", formatID(lineID))
		}
		v.Periods = append(v.Periods, views.PickLink{Key: pc.Key, Label: pc.Label, Href: "/reports?" + u.Encode(), Current: pc.Key == p.Key})
	}
	all := withoutKey(base, "line")
	v.Lines = append(v.Lines, views.PickLink{Key: "0", Label: "All lines", Href: "/reports?" + all.Encode(), Current: lineID == 0})
	for _, l := range lines {
		if l.ID == 0 || len(l.Machines) == 0 {
			continue
		}
		u := withoutKey(base, "line")
		u.Set("line", formatID(l.ID))
		v.Lines = append(v.Lines, views.PickLink{Key: formatID(l.ID), Label: lineLabel(l), Href: "/reports?" + u.Encode(), Current: l.ID == lineID})
	}
	return s.render(c, http.StatusOK, views.ReportsView(v))
}

// reportContent builds the live part of /reports from computed KPIs. The
// total is the plant's, or the line's when the report is of one line
// (lineID != 0), so a line's report agrees with its line page.
func (s *Server) reportContent(set kpiSet, p period, scope string, lineID int64, lines []plant.Line, runs []runKPI, includePlanned bool, base url.Values) views.ReportContent {
	cur := set.Settings.Currency
	frag := withoutKey(base, "")
	frag.Set("fragment", "1")
	toggle := withoutKey(base, "planned")
	if !includePlanned {
		toggle.Set("planned", "1")
	}
	c := views.ReportContent{
		Title:          p.Label,
		Range:          s.rangeText(set.From, set.To),
		Note:           p.Note,
		FragmentURL:    "/reports?" + frag.Encode(),
		Currency:       cur,
		Scope:          scope,
		Total:          set.Plant,
		IncludePlanned: includePlanned,
		PlannedHref:    "/reports?" + toggle.Encode(),
	}
	if lineID != 0 {
		c.Total = set.Lines[lineID]
		c.Rule = set.Rules[lineID].text()
	}
	for _, l := range lines {
		if len(l.Machines) == 0 {
			continue
		}
		href := ""
		if l.ID != 0 {
			href = "/lines/" + formatID(l.ID)
		}
		rule := set.Rules[l.ID]
		c.Lines = append(c.Lines, views.KPIRow{ID: l.ID, Name: lineLabel(l), Href: href, KPI: set.Lines[l.ID], Rule: rule.text()})
		for _, m := range l.Machines {
			c.Machines = append(c.Machines, views.KPIRow{
				ID: m.ID, Name: machineName(m), Href: "/machines/" + formatID(m.ID), KPI: set.Machines[m.ID],
				Bottleneck: m.ID == rule.bottleneckID(),
			})
		}
	}
	for _, r := range runs {
		c.Shifts = append(c.Shifts, views.ShiftRow{Name: r.Run.Name, When: s.runText(r.Run), KPI: r.KPI})
	}
	byDur, byCost := plant.Pareto(set.Stops, set.config, set.From, set.To, set.Now, includePlanned)
	c.ByCost = views.ParetoBars(byCost, true, cur)
	c.ByDuration = views.ParetoBars(byDur, false, cur)
	return c
}

// line is /lines/:id: the line this shift so far.
func (s *Server) line(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "line")
	if err != nil {
		return err
	}
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	var l plant.Line
	found := false
	for _, x := range lines {
		if x.ID == id {
			l, found = x, true
		}
	}
	if !found {
		return fmt.Errorf("web: line %d: %w", id, plant.ErrNotFound)
	}
	all, err := s.store.Tags(ctx)
	if err != nil {
		return fmt.Errorf("web: tags: %w", err)
	}
	withTags(l.Machines, all)

	now := s.now().UnixMilli()
	b, err := s.kpiBase(ctx)
	if err != nil {
		return err
	}
	p, err := parsePeriod("shift", "", "", now, b.cal, s.loc)
	if err != nil {
		return err
	}
	set, err := s.kpis(ctx, b, p.From, p.To, now, []plant.Line{l})
	if err != nil {
		return err
	}
	content := views.LineContent{
		ID: l.ID, Name: lineLabel(l), Period: p.Label, Range: s.rangeText(set.From, set.To), Note: p.Note,
		FragmentURL: "/lines/" + formatID(l.ID) + "?fragment=1",
		ReportHref:  "/reports?period=shift&line=" + formatID(l.ID),
		Currency:    set.Settings.Currency,
		KPI:         set.Lines[l.ID],
		Rule:        set.Rules[l.ID].text(),
	}
	for _, m := range l.Machines {
		spans, err := s.store.Spans(ctx, m.ID, p.From, now)
		if err != nil {
			return fmt.Errorf("web: spans of machine %d: %w", m.ID, err)
		}
		content.Machines = append(content.Machines, views.LineMachine{
			ID: m.ID, Name: machineName(m), Path: m.Path.String(),
			State:      plant.CurrentState(m, now, s.heartbeatOf(set.Settings)),
			KPI:        set.Machines[m.ID],
			Bottleneck: m.ID == set.Rules[l.ID].bottleneckID(),
			Timeline:   views.TimelineFrom(p.From, max(now, p.From+1), now, spans, s.loc),
		})
	}
	_, byCost := plant.Pareto(set.Stops, set.config, set.From, set.To, now, false)
	content.ByCost = views.ParetoBars(byCost, true, content.Currency)
	if c.QueryParam("fragment") == "1" {
		return s.render(c, http.StatusOK, views.LineFragment(content))
	}
	v := views.LinePage{Page: s.page(c, content.Name, "plant", ""), Content: content}
	return s.render(c, http.StatusOK, views.LinePageView(v))
}

// heartbeatOf is the stored heartbeat setting, else the server's.
func (s *Server) heartbeatOf(st plant.Settings) int64 {
	if st.HeartbeatMS > 0 {
		return st.HeartbeatMS
	}
	return s.cfg.HeartbeatMS
}

// rangeText is a period as the plant reads it: "25 Nov 2026 06:00 – 14:32".
func (s *Server) rangeText(from, to int64) string {
	f := time.UnixMilli(from).In(s.loc)
	t := time.UnixMilli(to).In(s.loc)
	if f.Year() == t.Year() && f.YearDay() == t.YearDay() {
		return f.Format("Mon 2 Jan 2006 15:04") + " – " + t.Format("15:04")
	}
	return f.Format("Mon 2 Jan 2006 15:04") + " – " + t.Format("Mon 2 Jan 2006 15:04")
}

// runText is when a shift run was: "Tue 25 Nov 06:00 – 14:00".
func (s *Server) runText(r plant.ShiftRun) string {
	f := time.UnixMilli(r.Start).In(s.loc)
	t := time.UnixMilli(r.End).In(s.loc)
	return f.Format("Mon 2 Jan 15:04") + " – " + t.Format("15:04")
}

// lineLabel is how a line reads; machines without a line level share the
// implicit "Unassigned" line.
func lineLabel(l plant.Line) string {
	if l.Name == "" || l.ID == 0 {
		return "Unassigned"
	}
	return l.Name
}

// machineName is a machine's display name, else its path's machine level.
func machineName(m plant.Machine) string {
	if m.Name != "" {
		return m.Name
	}
	return m.Path.Machine
}

// withoutKey copies query values without one key ("" keeps all).
func withoutKey(v url.Values, key string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		if k != key {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}
