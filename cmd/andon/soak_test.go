package main

import (
	"encoding/csv"
	"os"
	"runtime"
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
	if v := os.Getenv("ANDON_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("ANDON_SOAK_DURATION: %v", err)
		}
		dur = d
	}
	out := os.Getenv("ANDON_SOAK_OUT")
	if out == "" {
		out = "soak.csv"
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
		var warm, last sample
		start := time.Now()
		tick := time.NewTicker(5 * time.Second)
		for now := range tick.C {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			cur := sample{ms.HeapInuse, runtime.NumGoroutine()}
			el := now.Sub(start)
			_ = w.Write([]string{strconv.Itoa(int(el.Seconds())), strconv.FormatUint(ms.HeapInuse, 10),
				strconv.FormatUint(ms.HeapObjects, 10), strconv.Itoa(cur.goroutines), strconv.FormatInt(msgs.Load(), 10)})
			w.Flush()
			if warm.heap == 0 && el >= min(time.Minute, dur/3) {
				warm = cur
			}
			last = cur
			if el >= dur {
				break
			}
		}
		tick.Stop()
		f.Close()
		if msgs.Load() == 0 {
			b.Fatal("the websocket clients received nothing")
		}
		b.ReportMetric(float64(warm.heap)/(1<<20), "MiB-heap-after-warmup")
		b.ReportMetric(float64(last.heap)/(1<<20), "MiB-heap-at-end")
		b.ReportMetric(float64(last.goroutines-warm.goroutines), "goroutines-grown")
		b.ReportMetric(float64(msgs.Load())/dur.Seconds()/200, "ws-msgs/s/client")
		if float64(last.heap) > 1.5*float64(warm.heap) {
			b.Errorf("heap grew from %d to %d bytes after the warm-up (samples in %s)", warm.heap, last.heap, out)
		}
		if last.goroutines > warm.goroutines+20 {
			b.Errorf("goroutines grew from %d to %d after the warm-up (samples in %s)", warm.goroutines, last.goroutines, out)
		}
		if err := s.shutdown(); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
	}
}
