package sparkplug

import (
	"math"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

// t0 is the time the test messages arrive at, 2025-06-15 15:06:40 UTC.
const t0 = int64(1_750_000_000_000)

// noAlias and noSeq leave a metric's alias or a payload's seq out.
const (
	noAlias = -1
	noSeq   = -1
)

// metric builds a metric; name "" and alias noAlias leave those out, and dt
// 0 leaves the datatype out (as data messages may).
func metric(name string, alias int64, dt pb.DataType) *pb.Payload_Metric {
	m := &pb.Payload_Metric{}
	if name != "" {
		m.Name = proto.String(name)
	}
	if alias >= 0 {
		m.Alias = proto.Uint64(uint64(alias))
	}
	if dt != 0 {
		m.Datatype = proto.Uint32(uint32(dt))
	}
	return m
}

func withInt(m *pb.Payload_Metric, v uint32) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_IntValue{IntValue: v}
	return m
}

func withLong(m *pb.Payload_Metric, v uint64) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_LongValue{LongValue: v}
	return m
}

func withFloat(m *pb.Payload_Metric, v float32) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_FloatValue{FloatValue: v}
	return m
}

func withDouble(m *pb.Payload_Metric, v float64) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_DoubleValue{DoubleValue: v}
	return m
}

func withBool(m *pb.Payload_Metric, v bool) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_BooleanValue{BooleanValue: v}
	return m
}

func withString(m *pb.Payload_Metric, v string) *pb.Payload_Metric {
	m.Value = &pb.Payload_Metric_StringValue{StringValue: v}
	return m
}

func withTS(m *pb.Payload_Metric, ts int64) *pb.Payload_Metric {
	m.Timestamp = proto.Uint64(uint64(ts))
	return m
}

// encode builds a payload with the generated code; seq noSeq and ts 0 leave
// those out.
func encode(t testing.TB, seq int64, ts int64, ms ...*pb.Payload_Metric) []byte {
	t.Helper()
	p := &pb.Payload{Metrics: ms}
	if seq >= 0 {
		p.Seq = proto.Uint64(uint64(seq))
	}
	if ts != 0 {
		p.Timestamp = proto.Uint64(uint64(ts))
	}
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatalf("encoding a test payload: %v", err)
	}
	return b
}

// bdSeq is a birth's or death's bdSeq metric.
func bdSeq(v uint64) *pb.Payload_Metric {
	return withLong(metric("bdSeq", noAlias, pb.DataType_Int64), v)
}

// sent is one call of Config.Publish.
type sent struct {
	topic   string
	payload []byte
}

// outbox collects what a host publishes.
type outbox struct {
	mu   sync.Mutex
	msgs []sent
	err  error // returned by publish, to test failures
}

func (o *outbox) publish(topic string, payload []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, sent{topic, payload})
	return o.err
}

func (o *outbox) take() []sent {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.msgs
	o.msgs = nil
	return m
}

// handle runs Handle and fails the test for a non-Sparkplug answer.
func handle(t *testing.T, h *Host, topic string, payload []byte, recv int64) ([]plant.Reading, *plant.Reject) {
	t.Helper()
	rs, rej, ok := h.Handle(topic, payload, recv)
	if !ok {
		t.Fatalf("Handle(%q) ok = false, want true", topic)
	}
	return rs, rej
}

// noReject fails the test when rej is not nil.
func noReject(t *testing.T, rej *plant.Reject) {
	t.Helper()
	if rej != nil {
		t.Fatalf("unexpected reject %s: %s", rej.Reason, rej.Detail)
	}
}

// wantRebirth checks that exactly one rebirth request for group/edge was
// published, and that it is a valid one.
func wantRebirth(t *testing.T, o *outbox, group, edge string) {
	t.Helper()
	msgs := o.take()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages, want 1 rebirth request", len(msgs))
	}
	if want := "spBv1.0/" + group + "/NCMD/" + edge; msgs[0].topic != want {
		t.Errorf("rebirth topic = %q, want %q", msgs[0].topic, want)
	}
	var p pb.Payload
	if err := proto.Unmarshal(msgs[0].payload, &p); err != nil {
		t.Fatalf("rebirth payload: %v", err)
	}
	if len(p.Metrics) != 1 || p.Metrics[0].GetName() != "Node Control/Rebirth" || !p.Metrics[0].GetBooleanValue() ||
		p.Metrics[0].GetDatatype() != uint32(pb.DataType_Boolean) {
		t.Errorf("rebirth payload = %v, want one Boolean metric Node Control/Rebirth = true", &p)
	}
}

// byMetric indexes readings by metric name.
func byMetric(rs []plant.Reading) map[string]plant.Reading {
	m := make(map[string]plant.Reading, len(rs))
	for _, r := range rs {
		m[r.Metric] = r
	}
	return m
}

// checkReading is the invariant every reading Handle returns must hold;
// it returns what is wrong, or "".
func checkReading(r plant.Reading, recv int64, cfg Config) string {
	cfg = cfg.withDefaults()
	for _, l := range []string{r.Path.Site, r.Path.Line, r.Path.Machine} {
		if checkID(l, cfg.MaxName) != "" {
			return "bad path level " + l
		}
	}
	if r.Offline {
		if r.Metric != "" {
			return "an offline announcement with a metric"
		}
		return ""
	}
	switch {
	case r.Metric == "" || len(r.Metric) > cfg.MaxName || !plant.ValidName(r.Metric):
		return "bad metric name"
	case skippedName(r.Metric):
		return "a protocol metric was stored"
	case r.Word == "" && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)):
		return "not finite"
	case r.Word != "" && (len(r.Word) > cfg.MaxWordLen || !plant.ValidName(r.Word)):
		return "bad word"
	case r.TS < minTS || r.TS > maxTS || r.TS > recv+cfg.MaxFuture.Milliseconds():
		return "timestamp out of bounds"
	case r.Arrival && r.TS != recv:
		return "arrival-stamped but not at arrival"
	}
	return ""
}
