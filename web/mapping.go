package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/ingest"
	"andon/plant"
	"andon/views"
)

// MappingStore is what the mapping rules page needs from the database;
// *db.Store implements it.
type MappingStore interface {
	MappingRules(ctx context.Context) ([]plant.MappingRule, error)
	MappingRule(ctx context.Context, id int64) (plant.MappingRule, error)
	AddMappingRule(ctx context.Context, r plant.MappingRule) (int64, error)
	UpdateMappingRule(ctx context.Context, r plant.MappingRule) error
	DeleteMappingRule(ctx context.Context, id int64) error
	MoveMappingRule(ctx context.Context, id int64, up bool) error
	UnmappedTopics(ctx context.Context, limit int) ([]db.UnmappedTopic, error)
}

// inboxShown is how many unmapped topics the page lists.
const inboxShown = 100

// mappingFormName names the rule form in views.FormErr.
const mappingFormName = "mapping"

// mappingRoutes registers /admin/mapping: the rules, their form with a test
// against a sample, and the inbox of unmapped topics.
func (s *Server) mappingRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/admin/mapping", s.adminMapping, admin)
	s.handle(e, http.MethodPost, "/admin/mapping", s.saveMapping, admin)
	s.handle(e, http.MethodPost, "/admin/mapping/:id/delete", s.deleteMapping, admin)
	s.handle(e, http.MethodPost, "/admin/mapping/:id/move", s.moveMapping, admin)
}

// adminMapping shows the page; ?edit=<id> fills the form with a rule, and
// ?topic=<topic> with a rule suggested from that inbox topic's latest
// message, already tested against it.
func (s *Server) adminMapping(c echo.Context) error {
	ms := s.store
	ctx := c.Request().Context()
	v, err := s.mappingPage(c, ms)
	if err != nil {
		return err
	}
	switch {
	case c.QueryParam("edit") != "":
		id, err := strconv.ParseInt(c.QueryParam("edit"), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("web: mapping rule %q: %w", c.QueryParam("edit"), plant.ErrNotFound)
		}
		r, err := ms.MappingRule(ctx, id)
		if err != nil {
			return fmt.Errorf("web: mapping rule %d: %w", id, err)
		}
		if r.Source == plant.RuleFromConfig {
			return fmt.Errorf("web: mapping rule %d comes from the config file: %w", id, plant.ErrNotFound)
		}
		v.Form = formOfRule(r)
	case c.QueryParam("topic") != "":
		topic := c.QueryParam("topic")
		var payload []byte
		unmapped, err := ms.UnmappedTopics(ctx, inboxShown)
		if err != nil {
			return fmt.Errorf("web: unmapped topics: %w", err)
		}
		for _, u := range unmapped {
			if u.Topic == topic {
				payload = u.Payload
				break
			}
		}
		r := ingest.SuggestRule(topic, payload)
		v.Form = formOfRule(r)
		v.Form.FromTopic = topic
		v.Form.SampleTopic = topic
		v.Form.SamplePayload = strings.ToValidUTF8(string(payload), "\uFFFD")
		v.Preview = s.preview(r, v.Form)
	}
	return s.render(c, http.StatusOK, views.MappingView(v))
}

// mappingPage builds the page with an empty form.
func (s *Server) mappingPage(c echo.Context, ms MappingStore) (views.MappingPage, error) {
	ctx := c.Request().Context()
	rules, err := ms.MappingRules(ctx)
	if err != nil {
		return views.MappingPage{}, fmt.Errorf("web: mapping rules: %w", err)
	}
	unmapped, err := ms.UnmappedTopics(ctx, inboxShown)
	if err != nil {
		return views.MappingPage{}, fmt.Errorf("web: unmapped topics: %w", err)
	}
	v := views.MappingPage{
		AdminPage: s.adminPage(c, "Mapping rules", "mapping", views.FormErr{}),
		Form:      views.MappingForm{Scale: "1", Offset: "0"},
	}
	firstAdmin, lastAdmin := -1, -1
	for i, r := range rules {
		if r.Source != plant.RuleFromConfig {
			if firstAdmin < 0 {
				firstAdmin = i
			}
			lastAdmin = i
		}
	}
	for i, r := range rules {
		v.Rules = append(v.Rules, views.MappingRuleRow{
			ID: r.ID, N: i + 1, Pattern: r.Pattern, Reads: ruleReads(r), Note: r.Note,
			Config: r.Source == plant.RuleFromConfig, First: i == firstAdmin, Last: i == lastAdmin,
		})
	}
	// Which rule reads each inbox topic now, so an admin sees that a rule
	// made since has it covered. Stored rules compiled when they were
	// saved; should one not compile now, the inbox just says nothing.
	set, _ := ingest.CompileRules(rules)
	for _, u := range unmapped {
		v.Inbox = append(v.Inbox, views.UnmappedRow{
			Topic: u.Topic, Reason: u.Reason, Detail: u.Detail, Count: u.Count,
			First: views.FormatTime(u.FirstMS, s.loc), Last: views.FormatTime(u.LastMS, s.loc),
			Payload: samplePayload(u.Payload), MatchedBy: set.Match(u.Topic) + 1,
			CreateURL: "/admin/mapping?topic=" + url.QueryEscape(u.Topic) + "#rule-form",
		})
	}
	return v, nil
}

// maxSampleShown is how many bytes of a sample payload the inbox shows.
const maxSampleShown = 300

// samplePayload is a payload as the inbox shows it in a <pre>: text as it
// is, so JSON reads as JSON; control characters other than newlines and
// tabs, and bytes that are not UTF-8, as Go escapes, so nothing invisible
// hides in it. The page escapes it as HTML.
func samplePayload(p []byte) string {
	more := len(p) > maxSampleShown
	if more {
		p = p[:maxSampleShown]
	}
	var b strings.Builder
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, p[0])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		p = p[n:]
	}
	if more {
		b.WriteString("…")
	}
	return b.String()
}

// ruleReads describes what a rule reads, a short line per setting.
func ruleReads(r plant.MappingRule) []string {
	var out []string
	if r.Availability {
		out = append(out, fmt.Sprintf("availability: %q = online, %q = offline", r.OnlineWord(), r.OfflineWord()))
		if r.Value != "" {
			out = append(out, "word at "+r.Value)
		}
		return out
	}
	if r.Value != "" {
		out = append(out, "value at "+r.Value)
	} else {
		out = append(out, "the whole payload")
	}
	if r.Timestamp != "" {
		out = append(out, "time at "+r.Timestamp)
	}
	if r.Metric != "" {
		out = append(out, "metric "+r.Metric)
	}
	if r.Unit != "" {
		out = append(out, "unit "+r.Unit)
	}
	switch {
	case r.Offset < 0:
		out = append(out, "value × "+auditNum(r.Scale)+" − "+auditNum(-r.Offset))
	case r.Scale != 1 || r.Offset != 0:
		out = append(out, "value × "+auditNum(r.Scale)+" + "+auditNum(r.Offset))
	}
	return out
}

// formOfRule fills the form with a rule.
func formOfRule(r plant.MappingRule) views.MappingForm {
	return views.MappingForm{
		ID: r.ID, Pattern: r.Pattern, Value: r.Value, Timestamp: r.Timestamp, Metric: r.Metric, Unit: r.Unit,
		Scale: auditNum(r.Scale), Offset: auditNum(r.Offset), Availability: r.Availability,
		Online: r.Online, Offline: r.Offline, Note: r.Note,
	}
}

// formOfValues fills the form with what was submitted, so a refused or
// tested form shows it again.
func formOfValues(v url.Values) views.MappingForm {
	id, _ := strconv.ParseInt(v.Get("id"), 10, 64)
	return views.MappingForm{
		ID: max(id, 0), Pattern: v.Get("pattern"), Value: v.Get("value"), Timestamp: v.Get("timestamp"),
		Metric: v.Get("metric"), Unit: v.Get("unit"), Scale: v.Get("scale"), Offset: v.Get("offset"),
		Availability: v.Get("availability") == "1", Online: v.Get("online"), Offline: v.Get("offline"),
		Note: v.Get("note"), SampleTopic: v.Get("sample_topic"), SamplePayload: v.Get("sample_payload"),
	}
}

// ruleOfForm reads the rule form. Texts are trimmed; an empty scale is 1
// and an empty offset 0. Compiling is the caller's next step.
func ruleOfForm(v url.Values) (plant.MappingRule, error) {
	r := plant.MappingRule{
		Pattern:      strings.TrimSpace(v.Get("pattern")),
		Value:        strings.TrimSpace(v.Get("value")),
		Timestamp:    strings.TrimSpace(v.Get("timestamp")),
		Metric:       strings.TrimSpace(v.Get("metric")),
		Unit:         strings.TrimSpace(v.Get("unit")),
		Availability: v.Get("availability") == "1",
		Online:       strings.TrimSpace(v.Get("online")),
		Offline:      strings.TrimSpace(v.Get("offline")),
		Note:         strings.TrimSpace(v.Get("note")),
		Source:       plant.RuleFromAdmin,
	}
	if raw := v.Get("id"); raw != "" && raw != "0" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return r, fmt.Errorf("web: mapping rule %q: %w", raw, plant.ErrNotFound)
		}
		r.ID = id
	}
	num := func(field, what string, def float64) (float64, error) {
		s := strings.TrimSpace(strings.ReplaceAll(v.Get(field), ",", "."))
		if s == "" {
			return def, nil
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fieldError{field, what + " must be a number, like 0.1"}
		}
		return x, nil
	}
	var err error
	if r.Scale, err = num("scale", "Scale", 1); err != nil {
		return r, err
	}
	if r.Offset, err = num("offset", "Offset", 0); err != nil {
		return r, err
	}
	return r, nil
}

// checkRule compiles a rule as ingest will; a wrong rule becomes a message
// beside its field.
func checkRule(r plant.MappingRule) error {
	if _, err := ingest.CompileRules([]plant.MappingRule{r}); err != nil {
		var me *plant.MappingError
		if errors.As(err, &me) {
			return fieldError{me.Field, upperFirst(me.Msg)}
		}
		return err
	}
	return nil
}

// upperFirst starts a message with a capital, as the page's sentences do.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// preview tests a rule against the form's sample; nil when there is no
// sample topic.
func (s *Server) preview(r plant.MappingRule, f views.MappingForm) *views.MappingPreview {
	topic := strings.TrimSpace(f.SampleTopic)
	if topic == "" {
		return nil
	}
	m := ingest.Message{Topic: topic, Payload: []byte(f.SamplePayload), RecvMS: s.now().UnixMilli()}
	rs, rej, err := ingest.PreviewRule(r, m, ingest.DefaultLimits())
	p := &views.MappingPreview{}
	switch {
	case err != nil:
		p.Reason, p.Detail = "rule", "The rule cannot be tested until it is fixed: "+userMessage(err)
		return p
	case rej != nil:
		p.Reason, p.Detail = rej.Reason, rej.Detail
	}
	for _, rd := range rs {
		pr := views.PreviewReading{
			Machine: rd.Path.String(), Metric: rd.Metric, Unit: rd.Unit,
			Time: views.FormatTime(rd.TS, s.loc), Arrival: rd.Arrival, Offline: rd.Offline,
		}
		if rd.Word != "" {
			pr.Value = rd.Word
		} else {
			pr.Value = views.FormatNumber(rd.Value)
		}
		p.Readings = append(p.Readings, pr)
	}
	if len(rs) == 0 && rej == nil {
		p.Note = "No readings: the device says it is online, which changes nothing until its next reading."
	}
	return p
}

// saveMapping adds or replaces a rule (action=save) or only tests the form
// against its sample (action=preview). A rule that does not compile is
// refused before it is stored.
func (s *Server) saveMapping(c echo.Context) error {
	ms := s.store
	ctx := c.Request().Context()
	v, err := formValues(c)
	if err != nil {
		return err
	}
	form := formOfValues(v)
	r, err := ruleOfForm(v)
	if err == nil {
		err = checkRule(r)
	}
	if errors.Is(err, plant.ErrNotFound) {
		return err
	}
	refuse := func(err error) error {
		fe, ferr := formErr(mappingFormName, v, err)
		if ferr != nil {
			return ferr
		}
		page, perr := s.mappingPage(c, ms)
		if perr != nil {
			return perr
		}
		page.Err, page.Form = fe, form
		page.Preview = s.preview(r, form)
		return s.render(c, http.StatusUnprocessableEntity, views.MappingView(page))
	}
	if err != nil {
		return refuse(err)
	}
	if v.Get("action") == "preview" {
		page, err := s.mappingPage(c, ms)
		if err != nil {
			return err
		}
		page.Form = form
		page.Preview = s.preview(r, form)
		return s.render(c, http.StatusOK, views.MappingView(page))
	}

	var before map[string]string // nil for a new rule: the log lists every value
	if r.ID != 0 {
		old, err := ms.MappingRule(ctx, r.ID)
		if err != nil {
			return fmt.Errorf("web: mapping rule %d: %w", r.ID, err)
		}
		before = auditMap(mappingPairs(old))
		err = ms.UpdateMappingRule(ctx, r)
		if err != nil {
			if errors.Is(err, plant.ErrInvalid) {
				return refuse(err)
			}
			return fmt.Errorf("web: mapping rule %d: %w", r.ID, err)
		}
	} else {
		id, err := ms.AddMappingRule(ctx, r)
		if err != nil {
			if errors.Is(err, plant.ErrInvalid) {
				return refuse(err)
			}
			return fmt.Errorf("web: add mapping rule: %w", err)
		}
		r.ID = id
	}
	action := "mapping.update"
	if before == nil {
		action = "mapping.create"
	}
	s.audit(c, action, mappingObject(r.ID), auditChanges(before, mappingPairs(r)))
	return s.mappingChanged(c, ms)
}

// mappingChanged tells ingest the rules changed and sends the admin back to
// the page; if ingest could not take them, the page says so instead.
func (s *Server) mappingChanged(c echo.Context, ms MappingStore) error {
	if err := s.cfg.OnMappingChanged(c.Request().Context()); err != nil {
		s.log.Error("mapping rules changed but not reloaded", "err", err)
		page, perr := s.mappingPage(c, ms)
		if perr != nil {
			return perr
		}
		page.ReloadErr = err.Error()
		return s.render(c, http.StatusInternalServerError, views.MappingView(page))
	}
	return savedRedirect(c, "/admin/mapping")
}

// targetMappingRule is the admin rule named by the :id parameter.
func (s *Server) targetMappingRule(c echo.Context, ms MappingStore) (plant.MappingRule, error) {
	id, err := idParam(c, "mapping rule")
	if err != nil {
		return plant.MappingRule{}, err
	}
	r, err := ms.MappingRule(c.Request().Context(), id)
	if err != nil {
		return plant.MappingRule{}, fmt.Errorf("web: mapping rule %d: %w", id, err)
	}
	if r.Source == plant.RuleFromConfig {
		return plant.MappingRule{}, echo.NewHTTPError(http.StatusConflict, "This rule comes from the config file; change it there.")
	}
	return r, nil
}

func (s *Server) deleteMapping(c echo.Context) error {
	ms := s.store
	r, err := s.targetMappingRule(c, ms)
	if err != nil {
		return err
	}
	if err := ms.DeleteMappingRule(c.Request().Context(), r.ID); err != nil {
		return fmt.Errorf("web: delete mapping rule %d: %w", r.ID, err)
	}
	s.audit(c, "mapping.delete", mappingObject(r.ID), auditChanges(nil, mappingPairs(r)))
	return s.mappingChanged(c, ms)
}

func (s *Server) moveMapping(c echo.Context) error {
	ms := s.store
	r, err := s.targetMappingRule(c, ms)
	if err != nil {
		return err
	}
	v, err := formValues(c)
	if err != nil {
		return err
	}
	dir := v.Get("dir")
	if dir != "up" && dir != "down" {
		return echo.NewHTTPError(http.StatusBadRequest, "Move a rule up or down.")
	}
	if err := ms.MoveMappingRule(c.Request().Context(), r.ID, dir == "up"); err != nil {
		return fmt.Errorf("web: move mapping rule %d: %w", r.ID, err)
	}
	s.audit(c, "mapping.move", mappingObject(r.ID), auditKV("direction", dir)+" "+auditKV("pattern", r.Pattern))
	return s.mappingChanged(c, ms)
}

// mappingObject is how the audit log names a rule.
func mappingObject(id int64) string { return "mapping rule " + strconv.FormatInt(id, 10) }

// mappingPairs are a rule's values, named as the form and the config file
// name them.
func mappingPairs(r plant.MappingRule) [][2]string {
	return [][2]string{
		{"pattern", r.Pattern},
		{"value", r.Value},
		{"timestamp", r.Timestamp},
		{"metric", r.Metric},
		{"unit", r.Unit},
		{"scale", auditNum(r.Scale)},
		{"offset", auditNum(r.Offset)},
		{"availability", strconv.FormatBool(r.Availability)},
		{"online", r.Online},
		{"offline", r.Offline},
		{"note", r.Note},
	}
}
