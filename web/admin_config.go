package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"andon/plant"
	"andon/views"
)

// Limits the forms check before the store does, so the message can stand
// next to the field that is wrong.
const (
	maxNameRunes     = 80
	maxCurrencyRunes = 8
	formDayMS        = 24 * 60 * 60 * 1000
)

// fieldError is a wrong form value: the message goes beside the field.
type fieldError struct {
	field, msg string
}

func (e fieldError) Error() string { return e.field + ": " + e.msg }

// formErr turns a failed save into what the page shows: a field error
// beside its field, a store's plant.ErrInvalid beside the form. Anything
// else is not the user's doing and is returned as an error (500, or 404 for
// plant.ErrNotFound).
func formErr(form string, values url.Values, err error) (views.FormErr, error) {
	var fe fieldError
	if errors.As(err, &fe) {
		return views.FormErr{Form: form, Field: fe.field, Msg: fe.msg, Values: values}, nil
	}
	if errors.Is(err, plant.ErrInvalid) {
		return views.FormErr{Form: form, Msg: userMessage(err), Values: values}, nil
	}
	return views.FormErr{}, err
}

// userMessage is a plant.ErrInvalid's message as a sentence for the page:
// the store's wording without the package prefixes and the sentinel's text.
func userMessage(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, ": "+plant.ErrInvalid.Error(), "")
	msg = strings.ReplaceAll(msg, plant.ErrInvalid.Error()+": ", "")
	for _, p := range []string{"web: ", "db: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	if msg == "" {
		return "That value cannot be saved."
	}
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:] + "."
}

// savedRedirect sends the browser back to a page after a change, saying so.
func savedRedirect(c echo.Context, path string) error {
	return c.Redirect(http.StatusSeeOther, path+"?saved=1")
}

// savedNote is the confirmation after a redirect; the text is fixed, never
// taken from the query.
func savedNote(c echo.Context) string {
	if c.QueryParam("saved") == "1" {
		return "Saved. Changes take effect at once."
	}
	return ""
}

// idParam parses the positive id of the :id path parameter; anything else
// is not found.
func idParam(c echo.Context, what string) (int64, error) { return pathID(c, "id", what) }

// pathID parses a positive id from the path parameter param; anything else
// is not found.
func pathID(c echo.Context, param, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(param), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("web: %s id %q: %w", what, c.Param(param), plant.ErrNotFound)
	}
	return id, nil
}

// formValues reads a POSTed form.
func formValues(c echo.Context) (url.Values, error) {
	v, err := c.FormParams()
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.").SetInternal(err)
	}
	return v, nil
}

// formNumber parses an optional non-negative number field ("" = 0, not set).
func formNumber(v url.Values, field, what string) (float64, error) {
	s := strings.TrimSpace(strings.ReplaceAll(v.Get(field), ",", "."))
	if s == "" {
		return 0, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fieldError{field, what + " must be a number, like 12.5"}
	}
	if x < 0 {
		return 0, fieldError{field, what + " cannot be negative"}
	}
	return x, nil
}

// formName checks a required name field.
func formName(v url.Values, field, what string) (string, error) {
	n := strings.TrimSpace(v.Get(field))
	switch {
	case n == "":
		return "", fieldError{field, what + " needs a name"}
	case utf8.RuneCountInString(n) > maxNameRunes:
		return "", fieldError{field, fmt.Sprintf("%s: at most %d characters", what, maxNameRunes)}
	}
	return n, nil
}

// --- Machines ---

func (s *Server) adminMachines(c echo.Context) error {
	return s.renderMachines(c, http.StatusOK, views.FormErr{})
}

func (s *Server) renderMachines(c echo.Context, code int, fe views.FormErr) error {
	ctx := c.Request().Context()
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	cfgs, err := s.store.MachineConfigs(ctx)
	if err != nil {
		return fmt.Errorf("web: machine configs: %w", err)
	}
	rules, err := s.store.StateRules(ctx)
	if err != nil {
		return fmt.Errorf("web: state rules: %w", err)
	}
	st, err := s.store.Settings(ctx)
	if err != nil {
		return fmt.Errorf("web: settings: %w", err)
	}
	v := views.MachinesAdminPage{
		AdminPage: s.adminPage(c, "Machines", "machines", fe),
		Currency:  st.Currency,
	}
	for _, l := range lines {
		for _, m := range l.Machines {
			display := m.Name
			if display == m.Path.Machine {
				display = ""
			}
			rule, _ := plant.ParseRule(rules[m.ID])
			v.Machines = append(v.Machines, views.MachineConfigRow{
				ID: m.ID, Path: m.Path.String(), Name: machineName(m), Display: display,
				Config: cfgs[m.ID], Rule: rule, Line: lineLabel(l), OnLine: l.ID != 0,
			})
		}
	}
	return s.render(c, code, views.MachinesAdminView(v))
}

// machineForm reads and checks a machine's configuration form.
func machineForm(v url.Values) (cfg plant.MachineConfig, display, rule string, err error) {
	if cfg.IdealCycleS, err = formNumber(v, "ideal_cycle_s", "Ideal cycle time"); err != nil {
		return
	}
	if cfg.CostPerHour, err = formNumber(v, "cost_per_hour", "Cost per hour"); err != nil {
		return
	}
	if cfg.MarginPerUnit, err = formNumber(v, "margin_per_unit", "Margin per unit"); err != nil {
		return
	}
	cfg.Bottleneck = v.Get("bottleneck") == "1"
	display = strings.TrimSpace(v.Get("display_name"))
	if utf8.RuneCountInString(display) > maxNameRunes {
		err = fieldError{"display_name", fmt.Sprintf("at most %d characters", maxNameRunes)}
		return
	}
	rule, err = ruleForm(v)
	return
}

// ruleForm builds a state rule's JSON from its fields, checked by
// plant.ParseRule; "none" is no rule.
func ruleForm(v url.Values) (string, error) {
	kind := v.Get("rule_kind")
	if kind == "" || kind == "none" {
		return "", nil
	}
	r := plant.Rule{Kind: kind, Metric: strings.TrimSpace(v.Get("rule_metric"))}
	if r.Metric == "" {
		return "", fieldError{"rule_metric", "A state rule needs the metric it watches, like good or speed"}
	}
	var err error
	switch kind {
	case plant.RuleCounter:
		if r.Factor, err = formNumber(v, "rule_factor", "Factor"); err != nil {
			return "", err
		}
	case plant.RuleBelow:
		s := strings.TrimSpace(v.Get("rule_threshold"))
		if r.Threshold, err = strconv.ParseFloat(s, 64); err != nil || math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
			return "", fieldError{"rule_threshold", "Threshold must be a number"}
		}
		forS, err := formNumber(v, "rule_for_s", "Seconds")
		if err != nil {
			return "", err
		}
		r.ForMS = int64(forS * 1000)
	default:
		return "", fieldError{"rule_kind", "Choose no rule, a stalled counter or a value below a threshold"}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("web: state rule: %w", err)
	}
	if _, err := plant.ParseRule(string(b)); err != nil {
		return "", fieldError{"rule_kind", userMessage(err)}
	}
	return string(b), nil
}

func (s *Server) saveMachine(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := idParam(c, "machine")
	if err != nil {
		return err
	}
	m, err := s.store.Machine(ctx, id)
	if err != nil {
		return fmt.Errorf("web: machine %d: %w", id, err)
	}
	v, err := formValues(c)
	if err != nil {
		return err
	}
	before := s.machineBefore(ctx, m)
	form := "machine-" + formatID(id)
	cfg, display, rule, err := machineForm(v)
	if err == nil {
		err = s.store.SetMachineConfig(ctx, id, cfg, display)
	}
	if err == nil {
		// A second write: the config is saved even if this one fails, which
		// the page then says; the rule was checked above, so it should not.
		err = s.store.SetStateRule(ctx, id, rule)
	}
	if err != nil {
		fe, err := formErr(form, v, err)
		if err != nil {
			return err
		}
		return s.renderMachines(c, http.StatusUnprocessableEntity, fe)
	}
	s.cfg.Engine.Reload() // the new rule and ideal cycle time apply from the next reading
	s.hub.plantChanged()  // a new display name shows in the next live update
	s.audit(c, "machine.update", m.Path.String(), auditChanges(before, machinePairs(cfg, display, rule)))
	return savedRedirect(c, "/admin/machines")
}

// --- Reasons ---

func (s *Server) adminReasons(c echo.Context) error {
	return s.renderReasons(c, http.StatusOK, views.FormErr{})
}

func (s *Server) renderReasons(c echo.Context, code int, fe views.FormErr) error {
	rs, err := s.store.Reasons(c.Request().Context())
	if err != nil {
		return fmt.Errorf("web: reasons: %w", err)
	}
	v := views.ReasonsAdminPage{AdminPage: s.adminPage(c, "Reasons", "reasons", fe)}
	idx := map[int64]int{}
	for _, r := range rs {
		if r.ParentID == 0 {
			idx[r.ID] = len(v.Categories)
			v.Categories = append(v.Categories, views.ReasonCategory{Reason: r})
		}
	}
	for _, r := range rs {
		if i, ok := idx[r.ParentID]; ok && r.ParentID != 0 {
			v.Categories[i].Reasons = append(v.Categories[i].Reasons, r)
		}
	}
	return s.render(c, code, views.ReasonsAdminView(v))
}

// saveReason adds a category or reason (POST /admin/reasons) or edits one
// (POST /admin/reasons/:id): name, planned, hidden, sort.
func (s *Server) saveReason(c echo.Context) error {
	ctx := c.Request().Context()
	var r plant.Reason
	form := "reason-new"
	if c.Param("id") != "" {
		id, err := idParam(c, "reason")
		if err != nil {
			return err
		}
		rs, err := s.store.Reasons(ctx)
		if err != nil {
			return fmt.Errorf("web: reasons: %w", err)
		}
		found := false
		for _, x := range rs {
			if x.ID == id {
				r, found = x, true
			}
		}
		if !found {
			return fmt.Errorf("web: reason %d: %w", id, plant.ErrNotFound)
		}
		form = "reason-" + formatID(id)
	}
	v, err := formValues(c)
	if err != nil {
		return err
	}
	if r.ID == 0 {
		form = "reason-new-" + strings.TrimSpace(v.Get("parent_id"))
	}
	var before map[string]string // nil for a new reason: the log lists every value
	if r.ID != 0 {
		before = auditMap(reasonPairs(r))
	}
	err = reasonForm(v, &r)
	if err == nil {
		var id int64
		if id, err = s.store.SaveReason(ctx, r); err == nil && r.ID == 0 {
			r.ID = id
		}
	}
	if err != nil {
		if errors.Is(err, plant.ErrNotFound) && r.ID == 0 {
			// An unknown category in the add form is the form's fault, not
			// a missing page.
			err = fieldError{"parent_id", "That category does not exist (any more); reload the page"}
		}
		fe, err := formErr(form, v, err)
		if err != nil {
			return err
		}
		return s.renderReasons(c, http.StatusUnprocessableEntity, fe)
	}
	action := "reason.update"
	if before == nil {
		action = "reason.create"
	}
	s.audit(c, action, s.reasonName(ctx, r), auditChanges(before, reasonPairs(r)))
	return savedRedirect(c, "/admin/reasons")
}

// reasonForm applies a reason form to r: a new node takes its parent from
// the form; an existing one keeps its place in the tree.
func reasonForm(v url.Values, r *plant.Reason) error {
	n, err := formName(v, "name", "The reason")
	if err != nil {
		return err
	}
	if r.ID == 0 {
		p := strings.TrimSpace(v.Get("parent_id"))
		if p != "" && p != "0" {
			if r.ParentID, err = strconv.ParseInt(p, 10, 64); err != nil || r.ParentID <= 0 {
				return fieldError{"parent_id", "That category does not exist; reload the page"}
			}
		}
	}
	if sv := strings.TrimSpace(v.Get("sort")); sv != "" {
		sort, err := strconv.Atoi(sv)
		if err != nil || sort < -9999 || sort > 9999 {
			return fieldError{"sort", "Order must be a whole number"}
		}
		r.Sort = sort
	}
	r.Name = n
	r.Planned = v.Get("planned") == "1"
	r.Hidden = v.Get("hidden") == "1"
	return nil
}

// --- Shifts and holidays ---

func (s *Server) adminShifts(c echo.Context) error {
	return s.renderShifts(c, http.StatusOK, views.FormErr{})
}

func (s *Server) renderShifts(c echo.Context, code int, fe views.FormErr) error {
	shifts, holidays, err := s.store.Calendar(c.Request().Context(), s.loc)
	if err != nil {
		return fmt.Errorf("web: calendar: %w", err)
	}
	v := views.ShiftsAdminPage{AdminPage: s.adminPage(c, "Shifts", "shifts", fe), Shifts: shifts}
	for d, on := range holidays {
		if on {
			v.Holidays = append(v.Holidays, d)
		}
	}
	slices.Sort(v.Holidays)
	return s.render(c, code, views.ShiftsAdminView(v))
}

// shiftForm reads a shift form: name, start, end, day (repeated weekday
// numbers, Sunday 0) and breaks, one a line: "10:00-10:15 Break".
func shiftForm(v url.Values) (plant.Shift, error) {
	var sh plant.Shift
	var err error
	if sh.Name, err = formName(v, "name", "The shift"); err != nil {
		return sh, err
	}
	if sh.Start, err = formClock(v.Get("start"), "start", false); err != nil {
		return sh, err
	}
	if sh.End, err = formClock(v.Get("end"), "end", true); err != nil {
		return sh, err
	}
	for _, d := range v["day"] {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 6 {
			return sh, fieldError{"day", "Pick days from Monday to Sunday"}
		}
		sh.Days[n] = true
	}
	if sh.Days == ([7]bool{}) {
		return sh, fieldError{"day", "Pick at least one day"}
	}
	for _, line := range strings.Split(strings.ReplaceAll(v.Get("breaks"), "\r", ""), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		b, err := breakLine(line)
		if err != nil {
			return sh, err
		}
		sh.Breaks = append(sh.Breaks, b)
	}
	return sh, nil
}

// formClock parses a time of day for a field; 24:00 only as an end.
func formClock(s, field string, end bool) (plant.Clock, error) {
	c, err := plant.ParseClock(strings.TrimSpace(s))
	if err != nil || (!end && c >= 1440) {
		return 0, fieldError{field, fmt.Sprintf("%q is not a time of day: use HH:MM, like 06:00", s)}
	}
	return c, nil
}

// breakLine parses "10:00-10:15 Lunch" (the name is optional).
func breakLine(line string) (plant.Break, error) {
	bad := fieldError{"breaks", fmt.Sprintf("%q: write a break as 10:00-10:15 and a name", line)}
	times, nm, _ := strings.Cut(line, " ")
	from, to, ok := strings.Cut(times, "-")
	if !ok {
		return plant.Break{}, bad
	}
	start, err := plant.ParseClock(strings.TrimSpace(from))
	if err != nil || start >= 1440 {
		return plant.Break{}, bad
	}
	stop, err := plant.ParseClock(strings.TrimSpace(to))
	if err != nil {
		return plant.Break{}, bad
	}
	nm = strings.TrimSpace(nm)
	if nm == "" {
		nm = "Break"
	}
	if utf8.RuneCountInString(nm) > maxNameRunes {
		return plant.Break{}, fieldError{"breaks", fmt.Sprintf("a break's name: at most %d characters", maxNameRunes)}
	}
	return plant.Break{Name: nm, Start: start, End: stop}, nil
}

func (s *Server) saveShift(c echo.Context) error {
	ctx := c.Request().Context()
	var id int64
	form := "shift-new"
	if c.Param("id") != "" {
		var err error
		if id, err = s.knownShift(c); err != nil {
			return err
		}
		form = "shift-" + formatID(id)
	}
	v, err := formValues(c)
	if err != nil {
		return err
	}
	var before map[string]string // nil for a new shift: the log lists every value
	if id != 0 {
		if old, ok := s.shiftBefore(ctx, id); ok {
			before = auditMap(shiftPairs(old))
		} else {
			before = map[string]string{}
		}
	}
	sh, err := shiftForm(v)
	if err == nil {
		sh.ID = id
		_, err = s.store.SaveShift(ctx, sh)
	}
	if err != nil {
		fe, err := formErr(form, v, err)
		if err != nil {
			return err
		}
		return s.renderShifts(c, http.StatusUnprocessableEntity, fe)
	}
	action := "shift.update"
	if id == 0 {
		action = "shift.create"
	}
	s.audit(c, action, sh.Name, auditChanges(before, shiftPairs(sh)))
	return savedRedirect(c, "/admin/shifts")
}

// knownShift is the shift id of the URL if such a shift exists.
func (s *Server) knownShift(c echo.Context) (int64, error) {
	id, err := idParam(c, "shift")
	if err != nil {
		return 0, err
	}
	shifts, _, err := s.store.Calendar(c.Request().Context(), s.loc)
	if err != nil {
		return 0, fmt.Errorf("web: calendar: %w", err)
	}
	for _, sh := range shifts {
		if sh.ID == id {
			return id, nil
		}
	}
	return 0, fmt.Errorf("web: shift %d: %w", id, plant.ErrNotFound)
}

func (s *Server) deleteShift(c echo.Context) error {
	id, err := s.knownShift(c)
	if err != nil {
		return err
	}
	old, ok := s.shiftBefore(c.Request().Context(), id)
	if !ok {
		old.Name = "shift " + formatID(id)
	}
	if err := s.store.DeleteShift(c.Request().Context(), id); err != nil {
		return fmt.Errorf("web: delete shift %d: %w", id, err)
	}
	s.audit(c, "shift.delete", old.Name, auditChanges(nil, shiftPairs(old)))
	return savedRedirect(c, "/admin/shifts")
}

// saveHoliday adds (on=1) or removes a day without production.
func (s *Server) saveHoliday(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return err
	}
	day := strings.TrimSpace(v.Get("day"))
	if t, perr := time.Parse(time.DateOnly, day); perr != nil || t.Format(time.DateOnly) != day {
		err = fieldError{"day", fmt.Sprintf("%q is not a date: use a date like 2026-12-24", day)}
	} else {
		err = s.store.SetHoliday(c.Request().Context(), day, v.Get("on") == "1")
	}
	if err != nil {
		fe, err := formErr("holiday", v, err)
		if err != nil {
			return err
		}
		return s.renderShifts(c, http.StatusUnprocessableEntity, fe)
	}
	s.audit(c, "holiday.set", day, auditKV("holiday", strconv.FormatBool(v.Get("on") == "1")))
	return savedRedirect(c, "/admin/shifts")
}

// --- Settings ---

func (s *Server) adminSettings(c echo.Context) error {
	return s.renderSettings(c, http.StatusOK, views.FormErr{})
}

func (s *Server) renderSettings(c echo.Context, code int, fe views.FormErr) error {
	st, err := s.store.Settings(c.Request().Context())
	if err != nil {
		return fmt.Errorf("web: settings: %w", err)
	}
	v := views.SettingsAdminPage{AdminPage: s.adminPage(c, "Settings", "settings", fe), Settings: st}
	return s.render(c, code, views.SettingsAdminView(v))
}

// settingsForm applies the settings form to st, keeping what the form does
// not show (state codes and words).
func settingsForm(v url.Values, st *plant.Settings) error {
	minutes := func(field, what string) (int64, error) {
		x, err := formNumber(v, field, what)
		if err != nil {
			return 0, err
		}
		if strings.TrimSpace(v.Get(field)) == "" {
			return 0, fieldError{field, what + " is needed (0 for none)"}
		}
		ms := int64(math.Round(x * 60_000))
		if ms >= formDayMS {
			return 0, fieldError{field, what + " must be less than a day"}
		}
		return ms, nil
	}
	var err error
	if st.MicroStopMS, err = minutes("micro_stop_min", "The micro-stop threshold"); err != nil {
		return err
	}
	if st.NoReasonMS, err = minutes("no_reason_min", "The no-reason threshold"); err != nil {
		return err
	}
	hb, err := formNumber(v, "heartbeat_s", "The heartbeat")
	if err != nil {
		return err
	}
	if hb < 1 || hb*1000 >= formDayMS {
		return fieldError{"heartbeat_s", "The heartbeat must be at least 1 s and less than a day"}
	}
	st.HeartbeatMS = int64(math.Round(hb * 1000))
	cur := strings.TrimSpace(v.Get("currency"))
	if utf8.RuneCountInString(cur) > maxCurrencyRunes {
		return fieldError{"currency", fmt.Sprintf("At most %d characters, like € or CHF", maxCurrencyRunes)}
	}
	st.Currency = cur
	codes, words, err := plant.ParseStateMap(v.Get("state_map"))
	if err != nil {
		return fieldError{"state_map", strings.TrimSuffix(err.Error(), ": "+plant.ErrInvalid.Error())}
	}
	st.StateCodes, st.StateWords = codes, words
	return nil
}

func (s *Server) saveSettings(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := formValues(c)
	if err != nil {
		return err
	}
	st, err := s.store.Settings(ctx)
	if err != nil {
		return fmt.Errorf("web: settings: %w", err)
	}
	before := auditMap(settingsPairs(st))
	err = settingsForm(v, &st)
	if err == nil {
		err = s.store.SaveSettings(ctx, st)
	}
	if err != nil {
		fe, err := formErr("settings", v, err)
		if err != nil {
			return err
		}
		return s.renderSettings(c, http.StatusUnprocessableEntity, fe)
	}
	s.cfg.Engine.SetSettings(st) // thresholds and state words apply without a restart
	s.audit(c, "settings.update", "settings", auditChanges(before, settingsPairs(st)))
	return savedRedirect(c, "/admin/settings")
}

// adminPage is the frame of a configuration page.
func (s *Server) adminPage(c echo.Context, title, tab string, fe views.FormErr) views.AdminPage {
	return views.AdminPage{Page: s.page(c, title, "", "admin"), Tab: tab, Saved: savedNote(c), Err: fe}
}
