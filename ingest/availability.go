package ingest

import (
	"bytes"
	"encoding/json"
	"strings"

	"andon/plant"
)

// lastWillLevels are the last topic levels devices commonly give their
// MQTT last will and birth: <machine>/status, .../availability,
// .../connection, .../LWT.
var lastWillLevels = []string{"status", "availability", "connection", "lwt"}

// decodeAvailability reads the common last-will convention: a topic
// ending in one of lastWillLevels whose payload is online or offline
// (connected or disconnected), bare or as {"status": ...} or
// {"value": ...}. Offline is an announcement that the machine named by the
// levels before it left; online says nothing a reading would not. Any
// other payload is no availability (status = running is a machine's state)
// and ok is false.
func decodeAvailability(m Message, lim Limits) ([]plant.Reading, *plant.Reject, bool) {
	i := strings.LastIndexByte(m.Topic, '/')
	if i <= 0 || !isLastWillLevel(m.Topic[i+1:]) {
		return nil, nil, false
	}
	online, known := availabilityWord(m.Payload)
	if !known {
		return nil, nil, false
	}
	if online {
		return nil, nil, true
	}
	levels, reason, detail := splitTopic(m.Topic[:i], lim)
	if reason != "" {
		return nil, rejectOf(m, reason, detail), true
	}
	return []plant.Reading{{Path: pathOf(levels), TS: m.RecvMS, Offline: true, Topic: m.Topic}}, nil, true
}

func isLastWillLevel(l string) bool {
	for _, a := range lastWillLevels {
		if strings.EqualFold(l, a) {
			return true
		}
	}
	return false
}

// availabilityWord reads online/offline from a payload; known is false for
// anything else.
func availabilityWord(payload []byte) (online, known bool) {
	body := bytes.TrimSpace(payload)
	word := string(body)
	if len(body) > 0 && body[0] == '{' {
		// Only an object that says nothing else: {"status": "offline",
		// "temperature": 21} is a machine's data that happens to carry a
		// word, and the default layout reads all of it.
		var obj map[string]any
		if json.Unmarshal(body, &obj) != nil || len(obj) != 1 {
			return false, false
		}
		w, ok := obj["status"].(string)
		if !ok {
			w, ok = obj["value"].(string)
		}
		if !ok {
			return false, false
		}
		word = w
	}
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "online", "connected":
		return true, true
	case "offline", "disconnected":
		return false, true
	}
	return false, false
}
