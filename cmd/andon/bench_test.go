package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// BenchmarkIngestEmbedded measures readings per second from MQTT publishers
// through the embedded broker until committed in SQLite, with the real
// `andon serve`. Each message is a JSON object of 10 metrics of one machine
// (100 machines), so one message is 10 readings.
//
//	go test -run '^$' -bench IngestEmbedded -benchtime 20000x ./cmd/andon
func BenchmarkIngestEmbedded(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			benchIngest(b, qos)
		})
	}
}

func benchIngest(b *testing.B, qos byte) {
	const (
		conns       = 10 // publisher connections
		perConn     = 8  // concurrent publishes per connection (QoS1 waits for each PUBACK)
		machines    = 100
		perMessage  = 10 // metrics per message
		metricNames = "abcdefghij"
	)
	s := startBenchServe(b)
	pubs := make([]*mqtttest.Publisher, conns)
	for i := range pubs {
		pubs[i] = mqtttest.Connect(b, s.addrs.MQTT)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	payload := func(n int) (string, []byte) {
		m := n % machines
		var sb strings.Builder
		sb.WriteString(`{"timestamp_ms":`)
		sb.WriteString(strconv.FormatInt(base+int64(n/machines), 10))
		for i := range perMessage {
			fmt.Fprintf(&sb, `,"%c":%d.5`, metricNames[i], n%1000)
		}
		sb.WriteByte('}')
		return fmt.Sprintf("bench/line-%d/m-%03d", m/10, m), []byte(sb.String())
	}
	// Warm up: create the 100 machines' tags outside the timed part.
	ctx := context.Background()
	for n := range machines {
		topic, p := payload(n)
		if err := pubs[0].Publish(ctx, topic, p, 1); err != nil {
			b.Fatal(err)
		}
	}
	before := scrapeCounter(b, s, "andon_readings_ingested_total")

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int, 1024)
	go func() {
		for n := range b.N {
			next <- machines + n
		}
		close(next)
	}()
	for _, p := range pubs {
		for range perConn {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range next {
					topic, body := payload(n)
					if err := p.Publish(ctx, topic, body, qos); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	published := time.Since(start)
	want := before + float64(b.N*perMessage)
	deadline := time.Now().Add(60 * time.Second)
	var got, dropped float64
	for {
		got = scrapeCounter(b, s, "andon_readings_ingested_total")
		dropped = scrapeCounter(b, s, "andon_readings_dropped_total")
		if got+dropped >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stored := got - before
	b.ReportMetric(stored/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(b.N)/published.Seconds(), "msgs/s-published")
	b.ReportMetric(dropped, "dropped")
	if got+dropped < want {
		b.Fatalf("only %.0f of %d readings arrived", stored, b.N*perMessage)
	}
}

// benchQuick is set by make test, which runs every benchmark once with
// ANDON_BENCH_QUICK=1 so that they keep compiling and running; the inputs
// are then tiny and the figures mean nothing.
func benchQuick() bool { return os.Getenv("ANDON_BENCH_QUICK") == "1" }

// startBenchServe is startServe for benchmarks: warnings only in the log.
func startBenchServe(b *testing.B) *server {
	b.Helper()
	// No cap per device: the benchmarks measure what the whole path takes.
	return startServe(b, nil, "--log-level", "warn", "--device-rate", "0")
}

// scrapeCounter reads one un-labelled counter from /metrics.
func scrapeCounter(tb testing.TB, s *server, name string) float64 {
	tb.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				tb.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// BenchmarkPages measures server time for the overview and a machine page of
// a plant of 100 machines with 7 metrics each, over real HTTP.
//
//	go test -run '^$' -bench Pages ./cmd/andon
func BenchmarkPages(b *testing.B) {
	s := startBenchServe(b)
	pub := mqtttest.Connect(b, s.addrs.MQTT)
	ctx := context.Background()
	for m := range 100 {
		body := fmt.Sprintf(`{"good": %d, "scrap": 3, "cycle_time": 12.5, "temperature": 61.2, "spindle_speed": 4200, "power": 12.75, "state_code": 1}`, m*10)
		if err := pub.Publish(ctx, fmt.Sprintf("acme/hall-1/line-%d/m-%03d", m/10, m), []byte(body), 1); err != nil {
			b.Fatal(err)
		}
	}
	ids := machineIDs(b, s)
	if len(ids) != 100 {
		b.Fatalf("%d machines on the overview, want 100", len(ids))
	}
	var one int64
	for _, id := range ids {
		one = id
		break
	}
	for _, page := range []struct{ name, path string }{{"overview", "/"}, {"machine", fmt.Sprintf("/machines/%d", one)}} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(s.url(page.path))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s = %d", page.path, resp.StatusCode)
				}
			}
		})
	}
}
