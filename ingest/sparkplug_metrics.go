package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"andon/ingest/sparkplug"
)

// sparkplugCollector reports a source's Sparkplug host counts on /metrics,
// read when scraped.
type sparkplugCollector struct {
	host                       *sparkplug.Host
	events, unsupported, nodes *prometheus.Desc
}

func newSparkplugCollector(h *sparkplug.Host, source string) *sparkplugCollector {
	l := prometheus.Labels{"source": source}
	return &sparkplugCollector{
		host: h,
		events: prometheus.NewDesc("andon_sparkplug_events_total",
			"Sparkplug B events by kind: births, deaths, data messages, stale deaths (old bdSeq), data with no birth seen, unknown aliases, sequence gaps, rebirth requests, refused births, undecodable payloads.",
			[]string{"event"}, l),
		unsupported: prometheus.NewDesc("andon_sparkplug_unsupported_metrics_total",
			"Sparkplug B metric values of datatypes Andon does not store, by datatype.", []string{"datatype"}, l),
		nodes: prometheus.NewDesc("andon_sparkplug_edge_nodes", "Sparkplug B edge nodes Andon follows.", nil, l),
	}
}

func (c *sparkplugCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.unsupported
	ch <- c.nodes
}

func (c *sparkplugCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.host.Counts()
	for event, v := range map[string]int64{
		"birth": n.Births, "death": n.Deaths, "data": n.DataMessages, "stale_death": n.StaleDeaths,
		"no_birth": n.NoBirth, "unknown_alias": n.UnknownAliases, "seq_gap": n.SeqGaps,
		"rebirth_request": n.RebirthRequests, "rebirth_failed": n.RebirthFailures,
		"refused_birth": n.RefusedBirths, "decode_error": n.DecodeErrors,
	} {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(v), event)
	}
	for dt, v := range n.UnsupportedByType {
		ch <- prometheus.MustNewConstMetric(c.unsupported, prometheus.CounterValue, float64(v), dt)
	}
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(n.Nodes))
}
