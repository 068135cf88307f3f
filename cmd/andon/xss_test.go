package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"andon/ingest/mqtttest"
)

// Hostile text from devices and people. Each sets window.__xss to its own
// number if it ever runs, so a failure names the hole. MQTT topic levels
// cannot hold a '/', so "</script>" goes in through payloads, comments and
// JSON keys instead.
const (
	xssMachine   = `<img src=x onerror=window.__xss=1>`
	xssMetric    = `"><img src=x onerror=window.__xss=2>`
	xssLine      = `<svg onload=window.__xss=3>`
	xssKey       = `<b onmouseover=window.__xss=4>k</b>`
	xssUnit      = `<script>window.__xss=5</script>`
	xssRejected  = `<img src=x onerror=window.__xss=6>`
	xssComment   = `<script>window.__xss=7</script><img src=x onerror=window.__xss=8>`
	xssBy        = `"><svg onload=window.__xss=9>`
	xssDevice    = `<img src=x onerror=window.__xss=10>`
	xssScriptKey = `"><script>window.__xss=11</script>`
	xssSkipped   = `<img src=x onerror=window.__xss=12>`
	xssPrefix    = `acme/<svg onload=window.__xss=13>`
	xssLine2     = `'><img src=x onerror=window.__xss=14>`
	xssBoard     = `<img src=x onerror=window.__xss=15>`
)

// TestStoredXSS publishes hostile topics, metric names, units and payloads,
// codes a stop with a hostile comment and adds a device with a hostile name,
// then loads every page as an admin in chromium: no injected code runs, no
// element is made from the text, and the text shows as text. The page's CSP
// is bypassed in the browser, so the test holds the escaping to account on
// its own, not the CSP that backs it up.
func TestStoredXSS(t *testing.T) {
	s := startServe(t, nil)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	machineTopic := "acme/" + xssLine + "/" + xssMachine
	now := time.Now()
	publish := func(topic, payload string) {
		t.Helper()
		if err := pub.Publish(ctx, topic, []byte(payload), 1); err != nil {
			t.Fatal(err)
		}
	}
	jsonObj := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A stop: running, down for 4 minutes, running again.
	for _, st := range []struct {
		state string
		ago   time.Duration
	}{{"running", 10 * time.Minute}, {"down", 6 * time.Minute}, {"running", 2 * time.Minute}} {
		publish(machineTopic+"/state", jsonObj("value", st.state, "ts", now.Add(-st.ago).UnixMilli()))
	}
	publish(machineTopic+"/"+xssMetric, "42")
	publish(machineTopic+"/temperature", jsonObj("value", 21.5, "unit", xssUnit))
	publish(machineTopic, jsonObj(xssKey, 1, xssScriptKey, 2, xssSkipped, []int{1}))
	publish(machineTopic+"/bad", xssRejected)
	// A second line, so that the report offers a pick of lines.
	publish("acme/"+xssLine2+"/saw-2/state", "running")

	// Wait for the machine and its stop.
	var machine int64
	var stop string
	deadline := time.Now().Add(15 * time.Second)
	for machine == 0 || stop == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no machine %q with a stop (machines %v)\n%s", xssMachine, machineIDs(t, s), s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
		machine = machineIDs(t, s)[xssMachine]
		stop = firstAttr(t, s.url("/downtime?show=all"), nil, `[data-stop]`, "data-stop")
	}
	line := lineID(t, s, xssLine)

	// Code the stop as an operator through the real form.
	op := s.login(t, "operator")
	reason := firstAttr(t, s.url("/downtime/stops/"+stop), op, `button[name="reason_id"]`, "value")
	if reason == "" {
		t.Fatalf("the coding panel of stop %s offers no reason", stop)
	}
	form := url.Values{"reason_id": {reason}, "comment": {xssComment}, "by": {xssBy}}
	req, _ := http.NewRequest(http.MethodPost, s.url("/downtime/stops/"+stop+"/code"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+s.addrs.HTTP)
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("coding stop %s = %d, want 303", stop, resp.StatusCode)
	}

	// A device with a hostile name and prefix, as an admin adds it.
	var out bytes.Buffer
	e := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := e.run(context.Background(), []string{"device", "add", "--data", s.data, "--name", xssDevice, "--prefix", xssPrefix, "--generate"}); err != nil {
		t.Fatalf("andon device add: %v\n%s", err, out.String())
	}

	admin := s.login(t, "admin")
	checkExportsEscaped(t, s, admin)
	// Wall-display boards of each layout with a hostile name, showing the
	// hostile line, as an admin makes them.
	boards := map[string]string{}
	for _, layout := range []string{"tiles", "line", "pareto"} {
		id, _ := boardLink(t, s, admin, xssBoard+" "+layout, layout, url.Values{"line": {strconv.FormatInt(line, 10)}})
		boards[layout] = id
	}

	b := browser(t)
	bctx, bcancel := context.WithTimeout(b, 60*time.Second)
	defer bcancel()
	// Without the CSP an injected handler would run: the test sees the
	// escaping alone.
	if _, err := chromedp.Call(bctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	loginBrowser(t, bctx, s, "admin")

	for _, pg := range []struct {
		path string
		want []string // hostile text the page shows as text
	}{
		{"/", []string{xssMachine, xssLine, xssLine2}},
		{fmt.Sprintf("/machines/%d", machine), []string{xssMachine, xssMetric, xssUnit, xssKey, xssScriptKey}},
		{fmt.Sprintf("/lines/%d", line), []string{xssMachine, xssLine}},
		{"/downtime?show=all", []string{xssLine, xssLine2}},
		{fmt.Sprintf("/downtime?show=all&line=%d", line), []string{xssMachine, xssLine, xssComment}},
		{"/downtime/stops/" + stop, []string{xssMachine, xssComment, xssBy}},
		{fmt.Sprintf("/m/%d", machine), []string{xssMachine}},
		{"/reports?period=today", []string{xssMachine, xssLine, xssLine2}},
		{fmt.Sprintf("/reports?period=today&line=%d", line), []string{xssMachine, xssLine, xssLine2}},
		{"/admin/machines", []string{xssMachine, xssLine}},
		{"/admin/reasons", nil},
		{"/admin/shifts", nil},
		{"/admin/settings", nil},
		{"/admin/tags", []string{xssMachine, xssMetric, xssUnit, xssKey, xssScriptKey}},
		{"/admin/rejects", []string{xssRejected, xssSkipped}},
		{"/admin/qr", []string{xssMachine}},
		{"/admin/users", nil},
		{"/admin/tokens", nil},
		{"/admin/devices", []string{xssDevice, xssPrefix}},
		{"/admin/audit", []string{xssComment, xssDevice}},
		{"/admin/boards", []string{xssBoard + " tiles", xssLine}},
		{"/display/" + boards["tiles"], []string{xssBoard + " tiles", xssMachine, xssLine}},
		{"/display/" + boards["line"], []string{xssBoard + " line", xssLine}},
		{"/display/" + boards["pareto"], []string{xssBoard + " pareto", xssLine}},
	} {
		name := strings.TrimPrefix(pg.path, "/")
		if name == "" {
			name = "overview"
		}
		t.Run(name, func(t *testing.T) {
			checkPageSafe(t, bctx, s, pg.path, pg.want, func() error {
				// A fresh reading while the page is open, so live updates
				// render hostile text too.
				return pub.Publish(ctx, machineTopic+"/"+xssMetric, []byte("43"), 1)
			})
		})
	}

	// The check above can fail: on a page without the CSP, markup made from
	// text does run, and the same probe sees it.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__xss=99">'), true`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`window.__xss === 99`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("the probe cannot see an injected handler run, so it proves nothing: %v", err)
	}
	if p := probe(t, bctx, []string{"text on no page"}); p.XSS == nil || *p.XSS != "99" || len(p.Elements) == 0 || len(p.Missing) != 1 {
		t.Errorf("the probe misses injected markup: %+v", p)
	}
}

// pageProbe is what checkPageSafe's script reports about a page.
type pageProbe struct {
	XSS      *string  `json:"xss"`      // window.__xss when set
	Elements []string `json:"elements"` // elements made from hostile text
	Missing  []string `json:"missing"`  // wanted text not shown
	Title    string   `json:"title"`
}

// checkPageSafe loads path in the browser, lets live updates arrive, and
// checks that nothing injected ran or became an element and that want shows
// as text.
func checkPageSafe(t *testing.T, bctx context.Context, s *server, path string, want []string, whileOpen func() error) {
	t.Helper()
	pctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(pctx, chromedp.Navigate(s.url(path)), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](
		`(() => { const el = document.getElementById('live-status'); return !el || el.dataset.state === "live" })()`)); err != nil {
		t.Fatalf("%s never went live: %v", path, err)
	}
	if err := whileOpen(); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(pctx, chromedp.Sleep(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	p := probe(t, pctx, want)
	if p.XSS != nil {
		t.Errorf("%s: injected code ran: window.__xss = %s", path, *p.XSS)
	}
	for _, el := range p.Elements {
		t.Errorf("%s: an element was made from hostile text: %s", path, el)
	}
	for _, m := range p.Missing {
		t.Errorf("%s (%q): the page does not show %q as text", path, p.Title, m)
	}
}

// probe reports what the page in the browser holds: window.__xss, elements
// made from hostile text, and which of want its visible text lacks.
func probe(t *testing.T, pctx context.Context, want []string) pageProbe {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	wantJSON, _ := json.Marshal(want)
	js := `(() => {
		const want = ` + string(wantJSON) + `;
		const els = [];
		for (const sel of ['img[src="x"]', 'svg[onload]', '[onerror]', '[onload]', '[onmouseover]']) {
			document.querySelectorAll(sel).forEach(e => els.push(sel + ": " + e.outerHTML.slice(0, 120)));
		}
		for (const sc of document.scripts) {
			if (sc.textContent.includes('__xss')) els.push("script: " + sc.outerHTML.slice(0, 120));
		}
		const text = document.body.innerText;
		return JSON.stringify({
			xss: window.__xss === undefined ? null : String(window.__xss),
			elements: els,
			missing: want.filter(w => !text.includes(w)),
			title: document.title,
		});
	})()`
	raw, err := chromedp.Run(pctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var p pageProbe
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return p
}

// checkExportsEscaped: the audit CSV and the JSON API carry the hostile text
// verbatim, in formats a browser will not run.
func checkExportsEscaped(t *testing.T, s *server, c *http.Client) {
	t.Helper()
	for _, ex := range []struct {
		path, contentType string
		want              []string
	}{
		{"/admin/audit.csv", "text/csv", []string{xssComment, xssDevice}},
		{"/api/v1/machines", "application/json", nil},
	} {
		resp, err := c.Get(s.url(ex.path))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", ex.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, ex.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s (a browser must not render it as HTML)", ex.path, ct, ex.contentType)
		}
		if n := resp.Header.Get("X-Content-Type-Options"); n != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", ex.path, n)
		}
		for _, w := range ex.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s does not hold %q", ex.path, w)
			}
		}
		if ex.contentType != "application/json" {
			continue
		}
		if !json.Valid(body) {
			t.Fatalf("GET %s is not valid JSON: %.300s", ex.path, body)
		}
		if bytes.ContainsAny(body, "<>") {
			t.Errorf("GET %s has raw < or >: JSON should escape them as \\u003c and \\u003e", ex.path)
		}
		var api struct {
			Lines []struct {
				Name     string `json:"name"`
				Machines []struct {
					Name string `json:"name"`
					Tags []struct {
						Metric string `json:"metric"`
						Unit   string `json:"unit"`
					} `json:"tags"`
				} `json:"machines"`
			} `json:"lines"`
		}
		if err := json.Unmarshal(body, &api); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, l := range api.Lines {
			seen[l.Name] = true
			for _, m := range l.Machines {
				seen[m.Name] = true
				for _, tg := range m.Tags {
					seen[tg.Metric], seen[tg.Unit] = true, true
				}
			}
		}
		for _, w := range []string{xssLine, xssLine2, xssMachine, xssMetric, xssUnit, xssKey, xssScriptKey} {
			if !seen[w] {
				t.Errorf("GET %s: %q is not a line, machine, metric or unit name", ex.path, w)
			}
		}
	}
}

// firstAttr fetches a page (with c, or without a session when c is nil) and
// returns the attribute of the first element sel matches, or "".
func firstAttr(t *testing.T, u string, c *http.Client, sel, attr string) string {
	t.Helper()
	var code int
	var body string
	if c == nil {
		code, body = get(t, u)
	} else {
		code, body = getWith(t, c, u)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d", u, code)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := doc.Find(sel).First().Attr(attr)
	if _, err := strconv.ParseInt(v, 10, 64); v != "" && err != nil {
		t.Fatalf("GET %s: %s[%s] = %q, want an id", u, sel, attr, v)
	}
	return v
}
