package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// AuditStore is what the audit log page and its CSV export read.
type AuditStore interface {
	AuditLog(ctx context.Context, beforeID int64, limit int) ([]db.AuditEntry, error)
	AuditAll(ctx context.Context, each func(db.AuditEntry) error) error
}

// auditPageSize is how many entries the audit page shows at a time.
const auditPageSize = 200

// adminAudit is GET /admin/audit[?before=ID]: the audit log, newest first,
// auditPageSize entries a page, older pages by the id to start below.
func (s *Server) adminAudit(c echo.Context) error {
	var before int64
	if q := c.QueryParam("before"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n <= 0 {
			return badRequest("before must be the positive id of an audit entry.", err)
		}
		before = n
	}
	a := s.store
	// One more than shown says whether an older page exists.
	es, err := a.AuditLog(c.Request().Context(), before, auditPageSize+1)
	if err != nil {
		return fmt.Errorf("web: audit log before %d: %w", before, err)
	}
	v := views.AuditPage{
		AdminPage: s.adminPage(c, "Audit log", "audit", views.FormErr{}),
		Location:  s.loc,
		Newest:    before == 0,
	}
	if len(es) > auditPageSize {
		es = es[:auditPageSize]
		v.Older = "/admin/audit?before=" + strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	for _, e := range es {
		v.Entries = append(v.Entries, views.AuditRow{
			ID: e.ID, TS: e.TS, Actor: e.Actor, Action: e.Action, Object: e.Object, Detail: e.Detail,
		})
	}
	return s.render(c, http.StatusOK, views.AuditView(v))
}

// utf8BOM makes Excel read the CSV as UTF-8 rather than the local code page.
const utf8BOM = "\ufeff"

// adminAuditCSV is GET /admin/audit.csv: the whole audit log, oldest first,
// as RFC 4180 CSV, streamed from the store so its size does not matter.
func (s *Server) adminAuditCSV(c echo.Context) error {
	a := s.store
	// The response starts with the first row, so a store that fails at once
	// is still a clean 500 instead of an empty download.
	var cw *csv.Writer
	start := func() error {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition,
			`attachment; filename="andon-audit-`+s.now().In(s.loc).Format("2006-01-02")+`.csv"`)
		noStore(c)
		c.Response().WriteHeader(http.StatusOK)
		if _, err := c.Response().Write([]byte(utf8BOM)); err != nil {
			return fmt.Errorf("web: audit csv: %w", err)
		}
		cw = csv.NewWriter(c.Response())
		return cw.Write([]string{"time", "actor", "action", "object", "detail"})
	}
	err := a.AuditAll(c.Request().Context(), func(e db.AuditEntry) error {
		if cw == nil {
			if err := start(); err != nil {
				return err
			}
		}
		return cw.Write([]string{
			time.UnixMilli(e.TS).In(s.loc).Format(time.RFC3339),
			csvCell(e.Actor), csvCell(e.Action), csvCell(e.Object), csvCell(e.Detail),
		})
	})
	if err != nil {
		return fmt.Errorf("web: audit csv: %w", err)
	}
	if cw == nil {
		if err := start(); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("web: audit csv: %w", err)
	}
	return nil
}

// csvCell neutralises a text cell that a spreadsheet would run as a formula
// (OWASP "CSV injection"): names and comments are typed by users, topics by
// devices.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// --- What the admin and downtime handlers record ---

// auditKV is one "name=value" of an audit detail; values with spaces, quotes or
// nothing at all are quoted so the detail reads back unambiguously.
func auditKV(name, value string) string {
	if value == "" || strings.ContainsAny(value, " \t\r\n\"=") {
		value = strconv.Quote(value)
	}
	return name + "=" + value
}

func auditNum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// auditChanges joins the pairs whose value differs from before; for a new thing
// (before nil) it joins all of them.
func auditChanges(before map[string]string, after [][2]string) string {
	var out []string
	for _, p := range after {
		if old, ok := before[p[0]]; before != nil && ok && old == p[1] {
			continue
		}
		out = append(out, auditKV(p[0], p[1]))
	}
	if len(out) == 0 {
		return "no change"
	}
	return strings.Join(out, " ")
}

func auditMap(ps [][2]string) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p[0]] = p[1]
	}
	return m
}

// machinePairs are a machine's configurable values, as its form names them.
func machinePairs(cfg plant.MachineConfig, display, rule string) [][2]string {
	return [][2]string{
		{"ideal_cycle_s", auditNum(cfg.IdealCycleS)},
		{"cost_per_hour", auditNum(cfg.CostPerHour)},
		{"margin_per_unit", auditNum(cfg.MarginPerUnit)},
		{"bottleneck", strconv.FormatBool(cfg.Bottleneck)},
		{"display_name", display},
		{"state_rule", rule},
	}
}

// reasonPairs are a reason's editable values.
func reasonPairs(r plant.Reason) [][2]string {
	return [][2]string{
		{"name", r.Name},
		{"planned", strconv.FormatBool(r.Planned)},
		{"hidden", strconv.FormatBool(r.Hidden)},
		{"sort", strconv.Itoa(r.Sort)},
	}
}

// shiftPairs are a shift's values: its times, days and breaks.
func shiftPairs(sh plant.Shift) [][2]string {
	var days []string
	for d, on := range sh.Days {
		if on {
			days = append(days, strings.ToLower(time.Weekday(d).String()[:3]))
		}
	}
	var breaks []string
	for _, b := range sh.Breaks {
		breaks = append(breaks, b.Start.String()+"-"+b.End.String()+" "+b.Name)
	}
	return [][2]string{
		{"name", sh.Name},
		{"start", sh.Start.String()},
		{"end", sh.End.String()},
		{"days", strings.Join(days, ",")},
		{"breaks", strings.Join(breaks, "; ")},
	}
}

// settingsPairs are the plant-wide settings as the settings form shows them.
func settingsPairs(st plant.Settings) [][2]string {
	return [][2]string{
		{"micro_stop_min", auditNum(float64(st.MicroStopMS) / 60_000)},
		{"no_reason_min", auditNum(float64(st.NoReasonMS) / 60_000)},
		{"heartbeat_s", auditNum(float64(st.HeartbeatMS) / 1000)},
		{"currency", st.Currency},
		{"state_map", strings.ReplaceAll(views.StateMapText(st), "\n", "; ")},
	}
}

// reasonObject names a reason by its place in the tree: "Tooling / Die change".
func reasonObject(rs []plant.Reason, r plant.Reason) string {
	if r.ParentID != 0 {
		if i := slices.IndexFunc(rs, func(p plant.Reason) bool { return p.ID == r.ParentID }); i >= 0 {
			return rs[i].Name + " / " + r.Name
		}
	}
	return r.Name
}

// stopObject names a stop for the log: its id, machine and start.
func (s *Server) stopObject(st plant.Stop) string {
	return fmt.Sprintf("stop %d on %s at %s", st.ID, st.Machine, views.FormatTime(st.Start, s.loc))
}

// machineBefore is a machine's configuration before a change, for the
// detail of its audit entry. A failed read leaves it nil: the entry then
// lists every value instead of only the changed ones, and the save goes on.
func (s *Server) machineBefore(ctx context.Context, m plant.Machine) map[string]string {
	cfgs, err := s.store.MachineConfigs(ctx)
	if err != nil {
		s.log.Warn("audit: machine configs", "machine_id", m.ID, "err", err)
		return nil
	}
	rules, err := s.store.StateRules(ctx)
	if err != nil {
		s.log.Warn("audit: state rules", "machine_id", m.ID, "err", err)
		return nil
	}
	display := m.Name
	if display == m.Path.Machine {
		display = ""
	}
	return auditMap(machinePairs(cfgs[m.ID], display, rules[m.ID]))
}

// reasonName names a reason for the log by its place in the tree; a failed
// read names it by itself.
func (s *Server) reasonName(ctx context.Context, r plant.Reason) string {
	rs, err := s.store.Reasons(ctx)
	if err != nil {
		s.log.Warn("audit: reasons", "err", err)
		return r.Name
	}
	return reasonObject(rs, r)
}

// shiftBefore is a shift as stored, for the log; false if it cannot be read.
func (s *Server) shiftBefore(ctx context.Context, id int64) (plant.Shift, bool) {
	shifts, _, err := s.store.Calendar(ctx, s.loc)
	if err != nil {
		s.log.Warn("audit: calendar", "shift_id", id, "err", err)
		return plant.Shift{}, false
	}
	i := slices.IndexFunc(shifts, func(sh plant.Shift) bool { return sh.ID == id })
	if i < 0 {
		return plant.Shift{}, false
	}
	return shifts[i], true
}
