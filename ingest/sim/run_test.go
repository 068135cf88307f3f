package sim

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"andon/ingest/mqtttest"
)

// subscribe connects a plain paho.golang client to addr, subscribed to
// filter, and hands every message to got.
func subscribe(t *testing.T, addr, filter string, got func(topic string, payload []byte)) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				got(pr.Packet.Topic, pr.Packet.Payload)
				return true, nil
			},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: "sim-test-sub", CleanStart: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("subscriber connack reason %d", ca.ReasonCode)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
}

func TestRunPublishesToMosquitto(t *testing.T) {
	addr := mqtttest.StartMosquitto(t).Addr

	var mu sync.Mutex
	states := map[string]string{}
	metrics := map[string]int{}
	subscribe(t, addr, "acme/#", func(topic string, payload []byte) {
		mu.Lock()
		defer mu.Unlock()
		if machine, ok := strings.CutSuffix(topic, "/state"); ok {
			states[machine] = string(payload)
		} else {
			metrics[topic]++
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cfg := Config{URL: "mqtt://" + addr, Rate: 2, Seed: 9, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if err := Run(ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}

	want := NewPlant(Config{Seed: 9}, time.Now()).Machines()
	// Give the last QoS1 deliveries a moment to reach the subscriber.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		complete := true
		for _, s := range want {
			name := s.Path.String()
			if states[name] == "" || metrics[name] < 2 {
				complete = false
			}
		}
		mu.Unlock()
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, s := range want {
		name := s.Path.String()
		t.Run(s.Path.Machine, func(t *testing.T) {
			switch states[name] {
			case "running", "idle", "down", "changeover":
			default:
				t.Errorf("%s: state %q, want a state word", name, states[name])
			}
			// Three seconds at 2 Hz is about six; at least two shows the
			// loop keeps publishing after the first step.
			if metrics[name] < 2 {
				t.Errorf("%s: %d metric messages, want at least 2", name, metrics[name])
			}
		})
	}
	if len(states) != len(want) {
		t.Errorf("states from %d machines, want %d: %v", len(states), len(want), states)
	}
}

// TestRunWaitsForBroker starts Run before the broker exists on its port and
// checks that it shuts down cleanly when cancelled, without an error.
func TestRunWaitsForBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{URL: "mqtt://" + addr}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run with no broker, cancelled: %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no url", Config{}, "no broker URL"},
		{"bad scheme", Config{URL: "http://127.0.0.1:1883"}, "scheme"},
		{"no host", Config{URL: "mqtt://"}, "no host"},
		{"too fast", Config{URL: "mqtt://127.0.0.1:1", Rate: 1e6}, "rate"},
		{"too many machines", Config{URL: "mqtt://127.0.0.1:1", Machines: 1e6}, "machines"},
		{"wildcard site", Config{URL: "mqtt://127.0.0.1:1", Site: "a/#"}, "topic level"},
		{"password not echoed", Config{URL: "ftp://user:s3cret@127.0.0.1:1"}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Run(ctx, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run tried to connect instead of rejecting the config")
			}
		})
	}
}
