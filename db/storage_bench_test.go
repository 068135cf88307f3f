package db

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"andon/plant"
)

// BenchmarkStorage measures what a reading costs on disk: 100 machines × 10
// metrics at 1 Hz written through the Writer as ingest writes them (rollups
// included), one machine's ten readings per call, second after second, so
// that the table grows at a thousand places at once as it does in a plant.
// B/reading-raw is the readings table alone (its pages, free space inside
// them included, from SQLite's dbstat); B/reading-file is the whole
// database. Run it with:
// go test -run '^$' -bench Storage -count 3 ./db/
func BenchmarkStorage(b *testing.B) {
	const machines, metrics = 100, 10
	seconds := 1000 // a million readings
	if benchQuick() {
		seconds = 20
	}
	ctx := context.Background()
	// Each round stops the timer for its set-up, which b.Loop does not allow.
	for range b.N {
		b.StopTimer()
		s := OpenTest(b)
		w := NewWriter(s, WriterConfig{})
		stop := runWriter(b, w)
		paths := make([]plant.Path, machines)
		for m := range paths {
			paths[m] = plant.Path{Site: "plant", Area: "hall", Line: fmt.Sprintf("line-%d", m/10), Machine: fmt.Sprintf("machine-%d", m)}
		}
		b.StartTimer()

		start := int64(1_780_000_000_000)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed error
		for sec := range seconds {
			for m, p := range paths {
				rs := make([]plant.Reading, metrics)
				// Devices do not all publish on the same millisecond.
				ts := start + int64(sec)*1000 + int64(m*7)
				for k := range rs {
					rs[k] = reading(p, fmt.Sprintf("metric-%d", k), ts, storageValue(m, k, sec))
				}
				wg.Add(1)
				err := w.Enqueue(ctx, rs, func(err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					wg.Done()
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		wg.Wait()
		if failed != nil {
			b.Fatal(failed)
		}
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}

		var rows, rawBytes, rawUnused, rawPayload, pages, pageSize int64
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM readings`).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		if rows != int64(seconds*machines*metrics) {
			b.Fatalf("%d readings stored, want %d", rows, seconds*machines*metrics)
		}
		if err := s.r.QueryRowContext(ctx, `SELECT SUM(pgsize), SUM(unused), SUM(payload) FROM dbstat WHERE name = 'readings'`).
			Scan(&rawBytes, &rawUnused, &rawPayload); err != nil {
			b.Fatal(err)
		}
		if err := s.r.QueryRowContext(ctx, `SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size)`).
			Scan(&pages, &pageSize); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rawBytes)/float64(rows), "B/reading-raw")
		b.ReportMetric(float64(pages*pageSize)/float64(rows), "B/reading-file")
		b.Logf("%d readings: readings table %d bytes, %.0f%% of it unused, %.1f bytes of record a row; file %d bytes",
			rows, rawBytes, 100*float64(rawUnused)/float64(rawBytes), float64(rawPayload)/float64(rows), pages*pageSize)
	}
}

// storageValue is metric k of machine m at second sec. Seven of the ten
// metrics are analogue (temperatures, pressures, currents: fractions, 8
// bytes each as a REAL), three are integral (a counter, a state's word id,
// an on/off flag), which SQLite stores in a byte or a few, as devices send.
func storageValue(m, k, sec int) float64 {
	switch k {
	case 7:
		return float64(sec / 3) // a counter
	case 8:
		return float64(1 + (sec/600+m)%4) // a state
	case 9:
		return float64((sec / 60) % 2) // a flag
	}
	return 20 + float64(k)*10 + 5*math.Sin(float64(sec+m)/300) + float64((sec*31+m*17+k)%100)/1000
}
