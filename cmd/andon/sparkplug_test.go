package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"google.golang.org/protobuf/proto"

	"andon/ingest/mqtttest"
	"andon/ingest/sparkplug/sparkplugpb"
)

// Sparkplug B datatypes the test edge node uses (Sparkplug 3.0 §6.4.16).
const (
	spbUInt64  = 8
	spbDouble  = 10
	spbBoolean = 11
	spbString  = 12
)

// edgeNode is a Sparkplug B edge node for tests: a real MQTT connection
// with its NDEATH as last will, that records the commands it is sent.
type edgeNode struct {
	t           *testing.T
	addr        string
	group, node string
	bdSeq       uint64
	seq         uint64
	lastMS      int64 // payload times only grow: equal times of one tag are one reading
	conn        net.Conn
	c           *paho.Client

	mu   sync.Mutex
	cmds []string // topics of the commands received
}

func newEdgeNode(t *testing.T, addr, group, node string) *edgeNode {
	e := &edgeNode{t: t, addr: addr, group: group, node: node}
	e.connect()
	t.Cleanup(func() { e.conn.Close() })
	return e
}

func (e *edgeNode) topic(kind, device string) string {
	t := "spBv1.0/" + e.group + "/" + kind + "/" + e.node
	if device != "" {
		t += "/" + device
	}
	return t
}

// connect opens a connection whose will is the NDEATH of a new bdSeq, and
// subscribes to the node's commands, as an edge node does.
func (e *edgeNode) connect() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.conn = conn
	e.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			e.mu.Lock()
			e.cmds = append(e.cmds, pr.Packet.Topic)
			e.mu.Unlock()
			return true, nil
		},
	}})
	e.bdSeq++
	death := e.payload(0, false, metric("bdSeq", 0, spbUInt64, e.bdSeq))
	ack, err := e.c.Connect(ctx, &paho.Connect{
		ClientID: fmt.Sprintf("edge-%s-%d", e.node, time.Now().UnixNano()), CleanStart: true, KeepAlive: 30,
		WillMessage: &paho.WillMessage{Topic: e.topic("NDEATH", ""), Payload: death, QoS: 1}, WillProperties: &paho.WillProperties{},
	})
	if err != nil || ack.ReasonCode != 0 {
		e.t.Fatalf("edge node connect: %v %v", err, ack)
	}
	if _, err := e.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: e.topic("NCMD", ""), QoS: 0}}}); err != nil {
		e.t.Fatal(err)
	}
}

// drop closes the connection without a DISCONNECT, as a pulled cable
// does: the broker then publishes the will.
func (e *edgeNode) drop() { e.conn.Close() }

func metric(name string, alias uint64, datatype uint32, v any) *sparkplugpb.Payload_Metric {
	m := &sparkplugpb.Payload_Metric{Datatype: proto.Uint32(datatype)}
	if name != "" {
		m.Name = proto.String(name)
	}
	if alias != 0 {
		m.Alias = proto.Uint64(alias)
	}
	switch v := v.(type) {
	case float64:
		m.Value = &sparkplugpb.Payload_Metric_DoubleValue{DoubleValue: v}
	case uint64:
		m.Value = &sparkplugpb.Payload_Metric_LongValue{LongValue: v}
	case bool:
		m.Value = &sparkplugpb.Payload_Metric_BooleanValue{BooleanValue: v}
	case string:
		m.Value = &sparkplugpb.Payload_Metric_StringValue{StringValue: v}
	}
	return m
}

// payload encodes metrics with the next seq (when withSeq) and the time now.
func (e *edgeNode) payload(seq uint64, withSeq bool, ms ...*sparkplugpb.Payload_Metric) []byte {
	e.lastMS = max(time.Now().UnixMilli(), e.lastMS+1)
	p := &sparkplugpb.Payload{Timestamp: proto.Uint64(uint64(e.lastMS)), Metrics: ms}
	if withSeq {
		p.Seq = proto.Uint64(seq)
	}
	b, err := proto.Marshal(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *edgeNode) publish(kind, device string, ms ...*sparkplugpb.Payload_Metric) {
	e.t.Helper()
	if kind == "NBIRTH" {
		e.seq = 0
		ms = append(ms, metric("bdSeq", 0, spbUInt64, e.bdSeq))
	}
	b := e.payload(e.seq, true, ms...)
	e.seq = (e.seq + 1) % 256
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.c.Publish(ctx, &paho.Publish{Topic: e.topic(kind, device), Payload: b, QoS: 1}); err != nil {
		e.t.Fatalf("publish %s: %v", kind, err)
	}
}

func (e *edgeNode) commands() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.cmds...)
}

// birth publishes the node's and its filler's births: names, aliases and
// first values.
func (e *edgeNode) birth() {
	e.publish("NBIRTH", "", metric("Node Control/Rebirth", 0, spbBoolean, false), metric("uptime", 0, spbUInt64, uint64(5)))
	e.publish("DBIRTH", "filler-1",
		metric("speed", 1, spbDouble, 12.5),
		metric("state", 2, spbString, "running"),
		metric("count", 3, spbUInt64, uint64(1000)))
}

// machinePage returns the filler's machine page once cond holds.
func waitPage(t *testing.T, s *server, machine, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if id, ok := machineIDs(t, s)[machine]; ok {
			_, body := get(t, s.url(fmt.Sprintf("/machines/%d", id)))
			if cond(body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page of %s never showed it:\n%s\n%s", what, machine, body, s.stderr)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: %s never appeared on the overview\n%s", what, machine, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isOffline(body string) bool {
	return strings.Contains(body, `data-testid="offline-note"`) && strings.Contains(body, "state-offline")
}

func isLive(speed string) func(string) bool {
	return func(body string) bool {
		return !strings.Contains(body, `data-testid="offline-note"`) && strings.Contains(body, "state-running") && strings.Contains(body, speed)
	}
}

// TestSparkplugEdgeNode points a Sparkplug B edge node at the embedded
// broker: its device shows with its values, goes offline with stale values
// on DDEATH and on the node's will, comes back on rebirth, and data from an
// unknown session make Andon ask the node for a rebirth.
func TestSparkplugEdgeNode(t *testing.T) {
	s := startServe(t, nil)
	e := newEdgeNode(t, s.addrs.MQTT, "plant-a", "edge-1")
	e.birth()
	e.publish("DDATA", "filler-1", metric("", 1, spbDouble, 13.75)) // by alias alone
	waitPage(t, s, "filler-1", "data after births", isLive("13.75"))
	if _, ok := machineIDs(t, s)["edge-1"]; !ok {
		t.Error("the edge node's own metrics made no machine")
	}

	e.publish("DDEATH", "filler-1")
	body := waitPage(t, s, "filler-1", "DDEATH", isOffline)
	if !strings.Contains(body, `data-testid="stale"`) || !strings.Contains(body, "13.75") {
		t.Errorf("after DDEATH the last values should show, marked stale:\n%s", body)
	}

	e.publish("DBIRTH", "filler-1", metric("speed", 1, spbDouble, 14.0), metric("state", 2, spbString, "running"))
	waitPage(t, s, "filler-1", "rebirth of the device", isLive("14"))

	// A pulled cable: the broker publishes the NDEATH will, and every
	// device of the node goes offline.
	e.drop()
	waitPage(t, s, "filler-1", "the node's will", isOffline)
	waitPage(t, s, "edge-1", "the node's will", isOffline)

	// Back with a new session, the node sends data before its births (a
	// bug, or births Andon missed): nothing is stored, a rebirth is asked.
	e.connect()
	e.publish("DDATA", "filler-1", metric("", 1, spbDouble, 4321.0))
	deadline := time.Now().Add(10 * time.Second)
	for !slicesContains(e.commands(), e.topic("NCMD", "")) {
		if time.Now().After(deadline) {
			t.Fatalf("no rebirth request on %s; commands seen: %v\n%s", e.topic("NCMD", ""), e.commands(), s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.birth()
	e.publish("DDATA", "filler-1", metric("", 1, spbDouble, 15.5))
	body = waitPage(t, s, "filler-1", "after the rebirth", isLive("15.5"))
	if strings.Contains(body, "4,321") {
		t.Errorf("data sent before the births was stored:\n%s", body)
	}
	_, metrics := get(t, s.url("/metrics"))
	for _, want := range []string{
		`andon_sparkplug_events_total{event="birth",source="embedded"} 5`,
		`andon_sparkplug_events_total{event="death",source="embedded"} 2`,
		`andon_sparkplug_events_total{event="rebirth_request",source="embedded"} 1`,
		`andon_readings_rejected_total{reason="sparkplug_no_birth"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "andon_sparkplug_events_total"))
		}
	}
}

func slicesContains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// stateWatcher subscribes to a host's STATE topic and keeps what it hears.
type stateWatcher struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func watchState(t *testing.T, addr, host string) *stateWatcher {
	t.Helper()
	w := &stateWatcher{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			var m map[string]any
			if json.Unmarshal(pr.Packet.Payload, &m) == nil {
				w.mu.Lock()
				w.msgs = append(w.msgs, m)
				w.mu.Unlock()
			}
			return true, nil
		},
	}})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: fmt.Sprintf("watch-%d", time.Now().UnixNano()), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "spBv1.0/STATE/" + host, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitOnline waits for a STATE message saying online (true) or offline.
func (w *stateWatcher) wait(t *testing.T, online bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.mu.Lock()
		for _, m := range w.msgs {
			if m["online"] == online {
				w.mu.Unlock()
				return m
			}
		}
		got := fmt.Sprint(w.msgs)
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no STATE online=%v; heard %s", online, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSparkplugHostExternalBroker runs Andon as the Sparkplug host
// application of a real mosquitto: it publishes its STATE birth (retained,
// so a node starting later sees it) and, on leaving, its death with the
// same timestamp; losing the broker makes every device stale until its
// next birth.
func TestSparkplugHostExternalBroker(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t)
	s := startServe(t, nil, "--mqtt-listen", "off", "--mqtt-url", "mqtt://"+mosq.Addr, "--sparkplug-host-id", "scada-1")
	w := watchState(t, mosq.Addr, "scada-1")
	born := w.wait(t, true)

	e := newEdgeNode(t, mosq.Addr, "plant-b", "edge-2")
	// The host subscribes after its birth; births published before that
	// are lost to it, and its rebirth request brings them back.
	deadline := time.Now().Add(15 * time.Second)
	for {
		e.birth()
		e.publish("DDATA", "filler-1", metric("", 1, spbDouble, 21.25))
		if id, ok := machineIDs(t, s)["filler-1"]; ok {
			if _, body := get(t, s.url(fmt.Sprintf("/machines/%d", id))); isLive("21.25")(body) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge node's data never showed\n%s", s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The broker goes away: the host loses every node's state.
	mosq.Stop()
	waitPage(t, s, "filler-1", "losing the broker", isOffline)
	mosq.Start()
	e.connect()
	deadline = time.Now().Add(20 * time.Second)
	for {
		e.birth()
		if id, ok := machineIDs(t, s)["filler-1"]; ok {
			if _, body := get(t, s.url(fmt.Sprintf("/machines/%d", id))); isLive("12.5")(body) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device never came back after the broker did\n%s", s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	w2 := watchState(t, mosq.Addr, "scada-1")
	reborn := w2.wait(t, true) // retained: a node connecting now sees it at once
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	death := w2.wait(t, false)
	if death["timestamp"] != reborn["timestamp"] {
		t.Errorf("STATE death timestamp %v, want its birth's %v", death["timestamp"], reborn["timestamp"])
	}
	if born["timestamp"] == nil {
		t.Errorf("STATE birth without a timestamp: %v", born)
	}
}

// grepLines returns the lines of s holding sub, for a failure message.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
