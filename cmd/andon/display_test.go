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

	"github.com/chromedp/chromedp"
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

// TestBrowserWallDisplay makes a board and its display link as an admin
// would, then opens the link in a fresh browser (no login, as on a TV) at
// three screen sizes: every demo machine is on it with its state's name,
// nothing spills out of the screen, and the text is big enough to read.
func TestBrowserWallDisplay(t *testing.T) {
	// Four machines keep the demo's history replay short under the race
	// detector; the layout tests at three sizes do not need more.
	const machines = 4
	s := startServe(t, nil, "--demo", "--demo-machines", fmt.Sprint(machines))
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
	admin := s.login(t, "admin")
	if code, body := postForm(t, s, admin, "/admin/boards", url.Values{"name": {"Hall 1"}, "layout": {"tiles"}, "rotate_s": {"0"}}); code != http.StatusSeeOther {
		t.Fatalf("create board: %d\n%s", code, body)
	}
	_, list := getWith(t, admin, s.url("/admin/boards"))
	m := regexp.MustCompile(`/admin/boards/(\d+)/link`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("no link form for the new board:\n%s", list)
	}
	_, linkPage := postForm(t, s, admin, "/admin/boards/"+m[1]+"/link", url.Values{})
	link := regexp.MustCompile(`value="(http[^"]+/display/\d+\?token=[^"]+)"`).FindStringSubmatch(linkPage)
	if link == nil {
		t.Fatalf("no display link on the page:\n%s", linkPage)
	}
	display := html.UnescapeString(link[1])

	b := browser(t) // a fresh browser: no session, only the link
	dir := screenshotDir(t)
	for _, size := range []struct {
		name string
		w, h int64
	}{{"720p", 1280, 720}, {"1080p", 1920, 1080}, {"4k", 3840, 2160}} {
		t.Run(size.name, func(t *testing.T) {
			bctx, cancel := context.WithTimeout(b, 60*time.Second)
			defer cancel()
			if err := chromedp.Do(bctx, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(display),
				chromedp.WaitVisible(chromedp.CSS(`.display`))); err != nil {
				t.Fatalf("open the display link: %v", err)
			}
			time.Sleep(time.Second) // a live refresh or two
			text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			if err != nil {
				t.Fatal(err)
			}
			for name := range machineIDs(t, s) {
				if !strings.Contains(text, name) {
					t.Errorf("the board lacks %s", name)
				}
			}
			// Each tile says its state in words; the live demo machines are
			// not offline.
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
			over, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth - window.innerWidth, document.documentElement.scrollHeight - window.innerHeight]`))
			if err != nil || over[0] > 0 || over[1] > 0 {
				t.Errorf("the board spills out of the %dx%d screen by %v (%v)", size.w, size.h, over, err)
			}
			// Readable from across the hall: no visible text under 1.2 % of
			// the screen's height (13 px at 1080p).
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
			})()`, float64(size.h)*0.012)))
			if err != nil || small != "" {
				t.Errorf("text too small to read from afar: %s (%v)", small, err)
			}
			png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "display-"+size.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}
