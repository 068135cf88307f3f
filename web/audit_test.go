package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/db"
	"andon/plant"
)

// sessionClient is a browser logged in as a user made straight in the store,
// so these tests depend only on the store's contract and the cookie's name.
type sessionClient struct {
	e      *env
	name   string
	cookie *http.Cookie
}

func loginAs(t *testing.T, e *env, name string, role db.Role) *sessionClient {
	t.Helper()
	u, err := e.store.CreateUser(e.ctx, name, role, "correct horse battery")
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	secret, err := e.store.CreateSession(e.ctx, u.ID, time.Now().UnixMilli())
	if err != nil {
		t.Fatalf("session for %s: %v", name, err)
	}
	return &sessionClient{e: e, name: name, cookie: &http.Cookie{Name: "andon_session", Value: secret}}
}

// do sends a request as the user, from this site's pages, and does not
// follow redirects.
func (sc *sessionClient) do(t *testing.T, method, path string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, sc.e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(sc.cookie)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", sc.e.ts.URL)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (sc *sessionClient) doc(t *testing.T, path string, want int) *goquery.Document {
	t.Helper()
	resp, b := sc.do(t, http.MethodGet, path, nil)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d; body %.500s", path, resp.StatusCode, want, b)
	}
	d, err := goquery.NewDocumentFromReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func addAudit(t *testing.T, e *env, entries ...db.AuditEntry) {
	t.Helper()
	for _, a := range entries {
		if err := e.store.Audit(e.ctx, a); err != nil {
			t.Fatalf("audit: %v", err)
		}
	}
}

func TestAuditPage(t *testing.T) {
	e := newEnv(t)
	admin := loginAs(t, e, "alice", db.RoleAdmin)
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	const n = auditPageSize + 5
	for i := range n {
		detail := fmt.Sprintf("cost_per_hour=%d", i)
		if i == n-1 {
			detail = `comment="<script>alert(1)</script>"`
		}
		addAudit(t, e, db.AuditEntry{TS: base + int64(i)*1000, Actor: "alice", Action: "machine.update",
			Object: fmt.Sprintf("obj-%03d", i), Detail: detail})
	}
	objects := func(d *goquery.Document) []string {
		var out []string
		d.Find(`[data-testid="audit-table"] tbody tr`).Each(func(_ int, r *goquery.Selection) {
			out = append(out, r.Find("td").Eq(3).Text())
		})
		return out
	}

	first := admin.doc(t, "/admin/audit", http.StatusOK)
	got := objects(first)
	if len(got) != auditPageSize {
		t.Fatalf("first page: %d rows, want %d", len(got), auditPageSize)
	}
	if got[0] != fmt.Sprintf("obj-%03d", n-1) || got[len(got)-1] != fmt.Sprintf("obj-%03d", n-auditPageSize) {
		t.Errorf("first page runs %s … %s, want newest first", got[0], got[len(got)-1])
	}
	row := first.Find(`[data-testid="audit-table"] tbody tr`).First().Find("td")
	if ts := row.Eq(0).Text(); ts != "2026-03-02 08:03:24" {
		t.Errorf("time cell %q, want the plant-zone time 2026-03-02 08:03:24", ts)
	}
	if actor, action := row.Eq(1).Text(), row.Eq(2).Text(); actor != "alice" || action != "machine.update" {
		t.Errorf("actor %q action %q", actor, action)
	}
	// Stored text is shown as text, never run.
	if d := row.Eq(4).Text(); d != `comment="<script>alert(1)</script>"` {
		t.Errorf("detail %q", d)
	}
	if first.Find(`[data-testid="audit-table"] script`).Length() != 0 {
		t.Error("a detail became a script element")
	}
	if first.Find(`[data-testid="audit-newest"]`).Length() != 0 {
		t.Error("the newest page links to the newest page")
	}
	if h, _ := first.Find(`[data-testid="audit-csv"]`).Attr("href"); h != "/admin/audit.csv" {
		t.Errorf("CSV link %q", h)
	}

	older, ok := first.Find(`[data-testid="audit-older"]`).Attr("href")
	if !ok {
		t.Fatal("no link to older entries")
	}
	second := admin.doc(t, older, http.StatusOK)
	got = objects(second)
	want := []string{"obj-004", "obj-003", "obj-002", "obj-001", "obj-000"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("second page %v, want %v", got, want)
	}
	if second.Find(`[data-testid="audit-older"]`).Length() != 0 {
		t.Error("the oldest page links to older entries")
	}
	if second.Find(`[data-testid="audit-newest"]`).Length() != 1 {
		t.Error("an older page has no way back to the newest")
	}

	for _, bad := range []string{"abc", "-3", "0"} {
		if resp, _ := admin.do(t, http.MethodGet, "/admin/audit?before="+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("before=%s: status %d, want 400", bad, resp.StatusCode)
		}
	}

	empty := newEnv(t)
	d := loginAs(t, empty, "bob", db.RoleAdmin).doc(t, "/admin/audit", http.StatusOK)
	if d.Find(`[data-testid="audit-empty"]`).Length() != 1 || d.Find(`[data-testid="audit-older"]`).Length() != 0 {
		t.Error("an empty log does not say so")
	}
}

func TestAuditCSV(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no zone data: %v", err)
	}
	e := newEnv(t, func(c *Config) { c.Location = berlin })
	admin := loginAs(t, e, "alice", db.RoleAdmin)
	winter := time.Date(2026, 1, 15, 7, 30, 0, 0, time.UTC).UnixMilli()
	summer := time.Date(2026, 7, 15, 7, 30, 0, 0, time.UTC).UnixMilli()
	addAudit(t, e,
		db.AuditEntry{TS: winter, Actor: "alice", Action: "machine.update", Object: "acme/hall-1/line-1/press-01", Detail: `ideal_cycle_s=12 display_name="Big, \"fast\" press"`},
		db.AuditEntry{TS: summer, Actor: "=cmd|' /C calc'!A0", Action: "@SUM(1)", Object: "+1", Detail: "-2"},
		db.AuditEntry{TS: summer + 1000, Actor: "bob", Action: "stop.code", Object: "\tTab", Detail: "\rreturn"},
		db.AuditEntry{TS: summer + 2000, Actor: "Jörg", Action: "reason.create", Object: "Störung / Öl", Detail: "a=b"},
	)

	resp, body := admin.do(t, http.MethodGet, "/admin/audit.csv", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; body %.300s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(ct, "utf-8") {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".csv") {
		t.Errorf("Content-Disposition %q", cd)
	}
	rest, ok := bytes.CutPrefix(body, []byte("\xef\xbb\xbf"))
	if !ok {
		t.Fatalf("no UTF-8 BOM: %q", body[:min(len(body), 10)])
	}
	rows, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("not RFC 4180 CSV: %v\n%s", err, rest)
	}
	want := [][]string{
		{"time", "actor", "action", "object", "detail"},
		{"2026-01-15T08:30:00+01:00", "alice", "machine.update", "acme/hall-1/line-1/press-01", `ideal_cycle_s=12 display_name="Big, \"fast\" press"`},
		{"2026-07-15T09:30:00+02:00", "'=cmd|' /C calc'!A0", "'@SUM(1)", "'+1", "'-2"},
		{"2026-07-15T09:30:01+02:00", "bob", "stop.code", "'\tTab", "'\rreturn"},
		{"2026-07-15T09:30:02+02:00", "Jörg", "reason.create", "Störung / Öl", "a=b"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%q", len(rows), len(want), rows)
	}
	for i := range want {
		for j := range want[i] {
			// encoding/csv reads a quoted CR as LF where it ends a line
			// inside a field; compare the cells the way a reader sees them.
			g, w := strings.ReplaceAll(rows[i][j], "\r", ""), strings.ReplaceAll(want[i][j], "\r", "")
			if g != w {
				t.Errorf("row %d col %d = %q, want %q", i, j, rows[i][j], want[i][j])
			}
		}
	}
	for _, r := range rows[1:] {
		ts, err := time.Parse(time.RFC3339, r[0])
		if err != nil {
			t.Errorf("time %q is not ISO 8601: %v", r[0], err)
		} else if ts.Before(time.UnixMilli(winter).Add(-time.Second)) {
			t.Errorf("time %q out of range", r[0])
		}
	}

	// An empty log is still a valid file: the BOM and the header.
	empty := newEnv(t)
	resp, body = loginAs(t, empty, "bob", db.RoleAdmin).do(t, http.MethodGet, "/admin/audit.csv", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "\ufefftime,actor,action,object,detail\n" {
		t.Errorf("empty log: status %d, body %q", resp.StatusCode, body)
	}
}

func TestCSVCell(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"=1+1", "'=1+1"},
		{"+49 170", "'+49 170"},
		{"-5", "'-5"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"a=b", "a=b"},
		{" =x", " =x"},
	}
	for _, tc := range cases {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAdminChangesAudited makes each kind of change through its form, as a
// logged-in user, and checks the entry it leaves.
func TestAdminChangesAudited(t *testing.T) {
	f := newDTFixture(t)
	e := f.e
	admin := loginAs(t, e, "alice", db.RoleAdmin)
	machine := fmt.Sprintf("/admin/machines/%d", f.press1)

	// A stop to code and a stop to split: 20 minutes, ended 10 minutes ago.
	end := time.UnixMilli(f.now).Truncate(time.Minute).Add(-10 * time.Minute)
	start := end.Add(-20 * time.Minute)
	toCode := f.stop(t, f.press1, plant.Down, start.UnixMilli(), end.UnixMilli())
	toSplit := f.stop(t, f.saw, plant.Down, start.UnixMilli(), end.UnixMilli())
	splitAt := start.Add(5 * time.Minute)

	category := f.category.Name
	shiftID := func() string {
		shifts, _, err := e.store.Calendar(e.ctx, time.UTC)
		if err != nil || len(shifts) == 0 {
			t.Fatalf("no shift: %v", err)
		}
		return fmt.Sprint(shifts[0].ID)
	}
	newReasonID := func() string {
		rs, err := e.store.Reasons(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Name == "Punch broken" {
				return fmt.Sprint(r.ID)
			}
		}
		t.Fatal("no reason Punch broken")
		return ""
	}
	machineForm := url.Values{"ideal_cycle_s": {"12"}, "cost_per_hour": {"180"}, "margin_per_unit": {""},
		"display_name": {""}, "rule_kind": {"none"}}
	shiftForm := url.Values{"name": {"Early"}, "start": {"06:00"}, "end": {"14:00"}, "day": {"1", "2"},
		"breaks": {"10:00-10:30 Break"}}
	settings, err := e.store.Settings(e.ctx)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		path   func() string
		form   url.Values
		action string
		object string
		detail string // the whole detail, or with a trailing "*" its beginning
	}{
		{"machine", func() string { return machine }, machineForm,
			"machine.update", "acme/hall-1/line-1/press-01", "ideal_cycle_s=12 cost_per_hour=180"},
		{"machine again, one change", func() string { return machine },
			url.Values{"ideal_cycle_s": {"12"}, "cost_per_hour": {"200"}, "rule_kind": {"counter"}, "rule_metric": {"good"}, "rule_factor": {"3"}},
			"machine.update", "acme/hall-1/line-1/press-01", `cost_per_hour=200 state_rule=*`},
		{"reason create", func() string { return "/admin/reasons" },
			url.Values{"name": {"Punch broken"}, "parent_id": {fmt.Sprint(f.category.ID)}, "sort": {"5"}},
			"reason.create", category + " / Punch broken", "name=\"Punch broken\" planned=false hidden=false sort=5"},
		{"reason update", func() string { return "/admin/reasons/" + newReasonID() },
			url.Values{"name": {"Punch broken"}, "sort": {"5"}, "hidden": {"1"}},
			"reason.update", category + " / Punch broken", "hidden=true"},
		{"shift create", func() string { return "/admin/shifts" }, shiftForm,
			"shift.create", "Early", `name=Early start=06:00 end=14:00 days=mon,tue breaks="10:00-10:30 Break"`},
		{"shift update", func() string { return "/admin/shifts/" + shiftID() },
			url.Values{"name": {"Early"}, "start": {"06:00"}, "end": {"14:30"}, "day": {"1", "2", "3"}, "breaks": {"10:00-10:30 Break"}},
			"shift.update", "Early", "end=14:30 days=mon,tue,wed"},
		{"holiday", func() string { return "/admin/holidays" }, url.Values{"day": {"2026-12-24"}, "on": {"1"}},
			"holiday.set", "2026-12-24", "holiday=true"},
		{"shift delete", func() string { return "/admin/shifts/" + shiftID() + "/delete" }, url.Values{},
			"shift.delete", "Early", "name=Early start=06:00 end=14:30*"},
		{"settings", func() string { return "/admin/settings" },
			url.Values{"micro_stop_min": {"3"}, "no_reason_min": {fmt.Sprint(float64(settings.NoReasonMS) / 60_000)},
				"heartbeat_s": {fmt.Sprint(float64(settings.HeartbeatMS) / 1000)}, "currency": {"CHF"}, "state_map": {"7 = running"}},
			"settings.update", "settings", "micro_stop_min=3 currency=CHF state_map=\"7 = running\""},
		{"code a stop", func() string { return fmt.Sprintf("/downtime/stops/%d/code", toCode) },
			url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}, "comment": {`die "stuck" <b>again</b>`}},
			"stop.code", fmt.Sprintf("stop %d on *", toCode), ""},
		{"split a stop", func() string { return fmt.Sprintf("/downtime/stops/%d/split", toSplit) },
			url.Values{"at": {splitAt.UTC().Format(time.RFC3339)}},
			"stop.split", fmt.Sprintf("stop %d on *", toSplit), "at=" + splitAt.UTC().Format(time.RFC3339) + " new_stop=*"},
	}
	matches := func(got, want string) bool {
		if p, ok := strings.CutSuffix(want, "*"); ok {
			return strings.HasPrefix(got, p)
		}
		return got == want
	}
	var lastID int64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path()
			resp, body := admin.do(t, http.MethodPost, path, tc.form)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST %s: status %d, want 303; body %.500s", path, resp.StatusCode, body)
			}
			es, err := e.store.AuditLog(e.ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 || es[0].ID == lastID {
				t.Fatalf("no new audit entry after POST %s", path)
			}
			if len(es) > 1 && es[1].ID > lastID && lastID != 0 {
				t.Errorf("more than one entry for one change: %+v", es[:2])
			}
			got := es[0]
			lastID = got.ID
			if got.Actor != "alice" || got.Action != tc.action || !matches(got.Object, tc.object) {
				t.Errorf("entry %+v, want actor alice, action %s, object %s", got, tc.action, tc.object)
			}
			if tc.detail != "" && !matches(got.Detail, tc.detail) {
				t.Errorf("detail %q, want %q", got.Detail, tc.detail)
			}
			if tc.action == "stop.code" {
				want := fmt.Sprintf("reason=%q comment=%q", category+" / "+f.reason.Name, `die "stuck" <b>again</b>`)
				if f.reason.ParentID != f.category.ID {
					want = "reason=*"
				}
				if !matches(got.Detail, want) {
					t.Errorf("detail %q, want %q", got.Detail, want)
				}
			}
		})
	}

	// A refused change leaves no entry.
	resp, _ := admin.do(t, http.MethodPost, machine, url.Values{"cost_per_hour": {"-1"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad machine form: status %d, want 422", resp.StatusCode)
	}
	es, err := e.store.AuditLog(e.ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].ID != lastID {
		t.Errorf("a refused change was audited: %+v", es)
	}
}
