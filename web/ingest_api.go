package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"andon/ingest"
	"andon/plant"
)

const (
	// maxIngestBody is the largest request body POST /api/v1/readings reads.
	// The global BodyLimit says the same; the handler checks it again so the
	// limit holds even if the middleware changes, and so it can answer 413
	// itself rather than fail in the middle of decoding.
	maxIngestBody = 1 << 20
	// maxIngestItems bounds a batch, so one request cannot hold the writer's
	// queue for long.
	maxIngestItems = 1000
	// ingestWait bounds how long a request waits for its commit, as the
	// embedded broker's hook does.
	ingestWait = 30 * time.Second
	// maxRejectEcho is how much of a rejected payload is kept, as Parse does.
	maxRejectEcho = 256
)

// ingestItem is one message of a batch: a topic and a payload in any of the
// shapes MQTT accepts. A JSON string payload is used as its bytes ("23.5" or
// "running"); any other JSON value is the payload itself.
type ingestItem struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

// ingestReject is a message that was not stored, in the answer.
type ingestReject struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// ingestResult is the answer to POST /api/v1/readings.
type ingestResult struct {
	Stored   int            `json:"stored"`
	Rejected []ingestReject `json:"rejected"`
}

// ingestMessage is one message to parse, from either form of the request.
type ingestMessage struct {
	topic   string
	payload []byte
	bad     *plant.Reject // set when the item itself is unusable (no topic, no payload)
}

// apiIngest is POST /api/v1/readings. With ?topic=... the body is one MQTT
// payload; without it the body is a JSON array of {"topic", "payload"}. Every
// reading of the request is committed before the answer (200 with what was
// stored and what was rejected and why); unreadable messages are recorded as
// rejects like MQTT's, so /admin/rejects lists them too.
func (s *Server) apiIngest(c echo.Context) error {
	noStore(c)
	if s.cfg.Ingest == nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{
			"error": "HTTP ingest is not enabled on this server.",
		})
	}
	body, err := readIngestBody(c.Request().Body)
	if err != nil {
		return err
	}
	msgs, err := ingestMessages(c.QueryParams(), body)
	if err != nil {
		return err
	}

	nowMS := s.now().UnixMilli()
	res := ingestResult{Rejected: []ingestReject{}}
	var rs []plant.Reading
	for _, m := range msgs {
		rej := m.bad
		if rej == nil {
			var got []plant.Reading
			got, rej = ingest.Parse(m.topic, m.payload, nowMS, ingest.DefaultLimits())
			if got == nil && rej == nil {
				// Parse ignores broker topics ($SYS/...) silently; over HTTP
				// the sender should hear why nothing was stored.
				rej = &plant.Reject{Topic: m.topic, Reason: plant.ReasonTopicInvalid,
					Detail: "Topics starting with $ are reserved for brokers."}
			}
			rs = append(rs, got...)
		}
		if rej != nil {
			rej.TS = nowMS
			if rej.Payload == nil {
				rej.Payload = m.payload[:min(len(m.payload), maxRejectEcho)]
			}
			s.cfg.Ingest.Reject(*rej)
			res.Rejected = append(res.Rejected, ingestReject{Topic: rej.Topic, Reason: rej.Reason, Detail: rej.Detail})
		}
	}

	if len(rs) > 0 {
		ctx, cancel := context.WithTimeout(c.Request().Context(), ingestWait)
		defer cancel()
		if err := s.cfg.Ingest.Write(ctx, rs); err != nil {
			// Nothing of this request may be stored; the sender retries the
			// whole request, and readings with their own time are stored once.
			return echo.NewHTTPError(http.StatusServiceUnavailable,
				"The readings could not be stored; retry later.").
				SetInternal(fmt.Errorf("web: ingest %d readings: %w", len(rs), err))
		}
	}
	res.Stored = len(rs)
	return c.JSON(http.StatusOK, res)
}

// readIngestBody reads at most maxIngestBody bytes; more is a 413.
func readIngestBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxIngestBody+1))
	if err != nil {
		// echo's BodyLimit reports an oversized body as its own 413 error.
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The request body could not be read.").SetInternal(err)
	}
	if len(body) > maxIngestBody {
		return nil, tooLarge()
	}
	return body, nil
}

func tooLarge() error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("The request is too large: at most %d bytes and %d messages.", maxIngestBody, maxIngestItems))
}

// ingestMessages reads the request in either form. A request it cannot make
// sense of at all is a 400; a message that is wrong on its own becomes a
// reject beside the others.
func ingestMessages(q map[string][]string, body []byte) ([]ingestMessage, error) {
	if topics, ok := q["topic"]; ok {
		if len(topics) != 1 || topics[0] == "" {
			return nil, echo.NewHTTPError(http.StatusBadRequest, "Give exactly one topic parameter, or none and a JSON array body.")
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, echo.NewHTTPError(http.StatusBadRequest, "The request has no payload.")
		}
		return []ingestMessage{{topic: topics[0], payload: body}}, nil
	}

	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, echo.NewHTTPError(http.StatusBadRequest,
			`The request is empty: send a JSON array of {"topic": ..., "payload": ...}, or one payload with ?topic=...`)
	}
	if trimmed[0] != '[' {
		return nil, echo.NewHTTPError(http.StatusBadRequest,
			`Without a topic parameter the body must be a JSON array of {"topic": ..., "payload": ...}.`)
	}
	var items []ingestItem
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest,
			`The body is not a JSON array of {"topic": ..., "payload": ...}.`).SetInternal(err)
	}
	switch {
	case len(items) == 0:
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The array holds no messages.")
	case len(items) > maxIngestItems:
		return nil, tooLarge()
	}
	msgs := make([]ingestMessage, 0, len(items))
	for _, it := range items {
		m := ingestMessage{topic: it.Topic}
		raw := bytes.TrimSpace(it.Payload)
		switch {
		case len(raw) == 0 || string(raw) == "null":
			m.bad = &plant.Reject{Topic: it.Topic, Reason: plant.ReasonEmpty, Detail: "The message has no payload."}
		case raw[0] == '"':
			var str string
			if err := json.Unmarshal(raw, &str); err != nil {
				// Unreachable after a successful decode of the array; kept so
				// a change of decoder cannot store garbage.
				m.bad = &plant.Reject{Topic: it.Topic, Reason: plant.ReasonBadJSON, Detail: "The payload string is not valid JSON."}
			}
			m.payload = []byte(str)
			if m.bad == nil && strings.TrimSpace(str) == "" {
				m.bad = &plant.Reject{Topic: it.Topic, Reason: plant.ReasonEmpty, Detail: "The message's payload is an empty string."}
			}
		default:
			m.payload = raw
		}
		if m.bad == nil && it.Topic == "" {
			m.bad = &plant.Reject{Reason: plant.ReasonTopicInvalid, Detail: "The message has no topic."}
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}
