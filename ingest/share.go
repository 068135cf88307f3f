package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// deviceShare caps the readings one MQTT client may publish per second, so
// a device gone wild (a loop without a sleep, ten times its usual rate)
// cannot take the writer's whole capacity from the others. A client over
// its share has its QoS 0 readings dropped and counted, and its QoS 1
// publishes slowed: the PUBACK comes later, so the device itself holds the
// backlog, and only that device waits (mochi reads each client on its own
// goroutine). Each client gets a second's worth of readings as a burst.
type deviceShare struct {
	limit     rate.Limit
	burst     int
	log       *slog.Logger
	throttled *prometheus.CounterVec // readings, by action: dropped or delayed

	mu      sync.Mutex
	clients map[string]*shareState
}

type shareState struct {
	lim    *rate.Limiter
	logged time.Time // last warning about this client, at most one a minute
}

// newDeviceShare returns nil (no cap) for a rate <= 0. minBurst keeps the
// largest allowed message within one burst.
func newDeviceShare(perSecond float64, minBurst int, log *slog.Logger, reg prometheus.Registerer) (*deviceShare, error) {
	if perSecond <= 0 {
		return nil, nil
	}
	d := &deviceShare{
		limit: rate.Limit(perSecond),
		burst: max(int(perSecond), minBurst),
		log:   log,
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "andon_mqtt_throttled_readings_total",
			Help: "Readings of MQTT clients over their share (--device-rate): QoS 0 dropped, QoS 1 delayed.",
		}, []string{"action"}),
		clients: map[string]*shareState{},
	}
	if reg != nil {
		var err error
		if d.throttled, err = register(reg, d.throttled); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *deviceShare) state(client string) *shareState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.clients[client]
	if st == nil {
		st = &shareState{lim: rate.NewLimiter(d.limit, d.burst)}
		d.clients[client] = st
	}
	return st
}

// allow says whether a client's QoS 0 readings fit its share; those that
// do not are dropped and counted.
func (d *deviceShare) allow(client string, n int) bool {
	st := d.state(client)
	if st.lim.AllowN(time.Now(), min(n, d.burst)) {
		return true
	}
	d.throttled.WithLabelValues("dropped").Add(float64(n))
	d.warn(client, st, "mqtt client over its share: QoS 0 readings dropped")
	return false
}

// wait holds a client's QoS 1 publish until it fits the client's share, or
// ctx ends.
func (d *deviceShare) wait(ctx context.Context, client string, n int) error {
	st := d.state(client)
	r := st.lim.ReserveN(time.Now(), min(n, d.burst))
	delay := r.Delay()
	if delay <= 0 {
		return nil
	}
	d.throttled.WithLabelValues("delayed").Add(float64(n))
	d.warn(client, st, "mqtt client over its share: QoS 1 publishes slowed down")
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

func (d *deviceShare) warn(client string, st *shareState, msg string) {
	d.mu.Lock()
	now := time.Now()
	due := now.Sub(st.logged) >= time.Minute
	if due {
		st.logged = now
	}
	d.mu.Unlock()
	if due {
		d.log.Warn(msg, "client_id", client, "readings_per_second", float64(d.limit))
	}
}

// forget drops a client's state when it disconnects, so the map holds only
// connected clients.
func (d *deviceShare) forget(client string) {
	d.mu.Lock()
	delete(d.clients, client)
	d.mu.Unlock()
}
