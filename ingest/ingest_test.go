package ingest

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"andon/plant"
)

func TestRejectLogIsRateLimitedPerTopic(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	now := time.Date(2024, 11, 24, 12, 0, 0, 0, time.UTC)
	sink := &testSink{}
	in := newIngester(sink, DefaultLimits(), log, func() time.Time { return now }, prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))

	steps := []struct {
		name     string
		advance  time.Duration
		topic    string
		payload  string
		wantLogs int // total lines logged so far
	}{
		{"first reject logs", 0, "m/a", "bad!", 1},
		{"same topic soon after is quiet", 10 * time.Second, "m/a", "bad!", 1},
		{"another topic logs", 0, "m/b", "bad!", 2},
		{"a good message logs nothing", 0, "m/a", "1", 2},
		{"same topic a minute later logs again", 61 * time.Second, "m/a", "bad!", 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now = now.Add(s.advance)
			in.message(Message{Topic: s.topic, Payload: []byte(s.payload)})
			if got := strings.Count(buf.String(), "\n"); got != s.wantLogs {
				t.Errorf("%d log lines, want %d:\n%s", got, s.wantLogs, buf.String())
			}
		})
	}
	// Every reject reaches the sink, logged or not.
	if _, rejects := sink.snapshot(); len(rejects) != 4 {
		t.Errorf("%d rejects in the sink, want 4", len(rejects))
	}
	if !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), `"reason":"not_a_number"`) ||
		!strings.Contains(buf.String(), `"topic":"m/a"`) {
		t.Errorf("log lacks level, reason or topic:\n%s", buf.String())
	}
}

func TestRejectLogMemoryIsBounded(t *testing.T) {
	now := time.Now()
	in := newIngester(&testSink{}, DefaultLimits(), nil, func() time.Time { return now },
		prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))
	for i := range maxRejectLogTopics + 5 {
		in.logReject(&plant.Reject{Topic: "t/" + strconv.Itoa(i), Reason: "r"}, now.UnixMilli())
	}
	if n := len(in.lastLogMS); n > maxRejectLogTopics {
		t.Errorf("%d topics remembered, want at most %d", n, maxRejectLogTopics)
	}
}

func TestMinLevelHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(minLevelHandler{min: slog.LevelWarn, inner: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	log.Info("connected")
	log.With("a", 1).WithGroup("g").Warn("slow client")
	out := buf.String()
	if strings.Contains(out, "connected") || !strings.Contains(out, "slow client") {
		t.Errorf("log output %q: want only the warning", out)
	}
}
