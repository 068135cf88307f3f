package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSoak (make soak, not in CI) runs Andon for ANDON_SOAK_DURATION
// (default 3m) with the demo plant of 100 machines publishing and 200
// websocket clients watching the plant overview, samples the heap and the
// goroutines every 5 s into ANDON_SOAK_OUT (default soak.csv), and fails if
// either keeps growing after the first minute's warm-up. The server runs
// in this process, so the figures include the 200 clients' own goroutines
// (two each), which are constant.
func BenchmarkSoak(b *testing.B) {
	dur := 3 * time.Minute
	if benchQuick() {
		dur = 2 * time.Second // make test: only that it still runs
	}
	if v := os.Getenv("ANDON_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("ANDON_SOAK_DURATION: %v", err)
		}
		dur = d
	}
	out := os.Getenv("ANDON_SOAK_OUT")
	if out == "" {
		out = filepath.Join(b.TempDir(), "soak.csv")
	}
	every := 5 * time.Second
	if benchQuick() {
		every = 200 * time.Millisecond
	}
	for range b.N {
		s := startServe(b, nil, "--demo", "--demo-machines", "100", "--log-level", "warn")
		var msgs atomic.Int64
		var wg sync.WaitGroup
		for range 200 {
			c := wsClient(b, s, "plant")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
					msgs.Add(1)
				}
			}()
		}

		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		w := csv.NewWriter(f)
		_ = w.Write([]string{"seconds", "heap_inuse_bytes", "heap_objects", "goroutines", "ws_messages"})
		type sample struct {
			heap       uint64
			goroutines int
		}
		var after []sample // samples after the warm-up
		start := time.Now()
		tick := time.NewTicker(every)
		for now := range tick.C {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			cur := sample{ms.HeapInuse, runtime.NumGoroutine()}
			el := now.Sub(start)
			_ = w.Write([]string{strconv.Itoa(int(el.Seconds())), strconv.FormatUint(ms.HeapInuse, 10),
				strconv.FormatUint(ms.HeapObjects, 10), strconv.Itoa(cur.goroutines), strconv.FormatInt(msgs.Load(), 10)})
			w.Flush()
			if el >= min(time.Minute, dur/3) {
				after = append(after, cur)
			}
			if el >= dur {
				break
			}
		}
		tick.Stop()
		f.Close()
		if msgs.Load() == 0 {
			b.Fatal("the websocket clients received nothing")
		}
		// Medians of the first and second half after the warm-up: one
		// sample can catch a burst of garbage, a trend shows in both.
		median := func(ss []sample, f func(sample) float64) float64 {
			vs := make([]float64, len(ss))
			for i, s := range ss {
				vs[i] = f(s)
			}
			slices.Sort(vs)
			return vs[len(vs)/2]
		}
		if len(after) < 4 {
			b.Fatalf("only %d samples after the warm-up; run longer", len(after))
		}
		early, late := after[:len(after)/2], after[len(after)/2:]
		heap := func(s sample) float64 { return float64(s.heap) / (1 << 20) }
		gor := func(s sample) float64 { return float64(s.goroutines) }
		b.ReportMetric(median(early, heap), "MiB-heap-early")
		b.ReportMetric(median(late, heap), "MiB-heap-late")
		b.ReportMetric(median(late, gor)-median(early, gor), "goroutines-grown")
		b.ReportMetric(float64(msgs.Load())/dur.Seconds()/200, "ws-msgs/s/client")
		if median(late, heap) > 1.5*median(early, heap) {
			b.Errorf("heap grew from %.1f to %.1f MiB after the warm-up (samples in %s)", median(early, heap), median(late, heap), out)
		}
		if median(late, gor) > median(early, gor)+20 {
			b.Errorf("goroutines grew from %v to %v after the warm-up (samples in %s)", median(early, gor), median(late, gor), out)
		}
		if err := s.shutdown(); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
	}
}
