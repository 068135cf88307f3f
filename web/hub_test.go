package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
