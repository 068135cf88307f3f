package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"andon/db"
	"andon/plant"
)

// wsMsg is any server message; fields are filled per type.
type wsMsg struct {
	Type     string    `json:"type"`
	ID       string    `json:"id"`
	HTML     string    `json:"html"`
	Tag      int64     `json:"tag"`
	T        []float64 `json:"t"`
	V        []float64 `json:"v"`
	Version  string    `json:"version"`
	ServerMS int64     `json:"server_ms"`
}

func dial(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {e.ts.URL}})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func subscribe(t *testing.T, c *websocket.Conn, topics ...string) {
	t.Helper()
	if err := c.WriteJSON(map[string][]string{"sub": topics}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
}

// await reads frames until one holds a message that match accepts; a frame
// is one message object or an array of them.
func await(t *testing.T, c *websocket.Conn, what string, match func(wsMsg) bool) wsMsg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var msgs []wsMsg
		if strings.HasPrefix(string(data), "[") {
			err = json.Unmarshal(data, &msgs)
		} else {
			var m wsMsg
			err = json.Unmarshal(data, &m)
			msgs = []wsMsg{m}
		}
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		for _, m := range msgs {
			if match(m) {
				return m
			}
		}
	}
}

func TestWebsocketHello(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e)
	m := await(t, c, "hello", func(m wsMsg) bool { return m.Type == "hello" })
	if m.Version != "v-test" || m.ServerMS == 0 {
		t.Errorf("hello = %+v", m)
	}
	if got := metricValue(t, e.srv.metrics.clients); got != 1 {
		t.Errorf("andon_ws_clients = %v, want 1", got)
	}
}

func TestWebsocketMachinePoints(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.write(t, reading("line-1", "press-01", "temperature", now-1000, 20), word("line-1", "press-01", "state", now-1000, "running"))
	mid := e.machineID(t, "press-01")
	tid := e.tagID(t, "press-01", "temperature")

	c := dial(t, e)
	subscribe(t, c, fmt.Sprintf("machine:%d", mid))
	snap := await(t, c, "value tile snapshot", func(m wsMsg) bool { return m.Type == "html" && m.ID == fmt.Sprintf("tag-%d", tid) })
	if !strings.Contains(snap.HTML, fmt.Sprintf(`data-testid="tag-value-%d"`, tid)) || !strings.Contains(snap.HTML, `<div class="value-big num">20`) {
		t.Errorf("snapshot tile = %s", snap.HTML)
	}

	tests := []struct {
		name  string
		send  func(ts int64, v float64)
		value float64
	}{
		{"through the writer", func(ts int64, v float64) {
			e.write(t, reading("line-1", "press-01", "temperature", ts, v))
		}, 42.25},
		{"Committed directly", func(ts int64, v float64) {
			e.srv.Committed([]plant.Stored{{TagID: tid, MachineID: mid, TS: ts, Value: v}}, false)
		}, 77.5},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := now + int64(i)
			tc.send(ts, tc.value)
			m := await(t, c, "points", func(m wsMsg) bool { return m.Type == "points" && m.Tag == tid })
			if len(m.V) != 1 || m.V[0] != tc.value || m.T[0] != float64(ts)/1000 {
				t.Errorf("points = t %v v %v, want t [%v] v [%v]", m.T, m.V, float64(ts)/1000, tc.value)
			}
		})
	}

	// A metric the page does not show yet makes it reload.
	e.write(t, reading("line-1", "press-01", "pressure", now+10, 3))
	await(t, c, "reload", func(m wsMsg) bool { return m.Type == "reload" })
}

func TestWebsocketPlantSnapshotAndTiles(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e)
	subscribe(t, c, "plant")
	snap := await(t, c, "grid snapshot", func(m wsMsg) bool { return m.Type == "html" && m.ID == "grid" })
	if !strings.Contains(snap.HTML, `data-testid="empty-state"`) {
		t.Errorf("empty plant snapshot lacks the empty state: %s", snap.HTML)
	}

	// The first reading replaces the empty state with the grid.
	now := time.Now().UnixMilli()
	e.write(t, word("line-1", "press-01", "state", now, "down"), reading("line-1", "press-01", "speed", now, 1200))
	id := e.machineID(t, "press-01")
	grid := await(t, c, "new grid", func(m wsMsg) bool { return m.Type == "html" && m.ID == "grid" })
	d, err := goquery.NewDocumentFromReader(strings.NewReader(grid.HTML))
	if err != nil {
		t.Fatal(err)
	}
	tile := d.Find(fmt.Sprintf(`[data-testid="machine-tile-%d"]`, id))
	if tile.Length() != 1 || tile.Find(`[data-testid="state-badge"]`).Text() != "Down" {
		t.Errorf("grid = %s", grid.HTML)
	}

	// A new value of a known tag updates just the tile.
	e.write(t, word("line-1", "press-01", "state", now+1, "running"))
	m := await(t, c, "tile", func(m wsMsg) bool { return m.Type == "html" && m.ID == fmt.Sprintf("machine-%d", id) })
	if !strings.Contains(m.HTML, ">Running<") {
		t.Errorf("tile = %s", m.HTML)
	}
}

func TestWebsocketSlowClientIsDropped(t *testing.T) {
	e := newEnv(t)
	slow := dial(t, e)
	subscribe(t, slow, "plant")
	await(t, slow, "grid", func(m wsMsg) bool { return m.ID == "grid" })
	fast := dial(t, e)
	subscribe(t, fast, "plant")
	await(t, fast, "grid", func(m wsMsg) bool { return m.ID == "grid" })

	// Find the slow client's server side: the first one registered is the
	// one subscribed before the fast one connected.
	h := e.srv.hub
	var slowSide *client
	deadline := time.Now().Add(10 * time.Second)
	for slowSide == nil && time.Now().Before(deadline) {
		h.mu.Lock()
		for c := range h.clients {
			if c.conn.RemoteAddr().String() == slow.LocalAddr().String() {
				slowSide = c
			}
		}
		h.mu.Unlock()
	}
	if slowSide == nil {
		t.Fatal("slow client not registered")
	}
	// The slow client never reads again: big frames fill its socket, then
	// its queue, and the hub drops it instead of waiting.
	pm, err := prepare([]htmlMsg{{Type: "html", ID: "x", HTML: strings.Repeat("x", 256<<10)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100_000 && metricValue(t, e.srv.metrics.dropped) == 0; i++ {
		h.trySend(slowSide, pm)
		if i%sendBuffer == 0 {
			time.Sleep(time.Millisecond) // let the write pump block on the full socket
		}
	}
	if got := metricValue(t, e.srv.metrics.dropped); got != 1 {
		t.Fatalf("andon_ws_dropped_total = %v, want 1", got)
	}
	if got := metricValue(t, e.srv.metrics.clients); got != 1 {
		t.Errorf("andon_ws_clients = %v, want 1", got)
	}
	// The hub keeps serving the other client.
	now := time.Now().UnixMilli()
	e.write(t, reading("line-1", "press-01", "speed", now, 1))
	await(t, fast, "grid after drop", func(m wsMsg) bool { return m.ID == "grid" && strings.Contains(m.HTML, "press-01") })
}

func TestWebsocketShutdownSends1012(t *testing.T) {
	e := newEnv(t)
	clients := []*websocket.Conn{dial(t, e), dial(t, e)}
	subscribe(t, clients[0], "plant")
	for _, c := range clients {
		await(t, c, "hello", func(m wsMsg) bool { return m.Type == "hello" })
	}
	e.stop()
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var err error
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1012 {
			t.Errorf("client %d: err = %v, want close 1012", i, err)
		}
	}
	// After shutdown a new connection is closed at once, with the same code.
	late := dial(t, e)
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = late.ReadMessage()
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1012 {
		t.Errorf("late client: err = %v, want close 1012", err)
	}
}

func TestWebsocketRejectsForeignOrigin(t *testing.T) {
	e := newEnv(t)
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example"}})
	if err == nil {
		t.Fatal("cross-origin upgrade accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("resp = %v, want 403", resp)
	}
}

func TestValidTopics(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"plant"}, "plant"},
		{[]string{"machine:12", "machine:012", "plant", "plant"}, "machine:12,plant"},
		{[]string{"machine:-1", "machine:x", "lines", "<script>"}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			if got := strings.Join(validTopics(tc.in), ","); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// metricValue reads a gauge or counter.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// TestWebsocketClosedWhenLoginEnds: a page's live connection belongs to the
// login it was opened with. Logging out, or an admin disabling the user,
// closes it at once with 4401 (the page then reloads to the login page);
// other users' connections stay open.
func TestWebsocketClosedWhenLoginEnds(t *testing.T) {
	e := newEnv(t)
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	open := func(t *testing.T, cl *testClient) *websocket.Conn {
		t.Helper()
		hdr := http.Header{"Origin": {e.ts.URL}}
		hdr.Set("Cookie", (&http.Cookie{Name: sessionCookie, Value: cl.cookie}).String())
		c, resp, err := websocket.DefaultDialer.Dial(u, hdr)
		if err != nil {
			t.Fatalf("dial as %s: %v", cl.name, err)
		}
		resp.Body.Close()
		t.Cleanup(func() { c.Close() })
		subscribe(t, c, "plant")
		return c
	}
	closedWith := func(t *testing.T, c *websocket.Conn) int {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return ce.Code
				}
				return -1 // a timeout: still open
			}
		}
	}
	userID := func(t *testing.T, name string) int64 {
		us, err := e.store.Users(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range us {
			if x.Name == name {
				return x.ID
			}
		}
		t.Fatalf("no user %s", name)
		return 0
	}
	admin := e.asAdminClient()
	watcher := open(t, admin)

	t.Run("logout", func(t *testing.T) {
		op := e.as(t, db.RoleOperator)
		c := open(t, op)
		if resp, body := op.do(t, http.MethodPost, "/logout", url.Values{}, nil); resp.StatusCode >= 400 {
			t.Fatalf("logout: %d %.200s", resp.StatusCode, body)
		}
		if code := closedWith(t, c); code != closeRevoked {
			t.Errorf("the logged-out page's websocket ended with %d, want %d", code, closeRevoked)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		v := e.as(t, db.RoleViewer)
		c := open(t, v)
		path := "/admin/users/" + strconv.FormatInt(userID(t, v.name), 10) + "/disabled"
		if resp, body := admin.do(t, http.MethodPost, path, url.Values{"disabled": {"true"}}, nil); resp.StatusCode >= 400 {
			t.Fatalf("disable: %d %.200s", resp.StatusCode, body)
		}
		if code := closedWith(t, c); code != closeRevoked {
			t.Errorf("the disabled user's websocket ended with %d, want %d", code, closeRevoked)
		}
	})
	// The admin's own connection is untouched.
	if err := watcher.WriteJSON(map[string][]string{"sub": {"plant"}}); err != nil {
		t.Errorf("the admin's websocket was closed too: %v", err)
	}
	_ = watcher.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, _, err := watcher.ReadMessage(); err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			t.Errorf("the admin's websocket was closed with %d", ce.Code)
		}
	}
}

// The hub keeps the plant it loaded and applies each commit's newest
// readings to it instead of reloading it every flush; after every commit
// it must equal what the store now says, or ask for a reload when only the
// store can know. The steps build on each other, in order.
func TestHubPlantAppliesReadings(t *testing.T) {
	store := db.OpenTest(t)
	srv, err := New(Config{Store: store, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	// The hub does not run: the test takes what commits record, as a
	// flush does.
	h := srv.hub
	w := db.NewWriter(store, db.WriterConfig{OnCommit: srv.Committed})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	write := func(t *testing.T, rs ...plant.Reading) {
		t.Helper()
		if err := w.Write(ctx, rs); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	take := func() map[int64]plant.Stored {
		h.pmu.Lock()
		defer h.pmu.Unlock()
		last := h.last
		h.last = map[int64]plant.Stored{}
		return last
	}

	now := time.Now().UnixMilli()
	write(t, reading("line-1", "press-01", "speed", now-9000, 1), word("line-1", "press-01", "state", now-9000, "running"),
		reading("line-2", "press-02", "good", now-9000, 10))
	take()
	pd, err := h.loadPlant(ctx)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		rs      []plant.Reading
		applies bool
	}{
		{"newer numbers on two machines", []plant.Reading{
			reading("line-1", "press-01", "speed", now-8000, 2), reading("line-2", "press-02", "good", now-8000, 11)}, true},
		{"a newer word", []plant.Reading{word("line-1", "press-01", "state", now-7000, "down")}, true},
		{"an older reading changes nothing", []plant.Reading{reading("line-1", "press-01", "speed", now-20000, 99)}, true},
		{"the newest of one commit wins", []plant.Reading{
			reading("line-1", "press-01", "speed", now-6000, 3), reading("line-1", "press-01", "speed", now-4000, 4),
			reading("line-1", "press-01", "speed", now-5000, 5)}, true},
		{"a word for a number tag is stored as its id", []plant.Reading{word("line-1", "press-01", "speed", now-3000, "oops")}, true},
		{"a number for a text tag needs the store", []plant.Reading{reading("line-1", "press-01", "state", now-2000, 7)}, false},
		{"and after the reload applies again", []plant.Reading{word("line-1", "press-01", "state", now-1000, "idle")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			write(t, tc.rs...)
			applied := pd.apply(take())
			if applied != tc.applies {
				t.Errorf("apply = %v, want %v", applied, tc.applies)
			}
			fresh, err := h.loadPlant(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if applied && !reflect.DeepEqual(pd.lines, fresh.lines) {
				t.Errorf("the kept plant differs from the store's:\n got %+v\nwant %+v", pd.lines, fresh.lines)
			}
			pd = fresh
		})
	}
}

// A machine renamed by an admin shows its new name in the next tile,
// although the hub keeps the plant between flushes.
func TestWebsocketTileAfterRename(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	e.write(t, word("line-1", "press-01", "state", now, "running"), reading("line-1", "press-01", "good", now, 1))
	id := e.machineID(t, "press-01")
	c := dial(t, e)
	subscribe(t, c, "plant")
	await(t, c, "grid", func(m wsMsg) bool { return m.ID == "grid" && strings.Contains(m.HTML, "press-01") })
	// A tile first, so the hub holds a plant with the old name.
	e.write(t, word("line-1", "press-01", "state", now+1, "idle"))
	tileID := fmt.Sprintf("machine-%d", id)
	await(t, c, "idle tile", func(m wsMsg) bool { return m.ID == tileID && strings.Contains(m.HTML, ">Idle<") })

	form := url.Values{"display_name": {"Big press"}, "rule_kind": {"none"}}
	if resp, body := e.asAdminClient().post(t, fmt.Sprintf("/admin/machines/%d", id), form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename: %d %.300s", resp.StatusCode, body)
	}
	e.write(t, word("line-1", "press-01", "state", now+2, "down"))
	m := await(t, c, "down tile", func(m wsMsg) bool { return m.ID == tileID && strings.Contains(m.HTML, ">Down<") })
	if !strings.Contains(m.HTML, "Big press") {
		t.Errorf("the tile after the rename = %s, want the name Big press", m.HTML)
	}
}

// The overview's periodic re-render goes round the machines a few at a
// time: over refreshEvery every tile comes once, in id order, and a gap
// longer than that re-renders each tile once, not more.
func TestHubSweep(t *testing.T) {
	pd := &plantData{}
	for id := int64(1); id <= 40; id++ {
		pd.ids = append(pd.ids, id*3)
	}
	start := time.Unix(1_700_000_000, 0)
	step := refreshEvery / 40

	tests := []struct {
		name  string
		steps []time.Duration // time since the previous sweep, one sweep each
		want  int             // tiles in all, none twice
	}{
		{"nothing due yet", []time.Duration{0, step / 2}, 0},
		{"one step, one tile", []time.Duration{step}, 1},
		{"a round in small steps", slices.Repeat([]time.Duration{step / 5}, 200), 40},
		{"a round in uneven steps", []time.Duration{7 * step, step / 2, 11 * step, 21*step + step/2}, 40},
		{"a long silence: each once", []time.Duration{5 * refreshEvery}, 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &hub{sweepAt: start}
			now := start
			var got []int64
			for _, d := range tc.steps {
				now = now.Add(d)
				got = append(got, h.sweep(pd, now)...)
			}
			if len(got) != tc.want {
				t.Fatalf("%d tiles, want %d: %v", len(got), tc.want, got)
			}
			seen := map[int64]bool{}
			for i, id := range got {
				if seen[id] {
					t.Errorf("tile %d twice: %v", id, got)
				}
				seen[id] = true
				if i > 0 && id != got[i-1]+3 && !(got[i-1] == 120 && id == 3) {
					t.Errorf("tile %d after %d: not in id order: %v", id, got[i-1], got)
				}
			}
		})
	}

	// Where one round stops, the next goes on.
	h := &hub{sweepAt: start}
	first := h.sweep(pd, start.Add(3*step))
	next := h.sweep(pd, start.Add(5*step))
	if want := []int64{3, 6, 9}; !slices.Equal(first, want) {
		t.Errorf("first sweep = %v, want %v", first, want)
	}
	if want := []int64{12, 15}; !slices.Equal(next, want) {
		t.Errorf("next sweep = %v, want %v", next, want)
	}
}

// Machines appearing one after another, faster than gridMinGap: every one
// of them reaches the overview, in a grid sent once the gap has passed.
func TestWebsocketGridAfterMachinesAppear(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e)
	subscribe(t, c, "plant")
	await(t, c, "grid snapshot", func(m wsMsg) bool { return m.ID == "grid" })
	now := time.Now().UnixMilli()
	for i := range 5 {
		e.write(t, reading("line-1", fmt.Sprintf("press-0%d", i), "good", now, 1))
	}
	await(t, c, "a grid with every machine", func(m wsMsg) bool {
		if m.ID != "grid" {
			return false
		}
		for i := range 5 {
			if !strings.Contains(m.HTML, fmt.Sprintf(">press-0%d<", i)) {
				return false
			}
		}
		return true
	})
}
