package ingest

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"andon/ingest/mqtttest"
)

// TestClientBrokerOutage stops the external broker under a running client
// and starts it again. The client says it is disconnected, and for how long,
// in Status and /metrics; it reconnects by itself, the session resumes, and
// readings published before the outage and right after the broker came
// back (while Andon was still away) all arrive.
func TestClientBrokerOutage(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	reg := prometheus.NewRegistry()
	sink := &testSink{}
	start := time.Now()
	c, _ := runClient(t, m.Addr, "andon-outage", sink, reg)
	if st := c.Status(); !st.Connected || st.Since.Before(start.Add(-time.Second)) || st.URL != "mqtt://"+m.Addr {
		t.Errorf("status after connecting = %+v", st)
	}

	pub := dialPaho(t, m.Addr, "outage-publisher")
	for i := range 100 {
		pub.publish(t, "plant/l1/m1/count", strconv.Itoa(i), 1)
	}
	waitFor(t, "the first 100 readings", func() bool { return len(values(sink.readingsOnly(), "count")) == 100 })

	m.Stop()
	stopped := time.Now()
	waitFor(t, "the client to notice the outage", func() bool { return !c.Connected() })
	st := c.Status()
	if st.Connected || st.Since.Before(stopped.Add(-time.Second)) {
		t.Errorf("status during the outage = %+v, want disconnected since about %s", st, stopped)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := counterValue(t, reg, "andon_mqtt_disconnected_seconds", "", ""); got < 1 {
		t.Errorf("andon_mqtt_disconnected_seconds = %v during an outage of over a second, want >= 1", got)
	}
	if got := counterValue(t, reg, "andon_mqtt_connection_losses_total", "", ""); got != 1 {
		t.Errorf("andon_mqtt_connection_losses_total = %v, want 1", got)
	}
	if got := counterValue(t, reg, "andon_mqtt_connected", "", ""); got != 0 {
		t.Errorf("andon_mqtt_connected = %v during the outage, want 0", got)
	}

	m.Start()
	pub2 := dialPaho(t, m.Addr, "outage-publisher-2")
	for i := 100; i < 200; i++ {
		pub2.publish(t, "plant/l1/m1/count", strconv.Itoa(i), 1)
	}
	deadline := time.Now().Add(waitTimeout)
	for len(values(sink.readingsOnly(), "count")) < 200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(values(sink.readingsOnly(), "count")); n != 200 {
		t.Fatalf("%d of 200 readings arrived; connected %v\n%s", n, c.Connected(), m.Log())
	}
	waitFor(t, "the client to reconnect", c.Connected)
	if got := counterValue(t, reg, "andon_mqtt_disconnected_seconds", "", ""); got != 0 {
		t.Errorf("andon_mqtt_disconnected_seconds = %v once connected, want 0", got)
	}
	if got := counterValue(t, reg, "andon_mqtt_connected", "", ""); got != 1 {
		t.Errorf("andon_mqtt_connected = %v after the outage, want 1", got)
	}
}
