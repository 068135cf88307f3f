package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// multi is a message of n metrics of machine m.
func multi(n, seq int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"timestamp_ms": %d`, 1732450000000+int64(seq))
	for k := range n {
		fmt.Fprintf(&b, `, "v%03d": %d`, k, k)
	}
	b.WriteString("}")
	return b.String()
}

// TestDeviceShareQoS0: a device flooding QoS 0 at many times its share has
// the excess dropped and counted, while a device at a normal rate loses
// nothing.
func TestDeviceShareQoS0(t *testing.T) {
	sink := &testSink{}
	reg := prometheus.NewRegistry()
	addr := startBrokerWith(t, BrokerConfig{Sink: sink, Registerer: reg, AllowAnonymous: true, DeviceRate: 1000})
	flood := dialPaho(t, addr, "flood")
	calm := dialPaho(t, addr, "calm")

	start := time.Now()
	for i := range 100 { // 10,000 readings as fast as they go
		flood.publish(t, "plant/l1/flood", multi(100, i), 0)
	}
	for i := range 20 {
		calm.publish(t, "plant/l1/calm/v", fmt.Sprint(i), 1)
	}
	waitFor(t, "the calm device's 20 readings", func() bool { return len(values(sink.readingsOnly(), "v")) == 20 })
	flooded := func() int {
		n := 0
		for _, r := range sink.readingsOnly() {
			if r.Path.Machine == "flood" {
				n++
			}
		}
		return n
	}
	dropped := func() int {
		return int(counterValue(t, reg, "andon_mqtt_throttled_readings_total", "action", "dropped"))
	}
	// Every flooded reading is either stored or counted as dropped.
	waitFor(t, "the flood to be stored or counted", func() bool { return flooded()+dropped() == 10_000 })
	elapsed := time.Since(start)
	// A burst of one second's share, then the share per second.
	if bound := 1000 + int(1000*elapsed.Seconds()) + 100; flooded() > bound {
		t.Errorf("the flooding device got %d readings stored in %s, over its share (at most %d)", flooded(), elapsed, bound)
	}
	if dropped() == 0 {
		t.Errorf("nothing dropped from a device at many times its share")
	}
}

// TestDeviceShareQoS1: a QoS 1 device over its share is slowed down, not
// refused: everything it sends is stored.
func TestDeviceShareQoS1(t *testing.T) {
	sink := &testSink{}
	reg := prometheus.NewRegistry()
	addr := startBrokerWith(t, BrokerConfig{Sink: sink, Registerer: reg, AllowAnonymous: true, DeviceRate: 1000})
	pub := dialPaho(t, addr, "busy")
	for i := range 15 { // 1,500 readings: a burst of 1,000, then waits
		pub.publish(t, "plant/l1/busy", multi(100, i), 1)
	}
	if n := sink.count(); n != 1500 {
		t.Errorf("%d readings stored, want all 1,500", n)
	}
	if got := counterValue(t, reg, "andon_mqtt_throttled_readings_total", "action", "delayed"); got == 0 {
		t.Errorf("no QoS 1 readings counted as delayed")
	}
	if got := counterValue(t, reg, "andon_mqtt_throttled_readings_total", "action", "dropped"); got > 0 {
		t.Errorf("%v QoS 1 readings dropped", got)
	}
}
