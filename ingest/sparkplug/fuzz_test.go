package sparkplug

import (
	"testing"

	pb "andon/ingest/sparkplug/sparkplugpb"
)

// fuzzTopics are the topics a fuzzed payload is handled under, so that it
// meets every path of the state machine: births, data of born and unborn
// nodes and devices, deaths, commands.
var fuzzTopics = []string{
	"spBv1.0/g/NBIRTH/e",
	"spBv1.0/g/NDATA/e",
	"spBv1.0/g/DBIRTH/e/d",
	"spBv1.0/g/DDATA/e/d",
	"spBv1.0/g/DDEATH/e/d",
	"spBv1.0/g/NDEATH/e",
	"spBv1.0/g/NDATA/unborn",
	"spBv1.0/g/NCMD/e",
	"spBv1.0/STATE/other",
}

// FuzzHandle feeds arbitrary payloads to a host whose node and device are
// born with aliases 1..4 (Int8, Double, String, UInt64): Handle must never
// panic, and every reading it returns must have a valid name, a finite value
// or a valid word, and a timestamp in bounds.
func FuzzHandle(f *testing.F) {
	f.Add(uint8(1), encode(f, 1, t0, withInt(metric("", 1, 0), 0xFFFFFFFF), withDouble(metric("", 2, 0), 1.5)))
	f.Add(uint8(3), encode(f, 2, t0, withString(metric("", 3, 0), "running"), withLong(metric("", 4, 0), 1<<63)))
	f.Add(uint8(0), encode(f, 0, t0, bdSeq(1), withDouble(withTS(metric("x", 9, pb.DataType_Double), t0), 2)))
	f.Add(uint8(5), encode(f, noSeq, t0, bdSeq(3)))
	f.Add(uint8(6), []byte{0x12, 0x02, 0x10, 0x01})
	f.Add(uint8(2), []byte{})
	cfg := Config{MaxNodes: 4, MaxMetrics: 64, MaxValues: 50}
	birthN := encode(f, 0, t0, bdSeq(3),
		withInt(metric("i8", 1, pb.DataType_Int8), 1),
		withDouble(metric("d", 2, pb.DataType_Double), 1),
		withString(metric("s", 3, pb.DataType_String), "ok"),
		withLong(metric("u64", 4, pb.DataType_UInt64), 1))
	birthD := encode(f, 1, t0,
		withInt(metric("i8", 1, pb.DataType_Int8), 1),
		withDouble(metric("d", 2, pb.DataType_Double), 1),
		withString(metric("s", 3, pb.DataType_String), "ok"),
		withLong(metric("u64", 4, pb.DataType_UInt64), 1))
	f.Fuzz(func(t *testing.T, first uint8, payload []byte) {
		h := New(cfg)
		h.Handle("spBv1.0/g/NBIRTH/e", birthN, t0)
		h.Handle("spBv1.0/g/DBIRTH/e/d", birthD, t0)
		for i := range fuzzTopics {
			topic := fuzzTopics[(int(first)+i)%len(fuzzTopics)]
			rs, rej, ok := h.Handle(topic, payload, t0)
			if !ok {
				t.Fatalf("Handle(%q) ok = false", topic)
			}
			for _, r := range rs {
				if why := checkReading(r, t0, cfg); why != "" {
					t.Fatalf("Handle(%q) returned a bad reading (%s): %+v", topic, why, r)
				}
			}
			if rej != nil && (rej.Reason == "" || rej.Detail == "" || len(rej.Payload) > maxRejectPayload) {
				t.Fatalf("Handle(%q) returned a bad reject: %+v", topic, rej)
			}
		}
		h.Tick(t0 + 10_000)
		for _, r := range h.Lost(t0 + 20_000) {
			if !r.Offline || checkReading(r, t0+20_000, cfg) != "" {
				t.Fatalf("Lost returned %+v", r)
			}
		}
		// Everything is dead after Lost: every definition must have been
		// freed, which checks the tables' accounting on every path.
		if c := h.Counts(); c.Definitions != 0 || c.Nodes > cfg.MaxNodes {
			t.Fatalf("after Lost: %d definitions held, %d nodes; want 0 and at most %d", c.Definitions, c.Nodes, cfg.MaxNodes)
		}
	})
}
