package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"andon/ingest/mqtttest"
)

// browser starts a headless Debian chromium for the test (`make deps`
// installs it where it is missing) and returns a context for chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (make deps installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1920, 1080))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it gets no timeout of its own, since
	// cancelling it would kill the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where screenshots go: docs/screenshots when
// ANDON_SCREENSHOTS is set (make screenshots), else the test's temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("ANDON_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserLiveMachinePage opens a machine page in chromium, publishes a
// reading, and sees the value tile and the chart update without a reload.
func TestBrowserLiveMachinePage(t *testing.T) {
	s := startServe(t, nil)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	for i := range 5 {
		p := fmt.Sprintf(`{"value": %d, "ts": %d}`, 40+i, now.Add(time.Duration(i-5)*time.Second).UnixMilli())
		if err := pub.Publish(ctx, "acme/hall-1/line-1/press-07/temperature", []byte(p), 1); err != nil {
			t.Fatal(err)
		}
	}
	id := machineIDs(t, s)["press-07"]
	_, body := get(t, s.url(fmt.Sprintf("/machines/%d", id)))
	tag := firstTagID(t, body)

	b := browser(t)
	bctx, bcancel := context.WithTimeout(b, 60*time.Second)
	defer bcancel()
	chart := fmt.Sprintf(`[data-testid="chart-%d"]`, tag)
	err := chromedp.Do(bctx,
		chromedp.Navigate(s.url(fmt.Sprintf("/machines/%d", id))),
		chromedp.WaitVisible(chromedp.CSS(chart+" canvas")),
	)
	if err != nil {
		t.Fatalf("machine page: %v\n%s", err, s.stderr)
	}
	// Wait until the chart holds the five stored points and the page is live.
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](fmt.Sprintf(
		`document.querySelector('%s').dataset.points === "5" && document.querySelector('[data-testid="live-status"]').dataset.state === "live"`, chart))); err != nil {
		points, _ := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s').dataset.points || ""`, chart)))
		t.Fatalf("chart never showed the 5 stored points live (has %q): %v", points, err)
	}
	// A marker that a reload would wipe out.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker = true`)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-07/temperature", []byte("88.5"), 1); err != nil {
		t.Fatal(err)
	}
	tile := fmt.Sprintf(`[data-testid="tag-value-%d"]`, tag)
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](fmt.Sprintf(
		`document.querySelector('%s').textContent.includes("88.5") && document.querySelector('%s').dataset.points === "6"`, tile, chart))); err != nil {
		text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(tile)))
		t.Fatalf("the tile and chart did not update live (tile says %q): %v", text, err)
	}
	if marker, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker === true`)); err != nil || !marker {
		t.Fatalf("the page reloaded instead of updating in place (%v)", err)
	}
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "machine.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserDemoOverview runs the demo plant and looks at the overview on
// a desktop, a phone and a 4K screen: every machine is there, nothing spills
// out sideways, and the screenshots are kept for people to judge.
func TestBrowserDemoOverview(t *testing.T) {
	s := startServe(t, nil, "--demo")
	deadline := time.Now().Add(15 * time.Second)
	for len(machineIDs(t, s)) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("demo plant has %d machines, want 10\n%s", len(machineIDs(t, s)), s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a couple of live updates
	b := browser(t)
	dir := screenshotDir(t)
	for _, size := range []struct {
		name string
		w, h int64
	}{{"desktop", 1920, 1080}, {"phone", 390, 844}, {"4k", 3840, 2160}} {
		t.Run(size.name, func(t *testing.T) {
			bctx, cancel := context.WithTimeout(b, 60*time.Second)
			defer cancel()
			err := chromedp.Do(bctx,
				chromedp.EmulateViewport(size.w, size.h),
				chromedp.Navigate(s.url("/")),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid^="machine-tile-"]`)),
			)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('[data-testid="live-status"]').dataset.state === "live"`)); err != nil {
				t.Fatalf("page never went live: %v", err)
			}
			tiles, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid^="machine-tile-"]').length`))
			if err != nil || tiles != 10 {
				t.Errorf("overview shows %d tiles (%v), want 10", tiles, err)
			}
			overflow, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
			if err != nil || overflow > 0 {
				t.Errorf("page is %d px wider than the %d px viewport (%v)", overflow, size.w, err)
			}
			png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			name := "overview-" + size.name + ".png"
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
			if len(png) < 10_000 || !strings.HasPrefix(string(png), "\x89PNG") {
				t.Errorf("%s: screenshot of %d bytes looks empty", name, len(png))
			}
		})
	}
}

// TestBrowserOtherPages looks at the pages around the overview: the first
// thing a new user sees (no data yet), a demo machine's page, and the admin
// lists. Each must render without console errors and without sideways
// overflow, and is kept as a screenshot for people to judge.
func TestBrowserOtherPages(t *testing.T) {
	empty := startServe(t, nil)
	demo := startServe(t, nil, "--demo")
	deadline := time.Now().Add(15 * time.Second)
	for len(machineIDs(t, demo)) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("demo plant did not appear\n%s", demo.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Bad input shows up in the rejects list.
	pub := mqtttest.Connect(t, demo.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bad := range []string{"{not json", "NaN", "<script>alert(1)</script>"} {
		if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte(bad), 1); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // a few seconds of history for the charts
	ids := machineIDs(t, demo)

	b := browser(t)
	// The admin pages need an admin; the empty server's page is open.
	lctx, lcancel := context.WithTimeout(b, 30*time.Second)
	loginBrowser(t, lctx, demo, "admin")
	lcancel()
	dir := screenshotDir(t)
	for _, page := range []struct {
		name, url, wait string
		live            bool // the page has a live connection
	}{
		{"machine-demo", demo.url(fmt.Sprintf("/machines/%d", ids["cnc-02"])), `[data-testid^="chart-"] canvas`, true},
		{"downtime", demo.url("/downtime?show=all"), `[data-testid="stop-list"]`, true},
		{"reports", demo.url("/reports?period=today"), `[data-testid="report"]`, true},
		{"line", demo.url(fmt.Sprintf("/lines/%d", lineID(t, demo, "line-1"))), `[data-testid="line-page"]`, true},
		{"operator", demo.url(fmt.Sprintf("/m/%d", ids["press-01"])), `[data-testid="operator-page"]`, true},
		{"admin-machines", demo.url("/admin/machines"), `[data-testid="admin-nav"]`, false},
		{"tags", demo.url("/admin/tags"), `[data-testid="tags-table"]`, false},
		{"rejects", demo.url("/admin/rejects"), `[data-testid="rejects-table"]`, false},
		// Last: both servers are on 127.0.0.1, where cookies do not tell
		// ports apart, and this one clears the demo's session cookie it
		// does not know.
		{"empty", empty.url("/"), `[data-testid="empty-state"]`, true},
	} {
		t.Run(page.name, func(t *testing.T) {
			bctx, cancel := context.WithTimeout(b, 60*time.Second)
			defer cancel()
			if err := chromedp.Do(bctx, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(page.url),
				chromedp.WaitVisible(chromedp.CSS(page.wait))); err != nil {
				t.Fatal(err)
			}
			if page.live {
				if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('[data-testid="live-status"]').dataset.state === "live"`)); err != nil {
					t.Fatalf("page never went live: %v", err)
				}
			}
			overflow, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
			if err != nil || overflow > 0 {
				t.Errorf("page is %d px wider than the viewport (%v)", overflow, err)
			}
			scripts, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('main script').length`))
			if err != nil || scripts != 0 {
				t.Errorf("%d script elements inside the page's content (%v): device text must never become markup", scripts, err)
			}
			png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, page.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBrowserSurvivesRestart: a page left open while the server restarts
// shows that it is reconnecting, reconnects by itself, and shows new readings
// again without anyone reloading it.
func TestBrowserSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, nil, "--data", data)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, "line-1/lathe-1/speed", []byte("1200"), 1); err != nil {
		t.Fatal(err)
	}
	id := machineIDs(t, s)["lathe-1"]
	_, body := get(t, s.url(fmt.Sprintf("/machines/%d", id)))
	tag := firstTagID(t, body)

	b := browser(t)
	bctx, bcancel := context.WithTimeout(b, 90*time.Second)
	defer bcancel()
	live := `document.querySelector('[data-testid="live-status"]').dataset.state === "live"`
	if err := chromedp.Do(bctx, chromedp.Navigate(s.url(fmt.Sprintf("/machines/%d", id)))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](live)); err != nil {
		t.Fatalf("page never went live: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker = true`)); err != nil {
		t.Fatal(err)
	}

	// Restart on the same addresses and data, as a service manager would.
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('[data-testid="live-status"]').dataset.state === "reconnecting"`)); err != nil {
		t.Fatalf("the page did not show that it lost the server: %v", err)
	}
	s2 := startServe(t, nil, "--data", data, "--http", s.addrs.HTTP, "--mqtt-listen", s.addrs.MQTT)
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](live, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the page did not reconnect after the restart: %v", err)
	}
	pub2 := mqtttest.Connect(t, s2.addrs.MQTT)
	if err := pub2.Publish(ctx, "line-1/lathe-1/speed", []byte("1875"), 1); err != nil {
		t.Fatal(err)
	}
	tile := fmt.Sprintf(`[data-testid="tag-value-%d"]`, tag)
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](fmt.Sprintf(`document.querySelector('%s').textContent.includes("1,875")`, tile))); err != nil {
		text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(tile)))
		t.Fatalf("after reconnecting the tile does not show the new reading (it says %q): %v", text, err)
	}
	if marker, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker === true`)); err != nil || !marker {
		t.Fatalf("the page reloaded instead of reconnecting (%v)", err)
	}
}

// lineID finds a line's id from the overview's line links.
func lineID(t testing.TB, s *server, name string) int64 {
	t.Helper()
	_, body := get(t, s.url("/"))
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	doc.Find(`[data-testid="line-link"]`).Each(func(_ int, sel *goquery.Selection) {
		if strings.TrimSpace(sel.Text()) == name {
			href, _ := sel.Attr("href")
			id, _ = strconv.ParseInt(strings.TrimPrefix(href, "/lines/"), 10, 64)
		}
	})
	if id == 0 {
		t.Fatalf("no line %q on the overview", name)
	}
	return id
}

// TestBrowserCodeStop is an operator's two taps: a stop on /downtime, then a
// reason. The stop comes from real state readings through the engine.
func TestBrowserCodeStop(t *testing.T) {
	s := startServe(t, nil)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	for _, st := range []struct {
		state string
		ago   time.Duration
	}{{"running", 10 * time.Minute}, {"down", 6 * time.Minute}, {"running", 2 * time.Minute}} {
		p := fmt.Sprintf(`{"value": %q, "ts": %d}`, st.state, now.Add(-st.ago).UnixMilli())
		if err := pub.Publish(ctx, "line-9/saw-1/state", []byte(p), 1); err != nil {
			t.Fatal(err)
		}
	}

	b := browser(t)
	bctx, bcancel := context.WithTimeout(b, 60*time.Second)
	defer bcancel()
	card := `[data-testid^="stop-"][data-stop]`
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	loginBrowser(t, bctx, s, "operator")
	if err := chromedp.Do(bctx, chromedp.Navigate(s.url("/downtime")),
		chromedp.WaitVisible(chromedp.CSS(card))); err != nil {
		t.Fatalf("no stop on /downtime: %v\n%s", err, s.stderr)
	}
	// The list is live: the websocket may swap the card for a fresh copy
	// between finding it and reading it, so read it in one step in the page.
	cardText := `(function () { var c = document.querySelector('` + card + `'); return c ? c.textContent : ""; })()`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`(function () { var t = `+cardText+`; return t.indexOf("saw-1") >= 0 && t.indexOf("4 min") >= 0; })()`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](cardText))
		t.Fatalf("stop card says %q (%v), want saw-1 down for 4 min", text, err)
	}
	// Tap one: the stop. The list is live (the websocket may swap it in at
	// any moment), so the tap goes to whatever card is there at that instant
	// rather than to a node found a moment before.
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`(function () { var c = document.querySelector('`+card+`'); if (c) c.click(); return !!c; })()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="coding-panel"]`))); err != nil {
		t.Fatal(err)
	}
	// Tap two: the reason.
	tapReason := `(function () {
		var bs = document.querySelectorAll('button[name="reason_id"]');
		for (var i = 0; i < bs.length; i++) { if (bs[i].textContent.trim() === 'Mechanical failure') { bs[i].click(); return true; } }
		return false; })()`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](tapReason)); err != nil {
		t.Fatalf("coding the stop: %v", err)
	}
	// Tapping the reason posts the form and loads the answer page.
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="notice"]`))); err != nil {
		t.Fatalf("coding the stop: %v", err)
	}
	noticeText := `(function () { var n = document.querySelector('[data-testid="notice"]'); return n ? n.textContent : ""; })()`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](noticeText+`.indexOf("Mechanical failure") >= 0`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		notice, _ := chromedp.Run(bctx, chromedp.Evaluate[string](noticeText))
		t.Errorf("after coding the page says %q (%v), want a confirmation naming the reason", notice, err)
	}
	// The stop no longer needs a reason, and the list of all stops shows it coded.
	_, body := get(t, s.url("/downtime"))
	if strings.Contains(body, "saw-1") {
		t.Errorf("the coded stop is still listed as needing a reason")
	}
	_, body = get(t, s.url("/downtime?show=all"))
	if !strings.Contains(body, "Mechanical failure") {
		t.Errorf("the list of all stops does not show the stop's reason")
	}
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err == nil {
		_ = os.WriteFile(filepath.Join(screenshotDir(t), "downtime-coded-phone.png"), png, 0o644)
	}
}

// TestBrowserReportsLive: an open report refreshes its figures when readings
// are committed, without a reload.
func TestBrowserReportsLive(t *testing.T) {
	s := startServe(t, nil)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, "line-3/mill-1/state", []byte("running"), 1); err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	bctx, bcancel := context.WithTimeout(b, 60*time.Second)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(s.url("/reports?period=today")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="report"]`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('[data-testid="live-status"]').dataset.state === "live"`)); err != nil {
		t.Fatalf("report page never went live: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker = true; document.getElementById('report').dataset.old = "1"; true`)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "line-3/mill-1/state", []byte("down"), 1); err != nil {
		t.Fatal(err)
	}
	// Within 8 s: sooner than the 15 s fallback timer, so it was the commit.
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`!document.getElementById('report').dataset.old`, chromedp.WithPollingTimeout(8*time.Second))); err != nil {
		t.Fatalf("the report was not refreshed after a commit: %v", err)
	}
	if marker, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker === true`)); err != nil || !marker {
		t.Fatalf("the page reloaded instead of refreshing its figures (%v)", err)
	}
}

// loginBrowser logs the browser in as a new user of the role, through the
// login form, as a person would.
func loginBrowser(t *testing.T, bctx context.Context, s *server, role string) {
	t.Helper()
	name := "b" + role + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)
	password := s.addUser(t, name, role)
	err := chromedp.Do(bctx,
		chromedp.Navigate(s.url("/login")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="login"]`)),
	)
	if err != nil {
		t.Fatalf("log in as %s: %v", role, err)
	}
}
