// The crash tests run the andon command as child processes, publishing
// 100,000 readings through them; under the race detector that takes minutes,
// so `make test` runs them in its pass without it.

//go:build !race

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"andon/ingest/mqtttest"
)

// TestMain lets a test run the real andon command as a child process, so
// that it can kill it with SIGKILL: with ANDON_TEST_MAIN=1 this test binary
// is andon.
func TestMain(m *testing.M) {
	if os.Getenv("ANDON_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is `andon serve` in a process of its own.
type child struct {
	cmd    *exec.Cmd
	http   string
	stderr *syncBuffer
}

// startChild runs `andon serve` with args in a child process and waits for
// /healthz.
func startChild(t *testing.T, httpAddr string, args ...string) *child {
	t.Helper()
	c := &child{http: httpAddr, stderr: &syncBuffer{}}
	c.cmd = exec.Command(os.Args[0], append([]string{"serve", "--http", httpAddr}, args...)...)
	c.cmd.Env = append(os.Environ(), "ANDON_TEST_MAIN=1")
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("andon did not answer /healthz within 60 s\n%s", c.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the child with SIGKILL: no shutdown, no last commit.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

// stop ends the child as a service manager would, with SIGTERM.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("andon exited with %v after SIGTERM\n%s", err, c.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("andon did not exit within 30 s of SIGTERM\n%s", c.stderr)
		c.kill()
	}
}

const (
	crashReadings   = 100_000
	crashPublishers = 8
)

// crashTopic and crashTS name reading i of publisher p: one machine per
// publisher, and the reading's index as its value and its millisecond.
func crashTopic(p int) string { return fmt.Sprintf("crash/m%d/seq", p) }

func crashTS(base int64, i int) int64 { return base + int64(i) }

// publishRange publishes readings [from, to) of each publisher over QoS1,
// the publishers in parallel, and returns per publisher the index of the
// first reading whose PUBACK did not come (to when all did). A publisher
// stops at its first failure: everything before it was acknowledged.
func publishRange(t *testing.T, addr string, base int64, from []int, to int, acked *atomic.Int64) []int {
	t.Helper()
	next := make([]int, crashPublishers)
	var wg sync.WaitGroup
	for p := range crashPublishers {
		next[p] = from[p]
		pub, err := mqtttest.Dial(t, addr, "", "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from[p]; i < to; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				payload := fmt.Sprintf(`{"value": %d, "ts": %d}`, i, crashTS(base, i))
				err := pub.Publish(ctx, crashTopic(p), []byte(payload), 1)
				cancel()
				if err != nil {
					return
				}
				next[p] = i + 1
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	return next
}

// storedSeq reads, per publisher, the stored readings of its machine as
// millisecond → value, from the database file of a stopped server.
func storedSeq(t *testing.T, data string) []map[int64]float64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "andon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := make([]map[int64]float64, crashPublishers)
	for p := range crashPublishers {
		out[p] = map[int64]float64{}
		rows, err := db.Query(`SELECT r.ts_ms, r.value FROM readings r JOIN tags g ON g.id = r.tag_id WHERE g.topic = ?`, crashTopic(p))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ts int64
			var v float64
			if err := rows.Scan(&ts, &v); err != nil {
				t.Fatal(err)
			}
			if _, dup := out[p][ts]; dup {
				t.Fatalf("publisher %d: reading at %d stored twice", p, ts)
			}
			out[p][ts] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// countSeq is how many of the test's readings are stored so far; it reads
// the database beside a running server (WAL lets another process read).
func countSeq(t *testing.T, data string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "andon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM readings r JOIN tags g ON g.id = r.tag_id WHERE g.topic LIKE 'crash/%'`).Scan(&n); err != nil {
		return -1 // not created yet
	}
	return n
}

// checkAllStored fails unless every reading below want[p] is stored once
// with its own value.
func checkAllStored(t *testing.T, data string, base int64, want []int) {
	t.Helper()
	got := storedSeq(t, data)
	for p := range crashPublishers {
		missing := 0
		for i := range want[p] {
			v, ok := got[p][crashTS(base, i)]
			if !ok {
				missing++
				continue
			}
			if v != float64(i) {
				t.Fatalf("publisher %d reading %d stored as %v", p, i, v)
			}
		}
		if missing > 0 {
			t.Errorf("publisher %d: %d of %d acknowledged readings are missing", p, missing, want[p])
		}
	}
}

// TestCrashEmbeddedBroker: devices publish QoS1 as fast as Andon takes
// them; Andon is killed with SIGKILL midway and restarted. Every reading
// whose PUBACK a device received is stored, once; the devices then resend
// what was not acknowledged (some of it was stored), and no reading is
// stored twice.
func TestCrashEmbeddedBroker(t *testing.T) {
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	args := []string{"--data", data, "--mqtt-listen", mqttAddr, "--mqtt-anonymous", "--log-level", "warn"}
	c := startChild(t, httpAddr, args...)
	base := time.Now().Add(-time.Hour).UnixMilli()
	per := crashReadings / crashPublishers

	var acked atomic.Int64
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for acked.Load() < crashReadings/3 {
			time.Sleep(time.Millisecond)
		}
		c.kill()
	}()
	next := publishRange(t, mqttAddr, base, make([]int, crashPublishers), per, &acked)
	<-killed
	ackedAtKill := acked.Load()
	if ackedAtKill >= crashReadings {
		t.Fatalf("all readings were acknowledged before the kill; the test proves nothing")
	}

	c = startChild(t, httpAddr, args...)
	c.stop(t)
	checkAllStored(t, data, base, next)
	t.Logf("%d readings acknowledged before SIGKILL; all stored after the restart", ackedAtKill)

	// The devices resend everything not acknowledged, as they would.
	c = startChild(t, httpAddr, args...)
	all := make([]int, crashPublishers)
	for p := range all {
		all[p] = per
	}
	if got := publishRange(t, mqttAddr, base, next, per, &acked); fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("after the restart not every resend was acknowledged: %v", got)
	}
	c.stop(t)
	checkAllStored(t, data, base, all)
	if n := countSeq(t, data); n != crashReadings {
		t.Errorf("%d readings stored, want exactly %d", n, crashReadings)
	}
}

// TestCrashExternalBroker: devices publish QoS1 to mosquitto while Andon,
// subscribed with a persistent session, is killed with SIGKILL midway and
// stays down while publishing goes on. After the restart every reading
// mosquitto acknowledged arrives, and none twice.
func TestCrashExternalBroker(t *testing.T) {
	broker := mqtttest.StartMosquitto(t)
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	args := []string{"--data", data, "--mqtt-listen", "off", "--mqtt-url", "mqtt://" + broker.Addr, "--log-level", "warn"}
	c := startChild(t, httpAddr, args...)
	base := time.Now().Add(-time.Hour).UnixMilli()
	per := crashReadings / crashPublishers

	// Kill Andon once it has stored a third, with the rest still coming.
	var acked atomic.Int64
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		deadline := time.Now().Add(2 * time.Minute)
		for countSeq(t, data) < crashReadings/3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		c.kill()
	}()
	next := publishRange(t, broker.Addr, base, make([]int, crashPublishers), per, &acked)
	<-killed
	for p, n := range next {
		if n != per {
			t.Fatalf("mosquitto did not acknowledge publisher %d's reading %d", p, n)
		}
	}
	storedAtKill := countSeq(t, data)
	if storedAtKill >= crashReadings {
		t.Fatalf("all readings were stored before the kill; the test proves nothing")
	}

	c = startChild(t, httpAddr, args...)
	deadline := time.Now().Add(3 * time.Minute)
	for countSeq(t, data) < crashReadings && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	c.stop(t)
	checkAllStored(t, data, base, next)
	if n := countSeq(t, data); n != crashReadings {
		t.Errorf("%d readings stored, want exactly %d", n, crashReadings)
	}
	t.Logf("%d readings stored before SIGKILL; all %d after the restart", storedAtKill, crashReadings)
}
