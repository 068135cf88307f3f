package ingest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"

	"andon/plant"
)

// waitTimeout only bounds waiting for events on a shared, noisy machine; it
// asserts no speed.
const waitTimeout = 20 * time.Second

// testSink records what ingest hands over. fail makes Write and Enqueue's
// commit fail, as a broken store would.
type testSink struct {
	mu       sync.Mutex
	readings []plant.Reading
	rejects  []plant.Reject
	fail     error
	full     bool
	writes   int // Write calls
	enqueues int // Enqueue calls
	tries    int // TryEnqueue calls
}

func (s *testSink) Write(ctx context.Context, rs []plant.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.fail != nil {
		return s.fail
	}
	s.readings = append(s.readings, rs...)
	return nil
}

func (s *testSink) Enqueue(ctx context.Context, rs []plant.Reading, done func(error)) error {
	s.mu.Lock()
	s.enqueues++
	err := s.fail
	if err == nil {
		s.readings = append(s.readings, rs...)
	}
	s.mu.Unlock()
	// Like the real writer, report the commit from another goroutine.
	go done(err)
	return nil
}

func (s *testSink) TryEnqueue(rs []plant.Reading) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.full {
		return false
	}
	s.readings = append(s.readings, rs...)
	return true
}

func (s *testSink) Reject(r plant.Reject) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects = append(s.rejects, r)
}

func (s *testSink) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *testSink) snapshot() ([]plant.Reading, []plant.Reject) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plant.Reading(nil), s.readings...), append([]plant.Reject(nil), s.rejects...)
}

func (s *testSink) readingsOnly() []plant.Reading {
	rs, _ := s.snapshot()
	return rs
}

func (s *testSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readings)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pahoClient is a plain MQTT 5 client for tests, on one connection.
type pahoClient struct {
	*paho.Client
	mu       sync.Mutex
	received []*paho.Publish
}

func (c *pahoClient) messages() []*paho.Publish {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*paho.Publish(nil), c.received...)
}

// dialPaho connects an MQTT 5 client to addr; it disconnects when the test ends.
func dialPaho(t *testing.T, addr, clientID string) *pahoClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	pc := &pahoClient{}
	pc.Client = paho.NewClient(paho.ClientConfig{
		ClientID: clientID,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				pc.mu.Lock()
				pc.received = append(pc.received, pr.Packet)
				pc.mu.Unlock()
				return true, nil
			},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := pc.Connect(ctx, &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("connack reason %d", ca.ReasonCode)
	}
	t.Cleanup(func() { _ = pc.Disconnect(&paho.Disconnect{}) })
	return pc
}

// publish sends one message and waits for its acknowledgement (QoS 1) or its
// sending (QoS 0).
func (c *pahoClient) publish(t *testing.T, topic, payload string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	resp, err := c.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos})
	if err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	if qos > 0 && resp.ReasonCode >= 0x80 {
		t.Fatalf("publish %s: reason code %#x", topic, resp.ReasonCode)
	}
}

// counterValue reads one labelled counter from a registry.
func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
			if label == "" {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

var errStoreDown = errors.New("store is down")
