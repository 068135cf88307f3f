package ingest

import (
	"bytes"

	"andon/plant"
)

// Message is one MQTT message as ingest receives it, from the embedded
// broker or an external one. Everything in it comes from a device.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	RecvMS   int64 // when it arrived, ms since the Unix epoch
}

// rejectOf is the reject an admin sees for m: its topic, a reason, a
// sentence saying what was wrong, and the first bytes of the payload.
func rejectOf(m Message, reason, detail string) *plant.Reject {
	n := min(len(m.Payload), maxRejectPayload)
	return &plant.Reject{
		TS:      m.RecvMS,
		Topic:   m.Topic,
		Reason:  reason,
		Detail:  detail,
		Payload: bytes.Clone(m.Payload[:n]),
	}
}
