package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"andon/ingest/mqtttest"
	"andon/plant"
)

// runClient starts an external-broker client; the returned stop ends it and
// waits for Run to return. It also stops when the test ends.
func runClient(t *testing.T, addr, clientID string, sink Sink, reg prometheus.Registerer) (*Client, func()) {
	t.Helper()
	c, err := NewClient(ClientConfig{
		URL:        "mqtt://" + addr,
		ClientID:   clientID,
		Topics:     []string{"plant/#"},
		Sink:       sink,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg,
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("client Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("client did not stop")
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the client to subscribe", func() bool { return c.Connected() && c.subscribed.Load() > 0 })
	return c, stop
}

// values returns the numeric values of readings of one metric, as a set.
func values(rs []plant.Reading, metric string) map[float64]bool {
	out := map[float64]bool{}
	for _, r := range rs {
		if r.Metric == metric {
			out[r.Value] = true
		}
	}
	return out
}

func TestClientPersistentSession(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	pub := dialPaho(t, m.Addr, "publisher")
	reg := prometheus.NewRegistry()
	sink := &testSink{}
	c, stop := runClient(t, m.Addr, "andon-test", sink, reg)
	if got := counterValue(t, reg, "andon_mqtt_connected", "", ""); got != 1 {
		t.Errorf("andon_mqtt_connected = %v, want 1", got)
	}

	// A bad payload first: it must be acknowledged, or it would stall
	// everything after it.
	pub.publish(t, "plant/l1/m1/count", "broken!", 1)
	for i := range 10 {
		pub.publish(t, "plant/l1/m1/count", strconv.Itoa(i), 1)
	}
	waitFor(t, "10 readings", func() bool { return sink.count() == 10 })
	rs, rejects := sink.snapshot()
	if len(rejects) != 1 || rejects[0].Reason != plant.ReasonNotANumber {
		t.Errorf("rejects %+v, want one not_a_number", rejects)
	}
	if rs[0].Path != (plant.Path{Area: "plant", Line: "l1", Machine: "m1"}) || rs[0].Topic != "plant/l1/m1/count" {
		t.Errorf("reading %+v", rs[0])
	}
	if got := counterValue(t, reg, "andon_mqtt_messages_total", "source", "external"); got != 11 {
		t.Errorf("andon_mqtt_messages_total{source=external} = %v, want 11", got)
	}

	stop()
	if c.Connected() {
		t.Error("Connected() after Run returned")
	}
	if got := counterValue(t, reg, "andon_mqtt_connected", "", ""); got != 0 {
		t.Errorf("andon_mqtt_connected = %v after stop, want 0", got)
	}

	// While Andon is away the broker queues QoS 1 messages for its session.
	for i := 100; i < 200; i++ {
		pub.publish(t, "plant/l1/m1/count", strconv.Itoa(i), 1)
	}
	sink2 := &testSink{}
	runClient(t, m.Addr, "andon-test", sink2, nil)
	waitFor(t, "the 100 queued readings", func() bool { return len(values(sink2.readingsOnly(), "count")) >= 100 })
	got := values(sink2.readingsOnly(), "count")
	for i := 100; i < 200; i++ {
		if !got[float64(i)] {
			t.Errorf("reading %d was lost", i)
		}
	}
}

func TestClientQoS0(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	pub := dialPaho(t, m.Addr, "publisher")
	sink := &testSink{}
	runClient(t, m.Addr, "andon-qos0", sink, nil)
	pub.publish(t, "plant/m1/temp", "7", 0)
	waitFor(t, "the reading", func() bool { return sink.count() == 1 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	// The subscription is QoS 1 but a message published with QoS 0 is
	// delivered with QoS 0: it takes the never-blocking path.
	if sink.tries != 1 || sink.enqueues != 0 {
		t.Errorf("tries=%d enqueues=%d, want the TryEnqueue path", sink.tries, sink.enqueues)
	}
}

func TestNewClientValidates(t *testing.T) {
	reg := prometheus.NewRegistry()
	// The broker registers the shared message counter first; the client must
	// reuse it rather than fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewBroker(BrokerConfig{Listener: ln, Sink: &testSink{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr bool
	}{
		{"ok", ClientConfig{URL: "mqtt://localhost", ClientID: "a", Sink: &testSink{}, Registerer: reg}, false},
		{"tcp with user", ClientConfig{URL: "tcp://u:p@localhost:1884", ClientID: "a", Sink: &testSink{}}, false},
		{"tls", ClientConfig{URL: "mqtts://broker.example:8883", ClientID: "a", Sink: &testSink{}}, false},
		{"no client id", ClientConfig{URL: "mqtt://localhost", Sink: &testSink{}}, true},
		{"no sink", ClientConfig{URL: "mqtt://localhost", ClientID: "a"}, true},
		{"bad scheme", ClientConfig{URL: "http://localhost", ClientID: "a", Sink: &testSink{}}, true},
		{"no host", ClientConfig{URL: "mqtt://", ClientID: "a", Sink: &testSink{}}, true},
		{"unparsable", ClientConfig{URL: "mqtt://[::1", ClientID: "a", Sink: &testSink{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && c.url.Port() == "" {
				t.Errorf("no default port in %s", c.url)
			}
		})
	}
}

func TestClientDefaultPortAndTopics(t *testing.T) {
	tests := []struct {
		url, wantHost string
	}{
		{"mqtt://h", "h:1883"},
		{"mqtts://h", "h:8883"},
		{"tcp://h:1999", "h:1999"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := NewClient(ClientConfig{URL: tt.url, ClientID: "x", Sink: &testSink{}})
			if err != nil {
				t.Fatal(err)
			}
			if c.url.Host != tt.wantHost {
				t.Errorf("host %s, want %s", c.url.Host, tt.wantHost)
			}
			if fmt.Sprint(c.topics) != "[#]" {
				t.Errorf("topics %v, want [#]", c.topics)
			}
		})
	}
}

// syncBuffer is a log destination that tests can read while the client writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestClientRetriesWithoutLeakingPassword(t *testing.T) {
	var logs syncBuffer
	port := mqtttest.FreePort(t) // nothing listens there
	c, err := NewClient(ClientConfig{
		URL:      "mqtt://user:s3cret@127.0.0.1:" + strconv.Itoa(port),
		ClientID: "x",
		Sink:     &testSink{},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	waitFor(t, "a failed connection attempt", func() bool { return strings.Contains(logs.String(), "connect failed") })
	if c.Connected() {
		t.Error("Connected() with no broker")
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return while retrying")
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the password reached the log:\n%s", logs.String())
	}
}
