package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/db"
	"andon/plant"
)

// mappingEnv is a server whose OnMappingChanged counts its calls and fails
// while fail holds an error.
type mappingEnv struct {
	*env
	calls atomic.Int32
	fail  atomic.Value // error, or nil
}

func newMappingEnv(t *testing.T) *mappingEnv {
	t.Helper()
	me := &mappingEnv{}
	me.env = newEnv(t, func(c *Config) {
		c.OnMappingChanged = func(context.Context) error {
			me.calls.Add(1)
			if err, _ := me.fail.Load().(error); err != nil {
				return err
			}
			return nil
		}
	})
	return me
}

// rules lists the stored rules' patterns in order.
func (me *mappingEnv) rules(t *testing.T) []string {
	t.Helper()
	rs, err := me.store.MappingRules(me.ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Pattern)
	}
	return out
}

func mappingFormValues(edit func(url.Values)) url.Values {
	v := url.Values{
		"pattern": {"factory/{line}/{machine}/{metric}"}, "value": {"data.v"}, "timestamp": {""},
		"metric": {""}, "unit": {"bar"}, "scale": {"0,1"}, "offset": {""}, "note": {"pressure sensors"},
		"action": {"save"},
	}
	if edit != nil {
		edit(v)
	}
	return v
}

func TestMappingAddListAndAudit(t *testing.T) {
	me := newMappingEnv(t)
	resp, body := me.post(t, "/admin/mapping", mappingFormValues(nil))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: status %d, want 303; %.400s", resp.StatusCode, body)
	}
	if got := me.calls.Load(); got != 1 {
		t.Errorf("OnMappingChanged called %d times, want 1", got)
	}
	rs, err := me.store.MappingRules(me.ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("stored %+v, %v", rs, err)
	}
	want := plant.MappingRule{ID: rs[0].ID, Pattern: "factory/{line}/{machine}/{metric}", Value: "data.v", Unit: "bar",
		Scale: 0.1, Note: "pressure sensors", Source: plant.RuleFromAdmin}
	if rs[0] != want {
		t.Errorf("stored %+v, want %+v", rs[0], want)
	}

	d := me.doc(t, "/admin/mapping?saved=1", http.StatusOK)
	if got := d.Find(`[data-testid="rule-pattern"]`).Text(); got != want.Pattern {
		t.Errorf("listed pattern %q, want %q", got, want.Pattern)
	}
	reads := d.Find(`[data-testid="rules-table"] .mapping-reads`).Text()
	for _, s := range []string{"value at data.v", "unit bar", "× 0.1 + 0"} {
		if !strings.Contains(reads, s) {
			t.Errorf("the list does not say %q: %q", s, reads)
		}
	}
	if d.Find(`[data-testid="saved"]`).Length() != 1 {
		t.Error("no saved notice")
	}
	if d.Find(`[data-testid="admin-nav"] a[href="/admin/mapping"].current`).Length() != 1 {
		t.Error("the admin nav does not show Mapping as the current page")
	}

	log, err := me.store.AuditLog(me.ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[0].Action != "mapping.create" || !strings.Contains(log[0].Detail, `pattern=factory/{line}/{machine}/{metric}`) {
		t.Errorf("audit log %+v", log)
	}

	// Edit it: the form is filled, and saving replaces it.
	id := strings.TrimPrefix(d.Find(`[data-testid^="edit-"]`).AttrOr("data-testid", ""), "edit-")
	ed := me.doc(t, "/admin/mapping?edit="+id, http.StatusOK)
	if got := ed.Find(`input[name="value"]`).AttrOr("value", ""); got != "data.v" {
		t.Errorf("edit form value %q, want data.v", got)
	}
	resp, body = me.post(t, "/admin/mapping", mappingFormValues(func(v url.Values) { v.Set("id", id); v.Set("unit", "kPa") }))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: status %d; %.400s", resp.StatusCode, body)
	}
	if r, _ := me.store.MappingRule(me.ctx, rs[0].ID); r.Unit != "kPa" {
		t.Errorf("after update %+v", r)
	}
	if log, _ := me.store.AuditLog(me.ctx, 0, 1); len(log) != 1 || log[0].Action != "mapping.update" || log[0].Detail != "unit=kPa" {
		t.Errorf("audit log %+v", log)
	}
	if got := me.calls.Load(); got != 2 {
		t.Errorf("OnMappingChanged called %d times, want 2", got)
	}
}

func TestMappingRefusesBadRules(t *testing.T) {
	me := newMappingEnv(t)
	tests := []struct {
		name  string
		form  url.Values
		field string
		msg   string
	}{
		{"no machine segment", mappingFormValues(func(v url.Values) { v.Set("pattern", "factory/{line}/x") }), "pattern", "{machine}"},
		{"hash not last", mappingFormValues(func(v url.Values) { v.Set("pattern", "a/#/{machine}") }), "pattern", "last level"},
		{"bad path", mappingFormValues(func(v url.Values) { v.Set("value", "a..b") }), "value", "missing"},
		{"scale not a number", mappingFormValues(func(v url.Values) { v.Set("scale", "ten") }), "scale", "must be a number"},
		{"zero scale", mappingFormValues(func(v url.Values) { v.Set("scale", "0") }), "scale", "Must not be 0"},
		{"unknown metric segment", mappingFormValues(func(v url.Values) { v.Set("metric", "{sensor}") }), "metric", "not a segment"},
		{"pattern too long", mappingFormValues(func(v url.Values) { v.Set("pattern", strings.Repeat("a", 300)+"/{machine}") }), "pattern", "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := me.post(t, "/admin/mapping", tc.form)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422; %.300s", resp.StatusCode, body)
			}
			d := parseDoc(t, body)
			msg := d.Find(`[data-testid="error-` + tc.field + `"]`).Text()
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message beside %s: %q, want …%s…", tc.field, msg, tc.msg)
			}
			if got := d.Find(`input[name="pattern"]`).AttrOr("value", ""); got != tc.form.Get("pattern") {
				t.Errorf("the form lost what was typed: %q", got)
			}
			if got := me.rules(t); len(got) != 0 {
				t.Errorf("stored %v", got)
			}
		})
	}
	if got := me.calls.Load(); got != 0 {
		t.Errorf("OnMappingChanged called %d times for refused rules", got)
	}
}

func TestMappingAccess(t *testing.T) {
	me := newMappingEnv(t)
	viewer := me.as(t, db.RoleViewer)
	operator := me.as(t, db.RoleOperator)
	for _, cl := range []*testClient{me.anon(), viewer, operator} {
		t.Run(cl.name, func(t *testing.T) {
			resp, _ := cl.get(t, "/admin/mapping")
			if resp.StatusCode == http.StatusOK {
				t.Errorf("GET: %d", resp.StatusCode)
			}
			resp, _ = cl.post(t, "/admin/mapping", mappingFormValues(nil))
			if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST: status %d, want 303 to log in or 403", resp.StatusCode)
			}
			if resp.StatusCode == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("POST sent to %q, not to log in", resp.Header.Get("Location"))
			}
		})
	}
	if got := me.rules(t); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
	if got := me.calls.Load(); got != 0 {
		t.Errorf("OnMappingChanged called %d times", got)
	}
	// A cross-site form post with the admin's cookie is refused too.
	resp, _ := me.asAdminClient().do(t, http.MethodPost, "/admin/mapping", mappingFormValues(nil), http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
}

func TestMappingInboxAndCreateRule(t *testing.T) {
	me := newMappingEnv(t)
	now := time.Now().UnixMilli()
	payload := `{"data": {"temp": 21.5}, "x": "<script>alert(1)</script>"}`
	me.w.Reject(plant.Reject{TS: now - 5000, Topic: "odd/press-9", Reason: plant.ReasonBadJSON, Detail: "older", Payload: []byte("{")})
	me.w.Reject(plant.Reject{TS: now, Topic: "odd/press-9", Reason: plant.ReasonNotANumber, Detail: "The value is an object.", Payload: []byte(payload)})
	me.w.Reject(plant.Reject{TS: now, Topic: "m/clock", Reason: plant.ReasonFutureTimestamp, Detail: "clock", Payload: []byte("1")})
	me.write(t, reading("line-1", "press-01", "temp", now, 20)) // commits the queued rejects

	resp, body := me.get(t, "/admin/mapping")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatal("the payload's <script> reached the page unescaped")
	}
	d := parseDoc(t, body)
	rows := d.Find(`[data-testid="inbox-row"]`)
	if rows.Length() != 1 {
		t.Fatalf("%d inbox rows, want 1 (a wrong clock is no mapping problem)", rows.Length())
	}
	if got := rows.Find(`[data-testid="inbox-topic"]`).Text(); got != "odd/press-9" {
		t.Errorf("topic %q", got)
	}
	if got := rows.Find(`pre[data-testid="inbox-payload"]`).Text(); !strings.Contains(got, `<script>alert(1)</script>`) {
		t.Errorf("payload shown as %q, want the text with its <script> as text", got)
	}
	if got := rows.Find(".num").First().Text(); got != "2" {
		t.Errorf("count %q, want 2", got)
	}
	create, ok := rows.Find(`[data-testid="create-rule"]`).Attr("href")
	if !ok {
		t.Fatal("no Create rule link")
	}

	// "Create rule" opens the form filled with a suggestion, tested on the sample.
	resp, body = me.get(t, create)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	cd := parseDoc(t, body)
	form := cd.Find(`[data-testid="rule-form"]`)
	for field, want := range map[string]string{"pattern": "{line}/{machine}", "value": "data.temp", "metric": "temp", "sample_topic": "odd/press-9"} {
		if got := form.Find(`input[name="`+field+`"]`).AttrOr("value", ""); got != want {
			t.Errorf("prefilled %s = %q, want %q", field, got, want)
		}
	}
	if got := form.Find(`textarea[name="sample_payload"]`).Text(); got != payload {
		t.Errorf("sample payload %q, want %q", got, payload)
	}
	cells := form.Find(`[data-testid="preview-table"] tbody td`)
	if cells.Length() != 5 || cells.Eq(0).Text() != "odd/press-9" || cells.Eq(1).Text() != "temp" || strings.TrimSpace(cells.Eq(2).Text()) != "21.5" {
		t.Errorf("preview row %q", cells.Text())
	}

	// One submit saves it, and the inbox then says a rule reads the topic.
	v := url.Values{"action": {"save"}, "scale": {"1"}}
	form.Find("input, textarea").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		if name == "" || name == "action" {
			return
		}
		if s.Is("textarea") {
			v.Set(name, s.Text())
		} else if s.AttrOr("type", "") == "checkbox" {
			if _, on := s.Attr("checked"); on {
				v.Set(name, s.AttrOr("value", ""))
			}
		} else {
			v.Set(name, s.AttrOr("value", ""))
		}
	})
	resp, body = me.post(t, "/admin/mapping", v)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: status %d; %.400s", resp.StatusCode, body)
	}
	if got := me.rules(t); len(got) != 1 || got[0] != "{line}/{machine}" {
		t.Errorf("stored %v", got)
	}
	after := me.doc(t, "/admin/mapping", http.StatusOK)
	if got := after.Find(`[data-testid="inbox-matched"]`).Text(); !strings.Contains(got, "Rule 1") {
		t.Errorf("the inbox does not say rule 1 reads the topic: %q", got)
	}
}

func TestMappingPreview(t *testing.T) {
	me := newMappingEnv(t)
	tests := []struct {
		name      string
		form      url.Values
		cells     []string // first row: machine, metric, value, unit
		rejectHas string
	}{
		{"reading", mappingFormValues(func(v url.Values) {
			v.Set("action", "preview")
			v.Set("sample_topic", "factory/l1/p3/pressure")
			v.Set("sample_payload", `{"data": {"v": 25}, "ts": 1732450000000}`)
		}), []string{"l1/p3", "pressure", "2.5", "bar"}, ""},
		{"availability", url.Values{"action": {"preview"}, "pattern": {"tele/{machine}/LWT"}, "availability": {"1"},
			"sample_topic": {"tele/plug/LWT"}, "sample_payload": {"Offline"}}, []string{"plug", "", "goes offline", ""}, ""},
		{"topic does not match", mappingFormValues(func(v url.Values) {
			v.Set("action", "preview")
			v.Set("sample_topic", "plant/l1/p3/pressure")
			v.Set("sample_payload", "1")
		}), nil, "does not match"},
		{"value missing", mappingFormValues(func(v url.Values) {
			v.Set("action", "preview")
			v.Set("sample_topic", "factory/l1/p3/pressure")
			v.Set("sample_payload", `{"v": 1}`)
		}), nil, "no value at data.v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := me.post(t, "/admin/mapping", tc.form)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d; %.300s", resp.StatusCode, body)
			}
			d := parseDoc(t, body)
			p := d.Find(`[data-testid="preview"]`)
			if p.Length() != 1 {
				t.Fatal("no preview")
			}
			if tc.rejectHas != "" {
				if got := p.Find(`[data-testid="preview-reject"]`).Text(); !strings.Contains(got, tc.rejectHas) {
					t.Errorf("reject %q, want …%s…", got, tc.rejectHas)
				}
				return
			}
			cells := p.Find(`tbody tr`).First().Find("td")
			for i, want := range tc.cells {
				if got := strings.TrimSpace(cells.Eq(i).Text()); got != want {
					t.Errorf("cell %d = %q, want %q", i, got, want)
				}
			}
		})
	}
	if got := me.rules(t); len(got) != 0 {
		t.Errorf("a preview stored %v", got)
	}
	if got := me.calls.Load(); got != 0 {
		t.Errorf("a preview called OnMappingChanged %d times", got)
	}
}

func TestMappingMoveDeleteAndConfigRules(t *testing.T) {
	me := newMappingEnv(t)
	if err := me.store.SetConfigMappingRules(me.ctx, []plant.MappingRule{{Pattern: "cfg/{machine}/{metric}", Scale: 1}}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range []string{"a/{machine}/{metric}", "b/{machine}/{metric}"} {
		id, err := me.store.AddMappingRule(me.ctx, plant.MappingRule{Pattern: p, Scale: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	d := me.doc(t, "/admin/mapping", http.StatusOK)
	cfgRow := d.Find(`tr.config-rule`)
	if cfgRow.Length() != 1 || !strings.Contains(cfgRow.Text(), "from the config file") || cfgRow.Find("form, a.button").Length() != 0 {
		t.Errorf("config row %q: want it read-only, saying where it comes from", cfgRow.Text())
	}
	if _, dis := d.Find(`[data-testid="up-` + formatID(ids[0]) + `"]`).Attr("disabled"); !dis {
		t.Error("the first admin rule can be moved up")
	}

	resp, _ := me.post(t, "/admin/mapping/"+formatID(ids[1])+"/move", url.Values{"dir": {"up"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("move: %d", resp.StatusCode)
	}
	want := []string{"cfg/{machine}/{metric}", "b/{machine}/{metric}", "a/{machine}/{metric}"}
	if got := me.rules(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after move %v, want %v", got, want)
	}

	cfg, err := me.store.MappingRules(me.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/mapping/" + formatID(cfg[0].ID) + "/delete", "/admin/mapping/" + formatID(cfg[0].ID) + "/move"} {
		if resp, _ := me.post(t, path, url.Values{"dir": {"down"}}); resp.StatusCode != http.StatusConflict {
			t.Errorf("POST %s on a config rule: %d, want 409", path, resp.StatusCode)
		}
	}
	if resp, _ := me.post(t, "/admin/mapping/9999/delete", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete unknown: %d, want 404", resp.StatusCode)
	}
	if resp, _ := me.post(t, "/admin/mapping/"+formatID(ids[0])+"/move", url.Values{"dir": {"sideways"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("move sideways: %d, want 400", resp.StatusCode)
	}

	// A failing reload is shown to the admin; the change is stored.
	me.fail.Store(errors.New("router: rule 2 broke"))
	resp, body := me.post(t, "/admin/mapping/"+formatID(ids[0])+"/delete", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("delete with a failing reload: %d", resp.StatusCode)
	}
	if got := parseDoc(t, body).Find(`[data-testid="reload-error"]`).Text(); !strings.Contains(got, "router: rule 2 broke") {
		t.Errorf("reload error shown as %q", got)
	}
	want = []string{"cfg/{machine}/{metric}", "b/{machine}/{metric}"}
	if got := me.rules(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after delete %v, want %v", got, want)
	}
	log, err := me.store.AuditLog(me.ctx, 0, 5)
	if err != nil || len(log) < 2 || log[0].Action != "mapping.delete" || log[1].Action != "mapping.move" {
		t.Errorf("audit log %+v, %v", log, err)
	}
	if got := me.calls.Load(); got != 2 {
		t.Errorf("OnMappingChanged called %d times, want 2", got)
	}
}
