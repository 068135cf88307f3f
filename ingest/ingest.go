package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"andon/plant"
)

// Sink is what ingest hands readings to; *db.Writer implements it. It is
// declared here, where it is consumed.
type Sink interface {
	// Write waits until the readings are committed.
	Write(ctx context.Context, rs []plant.Reading) error
	// Enqueue blocks while the queue is full; done is called after the commit.
	Enqueue(ctx context.Context, rs []plant.Reading, done func(error)) error
	// TryEnqueue never blocks; false means the queue was full and the readings were dropped.
	TryEnqueue(rs []plant.Reading) bool
	// Reject never blocks; it counts and stores the reject.
	Reject(r plant.Reject)
}

// Message sources, the values of the "source" label.
const (
	sourceEmbedded = "embedded"
	sourceExternal = "external"
)

// rejectLogInterval is how often one topic may log a reject: a device
// publishing garbage every 100 ms must not flood the log.
const rejectLogInterval = time.Minute

// maxRejectLogTopics bounds the memory of when each topic last logged; when
// it is full it starts again, which at worst logs some topics early.
const maxRejectLogTopics = 10_000

// ingester is what the embedded broker's hook and the external client share:
// parse, count, hand rejects to the sink and log them sparingly.
type ingester struct {
	sink     Sink
	lim      Limits
	log      *slog.Logger
	now      func() time.Time
	messages prometheus.Counter

	// dialects turn a message into readings; nil: the default topic
	// layout alone (Parse).
	dialects *dialects

	mu        sync.Mutex
	lastLogMS map[string]int64 // topic -> ms of its last logged reject
}

func newIngester(sink Sink, lim Limits, log *slog.Logger, now func() time.Time, messages prometheus.Counter) *ingester {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &ingester{
		sink:      sink,
		lim:       lim.withDefaults(),
		log:       log,
		now:       now,
		messages:  messages,
		lastLogMS: make(map[string]int64),
	}
}

// message decodes m, stamped with the time it arrived, and deals with its
// reject, if any. It returns the readings to store, possibly none.
func (in *ingester) message(m Message) []plant.Reading {
	in.messages.Inc()
	m.RecvMS = in.now().UnixMilli()
	var rs []plant.Reading
	var rej *plant.Reject
	if in.dialects != nil {
		rs, rej = in.dialects.decode(m)
	} else {
		rs, rej = Parse(m.Topic, m.Payload, m.RecvMS, in.lim)
	}
	if rej != nil {
		in.sink.Reject(*rej)
		in.logReject(rej, m.RecvMS)
	}
	return rs
}

// logReject logs a reject at most once a minute per topic.
func (in *ingester) logReject(rej *plant.Reject, nowMS int64) {
	in.mu.Lock()
	last, seen := in.lastLogMS[rej.Topic]
	if seen && nowMS-last < rejectLogInterval.Milliseconds() {
		in.mu.Unlock()
		return
	}
	if !seen && len(in.lastLogMS) >= maxRejectLogTopics {
		clear(in.lastLogMS)
	}
	in.lastLogMS[rej.Topic] = nowMS
	in.mu.Unlock()
	in.log.Warn("mqtt message rejected", "topic", rej.Topic, "reason", rej.Reason, "detail", rej.Detail)
}

// metrics are the collectors this package owns. The embedded broker and the
// external client may share one registry, so registration tolerates a
// collector the other one registered already.
type metrics struct {
	messages  *prometheus.CounterVec
	connected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "andon_mqtt_messages_total",
			Help: "MQTT messages received by ingest, by source (embedded broker or external broker).",
		}, []string{"source"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "andon_mqtt_connected",
			Help: "1 while the client of the external MQTT broker is connected, else 0.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.messages, err = register(reg, m.messages); err != nil {
		return nil, err
	}
	return m, nil
}

// registerConnected registers the connection gauge, which only the external
// client reports.
func (m *metrics) registerConnected(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	g, err := register(reg, m.connected)
	if err != nil {
		return err
	}
	m.connected = g
	return nil
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("ingest: register metrics: %w", err)
}
