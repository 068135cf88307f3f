package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"andon/ingest/mqtttest"
)

// TestGatewaysWithoutSetUp publishes what a Tasmota plug, a Home
// Assistant MQTT device (zigbee2mqtt style), a UMH data bridge and a
// device with a plain last will send, and checks that each shows on the
// overview and its machine page with sensible names, units and, when
// the device goes away, offline.
func TestGatewaysWithoutSetUp(t *testing.T) {
	s := startServe(t, nil, "--time-zone", "Europe/Berlin")
	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Now().In(mustZone(t, "Europe/Berlin"))
	msgs := []struct{ topic, payload string }{
		{"tele/plug-7/SENSOR", fmt.Sprintf(`{"Time":%q,"ENERGY":{"Power":45.5,"Voltage":231,"TotalStartTime":"2025-11-02T10:15:32"}}`, now.Format("2006-01-02T15:04:05"))},
		{"homeassistant/sensor/0x00158d/temperature/config", `{"name":"Temperature","state_topic":"zigbee2mqtt/oven-climate","unit_of_measurement":"°C","value_template":"{{ value_json.temperature }}","device":{"name":"oven-climate","suggested_area":"line-3"}}`},
		{"zigbee2mqtt/oven-climate", `{"temperature":181.5,"linkquality":90}`},
		{"umh/v1/acme/dallas/hall-1/line-4/cnc-2/_historian", fmt.Sprintf(`{"timestamp_ms":%d,"spindle":{"speed":1200}}`, time.Now().UnixMilli())},
	}
	for _, m := range msgs {
		if err := pub.Publish(ctx, m.topic, []byte(m.payload), 1); err != nil {
			t.Fatal(err)
		}
	}
	for machine, want := range map[string][]string{
		"plug-7":       {"ENERGY.Power", "45.5", ">W<"},
		"oven-climate": {"Temperature", "181.5", "°C", "line-3"},
		"cnc-2":        {"spindle.speed", "1,200", "dallas", "hall-1", "line-4"},
	} {
		waitPage(t, s, machine, machine, func(body string) bool {
			for _, w := range want {
				if !strings.Contains(body, w) {
					return false
				}
			}
			return true
		})
	}
	if got := retained(t, s.addrs.MQTT, "homeassistant/status"); got != "online" {
		t.Errorf("homeassistant/status = %q, want the retained birth message online, so devices send their configs again", got)
	}
	if strings.Contains(machinesOverview(t, s), "linkquality") {
		t.Error("an entity nobody configured (linkquality) became a tag")
	}

	// A device with a last will on its status topic, then a pulled cable.
	conn, err := net.Dial("tcp", s.addrs.MQTT)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "press-9", CleanStart: true, KeepAlive: 30,
		WillMessage: &paho.WillMessage{Topic: "line-1/press-9/status", Payload: []byte("offline"), QoS: 1}, WillProperties: &paho.WillProperties{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: "line-1/press-9/state", Payload: []byte("running"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	waitPage(t, s, "press-9", "a live device", isLive(""))
	conn.Close()
	waitPage(t, s, "press-9", "its will", isOffline)
	if !strings.Contains(machinesOverview(t, s), `data-testid="went-offline"`) {
		t.Error("the overview tile does not say the machine reported itself offline")
	}
	// Tasmota's own will.
	if err := pub.Publish(ctx, "tele/plug-7/LWT", []byte("Offline"), 1); err != nil {
		t.Fatal(err)
	}
	waitPage(t, s, "plug-7", "LWT Offline", func(b string) bool { return strings.Contains(b, `data-testid="offline-note"`) })
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func machinesOverview(t *testing.T, s *server) string {
	t.Helper()
	_, body := get(t, s.url("/"))
	return body
}

// retained subscribes to topic and returns the retained message it gets.
func retained(t *testing.T, addr, topic string) string {
	t.Helper()
	got := make(chan string, 1)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			select {
			case got <- string(pr.Packet.Payload):
			default:
			}
			return true, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "retained-check", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		return m
	case <-ctx.Done():
		return ""
	}
}
