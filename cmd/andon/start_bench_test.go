package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// BenchmarkStartLargeDB measures a restart on a large database: from
// `andon serve` to its first 200 on /healthz, with 10 million readings of
// 100 tags in the data dir. Start-up must not scan the readings (counts
// are kept, tag and state caches load from small tables), so this stays
// far below what reading 10 million rows would take.
//
//	go test -run '^$' -bench StartLargeDB -benchtime 5x ./cmd/andon
func BenchmarkStartLargeDB(b *testing.B) {
	data := b.TempDir()
	args := []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--mqtt-anonymous", "--log-level", "warn"}
	s := launch(b, nil, args...)
	pub := mqtttest.Connect(b, s.addrs.MQTT)
	ctx := context.Background()
	for m := range 100 {
		if err := pub.Publish(ctx, fmt.Sprintf("big/m%03d/temp", m), []byte("1"), 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.shutdown(); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "andon.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-200 * 24 * time.Hour).UnixMilli()
	perTag := 100_000
	if benchQuick() {
		perTag = 100
	}
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT OR IGNORE INTO readings (tag_id, ts_ms, value)
		SELECT t.id, ? + n.i * 60000, n.i % 97 FROM tags t, n`, perTag-1, base); err != nil {
		b.Fatal(err)
	}
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM readings`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	db.Close()

	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s := launch(b, nil, args...)
		for {
			resp, err := http.Get(s.url("/healthz"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-to-healthz")
		b.StopTimer()
		if err := s.shutdown(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rows), "readings")
}
