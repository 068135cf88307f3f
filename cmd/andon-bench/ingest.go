package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	_ "modernc.org/sqlite"
)

// The plant every ingest scenario publishes: 100 machines × 10 metrics.
const (
	plantMachines = 100
	plantMetrics  = 10
	plantTags     = plantMachines * plantMetrics
)

// load is a prepared stream of messages, built before the clock starts so
// that formatting JSON is not part of what is measured. A message carries
// one reading ({"value":..,"ts":..} on the metric's own topic), as most
// devices and gateways publish, or all ten of a machine's metrics in one
// JSON object on the machine's topic.
type load struct {
	topics     []string
	payloads   [][]byte
	perMessage int   // readings in one message: 1 or plantMetrics
	base       int64 // timestamp of the warm-up messages; timed ones come after
	warm       int   // the first warm messages are the warm-up
}

// newLoad builds warm-up messages (every tag once) followed by n timed ones.
func newLoad(n, perMessage int) *load {
	l := &load{base: time.Now().Add(-time.Hour).UnixMilli(), perMessage: perMessage}
	per := plantTags / perMessage // messages that touch every tag once
	l.warm = per
	for i := range per + n {
		ts := strconv.FormatInt(l.base+int64(i/per), 10)
		var sb strings.Builder
		if perMessage == 1 {
			tag := i % plantTags
			m := tag / plantMetrics
			l.topics = append(l.topics, fmt.Sprintf("bench/line-%d/m-%03d/%c", m/10, m, 'a'+tag%plantMetrics))
			fmt.Fprintf(&sb, `{"value":%d.5,"ts":%s}`, i%1000, ts)
		} else {
			m := i % plantMachines
			sb.WriteString(`{"timestamp_ms":`)
			sb.WriteString(ts)
			for k := range plantMetrics {
				fmt.Fprintf(&sb, `,"%c":%d.5`, 'a'+k, i%1000)
			}
			sb.WriteByte('}')
			l.topics = append(l.topics, fmt.Sprintf("bench/line-%d/m-%03d", m/10, m))
		}
		l.payloads = append(l.payloads, []byte(sb.String()))
	}
	return l
}

func (l *load) warmup() (topics []string, payloads [][]byte) {
	return l.topics[:l.warm], l.payloads[:l.warm]
}

func (l *load) timed() (topics []string, payloads [][]byte) {
	return l.topics[l.warm:], l.payloads[l.warm:]
}

// readings is how many readings the timed messages carry.
func (l *load) readings() int { return (len(l.topics) - l.warm) * l.perMessage }

// publishAll sends the messages over conns connections (message i on
// connection i mod conns), QoS 1 with up to inflight unacknowledged per
// connection, and returns when all are sent and acknowledged.
func publishAll(addr string, topics []string, payloads [][]byte, qos byte, conns, inflight int) (time.Duration, error) {
	cs := make([]*leanConn, conns)
	for i := range cs {
		c, err := dialLean(addr, fmt.Sprintf("bench-pub-%d-%d", time.Now().UnixNano(), i), inflight)
		if err != nil {
			return 0, err
		}
		defer c.close()
		cs[i] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for ci, c := range cs {
		wg.Go(func() {
			for i := ci; i < len(topics); i += conns {
				if err := c.publish(topics[i], payloads[i], qos); err != nil {
					errs[ci] = err
					return
				}
			}
			errs[ci] = c.drain(2 * time.Minute)
		})
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// ingestCase is one way of feeding Andon.
type ingestCase struct {
	qos        byte
	conns      int
	inflight   int
	perMessage int // readings per message, for the name: 0 or 1 is one
}

func (c ingestCase) String() string {
	s := fmt.Sprintf("QoS %d, %d connection%s", c.qos, c.conns, plural(c.conns))
	if c.perMessage > 1 {
		s += fmt.Sprintf(", %d metrics per JSON message", c.perMessage)
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ingestResult is one run of Andon under a load.
type ingestResult struct {
	rate     float64   // readings/s committed and pushed
	lost     float64   // readings published and acknowledged (or sent, QoS 0) neither stored nor counted as dropped
	dropped  float64   // QoS 0 readings dropped because the write queue was full
	pushed   float64   // share of the watched machine's readings that reached its websocket
	cpu      []float64 // % of one core: Andon, the external broker (0 when embedded), this process
	peakRSS  float64
	routines float64
}

// runAndonIngest publishes l to a running Andon at addr (its embedded broker,
// or the external broker it subscribes to) and measures readings/s until
// all are committed and the watched machine's points reached a websocket.
func runAndonIngest(a *andon, addr string, l *load, c ingestCase, brokerPID int) (ingestResult, error) {
	var res ingestResult
	wt, wp := l.warmup()
	// Behind an external broker Andon subscribes a moment after /healthz
	// answers; what is published before that reaches nobody. Resending one
	// message until it is stored proves the subscription (a resend of a
	// stored reading is a no-op).
	for probe := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := publishAll(addr, wt[:1], wp[:1], 1, 1, 1); err != nil {
			return res, fmt.Errorf("probe: %w", err)
		}
		if n, err := a.ingested(); err != nil || n >= float64(l.perMessage) {
			break
		}
		if time.Since(probe) > 30*time.Second {
			return res, fmt.Errorf("probe: nothing stored within 30 s\n%s", a.log)
		}
	}
	if _, err := publishAll(addr, wt, wp, 1, 1, 16); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	before, err := a.waitIngested(plantTags, 30*time.Second)
	if err != nil {
		return res, err
	}
	if before < plantTags {
		return res, fmt.Errorf("warm-up: %.0f of %d readings stored\n%s", before, plantTags, a.log)
	}
	w, err := watchMachine(a, "bench/line-9/m-099")
	if err != nil {
		return res, err
	}
	defer w.close()
	tt, tp := l.timed()
	want := before + float64(l.readings())
	wantPoints := int64(l.readings() / plantMachines) // the watched machine's share
	a.resetPeak()
	start := time.Now()
	cpu := newCPUMeter(a.cmd.Process.Pid, brokerPID, 0)
	if _, err := publishAll(addr, tt, tp, c.qos, c.conns, c.inflight); err != nil {
		return res, err
	}
	// QoS 0 readings that find the write queue full are dropped and
	// counted, by design; the run ends when every reading is stored or
	// counted as dropped, and once the watched machine's points have stopped
	// arriving.
	var got, dropped float64
	for {
		if got, err = a.ingested(); err != nil {
			return res, err
		}
		if dropped, err = a.metric("andon_readings_dropped_total"); err != nil {
			return res, err
		}
		if got+dropped >= want || time.Since(start) > 5*time.Minute {
			break
		}
		// Polling /metrics costs Andon a little CPU; every 20 ms is a
		// percent or two of the shortest run's time.
		time.Sleep(20 * time.Millisecond)
	}
	stored := time.Now()
	for n := w.points.Load(); ; {
		time.Sleep(time.Second)
		if m := w.points.Load(); m == n {
			break
		} else {
			n = m
		}
	}
	end := stored
	if last := time.Unix(0, w.last.Load()); last.After(end) {
		end = last
	}
	res.rate = (got - before) / end.Sub(start).Seconds()
	// Up to the last commit; the wait for quiet after it would dilute it.
	cpu.at = cpu.at.Add(time.Since(end))
	res.cpu = cpu.percent()
	res.dropped = dropped
	res.lost = want - got - dropped
	res.pushed = float64(w.points.Load()) / float64(wantPoints)
	_, res.peakRSS = a.memory()
	res.routines, _ = a.metric("go_goroutines")
	if dropped == 0 && w.points.Load() < wantPoints {
		return res, fmt.Errorf("websocket got %d of %d points of the watched machine", w.points.Load(), wantPoints)
	}
	return res, nil
}

// watcher is a websocket client on one machine's page that counts the chart
// points pushed to it.
type watcher struct {
	conn   *websocket.Conn
	points atomic.Int64
	last   atomic.Int64 // unix ns of the latest points received
}

func watchMachine(a *andon, path string) (*watcher, error) {
	ms, err := a.machines(context.Background())
	if err != nil {
		return nil, err
	}
	var id int64
	for _, m := range ms {
		if m.Path == path || strings.HasSuffix(m.Path, "/"+path) || strings.HasSuffix(path, m.Path) {
			id = m.ID
		}
	}
	if id == 0 {
		return nil, fmt.Errorf("watch: no machine %q among %d", path, len(ms))
	}
	conn, err := dialWS(a)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteJSON(map[string][]string{"sub": {"machine:" + strconv.FormatInt(id, 10)}}); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &watcher{conn: conn}
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var msgs []struct {
				Type string    `json:"type"`
				T    []float64 `json:"t"`
			}
			if json.Unmarshal(b, &msgs) != nil {
				continue // a single object: hello or heartbeat
			}
			for _, m := range msgs {
				if m.Type == "points" {
					w.points.Add(int64(len(m.T)))
					w.last.Store(time.Now().UnixNano())
				}
			}
		}
	}()
	return w, nil
}

func (w *watcher) close() { _ = w.conn.Close() }

func dialWS(a *andon) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(a.httpURL, "http") + "/ws"
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {a.httpURL}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	return conn, nil
}

// bareBroker is mochi alone, as Andon embeds it, with a hook that counts
// publishes and does nothing else: the ceiling of broker + load generator.
type bareBroker struct {
	srv   *mqtt.Server
	addr  string
	count atomic.Int64
}

type countHook struct {
	mqtt.HookBase
	n *atomic.Int64
}

func (h *countHook) ID() string           { return "count" }
func (h *countHook) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *countHook) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.n.Add(1)
	return pk, nil
}

// allowHook lets every client connect and publish, as Andon's
// --mqtt-anonymous does.
type allowHook struct{ mqtt.HookBase }

func (h *allowHook) ID() string { return "allow" }
func (h *allowHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *allowHook) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

func startBareBroker() (*bareBroker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &bareBroker{addr: ln.Addr().String()}
	b.srv = mqtt.New(&mqtt.Options{InlineClient: false, Logger: quietLog})
	if err := b.srv.AddHook(new(allowHook), nil); err != nil {
		return nil, err
	}
	if err := b.srv.AddHook(&countHook{n: &b.count}, nil); err != nil {
		return nil, err
	}
	if err := b.srv.AddListener(listeners.NewNet("bare", ln)); err != nil {
		return nil, err
	}
	if err := b.srv.Serve(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bareBroker) close() { _ = b.srv.Close() }

// bareDelivery is a broker's own delivery rate: publishers as in the Andon
// case, one subscriber to everything that counts and acknowledges, readings/s
// (10 per message) until the subscriber has them all.
func bareDelivery(addr string, l *load, c ingestCase) (rate float64, dropped int64, err error) {
	sub, err := dialLean(addr, fmt.Sprintf("bench-sub-%d", time.Now().UnixNano()), 1)
	if err != nil {
		return 0, 0, err
	}
	defer sub.close()
	if err := sub.subscribe("bench/#", c.qos); err != nil {
		return 0, 0, err
	}
	tt, tp := l.timed()
	start := time.Now()
	if _, err := publishAll(addr, tt, tp, c.qos, c.conns, c.inflight); err != nil {
		return 0, 0, err
	}
	// A broker may drop QoS 0 messages for a subscriber that falls behind
	// (mochi does, past its write queue); the rate is what was delivered,
	// up to the last delivery, and the shortfall is returned beside it.
	want := int64(len(tt))
	last, lastChange := int64(-1), time.Now()
	for {
		got := sub.received.Load()
		if got >= want {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			if c.qos > 0 {
				return 0, 0, fmt.Errorf("bare delivery: subscriber got %d of %d QoS 1 messages", got, want)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	got := sub.received.Load()
	elapsed := time.Duration(sub.lastRecv.Load() - start.UnixNano())
	return float64(got*int64(l.perMessage)) / elapsed.Seconds(), want - got, nil
}

// generatorAlone is the load generator publishing into mochi's do-nothing
// hook with nobody subscribed: readings/s it can offer at most.
func generatorAlone(l *load, c ingestCase) (float64, error) {
	b, err := startBareBroker()
	if err != nil {
		return 0, err
	}
	defer b.close()
	tt, tp := l.timed()
	start := time.Now()
	if _, err := publishAll(b.addr, tt, tp, c.qos, c.conns, c.inflight); err != nil {
		return 0, err
	}
	for b.count.Load() < int64(len(tt)) {
		if time.Since(start) > time.Minute {
			return 0, fmt.Errorf("generator: broker saw %d of %d", b.count.Load(), len(tt))
		}
		time.Sleep(time.Millisecond)
	}
	return float64(l.readings()) / time.Since(start).Seconds(), nil
}

// bareSQLite inserts the same readings (1,000 tags, the load's rows) into a
// WITHOUT ROWID table as Andon's, with one prepared statement in
// transactions of 10,000 rows: the store's ceiling with nothing else to do.
func bareSQLite(dir string, rows int) (float64, error) {
	path := filepath.Join(dir, fmt.Sprintf("bare-%d.db", time.Now().UnixNano()))
	defer os.Remove(path)
	defer os.Remove(path + "-wal")
	defer os.Remove(path + "-shm")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE readings(tag_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL,
		PRIMARY KEY (tag_id, ts_ms)) WITHOUT ROWID`); err != nil {
		return 0, fmt.Errorf("bare sqlite: %w", err)
	}
	base := time.Now().UnixMilli()
	const tags = plantTags
	start := time.Now()
	for done := 0; done < rows; {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		st, err := tx.Prepare(`INSERT INTO readings(tag_id, ts_ms, value) VALUES (?, ?, ?)`)
		if err != nil {
			return 0, err
		}
		for i := 0; i < 10_000 && done < rows; i, done = i+1, done+1 {
			if _, err := st.Exec(done%tags+1, base+int64(done/tags), float64(done%1000)+0.5); err != nil {
				return 0, fmt.Errorf("bare sqlite: %w", err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
