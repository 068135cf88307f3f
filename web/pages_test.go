package web

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"

	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"andon/plant"
	"andon/static"
)

func TestOverviewGroupsMachinesByLine(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	lonely := plant.Reading{Path: plant.Path{Machine: "lonely"}, Metric: "temp", TS: now, Value: 1, Topic: "lonely/temp"}
	e.write(t,
		reading("line-1", "press-01", "temperature", now, 1234.5),
		word("line-1", "press-01", "state", now, "running"),
		reading("line-1", "press-02", "speed", now, 1200),
		word("line-1", "press-02", "state", now, "down"),
		reading("line-2", "saw-01", "power", now, 3.25),
		lonely,
	)
	d := e.doc(t, "/", http.StatusOK)

	var got []string
	d.Find("section.line").Each(func(_ int, s *goquery.Selection) {
		var names []string
		s.Find(".tile-name").Each(func(_ int, n *goquery.Selection) { names = append(names, n.Text()) })
		got = append(got, s.Find("h2").Text()+": "+strings.Join(names, ","))
	})
	want := []string{"line-1: press-01,press-02", "line-2: saw-01", "Unassigned: lonely"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("sections = %q, want %q", got, want)
	}

	tests := []struct {
		machine, state, value string
	}{
		{"press-01", "Running", "1,234.5"},
		{"press-02", "Down", "1,200"},
		{"saw-01", "No state", "3.25"},
	}
	for _, tc := range tests {
		t.Run(tc.machine, func(t *testing.T) {
			id := e.machineID(t, tc.machine)
			tile := d.Find(fmt.Sprintf(`[data-testid="machine-tile-%d"]`, id))
			if tile.Length() != 1 {
				t.Fatalf("tile for %s: found %d", tc.machine, tile.Length())
			}
			if href, _ := tile.Attr("href"); href != fmt.Sprintf("/machines/%d", id) {
				t.Errorf("href = %q", href)
			}
			if got := tile.Find(`[data-testid="state-badge"]`).Text(); got != tc.state {
				t.Errorf("state = %q, want %q", got, tc.state)
			}
			if got := strings.TrimSpace(tile.Find(".kv-value").First().Text()); !strings.HasPrefix(got, tc.value) {
				t.Errorf("value = %q, want prefix %q", got, tc.value)
			}
		})
	}
	if d.Find(`[data-testid="empty-state"]`).Length() != 0 {
		t.Error("empty state shown although machines exist")
	}
	if d.Find(`[data-testid="live-status"]`).Length() != 1 {
		t.Error("no live indicator")
	}
	if sub, _ := d.Find("body").Attr("data-sub"); sub != "plant" {
		t.Errorf("data-sub = %q", sub)
	}
}

func TestOfflineMachineShowsOffline(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-time.Hour).UnixMilli()
	e.write(t, word("line-1", "old-01", "state", old, "running"))
	d := e.doc(t, "/", http.StatusOK)
	id := e.machineID(t, "old-01")
	tile := d.Find(fmt.Sprintf(`[data-testid="machine-tile-%d"]`, id))
	if got := tile.Find(`[data-testid="state-badge"]`).Text(); got != "Offline" {
		t.Errorf("state = %q, want Offline", got)
	}
	if !tile.HasClass("state-offline") {
		t.Errorf("tile classes %q lack state-offline", tile.AttrOr("class", ""))
	}
	if got := tile.Find(".age").Text(); got != "1 h 0 min ago" {
		t.Errorf("age = %q", got)
	}
}

func TestHostileNamesAreEscaped(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	hostileMachine := `"><img src=x onerror=alert(1)>`
	hostileMetric := `<script>alert(1)</script>`
	r := reading("<b>line", hostileMachine, hostileMetric, now, 7)
	r.Unit = `<i>u</i>`
	e.write(t, r, word("<b>line", hostileMachine, "mode<script>", now, "<script>alert(2)</script>"))
	e.w.Reject(plant.Reject{TS: now, Topic: "<script>t</script>", Reason: plant.ReasonBadJSON, Detail: "<b>d</b>", Payload: []byte("<script>\x00\xff")})
	e.write(t, reading("l", "m", "x", now, 1)) // a commit that carries the reject
	id := e.machineID(t, hostileMachine)

	for _, path := range []string{"/", fmt.Sprintf("/machines/%d", id), "/admin/tags", "/admin/rejects"} {
		t.Run(path, func(t *testing.T) {
			d := e.doc(t, path, http.StatusOK)
			d.Find("script").Each(func(_ int, s *goquery.Selection) {
				if src, ok := s.Attr("src"); !ok || !strings.HasPrefix(src, "/static/") {
					t.Errorf("unexpected script element: %v", s.Nodes[0])
				}
			})
			if n := d.Find("img, b, i").Length(); n != 0 {
				t.Errorf("%d device-made elements in the page", n)
			}
			text := d.Text()
			want := hostileMetric
			if path == "/admin/rejects" {
				want = `<script>\x00\xff`
			}
			if !strings.Contains(text, want) {
				t.Errorf("page text lacks %q", want)
			}
		})
	}
}

func TestEmptyState(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"embedded broker", "0.0.0.0:18830", "mosquitto_pub -h localhost -p 18830 -t 'acme/hall-1/line-1/press-01/temperature' -m '23.5'"},
		{"named host", "plant.example:1999", "mosquitto_pub -h plant.example -p 1999"},
		{"broker off", "", "andon serve --mqtt-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MQTTAddr = tc.addr })
			d := e.doc(t, "/", http.StatusOK)
			empty := d.Find(`[data-testid="empty-state"]`)
			if empty.Length() != 1 {
				t.Fatal("no empty state")
			}
			if !strings.Contains(empty.Text(), tc.want) {
				t.Errorf("empty state lacks %q:\n%s", tc.want, empty.Text())
			}
			if !strings.Contains(empty.Text(), "andon serve --demo") {
				t.Error("empty state lacks the demo hint")
			}
			if !strings.Contains(empty.Text(), `{"temperature": 23.5, "speed": 1200}`) {
				t.Error("empty state lacks the JSON example")
			}
		})
	}
}

func TestMachinePage(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	temp := reading("line-1", "press-01", "temperature", now, 23.5)
	temp.Unit = "°C"
	e.write(t, temp,
		reading("line-1", "press-01", "speed", now, 1200),
		word("line-1", "press-01", "state", now, "idle"))
	id := e.machineID(t, "press-01")
	tempID := e.tagID(t, "press-01", "temperature")
	speedID := e.tagID(t, "press-01", "speed")
	stateID := e.tagID(t, "press-01", "state")

	d := e.doc(t, fmt.Sprintf("/machines/%d?range=8h", id), http.StatusOK)
	if got := d.Find(".crumbs li").Map(func(_ int, s *goquery.Selection) string { return s.Text() }); strings.Join(got, "›") != "Plant›acme›hall-1›line-1›press-01" {
		t.Errorf("crumbs = %q", got)
	}
	if got := d.Find(`[data-testid="machine-status"] [data-testid="state-badge"]`).Text(); got != "Idle" {
		t.Errorf("state = %q, want Idle", got)
	}
	for _, id := range []int64{tempID, speedID} {
		if d.Find(fmt.Sprintf(`[data-testid="chart-%d"]`, id)).Length() != 1 {
			t.Errorf("no chart for numeric tag %d", id)
		}
	}
	if d.Find(fmt.Sprintf(`[data-testid="chart-%d"]`, stateID)).Length() != 0 {
		t.Error("a chart for the text tag")
	}
	if got := d.Find(".chart").Length(); got != 2 {
		t.Errorf("%d charts, want 2", got)
	}
	if got := strings.Join(strings.Fields(d.Find(fmt.Sprintf(`[data-testid="tag-value-%d"] .value-big`, tempID)).Text()), " "); got != "23.5 °C" {
		t.Errorf("temperature tile = %q", got)
	}
	if got := strings.TrimSpace(d.Find(fmt.Sprintf(`[data-testid="tag-value-%d"] .value-big`, stateID)).Text()); got != "idle" {
		t.Errorf("state tile = %q", got)
	}
	if got := d.Find(".range.current").Text(); got != "8 h" {
		t.Errorf("current range = %q", got)
	}
	if got, _ := d.Find("#charts").Attr("data-range-ms"); got != "28800000" {
		t.Errorf("data-range-ms = %q", got)
	}
	// The machine's values, and its timeline and stops over the page's range.
	if sub, _ := d.Find("body").Attr("data-sub"); sub != fmt.Sprintf("machine:%d timeline:%d:8h", id, id) {
		t.Errorf("data-sub = %q", sub)
	}
}

func TestNotFoundPages(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/machines/999999", "/machines/abc", "/no/such/page"} {
		t.Run(path, func(t *testing.T) {
			d := e.doc(t, path, http.StatusNotFound)
			if d.Find(`[data-testid="error-404"]`).Length() != 1 {
				t.Error("not the friendly 404 page")
			}
			if d.Find(`a[href="/"]`).Length() == 0 {
				t.Error("no way back to the overview")
			}
		})
	}
}

func TestInternalErrorsStayInternal(t *testing.T) {
	srv, err := New(Config{Store: failingStore{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, path := range []string{"/", "/machines/1", "/admin/tags", "/api/v1/tags/1/series", "/api/v1/machines"} {
		t.Run(path, func(t *testing.T) {
			// A session cookie makes the failing store fail on the session
			// lookup: a store that cannot answer is a 500, not a login page.
			req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			req.Header.Set("Cookie", "andon_session=x")
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if strings.Contains(string(b), "disk on fire") {
				t.Errorf("internal error text leaked: %s", b)
			}
		})
	}
}

func TestSeriesAPI(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	base := now - 10_000
	temp := reading("line-1", "press-01", "temperature", base, 20)
	temp.Unit = "°C"
	e.write(t, temp,
		reading("line-1", "press-01", "temperature", base+1500, 21.5),
		reading("line-1", "press-01", "temperature", base+3001, 22))
	id := e.tagID(t, "press-01", "temperature")

	resp, body := e.get(t, fmt.Sprintf("/api/v1/tags/%d/series", id))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got struct {
		Tag    int64     `json:"tag"`
		Metric string    `json:"metric"`
		Unit   string    `json:"unit"`
		T      []float64 `json:"t"`
		V      []float64 `json:"v"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	wantT := []float64{float64(base) / 1000, float64(base+1500) / 1000, float64(base+3001) / 1000}
	if got.Tag != id || got.Metric != "temperature" || got.Unit != "°C" ||
		fmt.Sprint(got.T) != fmt.Sprint(wantT) || fmt.Sprint(got.V) != "[20 21.5 22]" {
		t.Errorf("got %+v, want t=%v v=[20 21.5 22]", got, wantT)
	}

	// A window that holds only the middle point.
	_, body = e.get(t, fmt.Sprintf("/api/v1/tags/%d/series?from=%d&to=%d&max=10", id, base+1000, base+2000))
	if !strings.Contains(body, `"v":[21.5]`) {
		t.Errorf("windowed series = %s", body)
	}

	tests := []struct {
		name, query string
		code        int
	}{
		{"from not a number", "from=abc", 400},
		{"to not a number", "to=1.5", 400},
		{"from after to", fmt.Sprintf("from=%d&to=%d", now, now-1), 400},
		{"max zero", "max=0", 400},
		{"max huge", "max=1000000", 400},
		{"max junk", "max=x", 400},
		{"range too long", fmt.Sprintf("from=0&to=%d", now), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, fmt.Sprintf("/api/v1/tags/%d/series?%s", id, tc.query))
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			var eb struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error == "" {
				t.Errorf("body %q is not a JSON error", body)
			}
		})
	}
	for _, path := range []string{"/api/v1/tags/424242/series", "/api/v1/tags/zzz/series"} {
		resp, body := e.get(t, path)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if !strings.Contains(body, `"error"`) {
			t.Errorf("%s: body %q", path, body)
		}
	}
	if resp, _ := e.get(t, "/api/v1/tags/424242/series"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tag: status %d, want 404", resp.StatusCode)
	}
}

func TestMachinesAPI(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.write(t, reading("line-1", "press-01", "speed", now, 5), word("line-1", "press-01", "state", now, "running"))
	resp, body := e.get(t, "/api/v1/machines")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got struct {
		Lines []struct {
			Name     string `json:"name"`
			Machines []struct {
				Name  string `json:"name"`
				State string `json:"state"`
				Tags  []struct {
					Metric string   `json:"metric"`
					Value  *float64 `json:"value"`
					Word   string   `json:"word"`
				} `json:"tags"`
			} `json:"machines"`
		} `json:"lines"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != 1 || len(got.Lines[0].Machines) != 1 || got.Lines[0].Machines[0].State != "running" ||
		len(got.Lines[0].Machines[0].Tags) != 2 {
		t.Errorf("got %s", body)
	}
}

func TestAdminPages(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.write(t, reading("line-1", "press-01", "speed", now, 1500.25), word("line-1", "press-01", "state", now, "running"))
	e.w.Reject(plant.Reject{TS: now, Topic: "a/b", Reason: plant.ReasonNotANumber, Detail: "payload is not a number", Payload: []byte("abc")})
	e.write(t, reading("line-1", "press-01", "speed", now+1, 1))

	d := e.doc(t, "/admin/tags", http.StatusOK)
	rows := d.Find(`[data-testid="tags-table"] tbody tr`)
	if rows.Length() != 2 {
		t.Fatalf("%d tag rows, want 2", rows.Length())
	}
	if !strings.Contains(rows.Text(), "acme/hall-1/line-1/press-01/speed") || !strings.Contains(rows.Text(), "number") ||
		!strings.Contains(rows.Text(), "text") {
		t.Errorf("tag rows lack topic or type: %s", rows.Text())
	}
	d = e.doc(t, "/admin/rejects", http.StatusOK)
	if got := d.Find(`[data-testid="rejects-table"] tbody tr`).Text(); !strings.Contains(got, "not_a_number") || !strings.Contains(got, "abc") {
		t.Errorf("rejects row = %q", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/healthz", "/nope", "/api/v1/tags/1/series", static.URL("js/app.js")} {
		t.Run(path, func(t *testing.T) {
			resp, _ := e.get(t, path)
			want := map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPagesUseNoInlineCode(t *testing.T) {
	e := newEnv(t)
	e.write(t, reading("line-1", "press-01", "speed", time.Now().UnixMilli(), 1))
	id := e.machineID(t, "press-01")
	for _, path := range []string{"/", fmt.Sprintf("/machines/%d", id), "/admin/tags", "/nope"} {
		_, body := e.get(t, path)
		d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if n := d.Find("[style]").Length(); n != 0 {
			t.Errorf("%s: %d inline style attributes (CSP forbids them)", path, n)
		}
		d.Find("script").Each(func(_ int, s *goquery.Selection) {
			if _, ok := s.Attr("src"); !ok {
				t.Errorf("%s: inline script", path)
			}
		})
		d.Find("script[src], link[rel=stylesheet]").Each(func(_ int, s *goquery.Selection) {
			u := s.AttrOr("src", s.AttrOr("href", ""))
			resp, _ := e.get(t, u)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: asset %s: status %d", path, u, resp.StatusCode)
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, path string
		code       int
		ctype      string
	}{
		{"hashed js", static.URL("js/app.js"), 200, "javascript"},
		{"hashed css", static.URL("css/app.css"), 200, "text/css"},
		{"vendored uPlot", static.URL("vendor/uPlot.iife.min.js"), 200, "javascript"},
		{"plain name", "/static/js/app.js", 404, ""},
		{"wrong hash", "/static/js/app.00000000.js", 404, ""},
		{"unknown", "/static/nope.css", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, tc.path)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := resp.Header.Get("Content-Type"); !strings.Contains(got, tc.ctype) {
				t.Errorf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if len(body) < 100 {
				t.Errorf("body only %d bytes", len(body))
			}
		})
	}
	if !strings.HasPrefix(static.URL("js/app.js"), "/static/js/app.") || static.URL("js/app.js") == "/static/js/app.js" {
		t.Errorf("URL not hashed: %s", static.URL("js/app.js"))
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		health func(context.Context) error
		code   int
		want   string
	}{
		{"no check", nil, 200, `"status":"ok"`},
		{"healthy", func(context.Context) error { return nil }, 200, `"version":"v-test"`},
		{"broken", func(context.Context) error { return errors.New("db: ping: locked") }, 503, "db: ping: locked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Health = tc.health })
			resp, body := e.get(t, "/healthz")
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tc.code, tc.want)
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	e.get(t, "/healthz")
	_, body := e.get(t, "/metrics")
	for _, want := range []string{
		"andon_ws_clients 0",
		`andon_http_requests_total{code="200",method="GET"}`,
		`andon_http_request_seconds_bucket{route="/healthz"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
