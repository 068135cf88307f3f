package db

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"andon/plant"
)

// BenchmarkWriter measures readings per second through Write with several
// goroutines, each waiting for its commit as a QoS 1 publisher does. Run it
// with: go test -run '^$' -bench Writer ./db/
func BenchmarkWriter(b *testing.B) {
	for _, tc := range []struct {
		perWrite, goroutines int
	}{
		{perWrite: 1, goroutines: 8},
		{perWrite: 1, goroutines: 64},
		{perWrite: 100, goroutines: 8},
	} {
		b.Run(fmt.Sprintf("readings=%d/goroutines=%d", tc.perWrite, tc.goroutines), func(b *testing.B) {
			s := OpenTest(b)
			w := NewWriter(s, WriterConfig{})
			runWriter(b, w)
			var next atomic.Int64 // gives every reading its own timestamp
			var machine atomic.Int64
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, tc.goroutines/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				p := plant.Path{Line: "bench", Machine: fmt.Sprintf("m%d", machine.Add(1))}
				rs := make([]plant.Reading, tc.perWrite)
				for pb.Next() {
					for i := range rs {
						rs[i] = reading(p, fmt.Sprintf("metric-%d", i%10), next.Add(1), float64(i))
					}
					if err := w.Write(context.Background(), rs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			sec := b.Elapsed().Seconds()
			if sec > 0 {
				b.ReportMetric(float64(b.N*tc.perWrite)/sec, "readings/s")
				b.ReportMetric(float64(b.N*tc.perWrite)/float64(max(1, w.commits.Load())), "readings/commit")
			}
		})
	}
}
