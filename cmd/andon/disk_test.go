package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// smallDisk mounts a tmpfs of sizeMiB under a temp dir: a real filesystem
// that fills up. It needs root (CI runs as root); grow remounts it larger,
// as freeing space on a full disk would.
func smallDisk(t *testing.T, sizeMiB int) (dir string, grow func(sizeMiB int)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root; CI runs this test as root")
	}
	dir = filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMiB), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %d MiB tmpfs: %v: %s", sizeMiB, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, func(sizeMiB int) {
		if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%dm", sizeMiB), dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s at %d MiB: %v: %s", dir, sizeMiB, err, out)
		}
	}
}

// diskMessage is message i: 50 metrics of machine disk/m1 at one instant.
func diskMessage(base int64, i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"timestamp_ms": %d`, base+int64(i))
	for k := range 50 {
		fmt.Fprintf(&b, `, "metric_%02d": %d.%d`, k, i, k)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// TestDiskFull fills the data directory's filesystem under a running
// Andon. The device's publish that cannot be stored gets no PUBACK; pages
// keep working while /healthz and /metrics say what is wrong; when space
// comes back the device's resend is stored and ingest goes on by itself,
// with every acknowledged reading kept.
func TestDiskFull(t *testing.T) {
	data, grow := smallDisk(t, 4)
	s := launch(t, nil, "serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--open-viewing", "--mqtt-anonymous", "--log-level", "warn")
	base := time.Now().Add(-time.Hour).UnixMilli()

	pub := mqtttest.Connect(t, s.addrs.MQTT)
	acked := 0
	var failure error
	for i := 0; i < 100_000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		failure = pub.Publish(ctx, "disk/m1", diskMessage(base, i), 1)
		cancel()
		if failure != nil {
			break
		}
		acked++
	}
	if failure == nil {
		t.Fatalf("100,000 messages of 50 readings fitted on a 4 MiB disk; the test proves nothing")
	}
	t.Logf("the disk filled after %d messages: %v", acked, failure)
	if !strings.Contains(s.stderr.String(), "full") {
		t.Errorf("the log does not say the disk is full:\n%s", s.stderr)
	}

	// Pages still work, and health says what is wrong.
	if code, _ := get(t, s.url("/")); code != 200 {
		t.Errorf("the overview answered %d on a full disk, want 200", code)
	}
	code, body := get(t, s.url("/healthz"))
	if code != 503 || !strings.Contains(body, "readings cannot be stored") {
		t.Errorf("/healthz on a full disk = %d %s, want 503 saying readings cannot be stored", code, body)
	}
	if _, page := get(t, s.url("/downtime")); !strings.Contains(page, "Readings cannot be stored since") {
		t.Errorf("pages do not say in their banner that readings cannot be stored")
	}
	if _, metrics := get(t, s.url("/metrics")); !strings.Contains(metrics, "andon_write_errors_total") || strings.Contains(metrics, "andon_write_errors_total 0\n") {
		t.Errorf("/metrics does not count the failed writes")
	}

	// Space comes back; the device resends what was not acknowledged, then
	// goes on.
	grow(64)
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := mqtttest.Dial(t, s.addrs.MQTT, "", "")
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err = p.Publish(ctx, "disk/m1", diskMessage(base, acked), 1)
			cancel()
			if err == nil {
				acked++
				pub = p
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish stored within 60 s of space coming back: %v\n%s", err, s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := pub.Publish(ctx, "disk/m1", diskMessage(base, acked), 1)
		cancel()
		if err != nil {
			t.Fatalf("publish after recovery: %v", err)
		}
		acked++
	}
	if code, body := get(t, s.url("/healthz")); code != 200 {
		t.Errorf("/healthz after recovery = %d %s, want 200", code, body)
	}
	if _, body := get(t, s.url("/api/v1/problems")); body != `{"problems":[]}`+"\n" {
		t.Errorf("problems after recovery: %s", body)
	}
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}

	// Every acknowledged message is stored whole, and nothing else.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "andon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT r.ts_ms, COUNT(*) FROM readings r JOIN tags g ON g.id = r.tag_id
		WHERE g.topic LIKE 'disk/m1%' GROUP BY r.ts_ms`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[int64]int{}
	for rows.Next() {
		var ts int64
		var n int
		if err := rows.Scan(&ts, &n); err != nil {
			t.Fatal(err)
		}
		stored[ts] = n
	}
	for i := range acked {
		if n := stored[base+int64(i)]; n != 50 {
			t.Fatalf("acknowledged message %d has %d of its 50 readings stored", i, n)
		}
	}
	if len(stored) != acked {
		t.Errorf("%d instants stored for %d acknowledged messages", len(stored), acked)
	}
}
