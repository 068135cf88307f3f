package web

import (
	"bytes"
	"context"
	"database/sql"
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

// dtFixture is a plant of two lines with stops inserted straight into the
// database, as the state engine would write them.
type dtFixture struct {
	e              *env
	raw            *sql.DB
	now            int64
	press1, press2 int64 // line-1
	saw            int64 // line-2
	line1, line2   int64
	reason         plant.Reason // a reason that codes stops
	other          plant.Reason // another one, for recoding
	category       plant.Reason
}

func newDTFixture(t *testing.T, opts ...func(*Config)) *dtFixture {
	t.Helper()
	e := newEnv(t, opts...)
	now := time.Now().UnixMilli()
	e.write(t,
		word("line-1", "press-01", "state", now-1000, "down"),
		word("line-1", "press-02", "state", now-1000, "running"),
		word("line-2", "saw-01", "state", now-1000, "idle"),
	)
	f := &dtFixture{e: e, now: now,
		press1: e.machineID(t, "press-01"), press2: e.machineID(t, "press-02"), saw: e.machineID(t, "saw-01")}
	ids := e.lineIDs(t)
	f.line1, f.line2 = ids["line-1"], ids["line-2"]
	if f.line1 == 0 || f.line2 == 0 {
		t.Fatalf("lines not found: %v", ids)
	}
	rs, err := e.store.Reasons(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		switch {
		case r.ParentID == 0 && f.category.ID == 0:
			f.category = r
		case r.ParentID != 0 && !r.Hidden && f.reason.ID == 0:
			f.reason = r
		case r.ParentID != 0 && !r.Hidden && f.other.ID == 0:
			f.other = r
		}
	}
	if f.reason.ID == 0 || f.other.ID == 0 || f.category.ID == 0 {
		t.Fatalf("no seeded reasons: %+v", rs)
	}
	f.raw, err = sql.Open("sqlite", "file:"+e.store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.raw.Close() })
	return f
}

// stop inserts a stop; end 0 is an ongoing one.
func (f *dtFixture) stop(t *testing.T, machine int64, state plant.State, start, end int64) int64 {
	t.Helper()
	var endV any
	if end != 0 {
		endV = end
	}
	res, err := f.raw.ExecContext(context.Background(),
		`INSERT INTO stops (machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`, machine, string(state), start, endV)
	if err != nil {
		t.Fatalf("insert stop: %v", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// span inserts a state span; end 0 is the open one.
func (f *dtFixture) span(t *testing.T, machine int64, state plant.State, start, end int64) {
	t.Helper()
	var endV any
	if end != 0 {
		endV = end
	}
	if _, err := f.raw.ExecContext(context.Background(),
		`INSERT INTO state_spans (machine_id, state, start_ms, end_ms) VALUES (?, ?, ?, ?)`, machine, string(state), start, endV); err != nil {
		t.Fatalf("insert span: %v", err)
	}
}

// post sends a form without following the redirect.
func (f *dtFixture) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(f.e.ts.URL+path, form)
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

func (f *dtFixture) getStop(t *testing.T, id int64) plant.Stop {
	t.Helper()
	st, err := f.e.store.Stop(f.e.ctx, id)
	if err != nil {
		t.Fatalf("stop %d: %v", id, err)
	}
	return st
}

func (f *dtFixture) codings(t *testing.T, id int64) []plant.Coding {
	t.Helper()
	cs, err := f.e.store.Codings(f.e.ctx, id)
	if err != nil {
		t.Fatalf("codings %d: %v", id, err)
	}
	return cs
}

// cardIDs are the stop cards' test ids in page order.
func cardIDs(d *goquery.Document) []string {
	var out []string
	d.Find(`#stop-list [data-testid^="stop-"]`).Each(func(_ int, s *goquery.Selection) {
		if id, _ := s.Attr("data-testid"); strings.HasPrefix(id, "stop-") && s.Is("a") {
			out = append(out, id)
		}
	})
	return out
}

func TestDowntimeList(t *testing.T) {
	f := newDTFixture(t)
	minute := int64(60_000)
	old := f.stop(t, f.press1, plant.Down, f.now-60*minute, f.now-50*minute)
	short := f.stop(t, f.press2, plant.Idle, f.now-30*minute, f.now-30*minute+30_000)
	ongoing := f.stop(t, f.press1, plant.Down, f.now-5*minute, 0)
	other := f.stop(t, f.saw, plant.Down, f.now-20*minute, f.now-10*minute)

	tests := []struct {
		name string
		path string
		want []int64
	}{
		{"uncoded, newest first, short stops hidden", fmt.Sprintf("/downtime?line=%d", f.line1), []int64{ongoing, old}},
		{"all shows short stops", fmt.Sprintf("/downtime?line=%d&show=all", f.line1), []int64{ongoing, short, old}},
		{"the other line", fmt.Sprintf("/downtime?line=%d", f.line2), []int64{other}},
		{"default: the first line with uncoded stops", "/downtime", []int64{ongoing, old}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := f.e.doc(t, tc.path, http.StatusOK)
			var want []string
			for _, id := range tc.want {
				want = append(want, fmt.Sprintf("stop-%d", id))
			}
			if got := cardIDs(d); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("cards = %v, want %v", got, want)
			}
		})
	}

	d := f.e.doc(t, fmt.Sprintf("/downtime?line=%d", f.line1), http.StatusOK)
	card := d.Find(fmt.Sprintf(`[data-testid="stop-%d"]`, ongoing))
	if v, _ := card.Attr("data-end"); v != "0" {
		t.Errorf("ongoing card data-end = %q, want 0 (ticks in downtime.js)", v)
	}
	if !strings.Contains(card.Text(), "press-01") || !strings.Contains(card.Text(), "Down") {
		t.Errorf("ongoing card lacks machine or state: %q", card.Text())
	}
	if got := d.Find(fmt.Sprintf(`[data-testid="line-tab-%d"] .dt-count`, f.line1)).Text(); got != "2" {
		t.Errorf("line-1 tab count = %q, want 2", got)
	}
	if _, ok := d.Find(fmt.Sprintf(`[data-testid="line-tab-%d"]`, f.line1)).Attr("aria-current"); !ok {
		t.Error("line-1 tab is not marked current")
	}
	f.e.doc(t, "/downtime?line=999999", http.StatusNotFound)
}

func TestDowntimeCostTicks(t *testing.T) {
	f := newDTFixture(t)
	if err := f.e.store.SetMachineConfig(f.e.ctx, f.press1, plant.MachineConfig{CostPerHour: 600, IdealCycleS: 30, MarginPerUnit: 3}, ""); err != nil {
		t.Fatal(err)
	}
	// Ended 1 h stop: 600 €/h + 120 parts × 3 € = 960 €.
	ended := f.stop(t, f.press1, plant.Down, f.now-3*3_600_000, f.now-2*3_600_000)
	ongoing := f.stop(t, f.press1, plant.Down, f.now-5*60_000, 0)
	d := f.e.doc(t, fmt.Sprintf("/downtime?line=%d", f.line1), http.StatusOK)
	if got := d.Find(fmt.Sprintf(`[data-testid="stop-%d"] [data-testid="stop-cost"]`, ended)).Text(); got != "€ 960" {
		t.Errorf("ended stop cost = %q, want € 960", got)
	}
	card := d.Find(fmt.Sprintf(`[data-testid="stop-%d"]`, ongoing))
	// 600 €/h is 0.000166… €/ms, plus 3 € per 30 000 ms = 0.0001 €/ms.
	rate, _ := card.Attr("data-cost-ms")
	if !strings.HasPrefix(rate, "0.000266666") {
		t.Errorf("data-cost-ms = %q, want 0.000266666…", rate)
	}
}

func TestCodeStop(t *testing.T) {
	f := newDTFixture(t)
	id := f.stop(t, f.press1, plant.Down, f.now-20*60_000, f.now-10*60_000)

	// The panel offers reasons, never categories.
	d := f.e.doc(t, fmt.Sprintf("/downtime/stops/%d?line=%d&show=uncoded", id, f.line1), http.StatusOK)
	if d.Find(`[data-testid="coding-panel"]`).Length() != 1 {
		t.Fatal("no coding panel")
	}
	if d.Find(fmt.Sprintf(`button[data-testid="reason-%d"]`, f.reason.ID)).Length() != 1 {
		t.Errorf("no button for reason %d", f.reason.ID)
	}
	if d.Find(fmt.Sprintf(`button[data-testid="reason-%d"]`, f.category.ID)).Length() != 0 {
		t.Errorf("category %d offered as a reason", f.category.ID)
	}

	steps := []struct {
		name    string
		reason  plant.Reason
		comment string
		by      string
		wantBy  string
	}{
		{"code", f.reason, "belt slipped", "", "admin"}, // the logged-in user,
		{"recode", f.other, "", "Anna", "admin / Anna"}, // a name typed on a shared login,
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			resp, body := f.post(t, fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{
				"reason_id": {fmt.Sprint(s.reason.ID)}, "comment": {s.comment}, "by": {s.by},
				"line": {fmt.Sprint(f.line1)}, "show": {"all"},
			})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303; body %s", resp.StatusCode, body)
			}
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, "/downtime?") || !strings.Contains(loc, fmt.Sprintf("coded=%d", id)) {
				t.Errorf("Location = %q", loc)
			}
			st := f.getStop(t, id)
			if st.ReasonID != s.reason.ID || st.Comment != s.comment || st.CodedBy != s.wantBy {
				t.Errorf("stop = reason %d comment %q by %q, want %d %q %q", st.ReasonID, st.Comment, st.CodedBy, s.reason.ID, s.comment, s.wantBy)
			}
			if got := len(f.codings(t, id)); got != i+1 {
				t.Errorf("history has %d entries, want %d", got, i+1)
			}
			d := f.e.doc(t, loc, http.StatusOK)
			if n := d.Find(`[data-testid="notice"]`).Text(); !strings.Contains(n, s.reason.Name) {
				t.Errorf("notice = %q, want it to name %q", n, s.reason.Name)
			}
		})
	}
	d = f.e.doc(t, fmt.Sprintf("/downtime/stops/%d", id), http.StatusOK)
	if got := d.Find(`[data-testid="history"] tbody tr`).Length(); got != 2 {
		t.Errorf("history rows = %d, want 2", got)
	}
	if !strings.Contains(d.Find(`[data-testid="history"]`).Text(), "Anna") {
		t.Error("history does not name the recoder")
	}
}

func TestCodeStopRejects(t *testing.T) {
	f := newDTFixture(t)
	id := f.stop(t, f.press1, plant.Down, f.now-20*60_000, f.now-10*60_000)
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
	}{
		{"forged stop id", "/downtime/stops/999999/code", url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}}, http.StatusNotFound},
		{"not a stop id", "/downtime/stops/abc/code", url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}}, http.StatusNotFound},
		{"unknown reason", fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {"999999"}}, http.StatusNotFound},
		{"category", fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {fmt.Sprint(f.category.ID)}}, http.StatusBadRequest},
		{"no reason", fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{}, http.StatusBadRequest},
		{"name too long", fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}, "by": {strings.Repeat("x", 65)}}, http.StatusBadRequest},
		{"comment too long", fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}, "comment": {strings.Repeat("x", 501)}}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, tc.path, tc.form)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(body, `data-testid="error-400"`) {
				t.Errorf("no friendly 400 page: %s", body)
			}
			if st := f.getStop(t, id); st.ReasonID != 0 {
				t.Errorf("stop coded with %d after a rejected request", st.ReasonID)
			}
			if n := len(f.codings(t, id)); n != 0 {
				t.Errorf("history has %d entries after a rejected request", n)
			}
		})
	}
	// The category's message says what to do.
	_, body := f.post(t, fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {fmt.Sprint(f.category.ID)}})
	if !strings.Contains(body, "is a category") {
		t.Errorf("category rejection does not say why: %s", body)
	}
}

func TestSplitStop(t *testing.T) {
	loc := time.UTC // newEnv's plant zone
	f := newDTFixture(t)
	// A 20-minute stop that ended 10 minutes ago, on whole minutes.
	end := time.UnixMilli(f.now).Truncate(time.Minute).Add(-10 * time.Minute)
	start := end.Add(-20 * time.Minute)
	id := f.stop(t, f.press1, plant.Down, start.UnixMilli(), end.UnixMilli())
	ongoing := f.stop(t, f.press2, plant.Down, f.now-5*60_000, 0)
	at := start.Add(5 * time.Minute)
	count := func() int {
		ss, err := f.e.store.Stops(f.e.ctx, db.StopQuery{MachineID: f.press1})
		if err != nil {
			t.Fatal(err)
		}
		return len(ss)
	}

	rejects := []struct {
		name string
		id   int64
		at   string
		want int
	}{
		{"ongoing stop", ongoing, time.UnixMilli(f.now - 60_000).In(loc).Format("15:04"), http.StatusBadRequest},
		{"time before the stop", id, start.Add(-time.Minute).In(loc).Format("2006-01-02T15:04"), http.StatusBadRequest},
		{"not a time", id, "quarter past", http.StatusBadRequest},
		{"forged id", 999999, at.In(loc).Format("15:04"), http.StatusNotFound},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, fmt.Sprintf("/downtime/stops/%d/split", tc.id), url.Values{"at": {tc.at}})
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			if n := count(); n != 1 {
				t.Errorf("press-01 has %d stops after a rejected split, want 1", n)
			}
		})
	}
	if st := f.getStop(t, ongoing); st.End != 0 {
		t.Errorf("ongoing stop changed: %+v", st)
	}

	// The second split is of the second half, at a minute after the first.
	formats := []string{at.In(loc).Format("15:04"), at.Add(time.Minute).In(loc).Format(time.RFC3339)}
	for i, raw := range formats {
		t.Run("split at "+raw, func(t *testing.T) {
			ss, err := f.e.store.Stops(f.e.ctx, db.StopQuery{MachineID: f.press1})
			if err != nil {
				t.Fatal(err)
			}
			target := ss[0].ID // the newest part
			resp, body := f.post(t, fmt.Sprintf("/downtime/stops/%d/split", target), url.Values{"at": {raw}, "line": {fmt.Sprint(f.line1)}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303; body %s", resp.StatusCode, body)
			}
			if !strings.Contains(resp.Header.Get("Location"), "split=") {
				t.Errorf("Location = %q", resp.Header.Get("Location"))
			}
			if n := count(); n != i+2 {
				t.Errorf("press-01 has %d stops, want %d", n, i+2)
			}
		})
	}
	ss, err := f.e.store.Stops(f.e.ctx, db.StopQuery{MachineID: f.press1})
	if err != nil {
		t.Fatal(err)
	}
	// Newest first: [at+1min, end), [at, at+1min), [start, at).
	if len(ss) != 3 || ss[2].End != at.UnixMilli() || ss[1].Start != at.UnixMilli() || ss[0].Start != at.Add(time.Minute).UnixMilli() || ss[0].End != end.UnixMilli() {
		t.Errorf("after splits: %+v", ss)
	}

	// The panel offers a split only for ended stops.
	if f.e.doc(t, fmt.Sprintf("/downtime/stops/%d", ongoing), http.StatusOK).Find(`[data-testid="split"]`).Length() != 0 {
		t.Error("an ongoing stop offers a split")
	}
	if f.e.doc(t, fmt.Sprintf("/downtime/stops/%d", ss[0].ID), http.StatusOK).Find(`[data-testid="split"]`).Length() != 1 {
		t.Error("an ended stop offers no split")
	}
}

func TestOperatorPage(t *testing.T) {
	f := newDTFixture(t)
	f.e.doc(t, fmt.Sprintf("/m/%d", f.press2), http.StatusOK) // no stops yet renders too
	id := f.stop(t, f.press1, plant.Down, f.now-10*60_000, 0)
	d := f.e.doc(t, fmt.Sprintf("/m/%d", f.press1), http.StatusOK)
	if got := d.Find(`.machine-name`).Text(); got != "press-01" {
		t.Errorf("machine name = %q", got)
	}
	if got := d.Find(`#machine-status [data-testid="state-badge"]`).Text(); got != "Down" {
		t.Errorf("state = %q, want Down", got)
	}
	if d.Find(fmt.Sprintf(`#op-stop [data-testid="stop-%d"]`, id)).Length() != 1 {
		t.Error("the current stop is not shown")
	}
	btn := d.Find(fmt.Sprintf(`#op-stop button[data-testid="reason-%d"]`, f.reason.ID))
	if btn.Length() != 1 {
		t.Fatal("no reason buttons on the operator page")
	}
	if ret, _ := d.Find(`#op-stop input[name="return"]`).Attr("value"); ret != "m" {
		t.Errorf("return = %q, want m", ret)
	}
	resp, body := f.post(t, fmt.Sprintf("/downtime/stops/%d/code", id), url.Values{"reason_id": {fmt.Sprint(f.reason.ID)}, "return": {"m"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != fmt.Sprintf("/m/%d?coded=%d", f.press1, id) {
		t.Fatalf("status %d Location %q; body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	d = f.e.doc(t, resp.Header.Get("Location"), http.StatusOK)
	if !strings.Contains(d.Find(`[data-testid="notice"]`).Text(), f.reason.Name) {
		t.Error("no confirmation on the operator page")
	}
	if d.Find(fmt.Sprintf(`button[data-testid="reason-%d"][aria-pressed="true"]`, f.reason.ID)).Length() != 1 {
		t.Error("the chosen reason is not marked")
	}
	f.e.doc(t, "/m/999999", http.StatusNotFound)
}

func TestQRCodes(t *testing.T) {
	f := newDTFixture(t)
	d := f.e.doc(t, "/admin/qr", http.StatusOK)
	host := strings.TrimPrefix(f.e.ts.URL, "http://")
	for _, id := range []int64{f.press1, f.press2, f.saw} {
		card := d.Find(fmt.Sprintf(`[data-testid="qr-%d"]`, id))
		if card.Length() != 1 {
			t.Errorf("no QR code for machine %d", id)
			continue
		}
		if want := fmt.Sprintf("http://%s/m/%d", host, id); !strings.Contains(card.Text(), want) {
			t.Errorf("QR card %d lacks %s: %q", id, want, card.Text())
		}
	}
	tests := []struct {
		path   string
		status int
	}{
		{fmt.Sprintf("/qr/%d.png", f.press1), http.StatusOK},
		{"/qr/999999.png", http.StatusNotFound},
		{fmt.Sprintf("/qr/%d.gif", f.press1), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.e.get(t, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
					t.Errorf("Content-Type = %q", ct)
				}
				if !bytes.HasPrefix([]byte(body), []byte("\x89PNG\r\n\x1a\n")) {
					t.Error("not a PNG")
				}
			}
		})
	}
}

func TestMachinePageTimeline(t *testing.T) {
	f := newDTFixture(t)
	minute := int64(60_000)
	f.span(t, f.press1, plant.Running, f.now-90*minute, f.now-40*minute) // starts before the 1 h range: clipped
	f.span(t, f.press1, plant.Down, f.now-40*minute, f.now-30*minute)
	f.span(t, f.press1, plant.Offline, f.now-30*minute, f.now-20*minute)
	f.span(t, f.press1, plant.Down, f.now-20*minute, 0)
	f.span(t, f.press2, plant.Running, f.now-50*minute, 0) // another machine's: not shown
	coded := f.stop(t, f.press1, plant.Down, f.now-40*minute, f.now-30*minute)
	f.stop(t, f.press1, plant.Down, f.now-20*minute, 0)
	f.stop(t, f.press1, plant.Down, f.now-3*60*minute, f.now-2*60*minute) // outside the hour
	if _, err := f.e.store.CodeStop(f.e.ctx, plant.Coding{StopID: coded, ReasonID: f.reason.ID, By: "test", At: f.now}); err != nil {
		t.Fatal(err)
	}

	d := f.e.doc(t, fmt.Sprintf("/machines/%d", f.press1), http.StatusOK)
	segs := d.Find(`#machine-downtime [data-testid="timeline-segment"]`)
	var states []string
	segs.Each(func(_ int, s *goquery.Selection) { v, _ := s.Attr("data-state"); states = append(states, v) })
	if got := strings.Join(states, ","); got != "running,down,offline,down" {
		t.Errorf("segments = %s, want running,down,offline,down", got)
	}
	if x, _ := segs.First().Attr("x"); x != "0.000%" {
		t.Errorf("first segment x = %q, want clipped to 0.000%%", x)
	}
	if !strings.Contains(segs.Eq(1).Find("title").Text(), "Down") {
		t.Errorf("segment title = %q", segs.Eq(1).Find("title").Text())
	}
	if d.Find(`#machine-downtime .tl-legend`).Length() != 1 {
		t.Error("no legend")
	}
	rows := d.Find(`[data-testid="machine-stops"] tbody tr`)
	if rows.Length() != 2 {
		t.Errorf("stop rows = %d, want 2", rows.Length())
	}
	if !strings.Contains(rows.Text(), f.reason.Name) {
		t.Errorf("the coded stop's reason is not listed: %q", rows.Text())
	}
	// 8 h range takes the older stop in.
	d = f.e.doc(t, fmt.Sprintf("/machines/%d?range=8h", f.press1), http.StatusOK)
	if n := d.Find(`[data-testid="machine-stops"] tbody tr`).Length(); n != 3 {
		t.Errorf("8 h stop rows = %d, want 3", n)
	}
	if sub, _ := d.Find("body").Attr("data-sub"); sub != fmt.Sprintf("machine:%d timeline:%d:8h", f.press1, f.press1) {
		t.Errorf("data-sub = %q", sub)
	}
}

func TestStopsChangedLive(t *testing.T) {
	f := newDTFixture(t)
	first := f.stop(t, f.press1, plant.Down, f.now-10*60_000, f.now-5*60_000)
	c := dial(t, f.e)
	subscribe(t, c, fmt.Sprintf("downtime:%d", f.line1), fmt.Sprintf("timeline:%d:1h", f.press1), fmt.Sprintf("machine:%d", f.press1))
	snap := await(t, c, "stop list snapshot", func(m wsMsg) bool { return m.Type == "html" && m.ID == "stop-list" })
	if !strings.Contains(snap.HTML, fmt.Sprintf(`data-testid="stop-%d"`, first)) {
		t.Errorf("snapshot lacks stop %d: %s", first, snap.HTML)
	}

	next := f.stop(t, f.press1, plant.Down, f.now-3*60_000, 0)
	f.span(t, f.press1, plant.Down, f.now-3*60_000, 0)
	f.e.srv.StopsChanged([]int64{f.press1})
	tests := []struct {
		id   string
		want string
	}{
		{"stop-list", fmt.Sprintf(`data-testid="stop-%d"`, next)},
		{"machine-downtime", `data-testid="timeline-segment"`},
		{"op-stop", fmt.Sprintf(`data-testid="stop-%d"`, next)},
	}
	// The updates come in one frame or several: collect until each is seen.
	got := map[string]wsMsg{}
	await(t, c, "the three fragments", func(m wsMsg) bool {
		for _, tc := range tests {
			if m.Type == "html" && m.ID == tc.id && strings.Contains(m.HTML, tc.want) {
				got[tc.id] = m
			}
		}
		return len(got) == len(tests)
	})
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			if m := got[tc.id]; !strings.Contains(m.HTML, `id="`+tc.id+`"`) {
				t.Errorf("fragment does not replace #%s: %s", tc.id, m.HTML)
			}
		})
	}
}

func TestDowntimeTopics(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"downtime:3", "downtime:3"},
		{"downtime:03:all", "downtime:3:all"},
		{"downtime:0", "downtime:0"},
		{"downtime:x", ""},
		{"downtime:-1", ""},
		{"timeline:12:8h", "timeline:12:8h"},
		{"timeline:12:9h", ""},
		{"timeline:0:1h", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := strings.Join(validTopics([]string{tc.in}), ",")
			if got != tc.want {
				t.Errorf("validTopics(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
