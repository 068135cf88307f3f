package main

import (
	"strings"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// TestBrokerOutageBanner stops the external broker under a running Andon:
// pages keep answering and say, in a banner and in /api/v1/problems, that
// the broker is out of reach and since when; once it is back, the banner
// goes by itself.
func TestBrokerOutageBanner(t *testing.T) {
	saved := brokerGrace
	brokerGrace = 0
	t.Cleanup(func() { brokerGrace = saved })
	m := mqtttest.StartMosquitto(t)
	s := startServe(t, nil, "--mqtt-listen", "off", "--mqtt-url", "mqtt://"+m.Addr)

	problems := func() string {
		code, body := get(t, s.url("/api/v1/problems"))
		if code != 200 {
			t.Fatalf("/api/v1/problems answered %d", code)
		}
		return body
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; problems: %s", what, problems())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitUntil("no problems while connected", func() bool { return problems() == `{"problems":[]}`+"\n" })

	m.Stop()
	waitUntil("the banner to name the lost broker", func() bool { return strings.Contains(problems(), "No connection to the MQTT broker mqtt://"+m.Addr) })
	code, page := get(t, s.url("/"))
	if code != 200 || !strings.Contains(page, `data-testid="problems"`) || !strings.Contains(page, "No connection to the MQTT broker") {
		t.Errorf("the overview during the outage answered %d without the banner", code)
	}

	m.Start()
	waitUntil("the banner to go once the broker is back", func() bool { return problems() == `{"problems":[]}`+"\n" })
	if _, page := get(t, s.url("/")); strings.Contains(page, "No connection to the MQTT broker") {
		t.Errorf("the overview still shows the banner after the broker came back")
	}
}
