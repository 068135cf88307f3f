package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// TestStalledWriter stands in for a disk that stops taking writes: another
// process holds SQLite's write lock. A QoS1 device gets no PUBACK while its
// reading cannot be stored; a QoS0 flood fills the bounded queue and the
// rest is counted as dropped, not kept in memory; pages keep answering.
// When the lock goes, the device's reading is stored (acknowledged late, or
// refused and sent again) and ingest goes on by itself.
func TestStalledWriter(t *testing.T) {
	s := startServe(t, nil, "--write-queue", "5000")
	base := time.Now().Add(-time.Hour).UnixMilli()

	// The server may be in a transaction of its own (a tick, a retention
	// step) at this instant: wait for it rather than fail.
	lock, err := sql.Open("sqlite", "file:"+filepath.Join(s.data, "andon.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer release()

	// A QoS1 device: no PUBACK while the store is stalled.
	qos1 := mqtttest.Connect(t, s.addrs.MQTT)
	acked := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		acked <- qos1.Publish(ctx, "stall/m1/important", []byte(fmt.Sprintf(`{"value": 42, "ts": %d}`, base)), 1)
	}()

	// A QoS0 flood: 10,000 readings against a queue of 5,000.
	qos0 := mqtttest.Connect(t, s.addrs.MQTT)
	var msg strings.Builder
	for i := range 20 {
		msg.Reset()
		fmt.Fprintf(&msg, `{"timestamp_ms": %d`, base+int64(i)+1)
		for k := range 500 {
			fmt.Fprintf(&msg, `, "m%03d": %d`, k, k)
		}
		msg.WriteString("}")
		if err := qos0.Publish(context.Background(), "stall/m2", []byte(msg.String()), 0); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for scrapeCounter(t, s, "andon_readings_dropped_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing counted as dropped after a QoS0 flood larger than the queue")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if q := scrapeCounter(t, s, "andon_write_queue_readings"); q > 5000 {
		t.Errorf("%v readings queued; the queue is bounded at 5,000", q)
	}
	select {
	case err := <-acked:
		if err == nil {
			t.Fatalf("the QoS1 reading was acknowledged while the store could not take it")
		}
		acked <- err // refused: the device keeps it and sends it again below
	default:
	}
	if code, _ := get(t, s.url("/")); code != 200 {
		t.Errorf("the overview answered %d while the writer was stalled", code)
	}

	release()
	if err := <-acked; err != nil {
		// Refused while stalled: the device sends it again.
		t.Logf("the stalled QoS1 publish was refused (%v); sending it again", err)
		p := mqtttest.Connect(t, s.addrs.MQTT)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Publish(ctx, "stall/m1/important", []byte(fmt.Sprintf(`{"value": 42, "ts": %d}`, base)), 1); err != nil {
			t.Fatalf("resend after the stall: %v", err)
		}
	}
	// Ingest goes on by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := qos1.Publish(ctx, "stall/m1/important", []byte(fmt.Sprintf(`{"value": 43, "ts": %d}`, base+1)), 1); err != nil {
		// The first connection may have been closed by a refusal.
		p := mqtttest.Connect(t, s.addrs.MQTT)
		if err := p.Publish(ctx, "stall/m1/important", []byte(fmt.Sprintf(`{"value": 43, "ts": %d}`, base+1)), 1); err != nil {
			t.Fatalf("publish after the stall: %v", err)
		}
	}
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.data, "andon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var sum float64
	if err := db.QueryRow(`SELECT COUNT(*), TOTAL(r.value) FROM readings r JOIN tags g ON g.id = r.tag_id
		WHERE g.topic = 'stall/m1/important'`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 85 {
		t.Errorf("the device's readings: %d stored summing to %v, want both (42 and 43) once", n, sum)
	}
}
