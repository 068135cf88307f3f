package sparkplug

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

func TestHandleOtherDialects(t *testing.T) {
	h := New(Config{})
	for _, topic := range []string{"factory/line-1/press/temp", "spBv1.0", "spAv1.0/g/NDATA/e", "SPBV1.0/g/NDATA/e", ""} {
		t.Run(topic, func(t *testing.T) {
			rs, rej, ok := h.Handle(topic, []byte("23.5"), t0)
			if ok || rs != nil || rej != nil {
				t.Errorf("Handle(%q) = %v, %v, %v; want nil, nil, false", topic, rs, rej, ok)
			}
		})
	}
}

func TestHandleTopics(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct {
		topic      string
		wantReason string // "" for no reject
	}{
		{"spBv1.0/STATE/scada", ""},
		{"spBv1.0/g/NCMD/e", ""},
		{"spBv1.0/g/DCMD/e/d", ""},
		{"spBv1.0/STATE", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA/e/d/x", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA/e/d", plant.ReasonTopicInvalid},
		{"spBv1.0/g/DDATA/e", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA2/e", plant.ReasonTopicInvalid},
		{"spBv1.0/g/ndata/e", plant.ReasonTopicInvalid},
		{"spBv1.0//NDATA/e", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA/", plant.ReasonTopicInvalid},
		{"spBv1.0/g+/NDATA/e", plant.ReasonTopicInvalid},
		{"spBv1.0/g/NDATA/e#", plant.ReasonTopicInvalid},
		{"spBv1.0/g/DDATA/e/d\x01", plant.ReasonTopicInvalid},
		{"spBv1.0/g\xff/NDATA/e", plant.ReasonTopicInvalid},
		{"spBv1.0/" + long + "/NDATA/e", plant.ReasonTopicInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			h := New(Config{})
			rs, rej := handle(t, h, tt.topic, encode(t, 0, t0), t0)
			if len(rs) != 0 {
				t.Errorf("got %d readings, want none", len(rs))
			}
			got := ""
			if rej != nil {
				got = rej.Reason
				if rej.Detail == "" || rej.Topic != tt.topic || rej.TS != t0 {
					t.Errorf("reject = %+v, want a detail, the topic and the receive time", rej)
				}
			}
			if got != tt.wantReason {
				t.Errorf("reject reason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

// step is one message of a scenario and what it must produce.
type step struct {
	name    string
	topic   string
	payload []byte
	recv    int64
	want    []plant.Reading // compared in order; nil: none
	reason  string          // the reject's reason, "" for none
}

// run plays steps on h in order, each a subtest.
func run(t *testing.T, h *Host, steps []step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			recv := s.recv
			if recv == 0 {
				recv = t0
			}
			rs, rej := handle(t, h, s.topic, s.payload, recv)
			gotReason := ""
			if rej != nil {
				gotReason = rej.Reason
			}
			if gotReason != s.reason {
				detail := ""
				if rej != nil {
					detail = rej.Detail
				}
				t.Errorf("reject reason = %q (%s), want %q", gotReason, detail, s.reason)
			}
			if !slices.Equal(rs, s.want) {
				t.Errorf("readings:\n got %+v\nwant %+v", rs, s.want)
			}
		})
	}
}

func TestHandleSession(t *testing.T) {
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	node := plant.Path{Site: "Plant1", Line: "Edge1", Machine: "Edge1"}
	press := plant.Path{Site: "Plant1", Line: "Edge1", Machine: "Press3"}
	oven := plant.Path{Site: "Plant1", Line: "Edge1", Machine: "Oven"}
	const (
		nb  = "spBv1.0/Plant1/NBIRTH/Edge1"
		nd  = "spBv1.0/Plant1/NDATA/Edge1"
		nx  = "spBv1.0/Plant1/NDEATH/Edge1"
		pb3 = "spBv1.0/Plant1/DBIRTH/Edge1/Press3"
		pd3 = "spBv1.0/Plant1/DDATA/Edge1/Press3"
		px3 = "spBv1.0/Plant1/DDEATH/Edge1/Press3"
		ob  = "spBv1.0/Plant1/DBIRTH/Edge1/Oven"
	)
	run(t, h, []step{
		{
			name:  "NBIRTH stores current values and skips protocol metrics",
			topic: nb,
			payload: encode(t, 0, t0,
				bdSeq(7),
				withBool(metric("Node Control/Rebirth", noAlias, pb.DataType_Boolean), false),
				withString(metric("Properties/Hardware", 9, pb.DataType_String), "rev B"),
				withDouble(metric("Temperature", 1, pb.DataType_Double), 21.5),
				withString(metric("State", 2, pb.DataType_String), "running"),
			),
			want: []plant.Reading{
				{Path: node, Metric: "Temperature", TS: t0, Value: 21.5, Topic: nb},
				{Path: node, Metric: "State", TS: t0, Word: "running", Topic: nb},
			},
		},
		{
			name:    "NDATA by alias, no datatype",
			topic:   nd,
			payload: encode(t, 1, t0+1000, withDouble(metric("", 1, 0), 22), withString(metric("", 2, 0), "idle")),
			recv:    t0 + 1000,
			want: []plant.Reading{
				{Path: node, Metric: "Temperature", TS: t0 + 1000, Value: 22, Topic: nd},
				{Path: node, Metric: "State", TS: t0 + 1000, Word: "idle", Topic: nd},
			},
		},
		{
			name:    "NDATA by name",
			topic:   nd,
			payload: encode(t, 2, t0+1500, withDouble(metric("Temperature", noAlias, pb.DataType_Double), 22.5)),
			recv:    t0 + 1500,
			want:    []plant.Reading{{Path: node, Metric: "Temperature", TS: t0 + 1500, Value: 22.5, Topic: nd}},
		},
		{
			name:    "DBIRTH of a device",
			topic:   pb3,
			payload: encode(t, 3, t0+2000, withFloat(metric("Pressure", 10, pb.DataType_Float), 3.25), withBool(metric("Running", 11, pb.DataType_Boolean), true)),
			recv:    t0 + 2000,
			want: []plant.Reading{
				{Path: press, Metric: "Pressure", TS: t0 + 2000, Value: 3.25, Topic: pb3},
				{Path: press, Metric: "Running", TS: t0 + 2000, Value: 1, Topic: pb3},
			},
		},
		{
			name:    "DBIRTH of a second device",
			topic:   ob,
			payload: encode(t, 4, t0+2000, withInt(metric("Zone", 20, pb.DataType_Int32), 3)),
			recv:    t0 + 2000,
			want:    []plant.Reading{{Path: oven, Metric: "Zone", TS: t0 + 2000, Value: 3, Topic: ob}},
		},
		{
			name:    "DDATA by alias",
			topic:   pd3,
			payload: encode(t, 5, t0+3000, withBool(metric("", 11, 0), false)),
			recv:    t0 + 3000,
			want:    []plant.Reading{{Path: press, Metric: "Running", TS: t0 + 3000, Value: 0, Topic: pd3}},
		},
		{
			name:    "DDEATH announces the device offline",
			topic:   px3,
			payload: encode(t, 6, t0+4000),
			recv:    t0 + 4000,
			want:    []plant.Reading{{Path: press, TS: t0 + 4000, Offline: true, Topic: px3}},
		},
		{
			name:    "DDATA of the dead device is not stored and asks for a rebirth",
			topic:   pd3,
			payload: encode(t, 7, t0+4500, withBool(metric("", 11, 0), true)),
			recv:    t0 + 4500,
			reason:  plant.ReasonSparkplugNoBirth,
		},
		{
			name:    "NDEATH announces the node and its other device offline",
			topic:   nx,
			payload: encode(t, noSeq, t0+5000, bdSeq(7)),
			recv:    t0 + 5000,
			want: []plant.Reading{
				{Path: node, TS: t0 + 5000, Offline: true, Topic: nx},
				{Path: oven, TS: t0 + 5000, Offline: true, Topic: nx},
			},
		},
		{
			name:    "a second NDEATH of the dead node says nothing",
			topic:   nx,
			payload: encode(t, noSeq, t0+5100, bdSeq(7)),
			recv:    t0 + 5100,
		},
	})
	wantRebirth(t, out, "Plant1", "Edge1")
	c := h.Counts()
	if c.Births != 3 || c.Deaths != 2 || c.DataMessages != 3 || c.NoBirth != 1 || c.RebirthRequests != 1 || c.Definitions != 0 {
		t.Errorf("counts = %+v, want 3 births, 2 deaths, 3 data messages, 1 without birth, 1 rebirth request, 0 definitions left", c)
	}
}

func TestNBirthEndsDeviceSessions(t *testing.T) {
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	run(t, h, []step{
		{name: "NBIRTH", topic: "spBv1.0/g/NBIRTH/e", payload: encode(t, 0, t0, bdSeq(1))},
		{name: "DBIRTH", topic: "spBv1.0/g/DBIRTH/e/d", payload: encode(t, 1, t0, withInt(metric("n", 1, pb.DataType_Int32), 1)),
			want: []plant.Reading{{Path: plant.Path{Site: "g", Line: "e", Machine: "d"}, Metric: "n", TS: t0, Value: 1, Topic: "spBv1.0/g/DBIRTH/e/d"}}},
		{name: "NBIRTH again", topic: "spBv1.0/g/NBIRTH/e", payload: encode(t, 0, t0+1, bdSeq(2))},
		{name: "DDATA before the new DBIRTH", topic: "spBv1.0/g/DDATA/e/d", payload: encode(t, 1, t0+2, withInt(metric("", 1, 0), 2)),
			recv: t0 + 2, reason: plant.ReasonSparkplugNoBirth},
	})
	wantRebirth(t, out, "g", "e")
	if c := h.Counts(); c.Definitions != 1 {
		t.Errorf("definitions = %d, want 1 (the new birth's bdSeq; the device is gone)", c.Definitions)
	}
}

func TestUnknownAliasRequestsRebirth(t *testing.T) {
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	_, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, bdSeq(0), withDouble(metric("speed", 1, pb.DataType_Double), 1)), t0)
	noReject(t, rej)
	out.take()

	data := func(seq int64, recv int64) ([]plant.Reading, *plant.Reject) {
		return handle(t, h, "spBv1.0/g/NDATA/e",
			encode(t, seq, recv, withDouble(metric("", 1, 0), 2), withDouble(metric("", 9, 0), 3)), recv)
	}
	t.Run("first message: stored what it could, asked for a rebirth, said so", func(t *testing.T) {
		rs, rej := data(1, t0+1000)
		if len(rs) != 1 || rs[0].Metric != "speed" || rs[0].Value != 2 {
			t.Errorf("readings = %+v, want speed = 2", rs)
		}
		if rej == nil || rej.Reason != plant.ReasonSparkplugNoBirth || !strings.Contains(rej.Detail, `"alias 9"`) ||
			!strings.Contains(rej.Detail, "rebirth was requested") {
			t.Fatalf("reject = %+v, want sparkplug_no_birth naming alias 9 and the rebirth request", rej)
		}
		wantRebirth(t, out, "g", "e")
	})
	t.Run("within 5 s: no second request, no second reject", func(t *testing.T) {
		rs, rej := data(2, t0+5999)
		noReject(t, rej)
		if len(rs) != 1 {
			t.Errorf("got %d readings, want 1", len(rs))
		}
		if msgs := out.take(); len(msgs) != 0 {
			t.Errorf("published %d messages, want none", len(msgs))
		}
	})
	t.Run("5 s later: asked again", func(t *testing.T) {
		_, rej := data(3, t0+6000)
		if rej == nil {
			t.Fatal("no reject, want one saying a rebirth was requested")
		}
		wantRebirth(t, out, "g", "e")
	})
	if c := h.Counts(); c.UnknownAliases != 3 || c.RebirthRequests != 2 {
		t.Errorf("unknown aliases = %d, rebirth requests = %d; want 3 and 2", c.UnknownAliases, c.RebirthRequests)
	}
}

func TestDataWithoutBirth(t *testing.T) {
	t.Run("publishes a rebirth request", func(t *testing.T) {
		out := &outbox{}
		h := New(Config{Publish: out.publish})
		rs, rej := handle(t, h, "spBv1.0/g/DDATA/e/d", encode(t, 5, t0, withDouble(metric("", 1, 0), 1)), t0)
		if len(rs) != 0 {
			t.Errorf("got %d readings, want none", len(rs))
		}
		if rej == nil || !strings.Contains(rej.Detail, `No birth certificate of edge node "e"`) {
			t.Fatalf("reject = %+v, want one naming the edge node", rej)
		}
		wantRebirth(t, out, "g", "e")
		// Data of another device of the same node within 5 s: counted, not asked again.
		_, rej = handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 6, t0, withDouble(metric("", 1, 0), 1)), t0+10)
		noReject(t, rej)
		if c := h.Counts(); c.NoBirth != 2 || c.RebirthRequests != 1 {
			t.Errorf("no birth = %d, rebirth requests = %d; want 2 and 1", c.NoBirth, c.RebirthRequests)
		}
	})
	t.Run("without Publish the request is counted only", func(t *testing.T) {
		h := New(Config{})
		_, rej := handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 0, t0), t0)
		if rej == nil {
			t.Error("no reject, want one")
		}
		if c := h.Counts(); c.RebirthRequests != 1 || c.RebirthFailures != 0 {
			t.Errorf("rebirth requests = %d, failures = %d; want 1 and 0", c.RebirthRequests, c.RebirthFailures)
		}
	})
	t.Run("a failed publish is counted", func(t *testing.T) {
		out := &outbox{err: errors.New("broker gone")}
		h := New(Config{Publish: out.publish})
		handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 0, t0), t0)
		if c := h.Counts(); c.RebirthFailures != 1 {
			t.Errorf("rebirth failures = %d, want 1", c.RebirthFailures)
		}
	})
}

// TestPublishWithoutLock checks that Publish is called without the host's
// lock held, both from Handle and from Tick: it may block on the network.
func TestPublishWithoutLock(t *testing.T) {
	var h *Host
	calls, locked := 0, 0
	h = New(Config{RebirthOnGap: true, Publish: func(string, []byte) error {
		calls++
		if !h.mu.TryLock() {
			locked++
			return nil
		}
		h.mu.Unlock()
		return nil
	}})
	handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 0, t0), t0)               // no birth: a request from Handle
	handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0), t0+10_000)       // born
	handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 5, t0+10_000), t0+10_000) // a gap
	h.Tick(t0 + 20_000)                                                   // not filled: a request from Tick
	if calls != 2 {
		t.Fatalf("Publish called %d times, want 2", calls)
	}
	if locked != 0 {
		t.Errorf("Publish was called %d times with the host's lock held", locked)
	}
}

func TestStaleDeathIgnored(t *testing.T) {
	node := plant.Path{Site: "g", Line: "e", Machine: "e"}
	h := New(Config{})
	run(t, h, []step{
		{name: "NBIRTH bdSeq 5", topic: "spBv1.0/g/NBIRTH/e", payload: encode(t, 0, t0, bdSeq(5), withInt(metric("x", noAlias, pb.DataType_Int32), 0)),
			want: []plant.Reading{{Path: node, Metric: "x", TS: t0, Value: 0, Topic: "spBv1.0/g/NBIRTH/e"}}},
		{name: "NDEATH bdSeq 4 is an old will", topic: "spBv1.0/g/NDEATH/e", payload: encode(t, noSeq, 0, bdSeq(4))},
		{name: "the node is still alive", topic: "spBv1.0/g/NDATA/e", payload: encode(t, 1, t0, withInt(metric("x", noAlias, pb.DataType_Int32), 1)),
			want: []plant.Reading{{Path: node, Metric: "x", TS: t0, Value: 1, Topic: "spBv1.0/g/NDATA/e"}}},
		{name: "NDEATH bdSeq 5 ends it", topic: "spBv1.0/g/NDEATH/e", payload: encode(t, noSeq, 0, bdSeq(5)), recv: t0 + 7,
			want: []plant.Reading{{Path: node, TS: t0 + 7, Offline: true, Topic: "spBv1.0/g/NDEATH/e"}}},
	})
	if c := h.Counts(); c.StaleDeaths != 1 || c.Deaths != 1 {
		t.Errorf("stale deaths = %d, deaths = %d; want 1 and 1", c.StaleDeaths, c.Deaths)
	}
}

func TestSeqGaps(t *testing.T) {
	tests := []struct {
		name     string
		birthSeq int64
		seqs     []int64 // of the NDATA messages after the NBIRTH
		wantGaps int64
		wantOpen bool // a gap still waits for its missing messages
	}{
		{"in order", 0, []int64{1, 2, 3}, 0, false},
		{"birth seq other than 0", 17, []int64{18, 19}, 0, false},
		{"wraps after 255", 253, []int64{254, 255, 0, 1}, 0, false},
		{"gap across the wrap", 253, []int64{254, 1}, 1, true},
		{"one missing", 0, []int64{1, 3}, 1, true},
		{"filled late", 0, []int64{1, 3, 2}, 1, false},
		{"two gaps, filled", 0, []int64{1, 4, 2, 3, 7, 5, 6}, 2, false},
		{"duplicate", 0, []int64{1, 2, 2, 3}, 0, false},
		{"a number far behind is a straggler", 0, []int64{1, 200, 2}, 0, false},
		{"no seq", 0, []int64{noSeq, 1, 2}, 0, false},
		{"seq out of range", 0, []int64{300, 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{})
			handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, tt.birthSeq, t0, bdSeq(0)), t0)
			for _, s := range tt.seqs {
				handle(t, h, "spBv1.0/g/NDATA/e", encode(t, s, t0), t0)
			}
			if c := h.Counts(); c.SeqGaps != tt.wantGaps {
				t.Errorf("seq gaps = %d, want %d", c.SeqGaps, tt.wantGaps)
			}
			if open := len(h.gaps) > 0; open != tt.wantOpen {
				t.Errorf("gap open = %v, want %v", open, tt.wantOpen)
			}
		})
	}
}

func TestRebirthOnGap(t *testing.T) {
	tests := []struct {
		name        string
		rebirthOn   bool
		seqs        []int64
		tickAt      []int64 // ms after the gap
		wantRebirth bool
	}{
		{"gap not filled in time", true, []int64{1, 3}, []int64{1000, 1999, 2000}, true},
		{"gap filled in time", true, []int64{1, 3, 2}, []int64{2000, 5000}, false},
		{"off by default", false, []int64{1, 3}, []int64{2000, 10000}, false},
		{"no gap", true, []int64{1, 2}, []int64{10000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &outbox{}
			h := New(Config{RebirthOnGap: tt.rebirthOn, Publish: out.publish})
			handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, bdSeq(0)), t0)
			for _, s := range tt.seqs {
				handle(t, h, "spBv1.0/g/NDATA/e", encode(t, s, t0), t0)
			}
			for _, at := range tt.tickAt[:len(tt.tickAt)-1] {
				h.Tick(t0 + at)
			}
			if tt.wantRebirth {
				if msgs := out.take(); len(msgs) != 0 {
					t.Fatalf("a rebirth was requested before the reorder timeout")
				}
			}
			h.Tick(t0 + tt.tickAt[len(tt.tickAt)-1])
			if tt.wantRebirth {
				wantRebirth(t, out, "g", "e")
				h.Tick(t0 + 10_000)
				if msgs := out.take(); len(msgs) != 0 {
					t.Errorf("a second rebirth for the same gap")
				}
			} else if msgs := out.take(); len(msgs) != 0 {
				t.Errorf("published %d messages, want none", len(msgs))
			}
			if len(h.gaps) != 0 {
				t.Errorf("%d gaps still open after the timeout", len(h.gaps))
			}
		})
	}
}

func TestLost(t *testing.T) {
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	for _, m := range []struct{ topic string }{
		{"spBv1.0/b/NBIRTH/n2"}, {"spBv1.0/a/NBIRTH/n1"}, {"spBv1.0/a/DBIRTH/n1/d2"}, {"spBv1.0/a/DBIRTH/n1/d1"},
		{"spBv1.0/c/NBIRTH/n3"}, {"spBv1.0/c/NDEATH/n3"},
	} {
		_, rej := handle(t, h, m.topic, encode(t, 0, t0), t0)
		noReject(t, rej)
	}
	got := h.Lost(t0 + 99)
	off := func(group, edge, machine string) plant.Reading {
		return plant.Reading{Path: plant.Path{Site: group, Line: edge, Machine: machine}, TS: t0 + 99, Offline: true,
			Topic: "spBv1.0/" + group + "/NDEATH/" + edge}
	}
	want := []plant.Reading{off("a", "n1", "n1"), off("a", "n1", "d1"), off("a", "n1", "d2"), off("b", "n2", "n2")}
	if !slices.Equal(got, want) {
		t.Errorf("Lost:\n got %+v\nwant %+v", got, want)
	}
	if again := h.Lost(t0 + 100); len(again) != 0 {
		t.Errorf("a second Lost announced %d machines, want none", len(again))
	}
	_, rej := handle(t, h, "spBv1.0/a/NDATA/n1", encode(t, 1, t0), t0+200)
	if rej == nil {
		t.Error("data after Lost: no reject, want a rebirth request said")
	}
	wantRebirth(t, out, "a", "n1")
}

func TestTimestamps(t *testing.T) {
	const day = int64(24 * time.Hour / time.Millisecond)
	tests := []struct {
		name        string
		metricTS    int64 // 0: none
		payloadTS   int64 // 0: none
		historical  bool
		wantTS      int64
		wantArrival bool
		wantReason  string // the metric is skipped with this reason
	}{
		{"metric timestamp wins", t0 - 5000, t0 - 1000, false, t0 - 5000, false, ""},
		{"payload timestamp", 0, t0 - 1000, false, t0 - 1000, false, ""},
		{"none: arrival", 0, 0, false, t0, true, ""},
		{"a week old is fine", t0 - 7*day, 0, false, t0 - 7*day, false, ""},
		{"5 min ahead is fine", t0 + 300_000, 0, false, t0 + 300_000, false, ""},
		{"11 min ahead", t0 + 660_000, 0, false, 0, false, plant.ReasonFutureTimestamp},
		{"payload 11 min ahead", 0, t0 + 660_000, false, 0, false, plant.ReasonFutureTimestamp},
		{"before 2000", 915_148_800_000, 0, false, 0, false, plant.ReasonBadTimestamp},
		{"in seconds, not ms", t0 / 1000, 0, false, 0, false, plant.ReasonBadTimestamp},
		{"after 2200", 7_258_118_400_001, 0, false, 0, false, plant.ReasonBadTimestamp},
		{"historical with its own time", t0 - day, t0, true, t0 - day, false, ""},
		{"historical with the payload's time", 0, t0 - 1000, true, t0 - 1000, false, ""},
		{"historical without time", 0, 0, true, 0, false, plant.ReasonBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{})
			m := withDouble(metric("temp", 1, pb.DataType_Double), 20)
			if tt.metricTS != 0 {
				withTS(m, tt.metricTS)
			}
			if tt.historical {
				m.IsHistorical = proto.Bool(true)
			}
			for _, kind := range []string{"NBIRTH", "NDATA"} {
				seq := int64(0)
				if kind == "NDATA" {
					seq = 1
					m.Name, m.Datatype = nil, nil
				}
				rs, rej := handle(t, h, "spBv1.0/g/"+kind+"/e", encode(t, seq, tt.payloadTS, m), t0)
				if tt.wantReason != "" {
					if len(rs) != 0 || rej == nil || rej.Reason != tt.wantReason || !strings.Contains(rej.Detail, `"temp"`) {
						t.Errorf("%s: readings %+v, reject %+v; want none and a %s reject naming temp", kind, rs, rej, tt.wantReason)
					}
					continue
				}
				noReject(t, rej)
				if len(rs) != 1 || rs[0].TS != tt.wantTS || rs[0].Arrival != tt.wantArrival {
					t.Errorf("%s: readings %+v, want one at %d with arrival %v", kind, rs, tt.wantTS, tt.wantArrival)
				}
			}
		})
	}
}

func TestNamesInBirths(t *testing.T) {
	out := &outbox{}
	h := New(Config{MaxName: 16, Publish: out.publish})
	rs, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0,
		withInt(metric("ok", 1, pb.DataType_Int32), 1),
		withInt(metric("bad\x07bell", 2, pb.DataType_Int32), 2),
		withInt(metric(strings.Repeat("n", 17), 3, pb.DataType_Int32), 3),
		withInt(metric("", 4, pb.DataType_Int32), 4),
		withInt(metric("ok", 5, pb.DataType_Int32), 5),
		withInt(metric("other", 1, pb.DataType_Int32), 6),
		withInt(metric("bad\xffutf8", noAlias, pb.DataType_Int32), 7),
	), t0)
	if len(rs) != 1 || rs[0].Metric != "ok" || rs[0].Value != 1 {
		t.Errorf("readings = %+v, want only ok = 1", rs)
	}
	if rej == nil || rej.Reason != plant.ReasonNameInvalid || !strings.Contains(rej.Detail, "1 value(s) stored, 6 metric(s) skipped") {
		t.Fatalf("reject = %+v, want name_invalid with 6 skipped", rej)
	}
	// Data of the metrics whose names were rejected are dropped without a
	// second reject and without asking for a rebirth over and over.
	rs, rej = handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 1, t0, withInt(metric("", 2, 0), 1), withInt(metric("", 3, 0), 1), withInt(metric("", 1, 0), 9)), t0)
	noReject(t, rej)
	if len(rs) != 1 || rs[0].Value != 9 {
		t.Errorf("readings = %+v, want ok = 9", rs)
	}
	if msgs := out.take(); len(msgs) != 0 {
		t.Errorf("published %d messages, want none", len(msgs))
	}
	_, rej = handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 2, t0, withInt(metric("x\x00", noAlias, pb.DataType_Int32), 1)), t0)
	if rej == nil || rej.Reason != plant.ReasonNameInvalid {
		t.Errorf("reject = %+v, want name_invalid for a data metric named with a control character", rej)
	}
}

func TestUnits(t *testing.T) {
	h := New(Config{})
	m := withDouble(metric("temp", 1, pb.DataType_Double), 20)
	m.Properties = &pb.Payload_PropertySet{
		Keys:   []string{"engUnit"},
		Values: []*pb.Payload_PropertyValue{{Type: proto.Uint32(uint32(pb.DataType_String)), Value: &pb.Payload_PropertyValue_StringValue{StringValue: "°C"}}},
	}
	long := withDouble(metric("long", 2, pb.DataType_Double), 1)
	long.Properties = &pb.Payload_PropertySet{Keys: []string{"engUnit", "extra"}, Values: []*pb.Payload_PropertyValue{{Value: &pb.Payload_PropertyValue_StringValue{StringValue: strings.Repeat("u", 33)}}}}
	rs, _ := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, m, long), t0)
	got := byMetric(rs)
	if got["temp"].Unit != "°C" || got["long"].Unit != "" {
		t.Errorf("units = %q, %q; want °C and none", got["temp"].Unit, got["long"].Unit)
	}
	rs, _ = handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 1, t0, withDouble(metric("", 1, 0), 21)), t0)
	if len(rs) != 1 || rs[0].Unit != "°C" {
		t.Errorf("data readings = %+v, want the birth's unit", rs)
	}
}

func TestBadPayloads(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		payload []byte
		reason  string
	}{
		{"not protobuf", Config{}, []byte(`{"value": 1}`), plant.ReasonBadSparkplug},
		{"truncated", Config{}, encode(t, 0, t0, withDouble(metric("x", 1, pb.DataType_Double), 1))[:10], plant.ReasonBadSparkplug},
		{"length past the end", Config{}, []byte{0x12, 0x05, 0x01}, plant.ReasonBadSparkplug},
		{"bad metric inside", Config{}, []byte{0x12, 0x02, 0x0a, 0x05}, plant.ReasonBadSparkplug},
		{"too many metrics", Config{MaxValues: 3}, encode(t, 0, t0, metric("a", 1, 9), metric("b", 2, 9), metric("c", 3, 9), metric("d", 4, 9)), plant.ReasonTooManyValues},
		{"too large", Config{MaxPayload: 16}, encode(t, 0, t0, withString(metric("a", 1, pb.DataType_String), strings.Repeat("x", 20))), plant.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.cfg)
			rs, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", tt.payload, t0)
			if len(rs) != 0 || rej == nil || rej.Reason != tt.reason || rej.Detail == "" {
				t.Fatalf("readings %+v, reject %+v; want none and %s", rs, rej, tt.reason)
			}
			if len(rej.Payload) != min(len(tt.payload), maxRejectPayload) {
				t.Errorf("reject keeps %d payload bytes, want %d", len(rej.Payload), min(len(tt.payload), maxRejectPayload))
			}
			wantDecodeErrors := int64(0)
			if tt.reason == plant.ReasonBadSparkplug {
				wantDecodeErrors = 1
			}
			if c := h.Counts(); c.DecodeErrors != wantDecodeErrors || c.Births != 0 {
				t.Errorf("decode errors = %d, births = %d; want %d and 0", c.DecodeErrors, c.Births, wantDecodeErrors)
			}
		})
	}
}

func TestMemoryBounds(t *testing.T) {
	ms := func(n int, base int64) []*pb.Payload_Metric {
		var out []*pb.Payload_Metric
		for i := range n {
			out = append(out, withInt(metric(fmt.Sprint("m", i), base+int64(i), pb.DataType_Int32), 1))
		}
		return out
	}
	t.Run("nodes", func(t *testing.T) {
		h := New(Config{MaxNodes: 2})
		birth := func(edge string) *plant.Reject {
			_, rej := handle(t, h, "spBv1.0/g/NBIRTH/"+edge, encode(t, 0, t0, bdSeq(0)), t0)
			return rej
		}
		noReject(t, birth("a"))
		noReject(t, birth("b"))
		if rej := birth("c"); rej == nil || rej.Reason != plant.ReasonTagLimit || !strings.Contains(rej.Detail, "refused") {
			t.Fatalf("third birth: reject %+v, want tag_limit saying it was refused", rej)
		}
		handle(t, h, "spBv1.0/g/NDEATH/a", encode(t, noSeq, 0, bdSeq(0)), t0)
		noReject(t, birth("c")) // takes the dead node's place
		if c := h.Counts(); c.Nodes != 2 || c.RefusedBirths != 1 {
			t.Errorf("nodes = %d, refused births = %d; want 2 and 1", c.Nodes, c.RefusedBirths)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		h := New(Config{MaxMetrics: 5})
		_, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, ms(3, 0)...), t0)
		noReject(t, rej)
		_, rej = handle(t, h, "spBv1.0/g/DBIRTH/e/d", encode(t, 1, t0, ms(2, 10)...), t0) // 2 metrics + the device: 6 > 5
		if rej == nil || rej.Reason != plant.ReasonTagLimit {
			t.Fatalf("reject %+v, want tag_limit", rej)
		}
		_, rej = handle(t, h, "spBv1.0/g/DBIRTH/e/d", encode(t, 2, t0, ms(1, 10)...), t0)
		noReject(t, rej)
		if c := h.Counts(); c.Definitions != 5 {
			t.Errorf("definitions = %d, want 5", c.Definitions)
		}
	})
	t.Run("an NBIRTH too large for the tables", func(t *testing.T) {
		out := &outbox{}
		h := New(Config{MaxMetrics: 2, Publish: out.publish})
		_, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, ms(3, 0)...), t0)
		if rej == nil || rej.Reason != plant.ReasonTagLimit || !strings.Contains(rej.Detail, "defines 3 metrics") {
			t.Fatalf("reject %+v, want tag_limit naming the 3 metrics", rej)
		}
		// The node is not alive: its data ask for a rebirth rather than
		// being taken for metrics of a session Andon refused.
		rs, _ := handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 1, t0, withInt(metric("", 0, 0), 1)), t0)
		if len(rs) != 0 {
			t.Errorf("got %d readings, want none", len(rs))
		}
		wantRebirth(t, out, "g", "e")
		if c := h.Counts(); c.RefusedBirths != 1 || c.Definitions != 0 || c.Births != 0 {
			t.Errorf("refused = %d, definitions = %d, births = %d; want 1, 0, 0", c.RefusedBirths, c.Definitions, c.Births)
		}
	})
	t.Run("a device cannot grow the tables by rebirths", func(t *testing.T) {
		h := New(Config{MaxMetrics: 1000})
		handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0), t0)
		for i := range 100 {
			_, rej := handle(t, h, "spBv1.0/g/DBIRTH/e/d", encode(t, int64(i+1)%256, t0, withInt(metric(fmt.Sprint("m", i), int64(i), pb.DataType_Int32), 1)), t0)
			noReject(t, rej)
		}
		if c := h.Counts(); c.Definitions != 2 {
			t.Errorf("definitions = %d, want 2 (one device, one metric)", c.Definitions)
		}
	})
	t.Run("many devices are bounded", func(t *testing.T) {
		h := New(Config{MaxMetrics: 50})
		handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0), t0)
		refused := 0
		for i := range 100 {
			_, rej := handle(t, h, fmt.Sprint("spBv1.0/g/DBIRTH/e/d", i), encode(t, int64(i+1)%256, t0), t0)
			if rej != nil {
				refused++
			}
		}
		if c := h.Counts(); c.Definitions != 50 || refused != 50 {
			t.Errorf("definitions = %d, refused = %d; want 50 and 50", c.Definitions, refused)
		}
	})
}

func TestStateAndRebirthRequest(t *testing.T) {
	if got := StateTopic("andon"); got != "spBv1.0/STATE/andon" {
		t.Errorf("StateTopic = %q", got)
	}
	for _, online := range []bool{true, false} {
		var v struct {
			Online    *bool  `json:"online"`
			Timestamp *int64 `json:"timestamp"`
		}
		b := StatePayload(online, t0)
		if err := json.Unmarshal(b, &v); err != nil || v.Online == nil || *v.Online != online || v.Timestamp == nil || *v.Timestamp != t0 {
			t.Errorf("StatePayload(%v) = %s, want online %v and timestamp %d", online, b, online, t0)
		}
	}
	topic, payload := RebirthRequest("g", "e", t0)
	o := &outbox{}
	_ = o.publish(topic, payload)
	wantRebirth(t, o, "g", "e")
	var p pb.Payload
	if err := proto.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.GetTimestamp() != uint64(t0) || p.Seq != nil || p.Metrics[0].GetTimestamp() != uint64(t0) {
		t.Errorf("rebirth payload = %v, want timestamps %d and no seq", &p, t0)
	}
	if got := New(Config{}).HostID(); got != "andon" {
		t.Errorf("default host id = %q, want andon", got)
	}
}

// TestConcurrentUse runs every entry point from many goroutines; under the
// race detector it checks the locking, and the counts check nothing was lost.
func TestConcurrentUse(t *testing.T) {
	out := &outbox{}
	h := New(Config{RebirthOnGap: true, ReorderTimeout: time.Millisecond, Publish: out.publish})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			edge := fmt.Sprint("e", g)
			for i := range 200 {
				recv := t0 + int64(i)
				h.Handle("spBv1.0/g/NBIRTH/"+edge, encode(t, 0, recv, bdSeq(uint64(i)), withInt(metric("n", 1, pb.DataType_Int32), 1)), recv)
				h.Handle("spBv1.0/g/NDATA/"+edge, encode(t, 2, recv, withInt(metric("", 1, 0), 2)), recv)
				h.Tick(recv + 10)
				h.Counts()
				if i%50 == 0 {
					h.Lost(recv)
				}
			}
		})
	}
	wg.Wait()
	if c := h.Counts(); c.Births != 8*200 || c.SeqGaps == 0 {
		t.Errorf("births = %d, seq gaps = %d; want %d and some", c.Births, c.SeqGaps, 8*200)
	}
}

func TestRejectDetailIsBounded(t *testing.T) {
	out := &outbox{}
	h := New(Config{Publish: out.publish})
	var bad []*pb.Payload_Metric
	for i := range 12 {
		bad = append(bad, withString(metric(fmt.Sprint("s", i), int64(i), pb.DataType_String), "\x01"))
	}
	_, rej := handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0, bad...), t0)
	if rej == nil || !strings.Contains(rej.Detail, "No value was stored; 12 metric(s) skipped") || !strings.Contains(rej.Detail, "; and 2 more.") {
		t.Fatalf("reject %+v, want 12 skipped, 10 named and 2 more", rej)
	}
	var unknown []*pb.Payload_Metric
	for i := range 15 {
		unknown = append(unknown, withInt(metric("", int64(100+i), 0), 1))
	}
	_, rej = handle(t, h, "spBv1.0/g/NDATA/e", encode(t, 1, t0, unknown...), t0)
	if rej == nil || !strings.Contains(rej.Detail, "15 metric(s)") || !strings.Contains(rej.Detail, `"alias 109" and 5 more`) {
		t.Fatalf("reject %+v, want 15 unknown, 10 named and 5 more", rej)
	}
	wantRebirth(t, out, "g", "e")
}
