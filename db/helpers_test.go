package db

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"andon/plant"
)

// waitTimeout is generous: it only bounds waiting for events on a shared,
// noisy machine, it asserts no speed.
const waitTimeout = 30 * time.Second

// runWriter starts w.Run and stops it when the test ends (before the store
// closes, since cleanups run last-in first-out). The returned function stops
// it early and returns Run's error.
func runWriter(t testing.TB, w *Writer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(waitTimeout):
				t.Errorf("writer did not stop within %v", waitTimeout)
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("writer Run: %v", err)
		}
	})
	return stop
}

// collector records OnCommit calls.
type collector struct {
	mu      sync.Mutex
	stored  []plant.Stored
	calls   int
	newTags int
}

func (c *collector) onCommit(rs []plant.Stored, newTags bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stored = append(c.stored, rs...)
	c.calls++
	if newTags {
		c.newTags++
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stored)
}

func counterValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	return m.GetCounter().GetValue()
}

func histogramCount(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	return m.GetHistogram().GetSampleCount()
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	// table is a constant from the test, never device input.
	if err := s.r.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

var press3 = plant.Path{Site: "acme", Area: "hall1", Line: "line-1", Machine: "press-3"}

func reading(p plant.Path, metric string, ts int64, v float64) plant.Reading {
	return plant.Reading{Path: p, Metric: metric, TS: ts, Value: v, Topic: p.String() + "/" + metric}
}

func word(p plant.Path, metric string, ts int64, w string) plant.Reading {
	return plant.Reading{Path: p, Metric: metric, TS: ts, Word: w, Topic: p.String() + "/" + metric}
}

func stopAndCheck(t testing.TB, stop func() error) {
	t.Helper()
	if err := stop(); err != nil {
		t.Fatalf("writer Run: %v", err)
	}
}
