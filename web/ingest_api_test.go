package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"andon/db"
	"andon/plant"
)

// writerSink hands readings to the env's writer, which exists only after the
// server is built; the atomic pointer makes setting it later race-free.
type writerSink struct{ w atomic.Pointer[db.Writer] }

func (s *writerSink) Write(ctx context.Context, rs []plant.Reading) error {
	return s.w.Load().Write(ctx, rs)
}
func (s *writerSink) Reject(r plant.Reject) { s.w.Load().Reject(r) }

// brokenSink fails every commit, as a full disk would.
type brokenSink struct{ rejects atomic.Int64 }

func (*brokenSink) Write(context.Context, []plant.Reading) error { return errBroken }
func (s *brokenSink) Reject(plant.Reject)                        { s.rejects.Add(1) }

// newIngestEnv is a server whose HTTP ingest writes through the real DB
// writer, and an ingest token for it.
func newIngestEnv(t *testing.T) (*env, string) {
	t.Helper()
	sink := &writerSink{}
	e := newEnv(t, func(c *Config) { c.Ingest = sink })
	sink.w.Store(e.w)
	return e, ingestToken(t, e)
}

func ingestToken(t *testing.T, e *env) string {
	t.Helper()
	_, secret, err := e.store.CreateToken(e.ctx, "api", "ingest", "line PLC", "test")
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return secret
}

// postReadings sends a body to /api/v1/readings with a bearer token.
func postReadings(t *testing.T, e *env, token, query string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/api/v1/readings"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("POST readings: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func topicQuery(topic string) string { return "?topic=" + url.QueryEscape(topic) }

// tagOf is the stored tag of a metric of a machine (by its path).
func tagOf(t *testing.T, e *env, machine, metric string) (plant.Tag, bool) {
	t.Helper()
	tags, err := e.store.Tags(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		if tg.Machine == machine && tg.Metric == metric {
			return tg, true
		}
	}
	return plant.Tag{}, false
}

func TestIngestAPI(t *testing.T) {
	e, token := newIngestEnv(t)
	const base = "acme/hall-1/line-1/press-01"
	ts := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC).UnixMilli()

	type stored struct {
		metric string // of the machine named by the case's machine
		value  float64
		word   string
		ts     int64 // 0: stamped on arrival, not checked
	}
	cases := []struct {
		name        string
		query       string
		body        string
		wantStored  int
		wantRejects []ingestReject // topic and reason; detail only checked for being set
		machine     string
		wantTags    []stored
	}{
		{
			name: "bare number", query: topicQuery(base + "/temperature"), body: "23.5",
			wantStored: 1, wantTags: []stored{{metric: "temperature", value: 23.5}},
		},
		{
			name: "state word", query: topicQuery(base + "/state"), body: "running",
			wantStored: 1, wantTags: []stored{{metric: "state", word: "running"}},
		},
		{
			name: "value object with time", query: topicQuery(base + "/pressure"),
			body:       fmt.Sprintf(`{"value": 4.2, "ts": %d, "unit": "bar"}`, ts),
			wantStored: 1, wantTags: []stored{{metric: "pressure", value: 4.2, ts: ts}},
		},
		{
			name: "multi-metric object", query: topicQuery(base),
			body:       fmt.Sprintf(`{"timestamp_ms": %d, "speed": 1200, "axis": {"x": 1.5}}`, ts),
			wantStored: 2, wantTags: []stored{{metric: "speed", value: 1200, ts: ts}, {metric: "axis.x", value: 1.5, ts: ts}},
		},
		{
			name: "unreadable payload is a reject", query: topicQuery(base + "/temperature"), body: "NaN",
			wantRejects: []ingestReject{{Topic: base + "/temperature", Reason: plant.ReasonNotFinite}},
		},
		{
			name: "broker topic is a reject", query: topicQuery("$SYS/broker/load"), body: "1",
			wantRejects: []ingestReject{{Topic: "$SYS/broker/load", Reason: plant.ReasonTopicInvalid}},
		},
		{
			name: "batch", body: fmt.Sprintf(`[
				{"topic": "acme/hall-1/line-2/saw-01/temperature", "payload": 31.25},
				{"topic": "acme/hall-1/line-2/saw-01/state", "payload": "idle"},
				{"topic": "acme/hall-1/line-2/saw-01/good", "payload": "17"},
				{"topic": "acme/hall-1/line-2/saw-01", "payload": {"ts": %d, "speed": 80, "scrap": 2}},
				{"topic": "acme/hall-1/line-2/saw-01/temperature", "payload": "1e999"},
				{"topic": "acme/hall-1/line-2/saw-01/temperature"},
				{"payload": 5},
				{"topic": "acme/hall-1/line-2/saw-01/bad", "payload": "{not json"}
			]`, ts),
			wantStored: 5, machine: "acme/hall-1/line-2/saw-01",
			wantRejects: []ingestReject{
				{Topic: "acme/hall-1/line-2/saw-01/temperature", Reason: plant.ReasonNotFinite},
				{Topic: "acme/hall-1/line-2/saw-01/temperature", Reason: plant.ReasonEmpty},
				{Topic: "", Reason: plant.ReasonTopicInvalid},
				{Topic: "acme/hall-1/line-2/saw-01/bad", Reason: plant.ReasonBadJSON},
			},
			wantTags: []stored{
				{metric: "temperature", value: 31.25},
				{metric: "state", word: "idle"},
				{metric: "good", value: 17},
				{metric: "speed", value: 80, ts: ts},
				{metric: "scrap", value: 2, ts: ts},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postReadings(t, e, token, tc.query, strings.NewReader(tc.body))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", code, body)
			}
			var got ingestResult
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			if got.Stored != tc.wantStored {
				t.Errorf("stored %d, want %d", got.Stored, tc.wantStored)
			}
			if got.Rejected == nil {
				t.Errorf("rejected is null, want a list: %s", body)
			}
			if len(got.Rejected) != len(tc.wantRejects) {
				t.Fatalf("rejected %+v, want %+v", got.Rejected, tc.wantRejects)
			}
			for i, w := range tc.wantRejects {
				g := got.Rejected[i]
				if g.Topic != w.Topic || g.Reason != w.Reason || g.Detail == "" {
					t.Errorf("reject %d = %+v, want topic %q reason %q and a detail", i, g, w.Topic, w.Reason)
				}
			}
			// The answer comes after the commit: the readings are in the store.
			machine := tc.machine
			if machine == "" {
				machine = base
			}
			for _, w := range tc.wantTags {
				tg, ok := tagOf(t, e, machine, w.metric)
				switch {
				case !ok:
					t.Errorf("no tag %s of %s", w.metric, machine)
				case w.word != "" && tg.LastWord != w.word:
					t.Errorf("%s: last word %q, want %q", w.metric, tg.LastWord, w.word)
				case w.word == "" && tg.LastValue != w.value:
					t.Errorf("%s: last value %v, want %v", w.metric, tg.LastValue, w.value)
				case w.ts != 0 && tg.LastTS != w.ts:
					t.Errorf("%s: last time %d, want %d", w.metric, tg.LastTS, w.ts)
				}
			}
		})
	}

	// Rejects are recorded like MQTT's, so /admin/rejects lists them. The
	// writer stores them with its next transaction: wait for it.
	want := map[string]bool{plant.ReasonNotFinite: false, plant.ReasonEmpty: false, plant.ReasonBadJSON: false, plant.ReasonTopicInvalid: false}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := e.store.Rejects(e.ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if _, ok := want[r.Reason]; ok {
				want[r.Reason] = true
			}
		}
		missing := []string{}
		for k, seen := range want {
			if !seen {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejects not stored: %v (have %+v)", missing, rs)
		}
		// Another commit flushes pending rejects.
		e.write(t, reading("line-9", "flush", "x", time.Now().UnixMilli(), 1))
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIngestAPIBadRequests(t *testing.T) {
	e, token := newIngestEnv(t)
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"topic":"a/m/t","payload":1},`, maxIngestItems+1), ",") + "]"
	huge := strings.Repeat(" ", maxIngestBody) + "[]"
	cases := []struct {
		name    string
		query   string
		body    string
		code    int
		chunked bool // no Content-Length: the limit must hold while reading
	}{
		{"empty body", "", "", http.StatusBadRequest, false},
		{"blank body", "", " \n ", http.StatusBadRequest, false},
		{"empty array", "", "[]", http.StatusBadRequest, false},
		{"not JSON", "", "hello", http.StatusBadRequest, false},
		{"broken JSON", "", `[{"topic": "a/m/t", "payload": 1}`, http.StatusBadRequest, false},
		{"object, not array", "", `{"topic": "a/m/t", "payload": 1}`, http.StatusBadRequest, false},
		{"array of numbers", "", `[1, 2]`, http.StatusBadRequest, false},
		{"topic without payload", topicQuery("a/m/t"), "", http.StatusBadRequest, false},
		{"empty topic", "?topic=", "1", http.StatusBadRequest, false},
		{"two topics", "?topic=a/m/t&topic=a/m/u", "1", http.StatusBadRequest, false},
		{"too many messages", "", many, http.StatusRequestEntityTooLarge, false},
		{"body over 1 MiB", "", huge, http.StatusRequestEntityTooLarge, false},
		{"chunked body over 1 MiB", "", huge, http.StatusRequestEntityTooLarge, true},
		{"chunked payload over 1 MiB", topicQuery("a/m/t"), huge, http.StatusRequestEntityTooLarge, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				r = struct{ io.Reader }{r} // hides the length from net/http
			}
			code, body := postReadings(t, e, token, tc.query, r)
			if code != tc.code {
				t.Fatalf("status %d, want %d; body %.300s", code, tc.code, body)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil || got["error"] == "" {
				t.Errorf("answer is not a JSON error: %.300s", body)
			}
		})
	}
	tags, err := e.store.Tags(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Errorf("refused requests stored tags: %+v", tags)
	}
}

func TestIngestAPIUnavailable(t *testing.T) {
	broken := &brokenSink{}
	cases := []struct {
		name string
		sink IngestSink
		body string
	}{
		{"no sink", nil, `[{"topic": "acme/l/m/t", "payload": 1}]`},
		{"store fails", broken, `[{"topic": "acme/l/m/t", "payload": 1}, {"topic": "acme/l/m/t", "payload": "NaN"}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Ingest = tc.sink })
			code, body := postReadings(t, e, ingestToken(t, e), "", strings.NewReader(tc.body))
			if code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503; body %s", code, body)
			}
			if strings.Contains(body, errBroken.Error()) {
				t.Errorf("the answer shows the internal error: %s", body)
			}
		})
	}
	if n := broken.rejects.Load(); n != 1 {
		t.Errorf("rejects recorded with a failing store: %d, want 1", n)
	}
}

// TestIngestAPINeedsIngestToken checks the route's registration: only an
// ingest token gets in. The full matrix is the route-table test's.
func TestIngestAPINeedsIngestToken(t *testing.T) {
	e, ingest := newIngestEnv(t)
	_, read, err := e.store.CreateToken(e.ctx, "api", "read", "grafana", "test")
	if err != nil {
		t.Fatal(err)
	}
	body := `[{"topic": "acme/l/m/t", "payload": 1}]`
	cases := []struct {
		name, token string
		code        int
	}{
		{"ingest token", ingest, http.StatusOK},
		{"read token", read, http.StatusForbidden},
		{"unknown token", "andon_nope", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, answer := postReadings(t, e, tc.token, "", strings.NewReader(body))
			if code != tc.code {
				t.Fatalf("status %d, want %d; body %s", code, tc.code, answer)
			}
		})
	}
}

func TestIngestMessagesPayloadForms(t *testing.T) {
	msgs, err := ingestMessages(url.Values{}, []byte(`[
		{"topic": "a/m/t", "payload": "running"},
		{"topic": "a/m/t", "payload": 12.50},
		{"topic": "a/m", "payload": {"value": 1, "unit": "°C"}},
		{"topic": "a/m/t", "payload": null}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		payload string
		bad     bool
	}{
		{"running", false}, // a string is its bytes, unquoted
		{"12.50", false},   // a number as written
		{`{"value": 1, "unit": "°C"}`, false},
		{"", true},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		if string(msgs[i].payload) != w.payload || (msgs[i].bad != nil) != w.bad {
			t.Errorf("message %d: payload %q bad %v, want %q bad %v", i, msgs[i].payload, msgs[i].bad, w.payload, w.bad)
		}
	}
	if _, err := ingestMessages(url.Values{}, []byte(`"x"`)); err == nil {
		t.Error("a JSON string body was accepted")
	}
}
