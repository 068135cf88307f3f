package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/plant"
)

// post submits a form without following the redirect, so the 303 is seen.
func (e *env) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	c := *e.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(e.ts.URL+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// adminCase is one submission: the status it must get and, for a refusal,
// a message that must be on the page.
type adminCase struct {
	name     string
	path     string
	form     url.Values
	code     int
	message  string // on the page again, beside the field, for a 422
	errField string // the data-testid "error-<field>" that must be present
}

// runAdmin posts each case and checks that a refusal changes nothing:
// snapshot is what the store holds, read before and after.
func runAdmin(t *testing.T, e *env, cases []adminCase, snapshot func() any) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot()
			resp, body := e.post(t, tc.path, tc.form)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body %.300s", resp.StatusCode, tc.code, body)
			}
			if tc.code == http.StatusSeeOther {
				return
			}
			if after := snapshot(); !reflect.DeepEqual(before, after) {
				t.Errorf("refused, yet the store changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if tc.message != "" && !strings.Contains(body, tc.message) {
				t.Errorf("page lacks %q", tc.message)
			}
			if tc.errField != "" && !strings.Contains(body, `data-testid="error-`+tc.errField+`"`) {
				t.Errorf("no message beside field %s", tc.errField)
			}
		})
	}
}

func TestAdminMachines(t *testing.T) {
	e := newEnv(t)
	e.write(t, reading("line-1", "press-01", "good", time.Now().UnixMilli(), 1))
	id := e.machineID(t, "press-01")
	path := fmt.Sprintf("/admin/machines/%d", id)
	snapshot := func() any {
		cfgs, err := e.store.MachineConfigs(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		rules, err := e.store.StateRules(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.store.Machine(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return []any{cfgs[id], rules[id], m.Name}
	}
	good := func(edit func(url.Values)) url.Values {
		v := url.Values{"ideal_cycle_s": {"12.5"}, "cost_per_hour": {"480"}, "margin_per_unit": {"1.5"},
			"display_name": {"Big press"}, "rule_kind": {"counter"}, "rule_metric": {"good"}, "rule_factor": {"4"}}
		if edit != nil {
			edit(v)
		}
		return v
	}
	runAdmin(t, e, []adminCase{
		{name: "save", path: path, form: good(nil), code: http.StatusSeeOther},
		{name: "negative cost", path: path, form: good(func(v url.Values) { v.Set("cost_per_hour", "-5") }),
			code: http.StatusUnprocessableEntity, message: "cannot be negative", errField: "cost_per_hour"},
		{name: "not a number", path: path, form: good(func(v url.Values) { v.Set("ideal_cycle_s", "abc") }),
			code: http.StatusUnprocessableEntity, message: "must be a number", errField: "ideal_cycle_s"},
		{name: "NaN", path: path, form: good(func(v url.Values) { v.Set("margin_per_unit", "NaN") }),
			code: http.StatusUnprocessableEntity, errField: "margin_per_unit"},
		{name: "rule without metric", path: path, form: good(func(v url.Values) { v.Set("rule_metric", "") }),
			code: http.StatusUnprocessableEntity, errField: "rule_metric"},
		{name: "unknown rule kind", path: path, form: good(func(v url.Values) { v.Set("rule_kind", "magic") }),
			code: http.StatusUnprocessableEntity, errField: "rule_kind"},
		{name: "below without threshold", path: path, form: good(func(v url.Values) { v.Set("rule_kind", "below"); v.Set("rule_threshold", "x") }),
			code: http.StatusUnprocessableEntity, errField: "rule_threshold"},
		{name: "long name", path: path, form: good(func(v url.Values) { v.Set("display_name", strings.Repeat("x", 81)) }),
			code: http.StatusUnprocessableEntity, errField: "display_name"},
		{name: "unknown machine", path: "/admin/machines/99999", form: good(nil), code: http.StatusNotFound},
		{name: "not an id", path: "/admin/machines/abc", form: good(nil), code: http.StatusNotFound},
	}, snapshot)

	cfgs, _ := e.store.MachineConfigs(e.ctx)
	if want := (plant.MachineConfig{IdealCycleS: 12.5, CostPerHour: 480, MarginPerUnit: 1.5}); cfgs[id] != want {
		t.Errorf("config = %+v, want %+v", cfgs[id], want)
	}
	rules, _ := e.store.StateRules(e.ctx)
	if r, err := plant.ParseRule(rules[id]); err != nil || r.Kind != "counter" || r.Metric != "good" || r.Factor != 4 {
		t.Errorf("rule = %q (%v)", rules[id], err)
	}
	d := e.doc(t, "/admin/machines", http.StatusOK)
	form := d.Find(fmt.Sprintf(`[data-testid="machine-form-%d"]`, id))
	if v, _ := form.Find(`input[name="ideal_cycle_s"]`).Attr("value"); v != "12.5" {
		t.Errorf("form shows ideal %q", v)
	}
	if v, _ := form.Find(`input[name="display_name"]`).Attr("value"); v != "Big press" {
		t.Errorf("form shows display name %q", v)
	}
	if d.Find(`[data-testid="admin-nav"] a`).Length() != 14 { // machines … QR codes, boards, users, tokens, devices, audit log, storage, mapping
		t.Error("admin sub-nav incomplete")
	}

	// Clearing the rule and the values again is allowed: empty means not set.
	resp, _ := e.post(t, path, url.Values{"rule_kind": {"none"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %d", resp.StatusCode)
	}
	rules, _ = e.store.StateRules(e.ctx)
	if rules[id] != "" {
		t.Errorf("rule after clearing = %q", rules[id])
	}
}

func TestAdminReasons(t *testing.T) {
	e := newEnv(t)
	snapshot := func() any {
		rs, err := e.store.Reasons(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	ids := reasonIDs(t, e)
	jam := ids["Jam"]
	runAdmin(t, e, []adminCase{
		{name: "add category", path: "/admin/reasons", form: url.Values{"parent_id": {"0"}, "name": {"Energy"}, "planned": {"1"}}, code: http.StatusSeeOther},
		{name: "empty name", path: "/admin/reasons", form: url.Values{"parent_id": {"0"}, "name": {"  "}},
			code: http.StatusUnprocessableEntity, message: "needs a name", errField: "name"},
		{name: "unknown category", path: "/admin/reasons", form: url.Values{"parent_id": {"99999"}, "name": {"Ghost"}},
			code: http.StatusUnprocessableEntity, message: "That category does not exist"},
		{name: "reason as parent", path: "/admin/reasons", form: url.Values{"parent_id": {fmt.Sprint(jam)}, "name": {"Sub"}},
			code: http.StatusUnprocessableEntity, message: "not a category"},
		{name: "rename and hide", path: fmt.Sprintf("/admin/reasons/%d", jam), form: url.Values{"name": {"Paper jam"}, "hidden": {"1"}, "sort": {"7"}}, code: http.StatusSeeOther},
		{name: "bad order", path: fmt.Sprintf("/admin/reasons/%d", jam), form: url.Values{"name": {"Jam"}, "sort": {"abc"}},
			code: http.StatusUnprocessableEntity, errField: "sort"},
		{name: "unknown reason", path: "/admin/reasons/99999", form: url.Values{"name": {"X"}}, code: http.StatusNotFound},
	}, snapshot)

	ids = reasonIDs(t, e)
	energy, ok := ids["Energy"]
	if !ok {
		t.Fatal("category Energy not added")
	}
	resp, _ := e.post(t, "/admin/reasons", url.Values{"parent_id": {fmt.Sprint(energy)}, "name": {"Power cut"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add reason: %d", resp.StatusCode)
	}
	var got plant.Reason
	for _, r := range snapshot().([]plant.Reason) {
		if r.Name == "Power cut" {
			got = r
		}
		if r.ID == jam && (r.Name != "Paper jam" || !r.Hidden || r.Sort != 7) {
			t.Errorf("jam after edit = %+v", r)
		}
	}
	if got.ParentID != energy {
		t.Errorf("Power cut = %+v, want under %d", got, energy)
	}
	d := e.doc(t, "/admin/reasons", http.StatusOK)
	if d.Find(fmt.Sprintf(`[data-testid="category-%d"] [data-testid="reason-form-%d"]`, energy, got.ID)).Length() != 1 {
		t.Error("the tree does not show the new reason under its category")
	}
}

func TestAdminShifts(t *testing.T) {
	e := newEnv(t)
	snapshot := func() any {
		sh, hol, err := e.store.Calendar(e.ctx, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		return []any{sh, hol}
	}
	early := url.Values{"name": {"Early"}, "start": {"06:00"}, "end": {"14:00"}, "day": {"1", "2", "3", "4", "5"}, "breaks": {"10:00-10:30 Lunch\n12:00-12:10"}}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for kk, vv := range early {
			c[kk] = append([]string(nil), vv...)
		}
		c.Set(k, v)
		return c
	}
	runAdmin(t, e, []adminCase{
		{name: "add", path: "/admin/shifts", form: early, code: http.StatusSeeOther},
		{name: "25:00", path: "/admin/shifts", form: with("start", "25:00"), code: http.StatusUnprocessableEntity, message: "not a time of day", errField: "start"},
		{name: "empty name", path: "/admin/shifts", form: with("name", ""), code: http.StatusUnprocessableEntity, errField: "name"},
		{name: "no day", path: "/admin/shifts", form: with("day", ""), code: http.StatusUnprocessableEntity, errField: "day"},
		{name: "bad break", path: "/admin/shifts", form: with("breaks", "lunch at noon"), code: http.StatusUnprocessableEntity, errField: "breaks"},
		{name: "break outside", path: "/admin/shifts", form: with("breaks", "15:00-15:30 Late"), code: http.StatusUnprocessableEntity, message: "inside the shift"},
		{name: "holiday", path: "/admin/holidays", form: url.Values{"day": {"2026-12-24"}, "on": {"1"}}, code: http.StatusSeeOther},
		{name: "bad holiday", path: "/admin/holidays", form: url.Values{"day": {"2026-02-30"}, "on": {"1"}}, code: http.StatusUnprocessableEntity, errField: "day"},
		{name: "unknown shift", path: "/admin/shifts/99999", form: early, code: http.StatusNotFound},
		{name: "delete unknown", path: "/admin/shifts/99999/delete", code: http.StatusNotFound},
	}, snapshot)

	shifts, hol, _ := e.store.Calendar(e.ctx, time.UTC)
	if len(shifts) != 1 || !hol["2026-12-24"] {
		t.Fatalf("calendar = %+v, %v", shifts, hol)
	}
	sh := shifts[0]
	want := plant.Shift{ID: sh.ID, Name: "Early", Start: 360, End: 840, Days: [7]bool{false, true, true, true, true, true, false},
		Breaks: []plant.Break{{Name: "Lunch", Start: 600, End: 630}, {Name: "Break", Start: 720, End: 730}}}
	if !reflect.DeepEqual(sh, want) {
		t.Errorf("shift = %+v, want %+v", sh, want)
	}
	d := e.doc(t, "/admin/shifts", http.StatusOK)
	if got := d.Find(fmt.Sprintf(`[data-testid="shift-%d-form"] textarea`, sh.ID)).Text(); got != "10:00-10:30 Lunch\n12:00-12:10 Break" {
		t.Errorf("breaks shown as %q", got)
	}

	// Edit: a night shift over midnight; then remove the holiday and the shift.
	night := with("end", "06:00")
	night.Set("start", "22:00")
	night.Set("breaks", "02:00-02:30")
	steps := []struct {
		path string
		form url.Values
	}{
		{fmt.Sprintf("/admin/shifts/%d", sh.ID), night},
		{"/admin/holidays", url.Values{"day": {"2026-12-24"}, "on": {"0"}}},
	}
	for _, s := range steps {
		if resp, body := e.post(t, s.path, s.form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %.300s", s.path, resp.StatusCode, body)
		}
	}
	shifts, hol, _ = e.store.Calendar(e.ctx, time.UTC)
	if len(shifts) != 1 || shifts[0].Start != 22*60 || shifts[0].End != 6*60 || hol["2026-12-24"] {
		t.Errorf("after edit: %+v %v", shifts, hol)
	}
	if resp, _ := e.post(t, fmt.Sprintf("/admin/shifts/%d/delete", sh.ID), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if shifts, _, _ = e.store.Calendar(e.ctx, time.UTC); len(shifts) != 0 {
		t.Errorf("after delete: %+v", shifts)
	}
}

func TestAdminSettings(t *testing.T) {
	e := newEnv(t)
	snapshot := func() any {
		st, err := e.store.Settings(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	good := func(k, v string) url.Values {
		f := url.Values{"micro_stop_min": {"1.5"}, "no_reason_min": {"5"}, "heartbeat_s": {"45"}, "currency": {"CHF"}}
		if k != "" {
			f.Set(k, v)
		}
		return f
	}
	runAdmin(t, e, []adminCase{
		{name: "save", path: "/admin/settings", form: good("", ""), code: http.StatusSeeOther},
		{name: "abc", path: "/admin/settings", form: good("micro_stop_min", "abc"), code: http.StatusUnprocessableEntity, errField: "micro_stop_min"},
		{name: "negative", path: "/admin/settings", form: good("no_reason_min", "-1"), code: http.StatusUnprocessableEntity, errField: "no_reason_min"},
		{name: "a day", path: "/admin/settings", form: good("micro_stop_min", "1440"), code: http.StatusUnprocessableEntity, errField: "micro_stop_min"},
		{name: "heartbeat zero", path: "/admin/settings", form: good("heartbeat_s", "0"), code: http.StatusUnprocessableEntity, errField: "heartbeat_s"},
		{name: "long currency", path: "/admin/settings", form: good("currency", "DOLLARS!!"), code: http.StatusUnprocessableEntity, errField: "currency"},
	}, snapshot)
	st := snapshot().(plant.Settings)
	if st.MicroStopMS != 90_000 || st.NoReasonMS != 300_000 || st.HeartbeatMS != 45_000 || st.Currency != "CHF" {
		t.Errorf("settings = %+v", st)
	}
	d := e.doc(t, "/admin/settings?saved=1", http.StatusOK)
	if v, _ := d.Find(`input[name="micro_stop_min"]`).Attr("value"); v != "1.5" {
		t.Errorf("form shows %q", v)
	}
	if d.Find(`[data-testid="saved"]`).Length() != 1 {
		t.Error("no confirmation after saving")
	}
}

func TestAdminMachineBottleneck(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.write(t,
		reading("line-1", "press-01", "good", now, 1),
		reading("line-1", "press-02", "good", now, 1),
		reading("", "lathe", "good", now, 1), // no line level: the machine sits in the hall
	)
	p1, p2, lathe := e.machineID(t, "press-01"), e.machineID(t, "press-02"), e.machineID(t, "lathe")
	bottlenecks := func() map[int64]bool {
		cfgs, err := e.store.MachineConfigs(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]bool{}
		for id, c := range cfgs {
			if c.Bottleneck {
				out[id] = true
			}
		}
		return out
	}
	set := func(on bool) url.Values {
		v := url.Values{"ideal_cycle_s": {"20"}, "rule_kind": {"none"}}
		if on {
			v.Set("bottleneck", "1")
		}
		return v
	}
	steps := []struct {
		name    string
		machine int64
		form    url.Values
		code    int
		want    map[int64]bool // the bottlenecks afterwards
		checked map[int64]bool // the checkboxes ticked on the page afterwards
	}{
		{"set", p1, set(true), http.StatusSeeOther, map[int64]bool{p1: true}, map[int64]bool{p1: true}},
		{"another machine of the line takes over", p2, set(true), http.StatusSeeOther,
			map[int64]bool{p2: true}, map[int64]bool{p2: true}},
		{"saving the old one unticked keeps the new", p1, set(false), http.StatusSeeOther,
			map[int64]bool{p2: true}, map[int64]bool{p2: true}},
		{"a machine on no line is refused", lathe, set(true), http.StatusUnprocessableEntity,
			map[int64]bool{p2: true}, map[int64]bool{p2: true}},
		{"a refused form shows the box as submitted", p1, func() url.Values {
			v := set(true)
			v.Set("cost_per_hour", "-1")
			return v
		}(), http.StatusUnprocessableEntity, map[int64]bool{p2: true}, map[int64]bool{p1: true, p2: true}},
		{"cleared", p2, set(false), http.StatusSeeOther, map[int64]bool{}, map[int64]bool{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := e.post(t, fmt.Sprintf("/admin/machines/%d", st.machine), st.form)
			if resp.StatusCode != st.code {
				t.Fatalf("status %d, want %d; body %.300s", resp.StatusCode, st.code, body)
			}
			if st.machine == lathe && !strings.Contains(body, "only a machine on a line can be its line&#39;s bottleneck") {
				t.Errorf("refusal does not say why: %.300s", body)
			}
			if got := bottlenecks(); !reflect.DeepEqual(got, st.want) {
				t.Errorf("bottlenecks = %v, want %v", got, st.want)
			}
			page := body
			if st.code == http.StatusSeeOther {
				_, page = e.get(t, "/admin/machines")
			}
			d, err := goquery.NewDocumentFromReader(strings.NewReader(page))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int64{p1, p2} {
				form := d.Find(fmt.Sprintf(`[data-testid="machine-form-%d"]`, id))
				box := form.Find(`input[name="bottleneck"]`)
				if box.Length() != 1 {
					t.Fatalf("machine %d: %d bottleneck boxes, want 1", id, box.Length())
				}
				_, ticked := box.Attr("checked")
				if ticked != st.checked[id] {
					t.Errorf("machine %d: box ticked = %v, want %v", id, ticked, st.checked[id])
				}
				// The marker beside the name is the stored flag, whatever the form says.
				marker := strings.TrimSpace(form.Find(`[data-testid="bottleneck"]`).Text())
				if want := map[bool]string{true: "bottleneck of line-1"}[st.want[id]]; marker != want {
					t.Errorf("machine %d: marker %q, want %q", id, marker, want)
				}
			}
			if n := d.Find(fmt.Sprintf(`[data-testid="machine-form-%d"] input[name="bottleneck"]`, lathe)).Length(); n != 0 {
				t.Error("a machine on no line is offered the bottleneck box")
			}
		})
	}
}
