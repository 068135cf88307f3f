package ingest

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"andon/ingest/sparkplug"
	"andon/plant"
)

// maxHAEntities bounds the Home Assistant entities one source remembers.
const maxHAEntities = 10_000

// A Sparkplug birth certificate describes every metric of a node or device
// at once, with properties: a PLC gateway's runs to thousands of metrics
// and hundreds of kilobytes. Its bounds are the broker's packet limit
// (1 MiB) and the host's table of definitions, not those of one reading.
const (
	sparkplugMaxPayload = 1 << 20
	sparkplugMaxValues  = 10_000
)

// Mapping holds the mapping rules of the config file and the admin pages,
// shared by every source of messages. Set replaces them all at once, so a
// message is decoded by one set of rules, never half of two.
type Mapping struct{ rules atomic.Pointer[RuleSet] }

// NewMapping holds rs (nil: no rules).
func NewMapping(rs *RuleSet) *Mapping {
	m := &Mapping{}
	m.rules.Store(rs)
	return m
}

// Set replaces the rules.
func (m *Mapping) Set(rs *RuleSet) { m.rules.Store(rs) }

func (m *Mapping) get() *RuleSet {
	if m == nil {
		return nil
	}
	return m.rules.Load()
}

// SparkplugConfig configures the Sparkplug B host application of a source.
type SparkplugConfig struct {
	// HostID names this host application in its STATE topic
	// (spBv1.0/STATE/<id>); "" or "off" means no STATE messages and no
	// connection of its own (Sparkplug payloads are still decoded).
	HostID string
	// RebirthOnGap asks an edge node for a rebirth when a gap in its
	// sequence numbers is not filled within ReorderTimeout.
	RebirthOnGap   bool
	ReorderTimeout time.Duration
}

// hostID is the STATE id, or "" when the host's STATE is off.
func (c SparkplugConfig) hostID() string {
	if c.HostID == "off" {
		return ""
	}
	return c.HostID
}

// DialectConfig is what the decoders of one source need.
type DialectConfig struct {
	Mapping   *Mapping       // nil: no mapping rules
	Location  *time.Location // the plant's zone, for Tasmota's times without one; nil: time.Local
	Sparkplug SparkplugConfig
	// HomeAssistantBirth makes the embedded broker publish Home Assistant's
	// birth message (homeassistant/status = online, retained) at start, so
	// that devices send their discovery configs again after a restart.
	HomeAssistantBirth bool
}

// dialects decides what a message means, in this order: the mapping rules
// (an admin's word overrides any guess), Sparkplug B, Home Assistant
// discovery, Tasmota, UMH, availability topics, and last the default
// topic layout. Sparkplug and Home Assistant keep state (births, discovered
// entities) per source, because another broker is another session.
type dialects struct {
	mapping *Mapping
	spb     *sparkplug.Host
	ha      *homeAssistant
	loc     *time.Location
	lim     Limits
}

// newDialects builds a source's decoders; publish sends the Sparkplug
// host's commands (rebirth requests) to that source's broker.
func newDialects(cfg DialectConfig, lim Limits, publish func(topic string, payload []byte) error, log *slog.Logger) *dialects {
	lim = lim.withDefaults()
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	return &dialects{
		mapping: cfg.Mapping,
		spb: sparkplug.New(sparkplug.Config{
			HostID:         cfg.Sparkplug.hostID(),
			RebirthOnGap:   cfg.Sparkplug.RebirthOnGap,
			ReorderTimeout: cfg.Sparkplug.ReorderTimeout,
			Publish:        publish,
			MaxName:        lim.MaxName,
			MaxValues:      max(lim.MaxValues, sparkplugMaxValues),
			MaxPayload:     sparkplugMaxPayload,
			MaxWordLen:     lim.MaxWordLen,
			MaxFuture:      lim.MaxFuture,
			Logger:         log,
		}),
		ha:  newHomeAssistant(maxHAEntities),
		loc: loc,
		lim: lim,
	}
}

// decode turns one message into readings, or a reject, or both.
func (d *dialects) decode(m Message) ([]plant.Reading, *plant.Reject) {
	if strings.HasPrefix(m.Topic, "$") {
		return nil, nil // the broker's own topics
	}
	if rej := d.precheck(m); rej != nil {
		return nil, rej
	}
	if rs := d.mapping.get(); rs != nil {
		if out, rej, ok := rs.decode(m, d.lim); ok {
			return out, rej
		}
	}
	if out, rej, ok := d.spb.Handle(m.Topic, m.Payload, m.RecvMS); ok {
		return out, rej
	}
	if out, rej, ok := d.ha.decode(m, d.lim); ok {
		return out, rej
	}
	if out, rej, ok := decodeTasmota(m, d.lim, d.loc); ok {
		return out, rej
	}
	if out, rej, ok := decodeUMH(m, d.lim); ok {
		return out, rej
	}
	if out, rej, ok := decodeAvailability(m, d.lim); ok {
		return out, rej
	}
	return parseChecked(m, d.lim)
}

// precheck refuses what no decoder should see: an oversized payload, a
// topic that is too long, empty, not UTF-8 or holds a wildcard or a control
// character. Level lengths are left to each decoder, because one UMH Core
// topic is a single long level.
func (d *dialects) precheck(m Message) *plant.Reject {
	if reason, detail := topicProblem(m.Topic, d.lim); reason != "" {
		return rejectOf(m, reason, detail)
	}
	max := d.lim.MaxPayload
	if strings.HasPrefix(m.Topic, sparkplugPrefix) {
		max = sparkplugMaxPayload
	}
	if reason, detail := payloadProblem(m.Payload, max); reason != "" {
		return rejectOf(m, reason, detail)
	}
	return nil
}

// tick drives the Sparkplug host's time-driven work (a sequence gap's
// reorder timeout) once a second until ctx is done.
func (d *dialects) tick(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.spb.Tick(now().UnixMilli())
		}
	}
}
