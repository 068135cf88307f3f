package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// The live protocol on /ws. The client sends {"sub":["plant"]} or
// {"sub":["machine:12"]}, which replaces its subscriptions. The server sends
// JSON text frames: {"type":"hello",...} on connect, and for each
// subscription a snapshot on subscribe and then, every flush, one frame that
// is a JSON array of messages: {"type":"html","id":..,"html":..} replaces the
// element with that id, {"type":"points","tag":..,"t":[..],"v":[..]} appends
// chart points, {"type":"reload"} asks the page to reload.
//
// Stops have topics of their own, because they change when the engine opens
// or closes a stop (StopsChanged), not with every reading: "downtime:3" is
// line 3's list of stops needing a reason ("downtime:3:all" every stop), and
// "timeline:12:8h" is machine 12's timeline and stops over the page's range.
// "machine:12" subscribers also get the operator page's stop ("op-stop").
//
// "board:5" is a wall display's board: the hub renders the board's live part
// ("display-live") once per board and flush, for every TV showing it, at most
// once a second and at least on every full refresh. Clients holding a board
// also get {"type":"heartbeat","version":..,"server_ms":..} every
// heartbeatEvery, so a TV notices a connection that looks open but carries
// nothing. A display token's client may hold only the boards its token
// grants, and is closed with closeRevoked once the token is revoked.
const (
	// A commit wakes the hub, which flushes at once unless it flushed less
	// than minGap ago: a reading reaches the pages within minGap plus the
	// flush's own time, and 1,000 open pages are written to at most
	// 1/minGap times a second however fast readings come. flushEvery is
	// the hub's housekeeping tick: the full refresh, heartbeats and boards
	// held back by their rate limit.
	minGap     = 20 * time.Millisecond
	flushEvery = 250 * time.Millisecond
	// refreshEvery is how often each tile and list is re-rendered although
	// nothing was committed, so that ages and offline states stay true.
	// Overview tiles are re-rendered a few at a time (the sweep): all of
	// them at once would send every page the whole grid, a megabyte for
	// 1,000 machines, and hold up the readings behind it.
	refreshEvery = 10 * time.Second
	// gridMinGap is the least time between two whole grids sent because
	// machines appeared: a plant coming online creates tags for seconds,
	// and the tiles of the machines already shown keep coming meanwhile.
	gridMinGap = time.Second
	sendBuffer = 64   // frames queued per client before it is dropped
	maxPending = 2000 // newest points kept per tag between flushes
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingEvery  = 25 * time.Second
	maxInbound = 4096 // bytes of one client message
	maxTopics  = 16

	// closeServiceRestart is sent to every client when the server stops
	// (RFC 6455 registry: 1012 "Service Restart").
	closeServiceRestart = 1012

	topicPlant    = "plant"
	topicMachine  = "machine:"
	topicDowntime = "downtime:"
	topicTimeline = "timeline:"
	topicBoard    = "board:"

	// heartbeatEvery is how often board clients hear from the server; a TV
	// that misses three assumes the connection is dead.
	heartbeatEvery = 10 * time.Second
	// boardMinGap is the least time between two renders of one board: a
	// board sums a shift of KPIs, and a TV across the hall needs no more.
	boardMinGap = time.Second
	// closeRevoked tells a TV its display token no longer grants the board
	// (a private-use code, RFC 6455 7.4.2), so it says so instead of
	// reconnecting in silence.
	closeRevoked = 4401
)

type helloMsg struct {
	Type     string `json:"type"`
	Version  string `json:"version"`
	ServerMS int64  `json:"server_ms"`
	// BeatMS is the heartbeat period for board clients.
	BeatMS int64 `json:"beat_ms"`
}

// heartbeatMsg is also a single object, like hello: it is not a delta.
type heartbeatMsg struct {
	Type     string `json:"type"`
	Version  string `json:"version"`
	ServerMS int64  `json:"server_ms"`
}

type htmlMsg struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	HTML string `json:"html"`
}

type pointsMsg struct {
	Type string    `json:"type"`
	Tag  int64     `json:"tag"`
	T    []float64 `json:"t"`
	V    []float64 `json:"v"`
}

type reloadMsg struct {
	Type string `json:"type"`
}

// pendingPoints are one tag's committed points waiting for the next flush.
type pendingPoints struct {
	machine int64
	ts      []int64
	vs      []float64
}

// hub owns the websocket clients and turns commits into pushed updates.
type hub struct {
	s   *Server
	up  websocket.Upgrader
	log *slog.Logger
	// beatEvery is the heartbeat period in ns (atomic so tests may shorten
	// it while the hub runs).
	beatEvery atomic.Int64
	// boardWaiting are boards touched since their last render that the
	// rate limit held back; only the run goroutine uses it.
	boardWaiting map[int64]bool
	// boardRenders counts board renders, so tests can see that TVs share
	// them.
	boardRenders atomic.Int64
	// flushes counts flushes that had something to push, and loads the
	// plant reloads from the store, for tests and benchmarks.
	flushes atomic.Int64
	loads   atomic.Int64
	// wake tells run that something changed, so that it flushes within
	// minGap instead of at the next tick; capacity 1, never blocks.
	wake chan struct{}
	// pd is the plant as the last flush left it: loaded from the store
	// when tags or names may have changed, and otherwise kept current
	// with the committed readings, so a flush costs what changed and not
	// the size of the plant. Only the goroutine that flushes touches it,
	// as the overview state below.
	pd *plantData
	// sweepAt is when the overview's tiles were last swept and sweepPos
	// the id of the last machine swept; gridAt is when the whole grid was
	// last sent and gridOwed says one waits for gridMinGap.
	sweepAt  time.Time
	sweepPos int64
	gridAt   time.Time
	gridOwed bool

	// pmu guards what Committed records; it is held only for map updates.
	pmu     sync.Mutex
	dirty   map[int64]struct{}       // machines with new readings
	points  map[int64]*pendingPoints // by tag, only for watched machines
	last    map[int64]plant.Stored   // by tag, its newest committed reading
	newTags bool
	// stale says the plant changed in a way readings do not show (a
	// machine renamed), so the next flush reloads it.
	stale   bool
	watched map[int64]int      // machine id -> clients subscribed to it
	stops   map[int64]struct{} // machines whose stops or spans changed

	// mu guards the clients and their subscriptions.
	mu      sync.Mutex
	clients map[*client]struct{}
	topics  map[string]map[*client]struct{}
	known   map[int64]map[int64]bool // machine id -> its tag ids as last shown
	boards  map[int64]boardFrame     // board id -> its last rendered frame
	closed  bool
}

// boardFrame is a board's rendered live part, shared by its TVs and by the
// snapshots of TVs that connect soon after.
type boardFrame struct {
	pm *websocket.PreparedMessage
	at time.Time
}

func newHub(s *Server) *hub {
	h := &hub{
		s:   s,
		log: s.log,
		// The hub writes prepared frames, which need no write buffer: with
		// a pool, 1,000 idle pages do not hold 8 MB of buffers.
		up:      websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 8192, WriteBufferPool: &sync.Pool{}},
		wake:    make(chan struct{}, 1),
		dirty:   map[int64]struct{}{},
		points:  map[int64]*pendingPoints{},
		last:    map[int64]plant.Stored{},
		watched: map[int64]int{},
		stops:   map[int64]struct{}{},
		clients: map[*client]struct{}{},
		topics:  map[string]map[*client]struct{}{},
		known:   map[int64]map[int64]bool{},
		boards:  map[int64]boardFrame{},

		boardWaiting: map[int64]bool{},
		sweepAt:      time.Now(),
	}
	h.beatEvery.Store(int64(heartbeatEvery))
	return h
}

// client is one websocket connection.
type client struct {
	h      *hub
	conn   *websocket.Conn
	send   chan *websocket.PreparedMessage
	quit   chan struct{}
	once   sync.Once
	topics []string // guarded by hub.mu
	// restricted clients (display tokens) may hold only the board topics
	// their token grants; token is that token, checked again with every
	// heartbeat.
	restricted bool
	token      db.Token
	// userID and session are the login the connection was opened with (0
	// and "" for tokens and open viewing): it is closed when that login
	// ends (logout, password change, a disabled user).
	userID  int64
	session string
}

// stop ends the connection once; a non-zero code is sent as a close frame
// first. It never waits longer than the write deadline.
func (c *client) stop(code int, text string) {
	c.once.Do(func() {
		if code != 0 {
			msg := websocket.FormatCloseMessage(code, text)
			_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		}
		close(c.quit)
		_ = c.conn.Close()
	})
}

// committed records the machines and points of a commit. It runs on the DB
// writer's goroutine at up to 100k readings/s, so it only touches maps.
func (h *hub) committed(rs []plant.Stored, newTags bool) {
	h.pmu.Lock()
	defer h.wakeUp()
	defer h.pmu.Unlock()
	if newTags {
		h.newTags = true
	}
	last := int64(-1)
	for i := range rs {
		r := &rs[i]
		if r.MachineID != last {
			h.dirty[r.MachineID] = struct{}{}
			last = r.MachineID
		}
		if r.Offline {
			// Only the store knows the machine's announcement; the next
			// flush reads the plant again.
			h.stale = true
			continue
		}
		// The newest reading of each tag is what the store's last value
		// now says (it keeps the first of equal timestamps, as here).
		if l, ok := h.last[r.TagID]; !ok || r.TS > l.TS {
			h.last[r.TagID] = *r
		}
		if h.watched[r.MachineID] == 0 {
			continue
		}
		p := h.points[r.TagID]
		if p == nil {
			p = &pendingPoints{machine: r.MachineID}
			h.points[r.TagID] = p
		}
		if r.Word != "" || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			continue
		}
		p.ts = append(p.ts, r.TS)
		p.vs = append(p.vs, r.Value)
		if len(p.ts) >= 2*maxPending {
			// Keep the newest; amortised so the writer never copies per reading.
			n := copy(p.ts, p.ts[len(p.ts)-maxPending:])
			copy(p.vs, p.vs[len(p.vs)-maxPending:])
			p.ts, p.vs = p.ts[:n], p.vs[:n]
		}
	}
}

// StopsChanged is called by the state engine after a commit that opened or
// closed spans or stops of these machines, and by the coding handlers. Like
// Committed it only records them for the next flush and never blocks.
func (s *Server) StopsChanged(machineIDs []int64) { s.hub.stopsChanged(machineIDs) }

func (h *hub) stopsChanged(ids []int64) {
	h.pmu.Lock()
	for _, id := range ids {
		h.stops[id] = struct{}{}
	}
	h.pmu.Unlock()
	h.wakeUp()
}

// plantChanged says that machines changed in the store in a way readings
// do not show (an admin renamed one), so the next flush reloads the plant.
func (h *hub) plantChanged() {
	h.pmu.Lock()
	h.stale = true
	h.pmu.Unlock()
	h.wakeUp()
}

// wakeUp asks run for a flush without waiting for it.
func (h *hub) wakeUp() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run flushes pending updates until ctx is done, then closes every client.
// A wake-up flushes at once, or minGap after the previous flush when that
// was too recent; the tick does the rest.
func (h *hub) run(ctx context.Context) error {
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	gapSet := false
	var lastFlush time.Time
	flush := func(full bool) {
		lastFlush = time.Now()
		if err := h.flush(ctx, full); err != nil && ctx.Err() == nil {
			h.log.Error("ws flush failed", "err", err)
		}
	}
	lastFull, lastBeat := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			h.shutdown()
			return nil
		case <-h.wake:
			if gapSet {
				continue // the flush the timer brings takes this too
			}
			if wait := minGap - time.Since(lastFlush); wait > 0 {
				gap.Reset(wait)
				gapSet = true
				continue
			}
			flush(false)
		case <-gap.C:
			gapSet = false
			flush(false)
		case <-tick.C:
			full := time.Since(lastFull) >= refreshEvery
			if full {
				lastFull = time.Now()
			}
			flush(full)
			if time.Since(lastBeat) >= time.Duration(h.beatEvery.Load()) {
				lastBeat = time.Now()
				if err := h.heartbeat(ctx); err != nil && ctx.Err() == nil {
					h.log.Error("ws heartbeat failed", "err", err)
				}
			}
		}
	}
}

// shutdown closes every client with 1012 and refuses new ones.
func (h *hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	cs := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			c.stop(closeServiceRestart, "service restart")
			h.unregister(c)
		})
	}
	wg.Wait()
}

func (h *hub) register(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	h.s.metrics.clients.Inc()
	return true
}

func (h *hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	h.s.metrics.clients.Dec()
	h.setTopicsLocked(c, nil)
}

// setTopicsLocked replaces c's subscriptions; h.mu must be held.
func (h *hub) setTopicsLocked(c *client, topics []string) {
	h.pmu.Lock()
	defer h.pmu.Unlock()
	for _, t := range c.topics {
		delete(h.topics[t], c)
		if len(h.topics[t]) == 0 {
			delete(h.topics, t)
		}
		if id, ok := machineTopic(t); ok {
			if h.watched[id]--; h.watched[id] <= 0 {
				delete(h.watched, id)
				delete(h.known, id)
				for tag, p := range h.points {
					if p.machine == id {
						delete(h.points, tag)
					}
				}
			}
		}
	}
	c.topics = topics
	for _, t := range topics {
		if h.topics[t] == nil {
			h.topics[t] = map[*client]struct{}{}
		}
		h.topics[t][c] = struct{}{}
		if id, ok := machineTopic(t); ok {
			h.watched[id]++
		}
	}
}

// machineTopic parses "machine:12".
func machineTopic(t string) (int64, bool) {
	rest, ok := strings.CutPrefix(t, topicMachine)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// trySend queues a frame without waiting: a client whose buffer is full is
// too slow for live data and is dropped (its page reconnects and resyncs).
func (h *hub) trySend(c *client, pm *websocket.PreparedMessage) {
	select {
	case c.send <- pm:
		h.s.metrics.messages.Inc()
	default:
		h.s.metrics.dropped.Inc()
		h.log.Debug("ws client too slow, dropped", "remote", c.conn.RemoteAddr().String())
		h.unregister(c)
		c.stop(0, "")
	}
}

func prepare(v any) (*websocket.PreparedMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("ws: encode: %w", err)
	}
	return websocket.NewPreparedMessage(websocket.TextMessage, b)
}

// plantData is the store's view of the plant, shared by every
// subscription of a flush. The maps point into lines, so that applying a
// reading to a tag updates the lines the boards and stop lists read too.
type plantData struct {
	lines    []plant.Line
	machines map[int64]*plant.Machine
	tags     map[int64]*plant.Tag
	ids      []int64 // the machines' ids, ascending
}

func (h *hub) loadPlant(ctx context.Context) (*plantData, error) {
	s := h.s
	h.loads.Add(1)
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return nil, fmt.Errorf("ws: lines: %w", err)
	}
	if err := s.fillTags(ctx, lines); err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	pd := &plantData{lines: lines, machines: map[int64]*plant.Machine{}, tags: map[int64]*plant.Tag{}}
	for i := range lines {
		for j := range lines[i].Machines {
			m := &lines[i].Machines[j]
			pd.machines[m.ID] = m
			pd.ids = append(pd.ids, m.ID)
			for k := range m.Tags {
				pd.tags[m.Tags[k].ID] = &m.Tags[k]
			}
		}
	}
	slices.Sort(pd.ids)
	return pd, nil
}

// apply brings the plant up to date with the newest committed reading of
// each tag, as the store's Lines would now show it. It returns false when
// a reading says something only the store knows: a machine it does not
// hold, or a number for a text tag, whose word the store derives from the
// number.
func (pd *plantData) apply(last map[int64]plant.Stored) bool {
	for _, r := range last {
		m := pd.machines[r.MachineID]
		if m == nil {
			return false
		}
		m.LastSeen = max(m.LastSeen, r.TS)
		if plant.BackOnline(m.OfflineSince, r.TS) {
			m.OfflineSince = 0 // as the writer cleared it in the store
		}
		t := pd.tags[r.TagID]
		if t == nil {
			// A hidden tag: not on any page, but it shows the machine is
			// alive, as in the store's LastSeen.
			continue
		}
		if r.TS <= t.LastTS {
			continue
		}
		if t.Text && r.Word == "" {
			return false
		}
		// The store keeps a word's id as the tag's value, as r does.
		t.LastTS, t.LastValue = r.TS, r.Value
		if t.Text {
			t.LastWord = r.Word
		}
	}
	return true
}

// machine returns a machine from the flush's data, or from the store when a
// subscribed machine is not in it.
func (pd *plantData) machine(ctx context.Context, s *Server, id int64) (plant.Machine, error) {
	if m, ok := pd.machines[id]; ok {
		return *m, nil
	}
	return s.machineWithTags(ctx, id)
}

// plant returns the plant brought up to date for this flush: the one the
// last flush left, with the newest readings applied, or a new one from the
// store when tags or names may have changed, on the full refresh (which
// also catches what nobody reported, such as a unit a device changed), or
// when the readings cannot be applied.
func (h *hub) plant(ctx context.Context, last map[int64]plant.Stored, reload bool) (*plantData, error) {
	if !reload && h.pd != nil && h.pd.apply(last) {
		return h.pd, nil
	}
	// Everything committed before this flush took its changes is in the
	// store, so the store's plant needs none of them applied.
	h.pd = nil
	pd, err := h.loadPlant(ctx)
	if err != nil {
		return nil, err
	}
	h.pd = pd
	return pd, nil
}

// flush pushes what was committed since the last flush.
func (h *hub) flush(ctx context.Context, full bool) error {
	h.pmu.Lock()
	dirty, points, newTags, stops, last, stale := h.dirty, h.points, h.newTags, h.stops, h.last, h.stale
	h.dirty, h.newTags, h.stale = map[int64]struct{}{}, false, false
	h.points = map[int64]*pendingPoints{}
	h.stops = map[int64]struct{}{}
	h.last = map[int64]plant.Stored{}
	h.pmu.Unlock()

	h.mu.Lock()
	subs := make(map[string][]*client, len(h.topics))
	for t, cs := range h.topics {
		for c := range cs {
			subs[t] = append(subs[t], c)
		}
	}
	h.mu.Unlock()
	now := time.Now()
	overview := len(subs[topicPlant]) > 0
	if !overview {
		// A page subscribing gets the whole grid; the sweep starts anew.
		h.sweepAt, h.gridOwed = now, false
	}
	if len(subs) == 0 {
		// Nobody to keep the plant current for: the readings just taken
		// are not applied to it, so the next flush with a page reloads it.
		h.pd = nil
		return nil
	}
	sweepDue := overview && h.sweepDue(now)
	if !full && !newTags && !stale && !sweepDue && !h.gridOwed &&
		len(dirty) == 0 && len(points) == 0 && len(stops) == 0 && len(h.boardWaiting) == 0 {
		return nil
	}

	h.flushes.Add(1)
	pd, err := h.plant(ctx, last, full || newTags || stale)
	if err != nil {
		return err
	}
	var sweep []int64
	grid := false
	if overview {
		sweep = h.sweep(pd, now)
		if newTags || h.gridOwed {
			grid = now.Sub(h.gridAt) >= gridMinGap
			h.gridOwed = !grid
			if grid {
				h.gridAt = now
			}
		}
	}
	nowMS := h.s.now().UnixMilli()
	var errs []error
	for topic, cs := range subs {
		var msgs []any
		switch {
		case topic == topicPlant:
			msgs, err = h.plantDelta(ctx, pd, dirty, sweep, grid, nowMS)
		case strings.HasPrefix(topic, topicDowntime):
			lineID, show, ok := parseDowntimeTopic(topic)
			if !ok {
				continue
			}
			msgs, err = h.downtimeDelta(ctx, pd, lineID, show, stops, full, nowMS)
		case strings.HasPrefix(topic, topicTimeline):
			id, r, ok := parseTimelineTopic(topic)
			if !ok {
				continue
			}
			msgs, err = h.timelineDelta(ctx, id, r, stops, full, nowMS)
		case strings.HasPrefix(topic, topicBoard):
			id, ok := boardTopic(topic)
			if !ok {
				continue
			}
			// A board is rendered once here and the same prepared frame
			// goes to every TV that shows it.
			pm, err := h.boardDelta(ctx, pd, id, dirty, stops, full, nowMS)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if pm != nil {
				for _, c := range cs {
					h.trySend(c, pm)
				}
			}
			continue
		default:
			id, ok := machineTopic(topic)
			if !ok {
				continue
			}
			msgs, err = h.machineDelta(ctx, pd, id, dirty, points, full, nowMS)
			if _, changed := stops[id]; changed && err == nil {
				var op []any
				op, err = h.operatorStop(ctx, id, nowMS)
				msgs = append(msgs, op...)
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		pm, err := prepare(msgs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range cs {
			if c.restricted {
				// Never reached: a restricted client holds board
				// topics only. Kept as a guard, not a path.
				continue
			}
			h.trySend(c, pm)
		}
	}
	return errors.Join(errs...)
}

// sweepDue says whether a tile is due for its periodic re-render.
func (h *hub) sweepDue(now time.Time) bool {
	if h.pd == nil {
		return true
	}
	return len(h.pd.ids) > 0 && now.Sub(h.sweepAt) >= refreshEvery/time.Duration(len(h.pd.ids))
}

// sweep returns the machines whose tiles are due for their periodic
// re-render: one per refreshEvery/machines since the last sweep, in id
// order from where the last one stopped, so every tile is re-rendered once
// per refreshEvery and each flush carries only a few.
func (h *hub) sweep(pd *plantData, now time.Time) []int64 {
	n := len(pd.ids)
	if n == 0 {
		h.sweepAt = now
		return nil
	}
	due := int(int64(n) * int64(now.Sub(h.sweepAt)) / int64(refreshEvery))
	if due <= 0 {
		return nil
	}
	if due >= n {
		due, h.sweepAt = n, now
	} else {
		h.sweepAt = h.sweepAt.Add(time.Duration(int64(due) * int64(refreshEvery) / int64(n)))
	}
	i, _ := slices.BinarySearch(pd.ids, h.sweepPos+1)
	out := make([]int64, 0, due)
	for range due {
		if i >= n {
			i = 0
		}
		out = append(out, pd.ids[i])
		i++
	}
	h.sweepPos = out[len(out)-1]
	return out
}

// plantDelta is the overview's update: the whole grid when machines
// appeared, else the tiles that changed and those the sweep brings.
func (h *hub) plantDelta(ctx context.Context, pd *plantData, dirty map[int64]struct{}, sweep []int64, grid bool, nowMS int64) ([]any, error) {
	if grid {
		g, err := h.s.gridFrom(pd.lines)
		if err != nil {
			return nil, err
		}
		html, err := renderString(ctx, views.GridView(g))
		if err != nil {
			return nil, fmt.Errorf("ws: render grid: %w", err)
		}
		return []any{htmlMsg{Type: "html", ID: "grid", HTML: html}}, nil
	}
	ids := make([]int64, 0, len(dirty)+len(sweep))
	ids = append(ids, sweep...)
	for id := range dirty {
		if _, ok := pd.machines[id]; ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	msgs := make([]any, 0, len(ids))
	for _, id := range ids {
		html, err := renderString(ctx, views.TileView(h.s.tile(*pd.machines[id], nowMS)))
		if err != nil {
			return nil, fmt.Errorf("ws: render tile %d: %w", id, err)
		}
		msgs = append(msgs, htmlMsg{Type: "html", ID: "machine-" + strconv.FormatInt(id, 10), HTML: html})
	}
	return msgs, nil
}

// machineDelta is a machine page's update: its header and value tiles when
// it changed, the new chart points, or a reload when it grew a tag.
func (h *hub) machineDelta(ctx context.Context, pd *plantData, id int64, dirty map[int64]struct{}, points map[int64]*pendingPoints, full bool, nowMS int64) ([]any, error) {
	_, isDirty := dirty[id]
	var tagIDs []int64
	for tag, p := range points {
		if p.machine == id {
			tagIDs = append(tagIDs, tag)
		}
	}
	if !isDirty && !full && len(tagIDs) == 0 {
		return nil, nil
	}
	m, err := pd.machine(ctx, h.s, id)
	if errors.Is(err, plant.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Only a tag the page would show and did not counts as growth: hidden
	// tags are never on the page, and reloading for them would never end.
	visible := tagSet(m.Tags)
	h.mu.Lock()
	known := h.known[id]
	grew := false
	for _, tag := range tagIDs {
		if known != nil && visible[tag] && !known[tag] {
			grew = true
		}
	}
	if grew {
		h.known[id] = tagSet(m.Tags)
	}
	h.mu.Unlock()
	if grew {
		return []any{reloadMsg{Type: "reload"}}, nil
	}
	msgs, err := h.machineTiles(ctx, m, nowMS)
	if err != nil {
		return nil, err
	}
	slices.Sort(tagIDs)
	for _, tag := range tagIDs {
		p := points[tag]
		if len(p.ts) == 0 {
			continue
		}
		msgs = append(msgs, pointsOf(tag, p))
	}
	return msgs, nil
}

// pointsOf sorts a tag's pending points by time and keeps the newest.
func pointsOf(tag int64, p *pendingPoints) pointsMsg {
	idx := make([]int, len(p.ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return int(p.ts[a] - p.ts[b]) })
	if len(idx) > maxPending {
		idx = idx[len(idx)-maxPending:]
	}
	msg := pointsMsg{Type: "points", Tag: tag, T: make([]float64, len(idx)), V: make([]float64, len(idx))}
	for i, j := range idx {
		msg.T[i] = float64(p.ts[j]) / 1000
		msg.V[i] = p.vs[j]
	}
	return msg
}

func tagSet(tags []plant.Tag) map[int64]bool {
	set := make(map[int64]bool, len(tags))
	for _, t := range tags {
		set[t.ID] = true
	}
	return set
}

// machineTiles renders a machine page's header and every value tile.
func (h *hub) machineTiles(ctx context.Context, m plant.Machine, nowMS int64) ([]any, error) {
	html, err := renderString(ctx, views.StatusView(h.s.status(m, nowMS)))
	if err != nil {
		return nil, fmt.Errorf("ws: render status %d: %w", m.ID, err)
	}
	msgs := []any{htmlMsg{Type: "html", ID: "machine-status", HTML: html}}
	for _, t := range visibleTags(m.Tags) {
		html, err := renderString(ctx, views.ValueTile(value(t, nowMS, m.OfflineSince)))
		if err != nil {
			return nil, fmt.Errorf("ws: render tag %d: %w", t.ID, err)
		}
		msgs = append(msgs, htmlMsg{Type: "html", ID: "tag-" + strconv.FormatInt(t.ID, 10), HTML: html})
	}
	return msgs, nil
}

// snapshot is what a client gets right after subscribing.
func (h *hub) snapshot(ctx context.Context, topics []string) ([]any, error) {
	var msgs []any
	nowMS := h.s.now().UnixMilli()
	for _, t := range topics {
		if lineID, show, ok := parseDowntimeTopic(t); ok {
			lines, err := h.s.store.Lines(ctx)
			if err != nil {
				return nil, fmt.Errorf("ws: lines: %w", err)
			}
			m, err := h.stopList(ctx, lines, lineID, show, nowMS)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m...)
			continue
		}
		if id, r, ok := parseTimelineTopic(t); ok {
			m, err := h.timelineDelta(ctx, id, r, nil, true, nowMS)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m...)
			continue
		}
		if _, ok := boardTopic(t); ok {
			// Sent on its own (boardSnapshot): a board frame is a
			// prepared message shared with the board's other TVs.
			continue
		}
		if t == topicPlant {
			g, err := h.s.grid(ctx)
			if err != nil {
				return nil, err
			}
			html, err := renderString(ctx, views.GridView(g))
			if err != nil {
				return nil, fmt.Errorf("ws: render grid: %w", err)
			}
			msgs = append(msgs, htmlMsg{Type: "html", ID: "grid", HTML: html})
			continue
		}
		id, ok := machineTopic(t)
		if !ok {
			continue
		}
		m, err := h.s.machineWithTags(ctx, id)
		if errors.Is(err, plant.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		if h.watched[id] > 0 {
			h.known[id] = tagSet(m.Tags)
		}
		h.mu.Unlock()
		tiles, err := h.machineTiles(ctx, m, nowMS)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, tiles...)
		op, err := h.operatorStop(ctx, id, nowMS)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, op...)
	}
	return msgs, nil
}

// websocket upgrades GET /ws and runs the client's pumps.
func (s *Server) websocket(c echo.Context) error {
	conn, err := s.hub.up.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		// The upgrader has answered the request already.
		return nil
	}
	h := s.hub
	cl := &client{h: h, conn: conn, send: make(chan *websocket.PreparedMessage, sendBuffer), quit: make(chan struct{})}
	if p, ok := c.Get(principalKey).(caller); ok && p.isToken {
		cl.restricted, cl.token = true, p.token
	}
	if p, ok := sessionOf(c); ok {
		cl.userID, cl.session = p.user.ID, p.secret
	}
	if !h.register(cl) {
		cl.stop(closeServiceRestart, "service restart")
		return nil
	}
	hello, err := prepare(helloMsg{Type: "hello", Version: s.cfg.Version, ServerMS: s.now().UnixMilli(),
		BeatMS: time.Duration(h.beatEvery.Load()).Milliseconds()})
	if err == nil {
		h.trySend(cl, hello)
	}
	go cl.writePump()
	cl.readPump(context.WithoutCancel(c.Request().Context()))
	return nil
}

// readPump reads subscriptions until the connection ends.
func (c *client) readPump(ctx context.Context) {
	h := c.h
	defer func() {
		h.unregister(c)
		c.stop(0, "")
	}()
	c.conn.SetReadLimit(maxInbound)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		var req struct {
			Sub []string `json:"sub"`
		}
		if err := json.Unmarshal(data, &req); err != nil || req.Sub == nil {
			continue
		}
		topics := validTopics(req.Sub)
		if c.restricted {
			var err error
			if topics, err = h.s.grantedBoards(ctx, c.token, topics); err != nil {
				h.log.Error("ws subscribe failed", "err", err)
				continue
			}
		}
		h.mu.Lock()
		if _, ok := h.clients[c]; !ok {
			h.mu.Unlock()
			return
		}
		h.setTopicsLocked(c, topics)
		h.mu.Unlock()
		for _, t := range topics {
			if id, ok := boardTopic(t); ok {
				pm, err := h.boardSnapshot(ctx, id)
				if err != nil {
					h.log.Error("ws board snapshot failed", "board", id, "err", err)
					continue
				}
				h.trySend(c, pm)
			}
		}
		msgs, err := h.snapshot(ctx, topics)
		if err != nil {
			h.log.Error("ws snapshot failed", "err", err)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		pm, err := prepare(msgs)
		if err != nil {
			h.log.Error("ws snapshot encode failed", "err", err)
			continue
		}
		h.trySend(c, pm)
	}
}

// validTopics keeps the topics this server knows, each once.
func validTopics(in []string) []string {
	out := make([]string, 0, len(in))
	for _, t := range in {
		if len(out) == maxTopics {
			break
		}
		if id, ok := machineTopic(t); ok {
			t = topicMachine + strconv.FormatInt(id, 10)
		} else if lineID, show, ok := parseDowntimeTopic(t); ok {
			t = downtimeTopic(lineID, show)
		} else if id, r, ok := parseTimelineTopic(t); ok {
			t = timelineTopic(id, r.Key)
		} else if id, ok := boardTopic(t); ok {
			t = topicBoard + strconv.FormatInt(id, 10)
		} else if t != topicPlant {
			continue
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// writePump is the only writer of data frames; it also pings so dead
// connections are noticed within pongWait.
func (c *client) writePump() {
	ping := time.NewTicker(pingEvery)
	defer func() {
		ping.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case <-c.quit:
			return
		case pm := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				c.stop(0, "")
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.stop(0, "")
				return
			}
		}
	}
}

// downtimeTopic is the topic of a line's list of stops: "downtime:3" for
// the stops needing a reason, "downtime:3:all" for every stop.
func downtimeTopic(lineID int64, show string) string {
	t := topicDowntime + strconv.FormatInt(lineID, 10)
	if show == showAll {
		t += ":" + showAll
	}
	return t
}

// parseDowntimeTopic parses "downtime:3" and "downtime:3:all". Line 0 is
// the implicit line of machines published without a line level.
func parseDowntimeTopic(t string) (lineID int64, show string, ok bool) {
	rest, ok := strings.CutPrefix(t, topicDowntime)
	if !ok {
		return 0, "", false
	}
	rest, all := strings.CutSuffix(rest, ":"+showAll)
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id < 0 {
		return 0, "", false
	}
	show = showUncoded
	if all {
		show = showAll
	}
	return id, show, true
}

// timelineTopic is the topic of a machine page's timeline and stops.
func timelineTopic(machineID int64, rangeKey string) string {
	return topicTimeline + strconv.FormatInt(machineID, 10) + ":" + rangeKey
}

// machineSub is what a machine page subscribes to: the machine's values and
// its timeline over the page's range.
func machineSub(machineID int64, rangeKey string) string {
	return topicMachine + strconv.FormatInt(machineID, 10) + " " + timelineTopic(machineID, rangeKey)
}

// parseTimelineTopic parses "timeline:12:8h"; the range must be one the
// machine page offers.
func parseTimelineTopic(t string) (machineID int64, r views.RangeChoice, ok bool) {
	rest, ok := strings.CutPrefix(t, topicTimeline)
	if !ok {
		return 0, r, false
	}
	idText, key, ok := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 {
		return 0, r, false
	}
	for _, c := range views.Ranges() {
		if c.Key == key {
			return id, c, true
		}
	}
	return 0, r, false
}

// downtimeDelta re-renders a line's list of stops when a stop of one of its
// machines changed, and on the full refresh, so a stop that has gone on past
// the no-reason threshold appears without an event of its own.
func (h *hub) downtimeDelta(ctx context.Context, pd *plantData, lineID int64, show string, stops map[int64]struct{}, full bool, nowMS int64) ([]any, error) {
	if !full {
		l, ok := lineByID(pd.lines, lineID)
		touched := false
		for _, m := range l.Machines {
			if _, changed := stops[m.ID]; changed {
				touched = true
				break
			}
		}
		if !ok || !touched {
			return nil, nil
		}
	}
	return h.stopList(ctx, pd.lines, lineID, show, nowMS)
}

func (h *hub) stopList(ctx context.Context, lines []plant.Line, lineID int64, show string, nowMS int64) ([]any, error) {
	cs, err := h.s.loadCosts(ctx)
	if err != nil {
		return nil, err
	}
	list, err := h.s.stopList(ctx, lines, lineID, show, cs, nowMS)
	if err != nil {
		return nil, err
	}
	html, err := renderString(ctx, views.StopListView(list))
	if err != nil {
		return nil, fmt.Errorf("ws: render stops of line %d: %w", lineID, err)
	}
	return []any{htmlMsg{Type: "html", ID: "stop-list", HTML: html}}, nil
}

// timelineDelta re-renders a machine page's timeline and stops when its
// stops changed, and on the full refresh so the open span grows.
func (h *hub) timelineDelta(ctx context.Context, id int64, r views.RangeChoice, stops map[int64]struct{}, full bool, nowMS int64) ([]any, error) {
	if _, changed := stops[id]; !changed && !full {
		return nil, nil
	}
	v, err := h.s.machineDowntime(ctx, id, r, nowMS)
	if err != nil {
		return nil, err
	}
	html, err := renderString(ctx, views.MachineDowntimeView(v))
	if err != nil {
		return nil, fmt.Errorf("ws: render timeline %d: %w", id, err)
	}
	return []any{htmlMsg{Type: "html", ID: "machine-downtime", HTML: html}}, nil
}

// operatorStop is the operator page's stop and reason buttons. It is sent
// only when the machine's stops changed, never on the periodic refresh, so
// a comment being typed is not wiped every few seconds.
func (h *hub) operatorStop(ctx context.Context, id, nowMS int64) ([]any, error) {
	op, err := h.s.operatorStop(ctx, id, nowMS)
	if err != nil {
		return nil, err
	}
	html, err := renderString(ctx, views.OperatorStopView(op))
	if err != nil {
		return nil, fmt.Errorf("ws: render operator stop %d: %w", id, err)
	}
	return []any{htmlMsg{Type: "html", ID: "op-stop", HTML: html}}, nil
}

// boardTopic parses "board:5".
func boardTopic(t string) (int64, bool) {
	rest, ok := strings.CutPrefix(t, topicBoard)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// boardDelta is a board's frame for this flush, or nil when the board has
// nothing new: it is rendered on a full refresh, or when one of its machines
// changed, at most once per boardMinGap (a change within the gap waits for
// a later flush, never lost).
func (h *hub) boardDelta(ctx context.Context, pd *plantData, id int64, dirty, stops map[int64]struct{}, full bool, nowMS int64) (*websocket.PreparedMessage, error) {
	b, err := h.s.store.Board(ctx, id)
	if errors.Is(err, plant.ErrNotFound) {
		// Deleted: the TV reloads and shows why (its token went with it).
		delete(h.boardWaiting, id)
		return prepare([]any{reloadMsg{Type: "reload"}})
	}
	if err != nil {
		return nil, fmt.Errorf("ws: board %d: %w", id, err)
	}
	touched := full || h.boardWaiting[id]
	for _, l := range pd.lines {
		if touched {
			break
		}
		if len(b.LineIDs) > 0 && !slices.Contains(b.LineIDs, l.ID) {
			continue
		}
		for _, m := range l.Machines {
			_, d := dirty[m.ID]
			_, st := stops[m.ID]
			if d || st {
				touched = true
				break
			}
		}
	}
	if !touched {
		return nil, nil
	}
	h.mu.Lock()
	last := h.boards[id].at
	h.mu.Unlock()
	if !full && time.Since(last) < boardMinGap {
		h.boardWaiting[id] = true
		return nil, nil
	}
	delete(h.boardWaiting, id)
	return h.renderBoard(ctx, b, pd.lines, nowMS)
}

// boardSnapshot is the frame a TV gets when it (re)connects: the board's
// latest frame when it is fresh, else a new one.
func (h *hub) boardSnapshot(ctx context.Context, id int64) (*websocket.PreparedMessage, error) {
	h.mu.Lock()
	f, ok := h.boards[id]
	h.mu.Unlock()
	if ok && time.Since(f.at) < boardMinGap {
		return f.pm, nil
	}
	b, err := h.s.store.Board(ctx, id)
	if errors.Is(err, plant.ErrNotFound) {
		return prepare([]any{reloadMsg{Type: "reload"}})
	}
	if err != nil {
		return nil, fmt.Errorf("ws: board %d: %w", id, err)
	}
	pd, err := h.loadPlant(ctx)
	if err != nil {
		return nil, err
	}
	return h.renderBoard(ctx, b, pd.lines, h.s.now().UnixMilli())
}

// renderBoard renders a board's live part as one frame and keeps it for
// the snapshots of TVs that connect next.
func (h *hub) renderBoard(ctx context.Context, b db.Board, lines []plant.Line, nowMS int64) (*websocket.PreparedMessage, error) {
	body, err := h.s.displayBodyOf(ctx, b, lines, nowMS)
	if err != nil {
		return nil, fmt.Errorf("ws: board %d: %w", b.ID, err)
	}
	html, err := renderString(ctx, views.DisplayLive(body))
	if err != nil {
		return nil, fmt.Errorf("ws: render board %d: %w", b.ID, err)
	}
	pm, err := prepare([]any{htmlMsg{Type: "html", ID: "display-live", HTML: html}})
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.boards[b.ID] = boardFrame{pm: pm, at: time.Now()}
	h.mu.Unlock()
	h.boardRenders.Add(1)
	return pm, nil
}

// heartbeat tells every client that holds a board that the server is
// there, and first closes display-token clients whose token was revoked or
// no longer grants their boards (an admin edited the playlist).
func (h *hub) heartbeat(ctx context.Context) error {
	h.mu.Lock()
	var cs []*client
	restricted := false
	for c := range h.clients {
		for _, t := range c.topics {
			if strings.HasPrefix(t, topicBoard) {
				cs = append(cs, c)
				restricted = restricted || c.restricted
				break
			}
		}
	}
	// Forget frames of boards nobody shows any more.
	for id := range h.boards {
		if len(h.topics[topicBoard+strconv.FormatInt(id, 10)]) == 0 {
			delete(h.boards, id)
		}
	}
	h.mu.Unlock()
	if len(cs) == 0 {
		return nil
	}
	var live map[int64]db.Token
	var boards []db.Board
	if restricted {
		toks, err := h.s.store.Tokens(ctx)
		if err != nil {
			return fmt.Errorf("ws: heartbeat: tokens: %w", err)
		}
		live = make(map[int64]db.Token, len(toks))
		for _, t := range toks {
			if t.RevokedMS == 0 {
				live[t.ID] = t
			}
		}
		if boards, err = h.s.store.Boards(ctx); err != nil {
			return fmt.Errorf("ws: heartbeat: boards: %w", err)
		}
	}
	pm, err := prepare(heartbeatMsg{Type: "heartbeat", Version: h.s.cfg.Version, ServerMS: h.s.now().UnixMilli()})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.restricted && !h.stillGranted(c, live, boards) {
			h.unregister(c)
			c.stop(closeRevoked, "display link revoked")
			continue
		}
		h.trySend(c, pm)
	}
	return nil
}

// stillGranted says whether a display-token client's token is live and
// still grants every board it holds.
func (h *hub) stillGranted(c *client, live map[int64]db.Token, boards []db.Board) bool {
	t, ok := live[c.token.ID]
	if !ok {
		return false
	}
	h.mu.Lock()
	topics := slices.Clone(c.topics)
	h.mu.Unlock()
	for _, topic := range topics {
		id, ok := boardTopic(topic)
		if !ok || !boardGranted(t.Scope, id, boards) {
			return false
		}
	}
	return true
}

// closeLogins closes the live connections opened with a login that has
// ended: the session with this secret, or (secret "") every session of the
// user, so that a logged-out or disabled user's open pages stop receiving
// data at once rather than until they reload.
func (h *hub) closeLogins(userID int64, secret string) {
	h.mu.Lock()
	var cs []*client
	for c := range h.clients {
		if c.session == "" {
			continue
		}
		if (secret != "" && c.session == secret) || (secret == "" && c.userID == userID) {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		h.unregister(c)
		c.stop(closeRevoked, "logged out")
	}
}
