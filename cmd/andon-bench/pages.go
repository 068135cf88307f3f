package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// pagesPlant publishes one message of 7 metrics for each of n machines, as
// a plant of n machines would look, and waits until all are stored.
func pagesPlant(a *andon, n int) error {
	topics := make([]string, n)
	payloads := make([][]byte, n)
	for m := range n {
		topics[m] = fmt.Sprintf("acme/hall-%d/line-%d/m-%04d", m/100, m/10, m)
		payloads[m] = fmt.Appendf(nil, `{"good": %d, "scrap": 3, "cycle_time": 12.5, "temperature": 61.2, "spindle_speed": 4200, "power": 12.75, "state_code": 1}`, m*10)
	}
	if _, err := publishAll(a.mqtt, topics, payloads, 1, 4, 32); err != nil {
		return err
	}
	got, err := a.waitIngested(float64(n*7), 30*time.Second)
	if err != nil {
		return err
	}
	if got < float64(n*7) {
		return fmt.Errorf("pages: %.0f of %d readings stored", got, n*7)
	}
	return nil
}

// pageResult is one run of concurrent GETs of one page.
type pageResult struct {
	p50, p99 float64 // ms, as the client saw it over loopback
	rps      float64
}

// loadPage GETs path from workers concurrent clients for d.
func loadPage(a *andon, path string, workers int, d time.Duration) (pageResult, error) {
	var res pageResult
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		mu    sync.Mutex
		all   []float64
		first error
		wg    sync.WaitGroup
	)
	end := time.Now().Add(d)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			var mine []float64
			var err error
			for time.Now().Before(end) {
				t0 := time.Now()
				var resp *http.Response
				resp, err = client.Get(a.httpURL + path)
				if err != nil {
					break
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("GET %s = %d", path, resp.StatusCode)
					break
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
			}
			mu.Lock()
			all = append(all, mine...)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return res, first
	}
	if len(all) == 0 {
		return res, fmt.Errorf("GET %s: no request finished", path)
	}
	slices.Sort(all)
	res.p50 = all[len(all)/2]
	res.p99 = all[min(len(all)-1, len(all)*99/100)]
	res.rps = float64(len(all)) / time.Since(start).Seconds()
	return res, nil
}

// machinePath is the page of the plant's first machine.
func machinePath(a *andon) (string, error) {
	ms, err := a.machines(bgctx)
	if err != nil {
		return "", err
	}
	if len(ms) == 0 {
		return "", fmt.Errorf("pages: no machines")
	}
	return "/machines/" + strconv.FormatInt(ms[0].ID, 10), nil
}
