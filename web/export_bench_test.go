package web

import (
	"context"
	"io"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"andon/db"
	"andon/plant"
)

// benchPlant is a store with benchTags tags of 1 Hz readings, built once
// per benchmark run: benchRows rows in all.
const (
	benchTags = 4
	benchRows = 1_000_000
)

type benchPlant struct {
	srv      *Server
	tags     []int64
	from, to int64
}

func newBenchPlant(b *testing.B) *benchPlant {
	b.Helper()
	store := db.OpenTest(b)
	w := db.NewWriter(store, db.WriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	b.Cleanup(func() { cancel(); wg.Wait() })

	perTag := benchRows / benchTags
	if os.Getenv("ANDON_BENCH_QUICK") == "1" {
		perTag = 1000 // make test: only that it still runs
	}
	from := time.Now().Add(-time.Duration(perTag) * time.Second).Truncate(time.Hour).UnixMilli()
	batch := make([]plant.Reading, 0, 10_000)
	for i := range perTag {
		for tg := range benchTags {
			r := reading("line-1", "press-01", "m"+string(rune('a'+tg)), from+int64(i)*1000, float64(i%1000)*0.25-50)
			batch = append(batch, r)
		}
		if len(batch) == cap(batch) {
			if err := w.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := w.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Config{Store: store, Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	tags, err := store.Tags(ctx)
	if err != nil {
		b.Fatal(err)
	}
	p := &benchPlant{srv: srv, from: from, to: from + int64(perTag)*1000}
	for _, t := range tags {
		p.tags = append(p.tags, t.ID)
	}
	return p
}

// BenchmarkExportCSV is the export's throughput: readings of 4 tags, long
// and wide, from SQLite to CSV bytes (discarded), in rows per second.
func BenchmarkExportCSV(b *testing.B) {
	p := newBenchPlant(b)
	for _, wide := range []bool{false, true} {
		name := "long"
		if wide {
			name = "wide"
		}
		b.Run(name, func(b *testing.B) {
			var rows int64
			for b.Loop() {
				n, err := p.srv.WriteCSV(context.Background(), io.Discard,
					Export{Kind: ExportReadings, TagIDs: p.tags, From: p.from, To: p.to, Res: db.ResRaw, Wide: wide}, CSVOptions{BOM: true})
				if err != nil {
					b.Fatal(err)
				}
				rows += n
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkExportStreaming exports 100k and then 1M rows while sampling the
// live heap: a streamed export's peak must not grow with its size. It
// reports the peak heap above the heap before the export began.
func BenchmarkExportStreaming(b *testing.B) {
	p := newBenchPlant(b)
	sizes := []int64{100_000, benchRows}
	if os.Getenv("ANDON_BENCH_QUICK") == "1" {
		sizes = []int64{1000}
	}
	for _, rows := range sizes {
		b.Run(byRows(rows), func(b *testing.B) {
			to := p.from + rows/benchTags*1000
			var peak, total int64
			for b.Loop() {
				runtime.GC()
				base := heapBytes()
				var hi atomic.Int64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					t := time.NewTicker(2 * time.Millisecond)
					defer t.Stop()
					for {
						if h := heapBytes() - base; h > hi.Load() {
							hi.Store(h)
						}
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				})
				n, err := p.srv.WriteCSV(context.Background(), io.Discard,
					Export{Kind: ExportReadings, TagIDs: p.tags, From: p.from, To: to, Res: db.ResRaw}, CSVOptions{})
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				if n != rows {
					b.Fatalf("exported %d rows, want %d", n, rows)
				}
				total += n
				peak = max(peak, hi.Load())
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func byRows(n int64) string {
	if n >= 1_000_000 {
		return "rows=" + formatID(n/1_000_000) + "M"
	}
	return "rows=" + formatID(n/1000) + "k"
}

// heapBytes is the bytes of live and not yet swept heap objects.
func heapBytes() int64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return int64(s[0].Value.Uint64())
}
