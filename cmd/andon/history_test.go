package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"andon/db"
	"andon/plant"
)

// TestBrowserChartZoomFetchesFinerData opens a week's chart, which comes
// from the minute rollups, drags across a few hours of it and sees the
// chart fetch that range again from the raw readings; a double-click goes
// back to the week.
func TestBrowserChartZoomFetchesFinerData(t *testing.T) {
	dir := t.TempDir()
	// A week of a reading every 30 s, written straight into the data dir.
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(dir, "andon.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(store, db.WriterConfig{})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	p := plant.Path{Site: "acme", Area: "hall-1", Line: "line-1", Machine: "press-09"}
	now := time.Now()
	var rs []plant.Reading
	for ts := now.Add(-7 * 24 * time.Hour).UnixMilli(); ts < now.UnixMilli(); ts += 30_000 {
		rs = append(rs, plant.Reading{Path: p, Metric: "temperature", TS: ts, Value: float64(ts / 30_000 % 50), Topic: p.String() + "/temperature"})
	}
	if err := w.Write(ctx, rs); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	s := startServe(t, nil, "--data", dir)
	id := machineIDs(t, s)["press-09"]
	_, body := get(t, s.url(fmt.Sprintf("/machines/%d?range=7d", id)))
	tag := firstTagID(t, body)
	chart := fmt.Sprintf(`document.querySelector('[data-testid="chart-%d"]')`, tag)

	b := browser(t)
	bctx, cancel := context.WithTimeout(b, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(s.url(fmt.Sprintf("/machines/%d?range=7d", id))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="chart-%d"] canvas`, tag))),
	); err != nil {
		t.Fatalf("machine page: %v\n%s", err, s.stderr)
	}
	state := func() string {
		got, _ := chromedp.Run(bctx, chromedp.Evaluate[string](chart+`.dataset.res + " " + `+chart+`.dataset.points + " zoomed=" + (`+chart+`.dataset.zoomed || "")`))
		return got
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](chart+`.dataset.res === "1m" && +`+chart+`.dataset.points > 100`)); err != nil {
		t.Fatalf("the week's chart never came from 1m rollups (%s): %v", state(), err)
	}

	// Drag across 40 pixels of the plot: about 1/20 of the week, hours, so
	// fine enough for raw readings.
	type rect struct{ X, Y, W, H float64 }
	r, err := chromedp.Run(bctx, chromedp.Evaluate[rect](chart+`.querySelector('.u-over').getBoundingClientRect().toJSON()`))
	if err != nil {
		t.Fatal(err)
	}
	x0, y := r.X+r.W/2, r.Y+r.H/2
	if err := chromedp.Do(bctx,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0+20, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0+40, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x0+40, y, chromedp.ButtonLeft),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](chart+`.dataset.res === "raw" && `+chart+`.dataset.zoomed === "1" && +`+chart+`.dataset.points > 100`)); err != nil {
		t.Fatalf("zooming in did not fetch raw readings (%s): %v", state(), err)
	}

	if err := chromedp.Do(bctx, chromedp.MouseClickXY(x0, y, chromedp.ClickCount(2))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](chart+`.dataset.res === "1m" && !`+chart+`.dataset.zoomed`)); err != nil {
		t.Fatalf("a double-click did not go back to the week (%s): %v", state(), err)
	}
}
