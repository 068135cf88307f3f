package web

import "github.com/prometheus/client_golang/prometheus"

// metrics are the web's Prometheus series; they exist (unregistered) even
// when no Registerer is given, so the code never checks for nil.
type metrics struct {
	clients  prometheus.Gauge
	dropped  prometheus.Counter
	messages prometheus.Counter
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "andon_ws_clients", Help: "Websocket clients connected now.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_ws_dropped_total", Help: "Websocket clients dropped because they read too slowly.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "andon_ws_messages_total", Help: "Websocket messages queued to clients.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "andon_http_requests_total", Help: "HTTP requests by status code and method.",
		}, []string{"code", "method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "andon_http_request_seconds",
			Help:    "HTTP request duration by route pattern.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.dropped, m.messages, m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
