package web

import (
	"errors"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzIngestMessages: whatever a client posts to /api/v1/readings, reading
// the request never panics, and it is either a clear 4xx or a bounded list
// of messages, each with a payload to parse or a reject saying why not.
func FuzzIngestMessages(f *testing.F) {
	f.Add("", []byte(`[{"topic": "l/m/temp", "payload": 21.5}, {"topic": "l/m/state", "payload": "running"}]`))
	f.Add("l/m/temp", []byte(`{"value": 1, "ts": 1732450000123}`))
	f.Add("", []byte(`[{"topic": "", "payload": null}, {"payload": "\u0000"}]`))
	f.Add("", []byte(`{"topic": "l/m/v"}`))
	f.Add("", []byte(`[]`))
	f.Add("", []byte(`[{"topic": "l/m/v", "payload": {"a": [1, {"b": "x"}]}}]`))
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		q := map[string][]string{}
		if topic != "" {
			q["topic"] = []string{topic}
		}
		msgs, err := ingestMessages(q, body)
		if err != nil {
			var he *echo.HTTPError
			if !errors.As(err, &he) || he.Code < 400 || he.Code > 499 {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > maxIngestItems {
			t.Fatalf("%d messages from one request", len(msgs))
		}
		for _, m := range msgs {
			if m.bad == nil && len(m.payload) == 0 {
				t.Fatalf("message %+v has neither a payload nor a reason", m)
			}
			if m.bad != nil && (m.bad.Reason == "" || m.bad.Detail == "") {
				t.Fatalf("reject %+v does not say why", m.bad)
			}
		}
	})
}
