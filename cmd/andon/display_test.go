package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/memory"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"andon/ingest/mqtttest"
)

// postForm posts a form as a logged-in client from Andon's own origin.
func postForm(t *testing.T, s *server, c *http.Client, path string, v url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url(path), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+s.addrs.HTTP)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// boardLink makes a board as an admin would on /admin/boards, then its
// display link, and returns the board's id and the link.
func boardLink(t *testing.T, s *server, admin *http.Client, name, layout string, extra url.Values) (string, string) {
	t.Helper()
	form := url.Values{"name": {name}, "layout": {layout}, "rotate_s": {"0"}}
	for k, v := range extra {
		form[k] = v
	}
	if code, body := postForm(t, s, admin, "/admin/boards", form); code != http.StatusSeeOther {
		t.Fatalf("create board %s: %d\n%s", name, code, body)
	}
	_, list := getWith(t, admin, s.url("/admin/boards"))
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	doc.Find(`tr[data-testid^="board-row-"]`).Each(func(_ int, row *goquery.Selection) {
		if strings.TrimSpace(row.Find("td").First().Text()) == name {
			id = strings.TrimPrefix(row.AttrOr("data-testid", ""), "board-row-")
		}
	})
	if id == "" {
		t.Fatalf("no link form for board %s:\n%s", name, list)
	}
	_, linkPage := postForm(t, s, admin, "/admin/boards/"+id+"/link", url.Values{})
	link := regexp.MustCompile(`value="(http[^"]+/display/\d+\?token=[^"]+)"`).FindStringSubmatch(linkPage)
	if link == nil {
		t.Fatalf("no display link on the page:\n%s", linkPage)
	}
	return id, html.UnescapeString(link[1])
}

// codeStops gives up to n of the demo's stops a reason, three reasons in
// turn, as an operator would, so a Pareto has more than the uncoded bar.
func codeStops(t *testing.T, s *server, c *http.Client, n int) {
	t.Helper()
	_, list := getWith(t, c, s.url("/downtime?show=all"))
	stops := regexp.MustCompile(`data-stop="(\d+)"`).FindAllStringSubmatch(list, -1)
	coded := 0
	for i, m := range stops {
		if coded == n {
			break
		}
		_, panel := getWith(t, c, s.url("/downtime/stops/"+m[1]))
		reasons := regexp.MustCompile(`name="reason_id"[^>]*value="(\d+)"`).FindAllStringSubmatch(panel, -1)
		if len(reasons) < 3 {
			t.Fatalf("stop %s: %d reasons to pick from:\n%s", m[1], len(reasons), panel)
		}
		if code, body := postForm(t, s, c, "/downtime/stops/"+m[1]+"/code", url.Values{"reason_id": {reasons[i%3][1]}}); code >= 400 {
			t.Fatalf("code stop %s: %d\n%s", m[1], code, body)
		}
		coded++
	}
	if coded < min(n, 3) {
		t.Fatalf("only %d stops to code", coded)
	}
}

// startDemo runs the demo plant with a few machines and waits until its
// hour of history is in.
func startDemo(t *testing.T, machines int, args ...string) *server {
	t.Helper()
	s := startServe(t, nil, append([]string{"--demo", "--demo-machines", fmt.Sprint(machines)}, args...)...)
	deadline := time.Now().Add(90 * time.Second)
	for len(machineIDs(t, s)) < machines {
		if time.Now().After(deadline) {
			t.Fatalf("demo plant did not appear\n%s", s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The demo first replays an hour of history; a board opened during the
	// replay rightly shows machines whose newest reading is an hour old.
	for !strings.Contains(s.stderr.String(), "history published") {
		if time.Now().After(deadline) {
			t.Fatalf("the demo's history was not published\n%s", s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// displaySizes are the screens a board must fit.
var displaySizes = []struct {
	name string
	w, h int64
}{{"720p", 1280, 720}, {"1080p", 1920, 1080}, {"4k", 3840, 2160}}

// checkFits fails when the page spills out of the screen or shows text
// smaller than 1.2 % of the screen's height (13 px at 1080p), too small to
// read from across the hall.
func checkFits(t *testing.T, bctx context.Context, w, h int64) {
	t.Helper()
	over, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth - window.innerWidth, document.documentElement.scrollHeight - window.innerHeight]`))
	if err != nil || over[0] > 0 || over[1] > 0 {
		t.Errorf("the board spills out of the %dx%d screen by %v (%v)", w, h, over, err)
	}
	// Also within the screen: no element of the live part may be cut off
	// at the screen's bottom or right edge.
	cut, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function () {
		var out = [], els = document.querySelectorAll('#display-live *');
		for (var i = 0; i < els.length; i++) {
			var r = els[i].getBoundingClientRect();
			if (r.width && r.height && (r.bottom > window.innerHeight + 1 || r.right > window.innerWidth + 1)) out.push(els[i].className || els[i].tagName);
		}
		return out.slice(0, 5).join(', ');
	})()`))
	if err != nil || cut != "" {
		t.Errorf("elements reach past the %dx%d screen: %s (%v)", w, h, cut, err)
	}
	small, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(function () {
		var min = %f, out = [];
		var els = document.querySelectorAll('.display *');
		for (var i = 0; i < els.length; i++) {
			var e = els[i];
			if (!e.childNodes.length || e.offsetParent === null) continue;
			var own = '';
			for (var j = 0; j < e.childNodes.length; j++) if (e.childNodes[j].nodeType === 3) own += e.childNodes[j].textContent;
			if (own.trim() === '') continue;
			var px = parseFloat(getComputedStyle(e).fontSize);
			if (px < min) out.push(own.trim().slice(0, 20) + ' (' + px + ' px)');
		}
		return out.slice(0, 5).join(', ');
	})()`, float64(h)*0.012)))
	if err != nil || small != "" {
		t.Errorf("text too small to read from afar: %s (%v)", small, err)
	}
}

// TestBrowserWallDisplay makes a board of each layout and its display link
// as an admin would, then opens each link in a fresh browser (no login, as
// on a TV) at three screen sizes: the board shows what its layout promises,
// nothing spills out of the screen, and the text is big enough to read. The
// screenshots are kept for people to judge.
func TestBrowserWallDisplay(t *testing.T) {
	// Four machines keep the demo's history replay short under the race
	// detector; the layout tests at three sizes do not need more.
	const machines = 4
	s := startDemo(t, machines)
	admin := s.login(t, "admin")
	codeStops(t, s, admin, 6)
	_, tiles := boardLink(t, s, admin, "Hall 1", "tiles", nil)
	_, lines := boardLink(t, s, admin, "Lines", "line", nil)
	_, pareto := boardLink(t, s, admin, "Costs", "pareto", nil)
	names := machineIDs(t, s)
	// The demo's costs and ideal cycle times reach its machines a little
	// after its history; boards opened before would rightly show n/a, but
	// the screenshots should show a plant that is set up.
	deadline := time.Now().Add(60 * time.Second)
	costed := regexp.MustCompile(`d-total-value num">[^<—]*\d`)
	for {
		_, frag := getWith(t, admin, tiles+"&fragment=1")
		if costed.MatchString(frag) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's costs never reached the board:\n%.500s", frag)
		}
		time.Sleep(500 * time.Millisecond)
	}

	b := browser(t) // a fresh browser: no session, only the link
	dir := screenshotDir(t)
	for _, layout := range []struct {
		name, link, prefix string
		check              func(t *testing.T, text string)
	}{
		{"tiles", tiles, "display-", func(t *testing.T, text string) {
			for name := range names {
				if !strings.Contains(text, name) {
					t.Errorf("the board lacks %s", name)
				}
			}
			// Each tile says its state in words; the live demo machines
			// are not offline.
			live := 0
			for _, line := range strings.Split(text, "\n") {
				switch strings.TrimSpace(line) {
				case "RUNNING", "IDLE", "DOWN", "CHANGEOVER", "PLANNED STOP":
					live++
				}
			}
			if live < machines {
				t.Errorf("%d of %d tiles show a live state:\n%s", live, machines, text)
			}
		}},
		{"line", lines, "display-line-", func(t *testing.T, text string) {
			for _, want := range []string{"OEE", "Output", "Downtime cost", "Running", "line-1"} {
				if !strings.Contains(text, want) {
					t.Errorf("the line board lacks %q:\n%s", want, text)
				}
			}
			if !regexp.MustCompile(`\d+\s*/\s*\d+`).MatchString(text) {
				t.Errorf("the line board shows no machines running out of total:\n%s", text)
			}
		}},
		{"pareto", pareto, "display-pareto-", func(t *testing.T, text string) {
			if !strings.Contains(text, "Stops this shift by") {
				t.Errorf("the Pareto board has no title:\n%s", text)
			}
			// The demo's hour of history has stops; each bar writes out
			// its figures.
			if !regexp.MustCompile(`\d+ stops? · `).MatchString(text) {
				t.Errorf("the Pareto board shows no bars with their count and time:\n%s", text)
			}
		}},
	} {
		for _, size := range displaySizes {
			t.Run(layout.name+"-"+size.name, func(t *testing.T) {
				bctx, cancel := context.WithTimeout(b, 60*time.Second)
				defer cancel()
				if err := chromedp.Do(bctx, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(layout.link),
					chromedp.WaitVisible(chromedp.CSS(`.display`))); err != nil {
					t.Fatalf("open the display link: %v", err)
				}
				// Live: the websocket has delivered the board at least once.
				if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById('display-live').getAttribute('data-now') !== document.body.getAttribute('data-server-ms')`,
					chromedp.WithPollingTimeout(20*time.Second))); err != nil {
					t.Fatalf("the board never got a live update: %v", err)
				}
				text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
				if err != nil {
					t.Fatal(err)
				}
				layout.check(t, text)
				checkFits(t, bctx, size.w, size.h)
				png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, layout.prefix+size.name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// liveBoard starts a server without the demo, with one machine running on
// line-1, and a tiles board of it; it returns the server, its data dir, the
// board's display link and a publisher.
func liveBoard(t *testing.T) (*server, string, string) {
	t.Helper()
	data := t.TempDir()
	s := startServe(t, nil, "--data", data)
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range []string{"lathe-1", "lathe-2"} {
		if err := pub.Publish(ctx, "line-1/"+m+"/state", []byte("running"), 1); err != nil {
			t.Fatal(err)
		}
	}
	_, link := boardLink(t, s, s.login(t, "admin"), "Lathes", "tiles", nil)
	return s, data, link
}

// tileState is a JS expression: the state class of a machine's tile, read
// in one step in the page (live updates replace the tiles).
func tileState(machine string) string {
	return `(function () {
		var ts = document.querySelectorAll('.d-tile');
		for (var i = 0; i < ts.length; i++) {
			if (ts[i].querySelector('.d-name').textContent === '` + machine + `') return ts[i].className;
		}
		return '';
	})()`
}

// TestBrowserWallDisplaySurvivesRestart: a TV showing a board while the
// server restarts says "No live data since HH:MM", reconnects by itself,
// drops the banner and shows data published after the restart, all without
// reloading the page.
func TestBrowserWallDisplaySurvivesRestart(t *testing.T) {
	s, data, link := liveBoard(t)
	b := browser(t)
	bctx, cancel := context.WithTimeout(b, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`.d-tile`))); err != nil {
		t.Fatalf("open the display link: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](tileState("lathe-1")+`.indexOf('state-running') >= 0 && document.getElementById('display-banner').hidden`)); err != nil {
		t.Fatalf("the board never showed lathe-1 running, live: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker = true`)); err != nil {
		t.Fatal(err)
	}

	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	banner := `(function () { var b = document.getElementById('display-banner'); return b && !b.hidden ? b.innerText : ''; })()`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`/No live data since \d\d:\d\d/.test(`+banner+`)`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](banner))
		t.Fatalf("no stale banner while the server was down (banner %q): %v", text, err)
	}
	if stale, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.body.className.indexOf('is-stale') >= 0`)); err != nil || !stale {
		t.Errorf("the board does not grey out while stale (%v)", err)
	}

	s2 := startServe(t, nil, "--data", data, "--http", s.addrs.HTTP, "--mqtt-listen", s.addrs.MQTT)
	pub := mqtttest.Connect(t, s2.addrs.MQTT)
	ctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if err := pub.Publish(ctx, "line-1/lathe-1/state", []byte("down"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById('display-banner').hidden && `+tileState("lathe-1")+`.indexOf('state-down') >= 0`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		state, _ := chromedp.Run(bctx, chromedp.Evaluate[string](tileState("lathe-1")))
		text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](banner))
		t.Fatalf("after the restart the board did not recover (lathe-1 %q, banner %q): %v", state, text, err)
	}
	if marker, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__andonTestMarker === true`)); err != nil || !marker {
		t.Fatalf("the page reloaded instead of reconnecting (%v)", err)
	}
}

// TestBrowserWallDisplayMemoryFlat: a board's page does not grow with
// updates. It takes live updates from state changes and hundreds of board
// frames through the page's own message handler, and compares the DOM
// counters and the JS heap after a forced GC between a warm-up point and the
// end.
func TestBrowserWallDisplayMemoryFlat(t *testing.T) {
	s, _, link := liveBoard(t)
	b := browser(t)
	bctx, cancel := context.WithTimeout(b, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`.d-tile`))); err != nil {
		t.Fatalf("open the display link: %v", err)
	}
	// A real frame of this board, as the hub sends it, to feed again and
	// again; each copy differs so nothing can be cached.
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.getElementById('display-live').getAttribute('data-now') !== document.body.getAttribute('data-server-ms')`)); err != nil {
		t.Fatalf("the board never got a live update: %v", err)
	}
	feed := func(n int) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function () {
			var html = document.getElementById('display-live').outerHTML;
			for (var i = 0; i < %d; i++) {
				window.AndonDisplay.receive(JSON.stringify([{type: 'html', id: 'display-live', html: html.replace(/data-now="\d+"/, 'data-now="' + (Date.now() + i) + '"')}]));
			}
			return true;
		})()`, n))); err != nil {
			t.Fatal(err)
		}
	}
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	states := []string{"down", "running", "idle", "running", "changeover", "running"}
	live := func(rounds int) {
		t.Helper()
		for i := range rounds {
			if err := pub.Publish(ctx, "line-1/lathe-2/state", []byte(states[i%len(states)]), 1); err != nil {
				t.Fatal(err)
			}
			feed(20)
			time.Sleep(300 * time.Millisecond)
		}
	}
	type counters struct {
		nodes, listeners int64
		heap             float64
	}
	measure := func() counters {
		t.Helper()
		for range 2 {
			if _, err := chromedp.Call(bctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				t.Fatal(err)
			}
		}
		dom, err := chromedp.Call(bctx, memory.GetDOMCounters, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		heap, err := chromedp.Call(bctx, cdpruntime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		return counters{dom.Nodes, dom.JsEventListeners, heap.UsedSize}
	}

	live(5) // warm-up: 100 frames and a few live updates
	before := measure()
	live(20) // 400 frames more, 20 live updates
	after := measure()
	swaps, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!document.getElementById('display-live') && document.querySelectorAll('#display-live').length === 1`))
	if err != nil || !swaps {
		t.Fatalf("the board's live part is missing or doubled (%v)", err)
	}
	t.Logf("after 400 frames: nodes %d → %d, listeners %d → %d, heap %.0f → %.0f KB",
		before.nodes, after.nodes, before.listeners, after.listeners, before.heap/1024, after.heap/1024)
	// Small bounds: a node count that drifts by a tile's worth between two
	// collections is noise, a leak of one node per frame is 400.
	if after.nodes > before.nodes+100 {
		t.Errorf("DOM nodes grew from %d to %d over 400 frames", before.nodes, after.nodes)
	}
	if after.listeners > before.listeners+2 {
		t.Errorf("event listeners grew from %d to %d over 400 frames", before.listeners, after.listeners)
	}
	if after.heap > before.heap*1.25+512*1024 {
		t.Errorf("JS heap grew from %.0f to %.0f KB over 400 frames", before.heap/1024, after.heap/1024)
	}
}
