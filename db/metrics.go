package db

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// writerMetrics are the writer's Prometheus collectors. They exist even when
// no Registerer is given, so the code that updates them needs no nil checks.
type writerMetrics struct {
	ingested   prometheus.Counter
	duplicate  prometheus.Counter
	dropped    prometheus.Counter
	rejected   *prometheus.CounterVec
	batch      prometheus.Histogram
	commit     prometheus.Histogram
	queue      prometheus.GaugeFunc
	writeError prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer, queued func() float64) *writerMetrics {
	m := &writerMetrics{
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_readings_ingested_total",
			Help: "Readings inserted into the store.",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_readings_duplicate_total",
			Help: "Readings ignored because the same tag and timestamp were already stored (redeliveries).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_readings_dropped_total",
			Help: "QoS 0 readings dropped because the write queue was full.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "andon_readings_rejected_total",
			Help: "Messages or readings rejected, by reason.",
		}, []string{"reason"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "andon_write_batch_readings",
			Help:    "Readings per write transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 .. 65536
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "andon_write_commit_seconds",
			Help:    "Duration of a write transaction, from begin to commit.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 3, 10), // 50 µs .. ~1 s
		}),
		queue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "andon_write_queue_readings",
			Help: "Readings queued and not yet committed.",
		}, queued),
		writeError: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_write_errors_total",
			Help: "Write transactions that failed.",
		}),
	}
	if reg == nil {
		return m
	}
	m.ingested = register(reg, m.ingested)
	m.duplicate = register(reg, m.duplicate)
	m.dropped = register(reg, m.dropped)
	m.rejected = register(reg, m.rejected)
	m.batch = register(reg, m.batch)
	m.commit = register(reg, m.commit)
	m.queue = register(reg, m.queue)
	m.writeError = register(reg, m.writeError)
	return m
}

// register registers c, or returns the collector already registered under
// the same name, so that a second Writer on the same registry (tests, a
// restart inside one process) shares the counters instead of panicking.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// A clash with a different kind of collector is a programming
		// error; the metric is then simply not exported.
	}
	return c
}
