package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"andon/db"
	"andon/plant"
)

// hubBenchQuick: `make test` runs every benchmark once with
// ANDON_BENCH_QUICK=1 so that they keep compiling and running; the inputs
// are then tiny.
func hubBenchQuick() bool { return os.Getenv("ANDON_BENCH_QUICK") == "1" }

// livePlant is a real server on a real store with machines that have
// published once, served over real HTTP.
type livePlant struct {
	srv   *Server
	w     *db.Writer
	ts    *httptest.Server
	ctx   context.Context
	ids   []int64         // machine ids, in write order
	index map[int64]int   // machine id -> its index in ids
	names []plant.Reading // each machine's "speed" reading, as a template
}

// machinesPerLine groups a plant's machines into lines of this size.
const machinesPerLine = 10

// newLivePlant builds a plant of n machines, each with a state, a good
// count and a speed already stored. With runHub the hub runs as in
// production; without it the benchmark calls flush itself, so that it is
// the only goroutine touching the hub's flush state.
func newLivePlant(b *testing.B, n int, runHub bool) *livePlant {
	b.Helper()
	store := db.OpenTest(b)
	srv, err := New(Config{Store: store, Location: time.UTC, OpenViewing: true, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	w := db.NewWriter(store, db.WriterConfig{OnCommit: srv.Committed})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	if runHub {
		wg.Go(func() { _ = srv.Run(ctx) })
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		ts.Close()
	})

	p := &livePlant{srv: srv, w: w, ts: ts, ctx: ctx, index: map[int64]int{}}
	now := time.Now().Add(-time.Second).UnixMilli()
	var batch []plant.Reading
	for i := range n {
		line := fmt.Sprintf("line-%02d", i/machinesPerLine)
		name := fmt.Sprintf("m-%04d", i)
		batch = append(batch,
			word(line, name, "state", now, "running"),
			reading(line, name, "good", now, float64(i)),
			reading(line, name, "speed", now, 100))
		p.names = append(p.names, reading(line, name, "speed", 0, 0))
	}
	if err := w.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	lines, err := store.Lines(ctx)
	if err != nil {
		b.Fatal(err)
	}
	byName := map[string]int64{}
	for _, l := range lines {
		for _, m := range l.Machines {
			byName[m.Path.Machine] = m.ID
		}
	}
	for i, r := range p.names {
		id := byName[r.Path.Machine]
		if id == 0 {
			b.Fatalf("machine %s not stored", r.Path.Machine)
		}
		p.ids = append(p.ids, id)
		p.index[id] = i
	}
	return p
}

// dial opens a websocket to the plant's server and subscribes it to topic,
// returning once the subscription's snapshot has arrived.
func (p *livePlant) dial(topic string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(p.ts.URL, "http") + "/ws"
	d := websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 512, HandshakeTimeout: 30 * time.Second}
	c, resp, err := d.Dial(u, http.Header{"Origin": {p.ts.URL}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if err := c.WriteJSON(map[string][]string{"sub": {topic}}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if bytes.Contains(data, []byte(`"id":"grid"`)) || bytes.Contains(data, []byte(`"id":"machine-`)) {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

// liveWrites remembers when each machine's recent readings were handed to
// the writer, by the reading's timestamp, which the overview tile carries
// as data-ts. A ring per machine: a reader looks a write up long after the
// producer has moved on to other machines, but never eight seconds after.
type liveWrites struct {
	slots [][8]struct{ ts, start atomic.Int64 }
	next  []int
}

func (lw *liveWrites) record(i int, ts int64, start time.Time) {
	s := &lw.slots[i][lw.next[i]%len(lw.slots[i])]
	lw.next[i]++
	s.ts.Store(0)
	s.start.Store(start.UnixNano())
	s.ts.Store(ts)
}

// startOf is when the write of machine i's reading at ts began, 0 if
// unknown (the readings stored before the run).
func (lw *liveWrites) startOf(i int, ts int64) int64 {
	for k := range lw.slots[i] {
		s := &lw.slots[i][k]
		if s.ts.Load() == ts {
			start := s.start.Load()
			if s.ts.Load() == ts {
				return start
			}
		}
	}
	return 0
}

// liveClient is one overview page: a read loop that finds machine tiles
// in each frame with bytes.Index and times the first tile of each reading.
// A tile's data-ts is its machine's newest reading, which says which write
// it shows.
type liveClient struct {
	conn *websocket.Conn
	seen []int64   // per machine, the newest data-ts counted
	lat  []float64 // ms from Write to receipt
}

var (
	// The tile's own id attribute, so tiles inside a whole grid count too.
	tileKey = []byte(`id=\"machine-`)
	tsKey   = []byte(`data-ts=\"`)
)

// bigFrames holds buffers for the few frames (whole grids, full
// refreshes) that outgrow a client's own: a buffer per client grown to
// the largest frame would be a gigabyte of heap with 1,000 clients and
// 1,000 machines.
var bigFrames = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *liveClient) run(p *livePlant, lw *liveWrites, recording *atomic.Bool) {
	small := make([]byte, 8<<10)
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			return
		}
		n, err := io.ReadFull(r, small)
		data := small[:n]
		var big *bytes.Buffer
		switch err {
		case io.EOF, io.ErrUnexpectedEOF:
		case nil:
			big = bigFrames.Get().(*bytes.Buffer)
			big.Reset()
			big.Write(data)
			if _, err := big.ReadFrom(r); err != nil {
				return
			}
			data = big.Bytes()
		default:
			return
		}
		c.scan(p, lw, recording, data)
		if big != nil {
			bigFrames.Put(big)
		}
	}
}

// scan times the tiles in one frame.
func (c *liveClient) scan(p *livePlant, lw *liveWrites, recording *atomic.Bool, data []byte) {
	now := time.Now().UnixNano()
	for {
		i := bytes.Index(data, tileKey)
		if i < 0 {
			return
		}
		data = data[i+len(tileKey):]
		id, rest := leadingInt(data)
		j := bytes.Index(rest, tsKey)
		if j < 0 {
			return
		}
		ts, _ := leadingInt(rest[j+len(tsKey):])
		m, ok := p.index[id]
		if !ok || ts <= c.seen[m] {
			continue
		}
		c.seen[m] = ts
		if start := lw.startOf(m, ts); start != 0 && recording.Load() {
			c.lat = append(c.lat, float64(now-start)/1e6)
		}
	}
}

// leadingInt parses the decimal digits at the start of b.
func leadingInt(b []byte) (int64, []byte) {
	var n int64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, b[i:]
}

// BenchmarkLiveLatency is the overview's push latency: 100 machines each
// get one reading a second (one every 10 ms, round robin) through the real
// writer, and every connected overview page times, per reading, from just
// before Write was called to the receipt of a frame holding that machine's
// tile with the reading in it. The pages are in this process, so the
// figures of CPU (cpu-%, of one core), memory and heap include theirs.
func BenchmarkLiveLatency(b *testing.B) {
	clients, dur := []int{100, 1000}, 10*time.Second
	if hubBenchQuick() {
		clients, dur = []int{20}, time.Second
	}
	for _, n := range clients {
		b.Run("clients="+strconv.Itoa(n), func(b *testing.B) {
			p := newLivePlant(b, 100, true)
			cs := dialClients(b, p, n)
			for b.Loop() {
				liveRun(b, p, cs, dur)
			}
		})
	}
}

// dialClients opens n overview pages, a few handshakes at a time.
func dialClients(b *testing.B, p *livePlant, n int) []*liveClient {
	b.Helper()
	cs := make([]*liveClient, n)
	errs := make(chan error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := p.dial(topicPlant)
				if err != nil {
					errs <- err
					return
				}
				cs[i] = &liveClient{conn: c, seen: make([]int64, len(p.ids))}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("dial: %v", err)
	}
	b.Cleanup(func() {
		for _, c := range cs {
			c.conn.Close()
		}
	})
	return cs
}

// liveRun produces dur of traffic and reports the latency percentiles.
func liveRun(b *testing.B, p *livePlant, cs []*liveClient, dur time.Duration) {
	lw := &liveWrites{slots: make([][8]struct{ ts, start atomic.Int64 }, len(p.ids)), next: make([]int, len(p.ids))}
	var recording atomic.Bool
	recording.Store(true)
	var readers sync.WaitGroup
	for _, c := range cs {
		c.lat = c.lat[:0]
		clear(c.seen)
		readers.Go(func() { c.run(p, lw, &recording) })
	}
	flushes0, loads0 := p.srv.hub.flushes.Load(), p.srv.hub.loads.Load()
	cpu0 := cpuTime()
	t0 := time.Now()
	const gap = 10 * time.Millisecond
	writes := 0
	lastTS := make([]int64, len(p.ids))
	for k := 0; ; k++ {
		at := t0.Add(time.Duration(k) * gap)
		if at.Sub(t0) >= dur {
			break
		}
		time.Sleep(time.Until(at))
		i := k % len(p.ids)
		r := p.names[i]
		start := time.Now()
		r.TS = max(start.UnixMilli(), lastTS[i]+1)
		r.Value = float64(k)
		lastTS[i] = r.TS
		lw.record(i, r.TS, start)

		if err := p.w.Write(p.ctx, []plant.Reading{r}); err != nil {
			b.Fatal(err)
		}
		writes++
	}
	// Let the last readings arrive, then stop every read loop.
	time.Sleep(300 * time.Millisecond)
	wall := time.Since(t0)
	cpu := cpuTime() - cpu0
	flushes := p.srv.hub.flushes.Load() - flushes0
	loads := p.srv.hub.loads.Load() - loads0
	recording.Store(false)
	for _, c := range cs {
		_ = c.conn.SetReadDeadline(time.Now())
	}
	readers.Wait()
	for _, c := range cs {
		_ = c.conn.SetReadDeadline(time.Time{})
	}

	var all []float64
	for _, c := range cs {
		all = append(all, c.lat...)
	}
	if len(all) == 0 {
		b.Fatal("no tile arrived")
	}
	slices.Sort(all)
	pct := func(q float64) float64 { return all[min(len(all)-1, int(q*float64(len(all))))] }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(all[len(all)-1], "max-ms")
	b.ReportMetric(100*float64(len(all))/float64(writes*len(cs)), "delivered-%")
	b.ReportMetric(float64(flushes)/wall.Seconds(), "flushes/s")
	b.ReportMetric(float64(loads)/wall.Seconds(), "reloads/s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	// Resident memory first, as traffic left it; then the heap still in
	// use after a collection, of the server and the pages together.
	if rss := residentBytes(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MiB")
}

// residentBytes is the process's resident set size, 0 where /proc has none.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// cpuTime is the process's user and system CPU time so far, from Linux's
// /proc (in clock ticks, 100 a second there); 0 elsewhere.
func cpuTime() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// BenchmarkOverview is the server time of the overview and machine pages,
// and of one hub flush (one machine's tile, and the periodic full refresh
// of every tile), with 100 and 1,000 machines.
func BenchmarkOverview(b *testing.B) {
	sizes := []int{100, 1000}
	if hubBenchQuick() {
		sizes = []int{10}
	}
	for _, n := range sizes {
		b.Run("machines="+strconv.Itoa(n), func(b *testing.B) {
			p := newLivePlant(b, n, false)
			h := p.srv.Handler()
			get := func(b *testing.B, path string) {
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d", path, rec.Code)
					}
				}
			}
			b.Run("page=overview", func(b *testing.B) { get(b, "/") })
			b.Run("page=machine", func(b *testing.B) { get(b, "/machines/"+strconv.FormatInt(p.ids[n/2], 10)) })

			// One overview page listens, so the flushes have someone to
			// render for; its frames are read and dropped.
			c, err := p.dial(topicPlant)
			if err != nil {
				b.Fatal(err)
			}
			var reader sync.WaitGroup
			var frames atomic.Int64
			reader.Go(func() {
				for {
					_, r, err := c.NextReader()
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						return
					}
					frames.Add(1)
				}
			})
			b.Cleanup(func() { c.Close(); reader.Wait() })
			ctx := context.Background()
			k := 0
			flush := func(b *testing.B, full bool) {
				for b.Loop() {
					b.StopTimer()
					// The page takes each frame before the next flush, as
					// it would at live rates: a flush a few µs after the
					// last would only fill its queue until it is dropped.
					want := frames.Load() + 1
					i := k % n
					k++
					r := p.names[i]
					r.TS, r.Value = time.Now().UnixMilli()+int64(k), float64(k)
					if err := p.w.Write(p.ctx, []plant.Reading{r}); err != nil {
						b.Fatal(err)
					}
					// Write returns once the reading is stored, which may
					// be just before the writer tells the hub.
					waitFor(b, "the commit to reach the hub", func() bool {
						p.srv.hub.pmu.Lock()
						defer p.srv.hub.pmu.Unlock()
						return len(p.srv.hub.dirty) > 0
					})
					b.StartTimer()
					if err := p.srv.hub.flush(ctx, full); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					waitFor(b, "the frame", func() bool {
						return frames.Load() >= want || metricCount(p.srv.metrics.dropped) > 0
					})
					b.StartTimer()
				}
				if d := p.srv.metrics.dropped; metricCount(d) > 0 {
					b.Fatal("the listening page was dropped: the flushes were not all rendered")
				}
			}
			b.Run("flush=tile", func(b *testing.B) { flush(b, false) })
			b.Run("flush=full", func(b *testing.B) { flush(b, true) })
		})
	}
}

// metricCount reads a counter or gauge outside a test.
func metricCount(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return 0
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// waitFor polls cond for up to 10 s.
func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("no %s in 10 s", what)
		}
		time.Sleep(20 * time.Microsecond)
	}
}
