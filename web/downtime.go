package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// DowntimeStore is what the downtime pages need from the database.
type DowntimeStore interface {
	Stops(ctx context.Context, q db.StopQuery) ([]plant.Stop, error)
	Stop(ctx context.Context, id int64) (plant.Stop, error)
	LastStop(ctx context.Context, machineID int64) (plant.Stop, error)
	CodeStop(ctx context.Context, c plant.Coding) (plant.Stop, error)
	SplitStop(ctx context.Context, id, atMS int64, by string) (plant.Stop, plant.Stop, error)
	Codings(ctx context.Context, stopID int64) ([]plant.Coding, error)
	Spans(ctx context.Context, machineID, from, to int64) ([]plant.Span, error)
	Reasons(ctx context.Context) ([]plant.Reason, error)
	Settings(ctx context.Context) (plant.Settings, error)
	MachineConfigs(ctx context.Context) (map[int64]plant.MachineConfig, error)
}

const (
	// stopsListed is how many stops a list shows; older ones are reached by
	// the reports.
	stopsListed = 100
	// maxCoder is the longest "by" name accepted, in characters.
	maxCoder = 64
	// maxComment mirrors the store's limit, so the form can say it first.
	maxComment = 500
	// qrSize is the side of a QR code image in pixels: sharp when printed
	// 5 cm wide.
	qrSize = 320

	showUncoded = "uncoded"
	showAll     = "all"
)

// downtimeRoutes registers the downtime and reason-coding pages.
func (s *Server) downtimeRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/downtime", s.downtimeList, viewer)
	s.handle(e, http.MethodGet, "/downtime/stops/:id", s.codingPanel, viewer)
	s.handle(e, http.MethodPost, "/downtime/stops/:id/code", s.codeStop, operator)
	s.handle(e, http.MethodPost, "/downtime/stops/:id/split", s.splitStop, operator)
	s.handle(e, http.MethodGet, "/m/:id", s.operatorPage, viewer)
	// The QR sheet and its images name every machine: admins print them.
	s.handle(e, http.MethodGet, "/admin/qr", s.qrSheet, admin)
	s.handle(e, http.MethodGet, "/qr/:file", s.qrImage, admin)
}

// badRequest is a 400 whose message is shown to the user as it is.
func badRequest(msg string, internal error) error {
	he := echo.NewHTTPError(http.StatusBadRequest, msg)
	if internal != nil {
		he = he.SetInternal(internal)
	}
	return he
}

// costs is what the cards need to price stops: the plant's settings and
// every machine's cost figures, read once per request.
type costs struct {
	settings plant.Settings
	configs  map[int64]plant.MachineConfig
}

func (s *Server) loadCosts(ctx context.Context) (costs, error) {
	st, err := s.store.Settings(ctx)
	if err != nil {
		return costs{}, fmt.Errorf("web: settings: %w", err)
	}
	cfgs, err := s.store.MachineConfigs(ctx)
	if err != nil {
		return costs{}, fmt.Errorf("web: machine configs: %w", err)
	}
	if st.Currency == "" {
		st.Currency = plant.DefaultSettings().Currency
	}
	return costs{settings: st, configs: cfgs}, nil
}

// card is a stop as the pages show it, with what downtime.js needs to keep
// an ongoing stop's duration and cost ticking.
func (s *Server) card(st plant.Stop, cs costs, nowMS int64) views.StopCard {
	cfg := cs.configs[st.MachineID]
	c := views.StopCard{
		ID: st.ID, MachineID: st.MachineID, Machine: st.Machine, State: st.State,
		Start: st.Start, End: st.End, NowMS: nowMS, DurationMS: st.Duration(nowMS),
		ReasonID: st.ReasonID, Reason: st.Reason, Category: st.Category, Planned: st.Planned,
		Comment: st.Comment, CodedBy: st.CodedBy, CodedAt: st.CodedAt,
		Currency: cs.settings.Currency, Location: s.loc,
		Short: st.Duration(nowMS) < cs.settings.NoReasonMS,
	}
	if c.Machine == "" {
		c.Machine = "Machine " + strconv.FormatInt(st.MachineID, 10)
	}
	cost, _, ok, why := plant.StopCost(st, cfg, nowMS)
	c.Cost, c.CostOK, c.CostWhy = cost, ok, why
	if ok {
		// StopCost grows linearly with the duration: the hourly rate plus the
		// margin of the parts not made at the ideal rate.
		c.CostPerMS = cfg.CostPerHour / 3_600_000
		if cfg.IdealCycleS > 0 {
			c.CostPerMS += cfg.MarginPerUnit / (cfg.IdealCycleS * 1000)
		}
	}
	return c
}

// lineOf finds the line a machine belongs to.
func lineOf(lines []plant.Line, machineID int64) (plant.Line, bool) {
	for _, l := range lines {
		for _, m := range l.Machines {
			if m.ID == machineID {
				return l, true
			}
		}
	}
	return plant.Line{}, false
}

// lineStops lists a line's stops. Machines without a line level share an
// implicit line with id 0, which the store cannot filter by, so they are
// asked for one by one.
func (s *Server) lineStops(ctx context.Context, l plant.Line, q db.StopQuery) ([]plant.Stop, error) {
	if l.ID != 0 {
		q.LineID = l.ID
		out, err := s.store.Stops(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("web: stops of line %d: %w", l.ID, err)
		}
		return out, nil
	}
	var out []plant.Stop
	for _, m := range l.Machines {
		q.MachineID = m.ID
		st, err := s.store.Stops(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("web: stops of machine %d: %w", m.ID, err)
		}
		out = append(out, st...)
	}
	slices.SortStableFunc(out, func(a, b plant.Stop) int {
		return cmp.Or(cmp.Compare(b.Start, a.Start), cmp.Compare(b.ID, a.ID))
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// stopQuery is the list's query: "uncoded" leaves out coded stops and those
// too short to need a reason; "all" shows every stop.
func stopQuery(show string, settings plant.Settings, nowMS int64) db.StopQuery {
	q := db.StopQuery{Now: nowMS, Limit: stopsListed}
	if show != showAll {
		q.Uncoded = true
		q.MinMS = settings.NoReasonMS
	}
	return q
}

func parseShow(v string) string {
	if v == showAll {
		return showAll
	}
	return showUncoded
}

// stopList renders the data of one line's list; the hub uses it too.
func (s *Server) stopList(ctx context.Context, lines []plant.Line, lineID int64, show string, cs costs, nowMS int64) (views.StopList, error) {
	list := views.StopList{LineID: lineID, Show: show, NowMS: nowMS}
	l, ok := lineByID(lines, lineID)
	if !ok {
		return list, nil
	}
	list.LineName = lineName(l)
	stops, err := s.lineStops(ctx, l, stopQuery(show, cs.settings, nowMS))
	if err != nil {
		return list, err
	}
	for _, st := range stops {
		c := s.card(st, cs, nowMS)
		c.Href = panelHref(st.ID, lineID, show)
		list.Stops = append(list.Stops, c)
	}
	return list, nil
}

func lineByID(lines []plant.Line, id int64) (plant.Line, bool) {
	for _, l := range lines {
		if l.ID == id && len(l.Machines) > 0 {
			return l, true
		}
	}
	return plant.Line{}, false
}

func lineName(l plant.Line) string {
	if l.ID == 0 || l.Name == "" {
		return "Unassigned"
	}
	return l.Name
}

func panelHref(stopID, lineID int64, show string) string {
	q := url.Values{}
	if lineID >= 0 {
		q.Set("line", strconv.FormatInt(lineID, 10))
	}
	q.Set("show", show)
	return "/downtime/stops/" + strconv.FormatInt(stopID, 10) + "?" + q.Encode()
}

func listHref(lineID int64, show string, extra url.Values) string {
	q := url.Values{}
	q.Set("line", strconv.FormatInt(lineID, 10))
	q.Set("show", show)
	for k, v := range extra {
		q[k] = v
	}
	return "/downtime?" + q.Encode()
}

// downtimeList is GET /downtime: line tabs and the line's stops.
func (s *Server) downtimeList(c echo.Context) error {
	ctx := c.Request().Context()
	nowMS := s.now().UnixMilli()
	show := parseShow(c.QueryParam("show"))
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return err
	}
	v := views.DowntimePage{Show: show}
	// Every tab carries its number of uncoded stops, so the lines that need
	// attention are visible from any tab.
	uq := stopQuery(showUncoded, cs.settings, nowMS)
	firstUncoded := int64(-1)
	for _, l := range lines {
		if len(l.Machines) == 0 {
			continue
		}
		un, err := s.lineStops(ctx, l, uq)
		if err != nil {
			return err
		}
		v.Tabs = append(v.Tabs, views.LineTab{ID: l.ID, Name: lineName(l), Uncoded: len(un)})
		if firstUncoded < 0 && len(un) > 0 {
			firstUncoded = l.ID
		}
	}
	lineID := int64(-1)
	if raw := c.QueryParam("line"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if _, ok := lineByID(lines, id); err != nil || !ok {
			return fmt.Errorf("web: downtime line %q: %w", raw, plant.ErrNotFound)
		}
		lineID = id
	}
	switch {
	case lineID >= 0:
	case firstUncoded >= 0:
		lineID = firstUncoded
	case len(v.Tabs) > 0:
		lineID = v.Tabs[0].ID
	}
	for i := range v.Tabs {
		v.Tabs[i].Current = v.Tabs[i].ID == lineID
		v.Tabs[i].Href = listHref(v.Tabs[i].ID, show, nil)
	}
	v.List, err = s.stopList(ctx, lines, lineID, show, cs, nowMS)
	if err != nil {
		return err
	}
	v.ShowUncodedHref = listHref(lineID, showUncoded, nil)
	v.ShowAllHref = listHref(lineID, showAll, nil)
	v.Notice = s.notice(ctx, c, cs, nowMS)
	sub := ""
	if len(v.Tabs) > 0 {
		sub = downtimeTopic(lineID, show)
	}
	v.Page = s.page(c, "Downtime", sub, "downtime")
	return s.render(c, http.StatusOK, views.DowntimeView(v))
}

// notice is the confirmation after a POST redirected back: "coded" or
// "split" name the stop. A stale or forged id just shows nothing.
func (s *Server) notice(ctx context.Context, c echo.Context, cs costs, nowMS int64) string {
	for _, key := range []string{"coded", "split"} {
		id, err := strconv.ParseInt(c.QueryParam(key), 10, 64)
		if err != nil || id <= 0 {
			continue
		}
		st, err := s.store.Stop(ctx, id)
		if err != nil {
			continue
		}
		card := s.card(st, cs, nowMS)
		if key == "split" {
			return "Stop on " + card.Machine + " split at " + views.FormatTime(st.Start, s.loc) + "."
		}
		return "Stop on " + card.Machine + " coded as “" + st.Reason + "”."
	}
	return ""
}

// reasonGroups are the categories with their reasons that can code a stop:
// hidden ones are left out, empty categories too.
func reasonGroups(rs []plant.Reason, current int64) []views.ReasonGroup {
	var groups []views.ReasonGroup
	index := map[int64]int{}
	for _, r := range rs {
		if r.ParentID == 0 && !r.Hidden {
			index[r.ID] = len(groups)
			groups = append(groups, views.ReasonGroup{ID: r.ID, Name: r.Name, Planned: r.Planned})
		}
	}
	for _, r := range rs {
		i, ok := index[r.ParentID]
		if r.ParentID == 0 || r.Hidden || !ok {
			continue
		}
		groups[i].Reasons = append(groups[i].Reasons, views.ReasonButton{ID: r.ID, Name: r.Name, Planned: r.Planned, Current: r.ID == current})
	}
	return slices.DeleteFunc(groups, func(g views.ReasonGroup) bool { return len(g.Reasons) == 0 })
}

// codingPanel is GET /downtime/stops/:id: the reason buttons, split and history.
func (s *Server) codingPanel(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "stop")
	if err != nil {
		return err
	}
	st, err := s.store.Stop(ctx, id)
	if err != nil {
		return fmt.Errorf("web: stop %d: %w", id, err)
	}
	nowMS := s.now().UnixMilli()
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return err
	}
	rs, err := s.store.Reasons(ctx)
	if err != nil {
		return fmt.Errorf("web: reasons: %w", err)
	}
	hist, err := s.store.Codings(ctx, id)
	if err != nil {
		return fmt.Errorf("web: codings of stop %d: %w", id, err)
	}
	names := map[int64]string{}
	for _, r := range rs {
		names[r.ID] = r.Name
	}
	lineID, perr := strconv.ParseInt(c.QueryParam("line"), 10, 64)
	show := parseShow(c.QueryParam("show"))
	if perr != nil || lineID < 0 {
		if lines, err := s.store.Lines(ctx); err == nil {
			if l, ok := lineOf(lines, st.MachineID); ok {
				lineID = l.ID
			}
		}
	}
	v := views.CodingPanel{
		Stop:    s.card(st, cs, nowMS),
		Groups:  reasonGroups(rs, st.ReasonID),
		Line:    lineID,
		Show:    show,
		Back:    listHref(lineID, show, nil),
		MaxBy:   maxCoder,
		MaxNote: maxComment,
	}
	for _, h := range hist {
		what := names[h.ReasonID]
		if h.ReasonID == 0 {
			what = "—"
		} else if what == "" {
			what = "reason " + strconv.FormatInt(h.ReasonID, 10)
		}
		v.History = append(v.History, views.CodingRow{By: h.By, At: views.FormatTime(h.At, s.loc), Reason: what, Comment: h.Comment})
	}
	if !st.Ongoing() && st.End-st.Start > 1000 {
		v.CanSplit = true
		v.SplitType, v.SplitMin, v.SplitMax, v.SplitValue = s.splitInput(st)
	}
	v.Page = s.page(c, "Code stop · "+v.Stop.Machine, "", "downtime")
	return s.render(c, http.StatusOK, views.CodingPanelView(v))
}

// splitInput picks the input for a split time: a time of day when the stop
// is within one day, else a date and time.
func (s *Server) splitInput(st plant.Stop) (typ, lo, hi, val string) {
	a, b := time.UnixMilli(st.Start).In(s.loc), time.UnixMilli(st.End).In(s.loc)
	mid := time.UnixMilli(st.Start + (st.End-st.Start)/2).In(s.loc)
	if a.Format(time.DateOnly) == b.Format(time.DateOnly) {
		return "time", a.Format(time.TimeOnly), b.Format(time.TimeOnly), mid.Format(time.TimeOnly)
	}
	const local = "2006-01-02T15:04:05"
	return "datetime-local", a.Format(local), b.Format(local), mid.Format(local)
}

// coder is the form's "by": who codes, "operator" until users exist.
// coder is who codes a stop: the logged-in user. On a shared terminal
// (one login for a line's tablet) the operator may type a name as well,
// kept beside the login: "tablet-line1 / Maria".
func coder(c echo.Context) (string, error) {
	who, _, ok := principal(c)
	if !ok {
		who = "operator"
	}
	by := strings.TrimSpace(c.FormValue("by"))
	if utf8.RuneCountInString(by) > maxCoder || !utf8.ValidString(by) {
		return "", badRequest(fmt.Sprintf("The name of who codes may be at most %d characters.", maxCoder), nil)
	}
	if by == "" || strings.EqualFold(by, who) {
		return who, nil
	}
	return who + " / " + by, nil
}

// afterPost is where a POST redirects: back to the operator page it came
// from, or to the list of the stop's line.
func afterPost(c echo.Context, st plant.Stop, key string) string {
	if c.FormValue("return") == "m" {
		return "/m/" + strconv.FormatInt(st.MachineID, 10) + "?" + key + "=" + strconv.FormatInt(st.ID, 10)
	}
	lineID, _ := strconv.ParseInt(c.FormValue("line"), 10, 64)
	return listHref(lineID, parseShow(c.FormValue("show")), url.Values{key: {strconv.FormatInt(st.ID, 10)}})
}

// codeStop is POST /downtime/stops/:id/code with reason_id, comment and by.
func (s *Server) codeStop(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "stop")
	if err != nil {
		return err
	}
	rid, err := strconv.ParseInt(c.FormValue("reason_id"), 10, 64)
	if err != nil || rid <= 0 {
		return badRequest("Pick a reason for the stop.", err)
	}
	comment := strings.TrimSpace(c.FormValue("comment"))
	if utf8.RuneCountInString(comment) > maxComment || !utf8.ValidString(comment) {
		return badRequest(fmt.Sprintf("The comment may be at most %d characters.", maxComment), nil)
	}
	by, err := coder(c)
	if err != nil {
		return err
	}
	// The stop first, so a forged stop id is a 404 whatever the reason says.
	if _, err := s.store.Stop(ctx, id); err != nil {
		return fmt.Errorf("web: code stop %d: %w", id, err)
	}
	rs, err := s.store.Reasons(ctx)
	if err != nil {
		return fmt.Errorf("web: reasons: %w", err)
	}
	i := slices.IndexFunc(rs, func(r plant.Reason) bool { return r.ID == rid })
	switch {
	case i < 0:
		return fmt.Errorf("web: code stop %d: reason %d: %w", id, rid, plant.ErrNotFound)
	case rs[i].ParentID == 0:
		return badRequest("“"+rs[i].Name+"” is a category: pick one of the reasons under it.", nil)
	case rs[i].Hidden:
		return badRequest("“"+rs[i].Name+"” is no longer offered: pick another reason.", nil)
	}
	st, err := s.store.CodeStop(ctx, plant.Coding{StopID: id, ReasonID: rid, Comment: comment, By: by, At: s.now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("web: code stop %d: %w", id, err)
	}
	s.StopsChanged([]int64{st.MachineID})
	s.audit(c, "stop.code", s.stopObject(st), auditKV("reason", reasonObject(rs, rs[i]))+" "+auditKV("comment", comment))
	return c.Redirect(http.StatusSeeOther, afterPost(c, st, "coded"))
}

// splitStop is POST /downtime/stops/:id/split with at (HH:MM[:SS] on the
// stop's day, or a local or ISO date and time).
func (s *Server) splitStop(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "stop")
	if err != nil {
		return err
	}
	by, err := coder(c)
	if err != nil {
		return err
	}
	st, err := s.store.Stop(ctx, id)
	if err != nil {
		return fmt.Errorf("web: split stop %d: %w", id, err)
	}
	if st.Ongoing() {
		return badRequest("This stop is still going on: it can be split once it has ended.", nil)
	}
	at, msg := s.parseSplitTime(c.FormValue("at"), st)
	if msg != "" {
		return badRequest(msg, nil)
	}
	if at <= st.Start || at >= st.End {
		return badRequest(fmt.Sprintf("Pick a time between %s and %s to split this stop.",
			views.FormatTime(st.Start, s.loc), views.FormatTime(st.End, s.loc)), nil)
	}
	first, second, err := s.store.SplitStop(ctx, id, at, by)
	if err != nil {
		return fmt.Errorf("web: split stop %d: %w", id, err)
	}
	s.StopsChanged([]int64{st.MachineID})
	s.audit(c, "stop.split", s.stopObject(st),
		auditKV("at", time.UnixMilli(at).In(s.loc).Format(time.RFC3339))+" "+auditKV("new_stop", strconv.FormatInt(second.ID, 10)))
	return c.Redirect(http.StatusSeeOther, afterPost(c, first, "split"))
}

// parseSplitTime reads a split time in the plant's zone. A bare time of day
// is taken on the stop's first day, or on its last day when that puts it
// inside the stop (a stop across midnight). msg is what to tell the user
// when raw is not a time.
func (s *Server) parseSplitTime(raw string, st plant.Stop) (at int64, msg string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return 0, "Pick the time at which to split the stop."
	}
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t.UnixMilli(), ""
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, raw, s.loc); err == nil {
			return t.UnixMilli(), ""
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		clock, err := time.Parse(layout, raw)
		if err != nil {
			continue
		}
		for _, day := range []int64{st.Start, st.End} {
			d := time.UnixMilli(day).In(s.loc)
			t := time.Date(d.Year(), d.Month(), d.Day(), clock.Hour(), clock.Minute(), clock.Second(), 0, s.loc)
			at = t.UnixMilli()
			if at > st.Start && at < st.End {
				break
			}
		}
		return at, ""
	}
	return 0, "“" + views.Truncate(raw, 40) + "” is not a time: write it as 14:05 or 14:05:30."
}

// operatorPage is GET /m/:id, the page a QR code at the machine opens.
func (s *Server) operatorPage(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "stop")
	if err != nil {
		return err
	}
	m, err := s.machineWithTags(ctx, id)
	if err != nil {
		return err
	}
	nowMS := s.now().UnixMilli()
	op, err := s.operatorStop(ctx, m.ID, nowMS)
	if err != nil {
		return err
	}
	v := views.OperatorPage{Status: s.status(m, nowMS), Stop: op}
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return err
	}
	v.Notice = s.notice(ctx, c, cs, nowMS)
	v.Page = s.page(c, v.Status.Name, "machine:"+strconv.FormatInt(id, 10), "")
	return s.render(c, http.StatusOK, views.OperatorView(v))
}

// operatorStop is the operator page's live part: the machine's current or
// last stop with the reason buttons.
func (s *Server) operatorStop(ctx context.Context, machineID, nowMS int64) (views.OperatorStop, error) {
	op := views.OperatorStop{MachineID: machineID, MaxBy: maxCoder, MaxNote: maxComment}
	st, err := s.store.LastStop(ctx, machineID)
	if errors.Is(err, plant.ErrNotFound) {
		return op, nil
	}
	if err != nil {
		return op, fmt.Errorf("web: last stop of machine %d: %w", machineID, err)
	}
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return op, err
	}
	rs, err := s.store.Reasons(ctx)
	if err != nil {
		return op, fmt.Errorf("web: reasons: %w", err)
	}
	card := s.card(st, cs, nowMS)
	card.Href = panelHref(st.ID, -1, showAll) // the panel has the history and the split
	op.Stop = &card
	op.Groups = reasonGroups(rs, st.ReasonID)
	return op, nil
}

// qrSheet is GET /admin/qr: a printable sheet with a QR code per machine.
func (s *Server) qrSheet(c echo.Context) error {
	lines, err := s.store.Lines(c.Request().Context())
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	base := c.Scheme() + "://" + c.Request().Host
	v := views.QRPage{Page: s.page(c, "QR codes", "", "admin")}
	for _, l := range lines {
		for _, m := range l.Machines {
			name := m.Name
			if name == "" {
				name = m.Path.Machine
			}
			id := strconv.FormatInt(m.ID, 10)
			v.Machines = append(v.Machines, views.QRMachine{
				ID: m.ID, Name: name, Line: lineName(l), URL: base + "/m/" + id, Image: "/qr/" + id + ".png",
			})
		}
	}
	return s.render(c, http.StatusOK, views.QRView(v))
}

// qrImage is GET /qr/:id.png: the QR code of a machine's operator page, for
// the host the request came in on (the address phones on this network use).
func (s *Server) qrImage(c echo.Context) error {
	raw, ok := strings.CutSuffix(c.Param("file"), ".png")
	id, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil || id <= 0 {
		return fmt.Errorf("web: qr %q: %w", c.Param("file"), plant.ErrNotFound)
	}
	if _, err := s.store.Machine(c.Request().Context(), id); err != nil {
		return fmt.Errorf("web: qr of machine %d: %w", id, err)
	}
	png, err := qrcode.Encode(c.Scheme()+"://"+c.Request().Host+"/m/"+raw, qrcode.Medium, qrSize)
	if err != nil {
		return fmt.Errorf("web: qr of machine %d: %w", id, err)
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=300")
	return c.Blob(http.StatusOK, "image/png", png)
}

// machineDowntime is the machine page's timeline and stops over its range.
func (s *Server) machineDowntime(ctx context.Context, machineID int64, r views.RangeChoice, nowMS int64) (views.MachineDowntime, error) {
	from := nowMS - r.Dur.Milliseconds()
	v := views.MachineDowntime{MachineID: machineID, Range: r.Key}
	spans, err := s.store.Spans(ctx, machineID, from, nowMS)
	if err != nil {
		return v, fmt.Errorf("web: spans of machine %d: %w", machineID, err)
	}
	v.Timeline = views.TimelineFrom(from, nowMS, nowMS, spans, s.loc)
	stops, err := s.store.Stops(ctx, db.StopQuery{MachineID: machineID, From: from, To: nowMS, Now: nowMS, Limit: stopsListed})
	if err != nil {
		return v, fmt.Errorf("web: stops of machine %d: %w", machineID, err)
	}
	cs, err := s.loadCosts(ctx)
	if err != nil {
		return v, err
	}
	for _, st := range stops {
		card := s.card(st, cs, nowMS)
		card.Href = panelHref(st.ID, -1, showAll)
		v.Stops = append(v.Stops, card)
	}
	return v, nil
}
