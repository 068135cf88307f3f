// Command andon-bench measures Andon against this machine's own limits: it
// starts the real `andon serve` on free ports with a fresh data dir, loads
// it over MQTT, websockets and HTTP, measures the bare parts it is built
// from (the broker alone, SQLite alone) in the same run, runs the Go
// benchmarks of the history queries, and prints one table of medians with
// their spread and their ratio to the baseline. With -out it also writes the
// table into BENCHMARKS.md between its markers.
//
//	make bench                       # build bin/andon, then run this
//	go run ./cmd/andon-bench -andon bin/andon -runs 3 -out BENCHMARKS.md
//	go run ./cmd/andon-bench -andon bin/andon -quick   # seconds, to check it works
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var (
	bgctx    = context.Background()
	quietLog = slog.New(slog.DiscardHandler)
)

// sizes are the loads of one run; -quick shrinks them to check the tool.
type sizes struct {
	qos0Msgs, qos1OneMsgs, qos1TenMsgs, extMsgs int
	latencyFor                                  time.Duration
	latencyClients                              []int
	pageFor                                     time.Duration
	pageMachines                                []int
	rssClients                                  int
	coldStarts                                  int
}

var fullSizes = sizes{
	qos0Msgs: 300_000, qos1OneMsgs: 40_000, qos1TenMsgs: 100_000, extMsgs: 150_000,
	latencyFor: 10 * time.Second, latencyClients: []int{100, 1000},
	pageFor: 3 * time.Second, pageMachines: []int{100, 1000},
	rssClients: 1000, coldStarts: 5,
}

var quickSizes = sizes{
	qos0Msgs: 2000, qos1OneMsgs: 1000, qos1TenMsgs: 1000, extMsgs: 1000,
	latencyFor: time.Second, latencyClients: []int{10},
	pageFor: 300 * time.Millisecond, pageMachines: []int{100},
	rssClients: 10, coldStarts: 1,
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "andon-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("andon-bench", flag.ContinueOnError)
	bin := fs.String("andon", "bin/andon", "the andon binary to measure (make build makes bin/andon)")
	runs := fs.Int("runs", 3, "runs of every measurement; the table shows their median, min and max")
	out := fs.String("out", "", "also write the table into this markdown file, between its andon-bench markers")
	quick := fs.Bool("quick", false, "tiny loads and one run, to check the tool works (make test runs it so)")
	only := fs.String("only", "", "comma-separated sections to run: ingest, external, latency, pages, footprint, history (default all)")
	andonArgs := fs.String("andon-args", "", "flags added to every andon serve, e.g. \"--memory-limit off\"")
	profile := fs.String("profile", "", "write a CPU profile of every andon serve run into this directory (andon serve --cpu-profile)")
	history := fs.Bool("history", true, "run the history Go benchmarks (go test) too; needs the source tree and Go")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
		*runs = 1
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("%s: %w (make build makes it)", *bin, err)
	}
	want := func(s string) bool {
		if *only == "" {
			return s != "history" || (*history && !*quick)
		}
		return strings.Contains(","+*only+",", ","+s+",")
	}
	work, err := os.MkdirTemp("", "andon-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	env := describeMachine()
	r := newReport(env, *runs)
	fmt.Fprintf(stdout, "andon-bench: %s · %d run(s)\n", env.summary(), *runs)
	b := &bench{bin: *bin, work: work, sz: sz, r: r, log: stdout, profile: *profile, args: strings.Fields(*andonArgs)}
	for i := range *runs {
		fmt.Fprintf(stdout, "run %d of %d\n", i+1, *runs)
		for _, s := range []struct {
			name string
			fn   func() error
		}{
			{"ingest", b.ingest},
			{"external", b.external},
			{"latency", b.latency},
			{"pages", b.pages},
			{"footprint", b.footprint},
		} {
			if !want(s.name) {
				continue
			}
			if err := s.fn(); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	if want("history") {
		if err := b.history(*runs); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	r.env.loadAfter = loadAverage()
	table := r.markdown()
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, table)
	if *out != "" {
		if err := writeInto(*out, table); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten into %s\n", *out)
	}
	if *quick {
		fmt.Fprintln(stdout, "\nquick mode: tiny loads, so the figures and targets mean nothing; make bench measures")
	} else if missed := r.missed(); len(missed) > 0 {
		fmt.Fprintf(stdout, "\ntargets missed: %s\n", strings.Join(missed, "; "))
	}
	return nil
}

// bench holds what every section needs.
type bench struct {
	bin, work string
	sz        sizes
	r         *report
	log       io.Writer
	profile   string   // directory for CPU profiles; "" for none
	args      []string // added to every andon serve
	started   int
}

// start starts Andon for a scenario, profiled into the profile directory
// as NN-name.pprof when asked.
func (b *bench) start(name string, extra ...string) (*andon, error) {
	if b.profile != "" {
		b.started++
		slug := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(name))
		path := filepath.Join(b.profile, fmt.Sprintf("%02d-%s.pprof", b.started, slug))
		b.step("profile: %s", path)
		extra = append(extra, "--cpu-profile", path)
	}
	return startAndon(b.bin, b.work, append(extra, b.args...)...)
}

func (b *bench) step(format string, args ...any) {
	fmt.Fprintf(b.log, "  "+format+"\n", args...)
}

// ingest measures the embedded broker: the generator alone, mochi's bare
// delivery and Andon for each case, bare SQLite, and peak memory under
// QoS 0 ingest with websocket clients on the overview.
func (b *bench) ingest() error {
	cases := []struct {
		c          ingestCase
		msgs       int
		perMessage int
		target     float64
	}{
		{ingestCase{qos: 0, conns: 10, inflight: 1}, b.sz.qos0Msgs, 1, 150_000},
		{ingestCase{qos: 1, conns: 1, inflight: 64}, b.sz.qos1OneMsgs, 1, 20_000},
		{ingestCase{qos: 1, conns: 10, inflight: 16}, b.sz.qos1TenMsgs, 1, 30_000},
		{ingestCase{qos: 0, conns: 10, inflight: 1, perMessage: plantMetrics}, b.sz.qos0Msgs / plantMetrics, plantMetrics, 0},
		{ingestCase{qos: 1, conns: 10, inflight: 16, perMessage: plantMetrics}, b.sz.qos1TenMsgs / plantMetrics, plantMetrics, 0},
	}
	for _, k := range cases {
		l := newLoad(k.msgs, k.perMessage)
		gen, err := generatorAlone(l, k.c)
		if err != nil {
			return err
		}
		b.r.add(row{section: "Ingest, embedded broker", name: "load generator alone, " + k.c.String(), unit: "readings/s",
			note: "lean MQTT publisher into mochi with a do-nothing hook: the most the load can offer"}, gen, 0)
		bare, err := b.bareMochi(l, k.c)
		if err != nil {
			return err
		}
		b.r.add(row{section: "Ingest, embedded broker", name: "baseline: mochi alone delivering to a do-nothing subscriber, " + k.c.String(),
			unit: "readings/s"}, bare, 0)
		res, err := b.andonIngest(l, k.c, 0)
		if err != nil {
			return err
		}
		b.step("%s: generator %.0f, mochi %.0f, andon %.0f readings/s (lost %.0f, dropped %.0f, pushed %.0f%%; CPU andon %.0f%%, generator %.0f%%)",
			k.c, gen, bare, res.rate, res.lost, res.dropped, 100*res.pushed, res.cpu[0], res.cpu[2])
		b.r.add(row{section: "Ingest, embedded broker", name: "**Andon**, " + k.c.String() + ", committed and pushed", unit: "readings/s",
			baseline: "mochi alone", atLeast: k.target, headline: true}, res.rate, res.rate/bare)
		b.r.add(row{section: "Ingest, embedded broker", name: "readings lost, " + k.c.String(), unit: "readings", atMost: 0.5, zeroOK: true}, res.lost, 0)
		b.cpuRows(k.c.String(), res, false)
		if k.c.qos == 0 && k.perMessage == 1 {
			b.r.add(row{section: "Ingest, embedded broker", name: "QoS 0 readings dropped because the write queue was full (counted, by design)", unit: "readings"}, res.dropped, 0)
			b.r.add(row{section: "Footprint", name: "peak RSS under QoS 0 ingest", unit: "MB"}, res.peakRSS/1e6, 0)
			b.r.add(row{section: "Footprint", name: "goroutines under QoS 0 ingest", unit: ""}, res.routines, 0)
			rows := l.readings()
			sq, err := bareSQLite(b.work, rows)
			if err != nil {
				return err
			}
			b.r.add(row{section: "Ingest, embedded broker", name: "baseline: bare SQLite, prepared inserts in 10,000-row transactions", unit: "rows/s"}, sq, 0)
			b.r.add(row{section: "Ingest, embedded broker", name: "Andon QoS 0 ÷ bare SQLite insert", unit: "×"}, res.rate/sq, 0)
		}
	}
	// Memory with the overview open on many screens while QoS 0 pours in.
	l := newLoad(b.sz.qos0Msgs, 1)
	res, err := b.andonIngest(l, ingestCase{qos: 0, conns: 10, inflight: 1}, b.sz.rssClients)
	if err != nil {
		return err
	}
	b.step("QoS 0 with %d websocket clients: %.0f readings/s, peak RSS %.0f MB", b.sz.rssClients, res.rate, res.peakRSS/1e6)
	b.r.add(row{section: "Footprint", name: fmt.Sprintf("peak RSS under QoS 0 ingest with %s websocket clients on the overview", thousands(float64(b.sz.rssClients))),
		unit: "MB", atMost: 100, headline: true}, res.peakRSS/1e6, 0)
	return nil
}

// cpuRows files who used the machine's two cores during an ingest run.
func (b *bench) cpuRows(what string, res ingestResult, external bool) {
	sec := "CPU during ingest, % of one core (the machine has 200%)"
	b.r.add(row{section: sec, name: "Andon, " + what, unit: "%"}, res.cpu[0], 0)
	if external {
		b.r.add(row{section: sec, name: "mosquitto, " + what, unit: "%"}, res.cpu[1], 0)
	}
	b.r.add(row{section: sec, name: "load generator and websocket watcher, " + what, unit: "%"}, res.cpu[2], 0)
}

func (b *bench) bareMochi(l *load, c ingestCase) (float64, error) {
	br, err := startBareBroker()
	if err != nil {
		return 0, err
	}
	defer br.close()
	rate, dropped, err := bareDelivery(br.addr, l, c)
	b.dropped(c, "mochi", dropped)
	return rate, err
}

// dropped notes messages a bare broker dropped for its subscriber.
func (b *bench) dropped(c ingestCase, broker string, n int64) {
	if n > 0 {
		b.step("%s alone dropped %d of its subscriber's %s messages (its queue for a slow subscriber was full)", broker, n, c)
	}
}

// andonIngest runs one load against a fresh Andon, with idle websocket
// clients on the overview beside the measuring one.
func (b *bench) andonIngest(l *load, c ingestCase, overviewClients int) (ingestResult, error) {
	a, err := b.start(c.String())
	if err != nil {
		return ingestResult{}, err
	}
	defer a.stop()
	stop, err := idleClients(a, overviewClients)
	if err != nil {
		return ingestResult{}, err
	}
	defer stop()
	return runAndonIngest(a, a.mqtt, l, c, -1)
}

// external measures Andon behind its own mosquitto against mosquitto's bare
// delivery to a do-nothing subscriber.
func (b *bench) external() error {
	for _, c := range []ingestCase{{qos: 0, conns: 10, inflight: 1}, {qos: 1, conns: 10, inflight: 16}} {
		l := newLoad(b.sz.extMsgs, 1)
		m, err := startMosquitto(b.work)
		if err != nil {
			return err
		}
		bare, dropped, err := bareDelivery(m.addr, l, c)
		b.dropped(c, "mosquitto", dropped)
		m.stop()
		if err != nil {
			return err
		}
		m, err = startMosquitto(b.work)
		if err != nil {
			return err
		}
		a, err := b.start("external "+c.String(), "--mqtt-listen", "off", "--mqtt-url", "mqtt://"+m.addr)
		if err != nil {
			m.stop()
			return err
		}
		res, err := runAndonIngest(a, m.addr, l, c, m.cmd.Process.Pid)
		a.stop()
		m.stop()
		if err != nil {
			return err
		}
		b.step("external %s: mosquitto %.0f, andon %.0f readings/s (lost %.0f, dropped %.0f; CPU andon %.0f%%, mosquitto %.0f%%, generator %.0f%%)",
			c, bare, res.rate, res.lost, res.dropped, res.cpu[0], res.cpu[1], res.cpu[2])
		b.r.add(row{section: "Ingest, external mosquitto", name: "baseline: mosquitto alone delivering to a do-nothing subscriber, " + c.String(), unit: "readings/s"}, bare, 0)
		b.r.add(row{section: "Ingest, external mosquitto", name: "**Andon** subscribed to mosquitto, " + c.String(), unit: "readings/s",
			baseline: "mosquitto alone", ratioAtLeast: 0.9, headline: true}, res.rate, res.rate/bare)
		b.r.add(row{section: "Ingest, external mosquitto", name: "readings lost, " + c.String(), unit: "readings", atMost: 0.5, zeroOK: true}, res.lost, 0)
		b.cpuRows("behind mosquitto, "+c.String(), res, true)
	}
	return nil
}

// latency measures publish → tile on websocket clients of the overview.
func (b *bench) latency() error {
	for _, n := range b.sz.latencyClients {
		a, err := b.start(fmt.Sprintf("latency %d clients", n))
		if err != nil {
			return err
		}
		l := newLoad(0, plantMetrics)
		wt, wp := l.warmup()
		if _, err := publishAll(a.mqtt, wt, wp, 1, 1, 16); err != nil {
			a.stop()
			return err
		}
		if _, err := a.waitIngested(plantTags, 10*time.Second); err != nil {
			a.stop()
			return err
		}
		base, err := bareHubLatency(n, b.sz.latencyFor)
		if err != nil {
			a.stop()
			return err
		}
		res, err := runLatency(a, l, n, b.sz.latencyFor)
		a.stop()
		if err != nil {
			return err
		}
		b.step("latency, %d clients: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples); bare hub p99 %.1f ms", n, res.p50, res.p99, res.max, res.samples, base)
		sec := "Live latency: MQTT publish → tile on the overview's websocket, 100 machines at 1 Hz"
		clients := thousands(float64(n)) + " clients"
		b.r.add(row{section: sec, name: "baseline: bare gorilla hub, a prepared frame of two tiles every 20 ms, p99, " + clients, unit: "ms"}, base, 0)
		b.r.add(row{section: sec, name: "p50, " + clients, unit: "ms"}, res.p50, 0)
		r := row{section: sec, name: "**p99**, " + clients, unit: "ms", baseline: "bare hub p99", headline: true}
		if n >= 1000 {
			r.atMost = 50
		}
		b.r.add(r, res.p99, res.p99/base)
		b.r.add(row{section: sec, name: "max, " + clients, unit: "ms"}, res.max, 0)
		b.r.add(row{section: "Footprint", name: "peak RSS, live latency with " + clients, unit: "MB"}, res.peakRSS/1e6, 0)
		b.r.add(row{section: "Footprint", name: "goroutines, live latency with " + clients, unit: ""}, res.routines, 0)
	}
	return nil
}

// pages loads the overview and a machine page of plants of 100 and 1,000
// machines from 8 concurrent clients.
func (b *bench) pages() error {
	for _, n := range b.sz.pageMachines {
		a, err := b.start(fmt.Sprintf("pages %d machines", n))
		if err != nil {
			return err
		}
		err = func() error {
			defer a.stop()
			if err := pagesPlant(a, n); err != nil {
				return err
			}
			mp, err := machinePath(a)
			if err != nil {
				return err
			}
			for _, p := range []struct{ name, path string }{{"overview /", "/"}, {"machine page", mp}} {
				res, err := loadPage(a, p.path, 8, b.sz.pageFor)
				if err != nil {
					return err
				}
				b.step("%s, %d machines: p50 %.1f ms, p99 %.1f ms, %.0f req/s", p.name, n, res.p50, res.p99, res.rps)
				sec := "Pages, 8 concurrent clients over loopback"
				what := fmt.Sprintf("%s, %s machines", p.name, thousands(float64(n)))
				b.r.add(row{section: sec, name: what + ", p50", unit: "ms"}, res.p50, 0)
				b.r.add(row{section: sec, name: what + ", p99", unit: "ms"}, res.p99, 0)
				b.r.add(row{section: sec, name: what + ", throughput", unit: "req/s"}, res.rps, 0)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// footprint measures the binary, cold starts on a fresh data dir, and an
// idle server.
func (b *bench) footprint() error {
	st, err := os.Stat(b.bin)
	if err != nil {
		return err
	}
	b.r.add(row{section: "Footprint", name: "binary size", unit: "MB", atMost: 30, headline: true}, float64(st.Size())/1e6, 0)
	for i := range b.sz.coldStarts {
		a, err := startAndon(b.bin, b.work)
		if err != nil {
			return err
		}
		b.r.add(row{section: "Footprint", name: "cold start: exec to the first 200 from /healthz, fresh data dir", unit: "ms", atMost: 1000, headline: true},
			float64(a.started.Microseconds())/1000, 0)
		if i == 0 {
			time.Sleep(3 * time.Second)
			rss, _ := a.memory()
			g, _ := a.metric("go_goroutines")
			b.r.add(row{section: "Footprint", name: "RSS idle, 3 s after start", unit: "MB"}, rss/1e6, 0)
			b.r.add(row{section: "Footprint", name: "goroutines idle", unit: ""}, g, 0)
		}
		a.stop()
	}
	return nil
}

// idleClients connects n websocket clients to the overview that read and
// discard; stop closes them.
func idleClients(a *andon, n int) (stop func(), err error) {
	var closers []func()
	stop = func() {
		for _, c := range closers {
			c()
		}
	}
	for range n {
		conn, err := dialWS(a)
		if err != nil {
			stop()
			return nil, err
		}
		if err := conn.WriteJSON(map[string][]string{"sub": {"plant"}}); err != nil {
			stop()
			return nil, err
		}
		go func() {
			for {
				if _, _, err := conn.NextReader(); err != nil {
					return
				}
			}
		}()
		closers = append(closers, func() { _ = conn.Close() })
	}
	return stop, nil
}
