package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"

	"andon/plant"
)

// startBroker runs an embedded broker on a free 127.0.0.1 port until the
// test ends and returns its address. It admits anonymous clients, as the
// tests of ingest itself need no credentials.
func startBroker(t *testing.T, sink Sink, reg prometheus.Registerer) string {
	t.Helper()
	return startBrokerWith(t, BrokerConfig{Sink: sink, Registerer: reg, AllowAnonymous: true})
}

// startBrokerWith runs a broker with cfg on a free 127.0.0.1 port (or on
// cfg.Listener when set) until the test ends and returns its address.
func startBrokerWith(t *testing.T, cfg BrokerConfig) string {
	t.Helper()
	if cfg.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Listener = ln
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln := cfg.Listener
	b, err := NewBroker(cfg)
	if err != nil {
		t.Fatalf("NewBroker: %v", err)
	}
	if got := b.Addr().String(); got != ln.Addr().String() {
		t.Errorf("Addr() = %s, want %s", got, ln.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("broker Run: %v", err)
			}
		case <-time.After(waitTimeout):
			buf := make([]byte, 1<<22)
			t.Errorf("broker did not stop\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	return ln.Addr().String()
}

func TestBrokerIngests(t *testing.T) {
	tests := []struct {
		name      string
		qos       byte
		wantWrite bool // waited for the commit before the ack
	}{
		{"qos0", 0, false},
		{"qos1", 1, true},
		{"qos2", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &testSink{}
			reg := prometheus.NewRegistry()
			addr := startBroker(t, sink, reg)
			sub := dialPaho(t, addr, "sub")
			if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{
				Subscriptions: []paho.SubscribeOptions{{Topic: "acme/#", QoS: 1}},
			}); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			pub := dialPaho(t, addr, "pub")
			pub.publish(t, "acme/hall/line1/cnc/temp", "23.5", tt.qos)
			if tt.wantWrite {
				// The ack means "stored": no waiting allowed here.
				if n := sink.count(); n != 1 {
					t.Fatalf("after the ack the sink holds %d readings, want 1", n)
				}
			} else {
				waitFor(t, "the reading", func() bool { return sink.count() == 1 })
			}
			rs, _ := sink.snapshot()
			want := plant.Reading{
				Path:   plant.Path{Site: "acme", Area: "hall", Line: "line1", Machine: "cnc"},
				Metric: "temp", Value: 23.5, Topic: "acme/hall/line1/cnc/temp", TS: rs[0].TS, Arrival: true,
			}
			if rs[0] != want {
				t.Errorf("reading %+v, want %+v", rs[0], want)
			}
			if d := time.Since(time.UnixMilli(rs[0].TS)); d < 0 || d > time.Hour {
				t.Errorf("reading time %d is not the receive time", rs[0].TS)
			}
			sink.mu.Lock()
			writes, tries := sink.writes, sink.tries
			sink.mu.Unlock()
			if (writes == 1) != tt.wantWrite || (tries == 1) == tt.wantWrite {
				t.Errorf("writes=%d tries=%d, want Write=%v", writes, tries, tt.wantWrite)
			}
			waitFor(t, "the forwarded message", func() bool { return len(sub.messages()) == 1 })
			if got := string(sub.messages()[0].Payload); got != "23.5" {
				t.Errorf("forwarded payload %q", got)
			}
			if got := counterValue(t, reg, "andon_mqtt_messages_total", "source", "embedded"); got != 1 {
				t.Errorf("andon_mqtt_messages_total{source=embedded} = %v, want 1", got)
			}
		})
	}
}

func TestBrokerRejectKeepsConnection(t *testing.T) {
	sink := &testSink{}
	addr := startBroker(t, sink, nil)
	sub := dialPaho(t, addr, "sub")
	if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}},
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pub := dialPaho(t, addr, "pub")

	// A bad payload is acknowledged (publish returns without error), not stored,
	// handed to the sink as a reject, and still forwarded.
	pub.publish(t, "line1/press/temp", "hot!", 1)
	rs, rejects := sink.snapshot()
	if len(rs) != 0 || len(rejects) != 1 || rejects[0].Reason != plant.ReasonNotANumber {
		t.Fatalf("readings %v, rejects %+v; want one not_a_number reject", rs, rejects)
	}
	if rejects[0].Topic != "line1/press/temp" || string(rejects[0].Payload) != "hot!" {
		t.Errorf("reject %+v", rejects[0])
	}

	// The same connection still works.
	pub.publish(t, "line1/press/temp", "71", 1)
	if rs, _ := sink.snapshot(); len(rs) != 1 || rs[0].Value != 71 {
		t.Fatalf("readings %+v, want the one of 71", rs)
	}
	waitFor(t, "both messages forwarded", func() bool { return len(sub.messages()) == 2 })

	// $SYS-like topics are neither readings nor rejects.
	pub.publish(t, "$internal/x", "whatever", 1)
	if rs, rejects := sink.snapshot(); len(rs) != 1 || len(rejects) != 1 {
		t.Errorf("a $ topic changed the sink: %d readings, %d rejects", len(rs), len(rejects))
	}

	// A payload over the limit is a reject too, with a bounded copy kept.
	pub.publish(t, "line1/press/temp", strings.Repeat("9", 70<<10), 1)
	_, rejects = sink.snapshot()
	if len(rejects) != 2 || rejects[1].Reason != plant.ReasonTooLarge || len(rejects[1].Payload) != 256 {
		t.Errorf("rejects %d, last %q with %d payload bytes; want payload_too_large", len(rejects), rejects[len(rejects)-1].Reason, len(rejects[len(rejects)-1].Payload))
	}
	pub.publish(t, "line1/press/temp", "72", 1)
	if n := sink.count(); n != 2 {
		t.Errorf("%d readings after the oversized payload, want 2", n)
	}
}

func TestBrokerStoreFailureWithholdsAck(t *testing.T) {
	sink := &testSink{fail: errStoreDown}
	addr := startBroker(t, sink, nil)
	sub := dialPaho(t, addr, "sub")
	if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}},
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pub := dialPaho(t, addr, "pub")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := pub.Publish(ctx, &paho.Publish{Topic: "m/v", Payload: []byte("1"), QoS: 1})
	if err == nil {
		t.Fatalf("publish completed with %+v; want no PUBACK", resp)
	}
	// The client is disconnected so that it resends on its next connection.
	select {
	case <-pub.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the publisher was not disconnected")
	}
	if rs, _ := sink.snapshot(); len(rs) != 0 {
		t.Errorf("readings %+v stored by a failing store", rs)
	}

	// Once the store works again, a new connection delivers: the broker
	// itself is fine, and the message that failed was never forwarded.
	sink.setFail(nil)
	pub2 := dialPaho(t, addr, "pub2")
	pub2.publish(t, "m/v", "2", 1)
	if rs, _ := sink.snapshot(); len(rs) != 1 || rs[0].Value != 2 {
		t.Fatalf("readings %+v, want the one of 2", rs)
	}
	waitFor(t, "the forwarded message", func() bool { return len(sub.messages()) >= 1 })
	for _, m := range sub.messages() {
		if string(m.Payload) != "2" {
			t.Errorf("forwarded %q, which was never stored", m.Payload)
		}
	}
}

func TestBrokerQoS0QueueFullStillForwards(t *testing.T) {
	sink := &testSink{full: true}
	addr := startBroker(t, sink, nil)
	sub := dialPaho(t, addr, "sub")
	if _, err := sub.Subscribe(context.Background(), &paho.Subscribe{
		Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 0}},
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pub := dialPaho(t, addr, "pub")
	pub.publish(t, "m/v", "5", 0)
	waitFor(t, "the forwarded message", func() bool { return len(sub.messages()) == 1 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.tries != 1 || len(sink.readings) != 0 {
		t.Errorf("tries=%d readings=%d, want one dropped TryEnqueue", sink.tries, len(sink.readings))
	}
}

// TestBrokerMQTT311 speaks MQTT 3.1.1 by hand: the embedded broker must
// serve older devices too.
func TestBrokerMQTT311(t *testing.T) {
	sink := &testSink{}
	addr := startBroker(t, sink, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))

	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 3, 'v', '3', '1'}
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil {
		t.Fatalf("read connack: %v", err)
	}
	if !bytes.Equal(connack, []byte{0x20, 2, 0, 0}) {
		t.Fatalf("connack % x", connack)
	}
	topic, payload := "l1/m1/count", "17"
	pub := []byte{0x32, byte(2 + len(topic) + 2 + len(payload)), 0, byte(len(topic))}
	pub = append(pub, topic...)
	pub = append(pub, 0, 1) // packet id 1
	pub = append(pub, payload...)
	if _, err := conn.Write(pub); err != nil {
		t.Fatal(err)
	}
	puback := make([]byte, 4)
	if _, err := io.ReadFull(conn, puback); err != nil {
		t.Fatalf("read puback: %v", err)
	}
	if !bytes.Equal(puback, []byte{0x40, 2, 0, 1}) {
		t.Fatalf("puback % x", puback)
	}
	rs, _ := sink.snapshot()
	if len(rs) != 1 || rs[0].Metric != "count" || rs[0].Value != 17 || rs[0].Path.Machine != "m1" {
		t.Fatalf("readings %+v", rs)
	}
}

func TestBrokerStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroker(BrokerConfig{Listener: ln, Sink: &testSink{}, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	dialPaho(t, ln.Addr().String(), "c")
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after Run returned")
	}
}

func TestNewBrokerValidates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name string
		cfg  BrokerConfig
	}{
		{"no listener", BrokerConfig{Sink: &testSink{}}},
		{"no sink", BrokerConfig{Listener: ln}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewBroker(tt.cfg); err == nil {
				t.Error("NewBroker accepted an incomplete config")
			}
		})
	}
}

// TestBrokerWithDBWriter runs the real path: embedded broker into the real
// writer on a SQLite file. The PUBACK must mean the readings are in the store.
func TestBrokerWithDBWriter(t *testing.T) {
	store, w := startWriter(t)
	addr := startBroker(t, w, nil) // stops before the writer: cleanups run last-in first-out

	pub := dialPaho(t, addr, "plc")
	pub.publish(t, "acme/hall/line1/cnc", `{"temperature": 23.5, "state": "running", "timestamp_ms": 1732450000123}`, 1)

	tags, err := store.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]plant.Tag{}
	for _, tg := range tags {
		got[tg.Metric] = tg
	}
	if tg, ok := got["temperature"]; !ok || tg.LastValue != 23.5 || tg.LastTS != 1732450000123 || tg.Machine != "acme/hall/line1/cnc" {
		t.Errorf("temperature tag %+v (found %v)", tg, ok)
	}
	if tg, ok := got["state"]; !ok || !tg.Text || tg.LastWord != "running" {
		t.Errorf("state tag %+v (found %v)", tg, ok)
	}
}
