package web

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"andon/db"
	"andon/plant"
)

// displayFixture is the downtime fixture's plant with two boards: board 1
// shows line-1, board 2 line-2.
type displayFixture struct {
	*dtFixture
	board1, board2 db.Board
}

func newDisplayFixture(t *testing.T) *displayFixture {
	t.Helper()
	// Boards show this shift's figures; without shifts that is today so
	// far. The plant's zone is one where it is about noon now, so stops
	// made minutes in the past never fall on yesterday, whenever the tests
	// run.
	f := &displayFixture{dtFixture: newDTFixture(t, func(c *Config) { c.Location = middayZone(time.Now()) })}
	st := f.e.store
	id1, err := st.SaveBoard(f.e.ctx, db.Board{Name: "Press hall", Layout: db.LayoutTiles, LineIDs: []int64{f.line1}})
	if err != nil {
		t.Fatalf("save board: %v", err)
	}
	id2, err := st.SaveBoard(f.e.ctx, db.Board{Name: "Saws", Layout: db.LayoutTiles, LineIDs: []int64{f.line2}})
	if err != nil {
		t.Fatalf("save board: %v", err)
	}
	if f.board1, err = st.Board(f.e.ctx, id1); err != nil {
		t.Fatal(err)
	}
	if f.board2, err = st.Board(f.e.ctx, id2); err != nil {
		t.Fatal(err)
	}
	return f
}

func boardPath(b db.Board) string { return "/display/" + strconv.FormatInt(b.ID, 10) }

func parseHTML(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDisplayTokenScope(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	tok, secret, err := e.store.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "hall TV", "test")
	if err != nil {
		t.Fatal(err)
	}
	bearer := &testClient{e: e, name: "display token board 1", bearer: secret}
	inURL := e.anon() // a TV: the token in the URL, no header, no cookie
	q := "?token=" + url.QueryEscape(secret)

	for _, c := range []struct {
		name string
		cl   *testClient
		path string
		want int
	}{
		{"own board, header", bearer, boardPath(f.board1), http.StatusOK},
		{"own board, URL", inURL, boardPath(f.board1) + q, http.StatusOK},
		{"own fragment, URL", inURL, boardPath(f.board1) + q + "&fragment=1", http.StatusOK},
		{"other board, header", bearer, boardPath(f.board2), http.StatusForbidden},
		{"other board, URL", inURL, boardPath(f.board2) + q, http.StatusForbidden},
		{"admin page", bearer, "/admin/users", http.StatusForbidden},
		{"admin page, URL", inURL, "/admin/users" + q, http.StatusSeeOther}, // ?token= counts only on display routes
		{"overview", bearer, "/", http.StatusForbidden},
		{"API", bearer, "/api/v1/machines", http.StatusForbidden},
		{"API, URL", inURL, "/api/v1/machines" + q, http.StatusUnauthorized},
		{"metrics", bearer, "/metrics", http.StatusForbidden},
	} {
		resp, body := c.cl.get(t, c.path)
		if resp.StatusCode != c.want {
			t.Errorf("%s: GET %s = %d, want %d; body %.200s", c.name, c.path, resp.StatusCode, c.want, body)
		}
	}
	// No writes, even on a route whose rule the token might pass.
	resp, _ := bearer.post(t, "/downtime/stops/1/code", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST as display token = %d, want 403", resp.StatusCode)
	}

	// The live connection accepts the token in the URL.
	wsURL := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws" + q
	hdr := http.Header{anonymousHeader: {"1"}}
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, hdr)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("ws with display token: %v (status %d)", err, code)
	}
	var hello helloMsg
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Errorf("ws hello = %+v, %v", hello, err)
	}
	conn.Close()

	// Revoked: 401 everywhere it used to work.
	if err := e.store.RevokeToken(e.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		cl   *testClient
		path string
	}{
		{bearer, boardPath(f.board1)},
		{inURL, boardPath(f.board1) + q},
		{inURL, boardPath(f.board1) + q + "&fragment=1"},
	} {
		resp, body := p.cl.get(t, p.path)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("revoked: GET %s = %d, want 401; body %.200s", p.path, resp.StatusCode, body)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, hdr); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Errorf("revoked: ws = %v (status %d), want 401", err, code)
	}
}

func TestDisplayAllScopeAndSessions(t *testing.T) {
	f := newDisplayFixture(t)
	all := f.e.bearer(t, "display", "all")
	for _, b := range []db.Board{f.board1, f.board2} {
		if resp, body := all.get(t, boardPath(b)); resp.StatusCode != http.StatusOK {
			t.Errorf("scope all: GET %s = %d; body %.200s", boardPath(b), resp.StatusCode, body)
		}
	}
	viewer := f.e.as(t, db.RoleViewer)
	if resp, _ := viewer.get(t, boardPath(f.board2)); resp.StatusCode != http.StatusOK {
		t.Errorf("viewer session: GET %s = %d", boardPath(f.board2), resp.StatusCode)
	}
	read := f.e.bearer(t, "api", "read")
	if resp, _ := read.get(t, boardPath(f.board1)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("read token: GET %s = %d, want 403", boardPath(f.board1), resp.StatusCode)
	}
	if resp, _ := f.e.anon().get(t, boardPath(f.board1)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous: GET %s = %d, want 303 to log in", boardPath(f.board1), resp.StatusCode)
	}
	if resp, _ := all.get(t, "/display/999"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown board = %d, want 404", resp.StatusCode)
	}
}

func TestDisplayPageTiles(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	if err := e.store.SetMachineConfig(e.ctx, f.press1, plant.MachineConfig{CostPerHour: 600, IdealCycleS: 30}, ""); err != nil {
		t.Fatal(err)
	}
	f.stop(t, f.press1, plant.Down, f.now-5*60_000, 0)
	_, secret, err := e.store.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "hall TV", "test")
	if err != nil {
		t.Fatal(err)
	}
	q := "?token=" + url.QueryEscape(secret)
	resp, body := e.anon().get(t, boardPath(f.board1)+q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET board = %d; body %.300s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	d := parseHTML(t, body)
	if got := d.Find(`[data-testid="display-title"]`).Text(); got != "Press hall" {
		t.Errorf("title = %q", got)
	}
	tiles := d.Find(".d-tile")
	if tiles.Length() != 2 {
		t.Fatalf("%d tiles, want line-1's two machines", tiles.Length())
	}
	down := d.Find(`[data-testid="display-tile-` + strconv.FormatInt(f.press1, 10) + `"]`)
	if !down.HasClass("state-down") || strings.TrimSpace(down.Find(`[data-testid="display-state"]`).Text()) != "Down" {
		t.Errorf("press-01 tile: class %q, state %q; want state-down with the name Down",
			down.AttrOr("class", ""), down.Find(`[data-testid="display-state"]`).Text())
	}
	if down.Find(".d-dur[data-start]").Length() != 1 {
		t.Error("press-01's ongoing stop has no ticking duration")
	}
	cost := down.Find(".d-cost")
	if cost.Length() != 1 || cost.AttrOr("data-cost-ms", "") == "" || !strings.Contains(cost.Text(), "50") {
		// 5 min at 600/h is 50; the margin part needs a margin.
		t.Errorf("press-01 stop cost = %q (data-cost-ms %q), want about 50", cost.Text(), cost.AttrOr("data-cost-ms", ""))
	}
	run := d.Find(`[data-testid="display-tile-` + strconv.FormatInt(f.press2, 10) + `"]`)
	if strings.TrimSpace(run.Find(`[data-testid="display-state"]`).Text()) != "Running" {
		t.Errorf("press-02 state = %q, want Running", run.Find(`[data-testid="display-state"]`).Text())
	}
	if d.Find(`[data-testid="display-oee"]`).Length() != 2 || d.Find(`[data-testid="display-output"]`).Length() != 2 {
		t.Error("tiles lack OEE or output")
	}
	if d.Find(`[data-testid="display-shift-cost"]`).Length() != 1 || d.Find(`#display-banner`).Length() != 1 {
		t.Error("no shift cost or stale banner")
	}
	if d.Find(`[data-testid="display-tile-`+strconv.FormatInt(f.saw, 10)+`"]`).Length() != 0 {
		t.Error("board 1 shows line-2's saw")
	}
	// What display.js needs: the token for /ws and the fragment, the
	// version and the board's edit time, and no other script or style.
	b := d.Find("body")
	if b.AttrOr("data-token", "") != secret || b.AttrOr("data-version", "") != "v-test" ||
		b.AttrOr("data-updated", "") != strconv.FormatInt(f.board1.UpdatedMS, 10) {
		t.Errorf("body data: %v", b.Nodes[0].Attr)
	}
	if fr := b.AttrOr("data-fragment", ""); !strings.Contains(fr, "fragment=1") || !strings.Contains(fr, "token=") {
		t.Errorf("data-fragment = %q", fr)
	}
	if d.Find("script").Length() != 1 || d.Find(`link[rel="stylesheet"]`).Length() != 1 || d.Find("[style]").Length() != 0 {
		t.Error("the display page must load display.js and display.css only, with no inline styles")
	}

	// The fragment is the live part alone, for the same token.
	resp, body = e.anon().get(t, boardPath(f.board1)+q+"&fragment=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fragment = %d", resp.StatusCode)
	}
	if strings.Contains(body, "<html") || !strings.HasPrefix(strings.TrimSpace(body), `<div id="display-live"`) {
		t.Errorf("fragment is not the live part: %.200s", body)
	}
	fd := parseHTML(t, body)
	if fd.Find(".d-tile").Length() != 2 || !strings.Contains(fd.Find(".d-tile.state-down").Text(), "Down") {
		t.Errorf("fragment tiles wrong: %.300s", body)
	}
	if fd.Find("#display-live").AttrOr("data-updated", "") != strconv.FormatInt(f.board1.UpdatedMS, 10) {
		t.Error("fragment lacks the board's edit time, so a TV would not reload after an edit")
	}
}

func TestDisplayGrid(t *testing.T) {
	for _, c := range []struct{ n, cols, rows int }{
		{0, 1, 1}, {1, 1, 1}, {2, 2, 1}, {3, 2, 2}, {4, 2, 2}, {6, 3, 2}, {8, 4, 2}, {12, 4, 3}, {64, 8, 8}, {100, 8, 8},
	} {
		cols, rows := displayGrid(c.n)
		if cols != c.cols || rows != c.rows {
			t.Errorf("displayGrid(%d) = %d×%d, want %d×%d", c.n, cols, rows, c.cols, c.rows)
		}
		if c.n <= displayMaxCols*displayMaxRows && cols*rows < c.n {
			t.Errorf("displayGrid(%d) = %d×%d holds too few", c.n, cols, rows)
		}
	}
}

func TestDisplayScopeCovers(t *testing.T) {
	for _, c := range []struct {
		scope, board string
		want         bool
	}{
		{"all", "1", true}, {"board:1", "1", true}, {"board:1", "12", false}, {"board:12", "1", false},
		{"board:", "", false}, {"all", "", false}, {"read", "1", false}, {"board:1", "01", false},
	} {
		if got := displayScopeCovers(c.scope, c.board); got != c.want {
			t.Errorf("displayScopeCovers(%q, %q) = %v, want %v", c.scope, c.board, got, c.want)
		}
	}
}

// dialToken opens /ws as a TV does: the display token in the URL.
func dialToken(t *testing.T, e *env, secret string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws?token=" + url.QueryEscape(secret)
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {e.ts.URL}, anonymousHeader: {"1"}})
	if err != nil {
		t.Fatalf("dial /ws with a display token: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A display token's websocket gets its own board's rendered live part, on
// subscribing and after changes, and nothing else: no other board, no
// machine tiles, no chart points.
func TestDisplayTokenWebsocketGetsItsBoardOnly(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	_, secret, err := e.store.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "tv", "admin")
	if err != nil {
		t.Fatal(err)
	}
	conn := dialToken(t, e, secret)
	subscribe(t, conn, "plant", "machine:"+strconv.FormatInt(f.saw, 10), "board:"+strconv.FormatInt(f.board2.ID, 10),
		"board:"+strconv.FormatInt(f.board1.ID, 10))
	first := await(t, conn, "the board's snapshot", func(m wsMsg) bool { return m.Type == "html" })
	if first.ID != "display-live" || !strings.Contains(first.HTML, "press-01") || !strings.Contains(first.HTML, "Press hall") {
		t.Fatalf("snapshot = %s %.300s, want board 1's live part", first.ID, first.HTML)
	}
	// A change on board 1's line and on board 2's: only the first may
	// reach this TV, as a fresh render of its board.
	now := time.Now().UnixMilli()
	e.write(t, word("line-2", "saw-01", "state", now, "down"), word("line-1", "press-02", "state", now, "idle"))
	deadline := time.Now().Add(5 * time.Second)
	updated := false
	for time.Now().Before(deadline) && !updated {
		_ = conn.SetReadDeadline(deadline)
		_, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		text := string(data)
		if strings.Contains(text, "saw-01") || strings.Contains(text, "Saws") || strings.Contains(text, `"points"`) ||
			strings.Contains(text, "machine-") && !strings.Contains(text, "display-machine-") {
			t.Fatalf("a display token's websocket got content beyond its board: %.400s", text)
		}
		if strings.Contains(text, `"display-live"`) && strings.Contains(text, "state-idle") {
			updated = true
		}
	}
	if !updated {
		t.Error("the board was not pushed again after its machine changed")
	}
}

// TVs showing one board share its renders: the hub renders a board once per
// flush, whatever the number of screens.
func TestDisplayBoardRenderedOncePerFlush(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	_, secret, err := e.store.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "tv", "admin")
	if err != nil {
		t.Fatal(err)
	}
	const tvs = 5
	var conns []*websocket.Conn
	for range tvs {
		c := dialToken(t, e, secret)
		subscribe(t, c, "board:"+strconv.FormatInt(f.board1.ID, 10))
		await(t, c, "snapshot", func(m wsMsg) bool { return m.ID == "display-live" })
		conns = append(conns, c)
	}
	before := e.srv.hub.boardRenders.Load()
	e.write(t, word("line-1", "press-02", "state", time.Now().UnixMilli(), "changeover"))
	for i, c := range conns {
		m := await(t, c, "the update", func(m wsMsg) bool { return m.ID == "display-live" && strings.Contains(m.HTML, "state-changeover") })
		if m.HTML == "" {
			t.Fatalf("TV %d got an empty board", i)
		}
	}
	// One render for the change, perhaps one more for a periodic refresh
	// in between; a render per TV would be five.
	if n := e.srv.hub.boardRenders.Load() - before; n > 2 {
		t.Errorf("%d renders for %d TVs and one change, want 1 (2 with a refresh)", n, tvs)
	}
}

// The server's heartbeat reaches board clients with its version, and a
// revoked token's open connection is closed with 4401 at the next one.
func TestDisplayHeartbeatAndRevocation(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	e.srv.hub.beatEvery.Store(int64(300 * time.Millisecond))
	tok, secret, err := e.store.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "tv", "admin")
	if err != nil {
		t.Fatal(err)
	}
	conn := dialToken(t, e, secret)
	hello := await(t, conn, "hello", func(m wsMsg) bool { return m.Type == "hello" })
	subscribe(t, conn, "board:"+strconv.FormatInt(f.board1.ID, 10))
	beat := await(t, conn, "a heartbeat", func(m wsMsg) bool { return m.Type == "heartbeat" })
	if beat.Version != "v-test" || beat.ServerMS < hello.ServerMS {
		t.Errorf("heartbeat = %+v, want the version and the server's time", beat)
	}
	// A page without a board (the overview) gets no heartbeats: its
	// script takes any frame as an update.
	plain := dial(t, e)
	subscribe(t, plain, "plant")
	_ = plain.SetReadDeadline(time.Now().Add(time.Second))
	for {
		_, data, err := plain.ReadMessage()
		if err != nil {
			break
		}
		if strings.Contains(string(data), `"heartbeat"`) {
			t.Fatalf("a page without a board got a heartbeat: %s", data)
		}
	}

	if err := e.store.RevokeToken(e.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != closeRevoked {
				t.Errorf("closed with %d, want %d", ce.Code, closeRevoked)
			}
			break
		}
		if err != nil {
			t.Fatalf("the revoked token's connection ended without a close code: %v", err)
		}
	}
}

// A display token made for a board also opens the boards along that
// board's playlist, over HTTP and on the websocket, and nothing else.
func TestDisplayPlaylistToken(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	st := e.store
	// board1 → board2 → board3 → board1 (a loop); board4 is off the playlist
	// and board5 leads into it (before board1, so not after it).
	id3, err := st.SaveBoard(e.ctx, db.Board{Name: "Third", Layout: db.LayoutPareto, Next: f.board1.ID, RotateS: 30})
	if err != nil {
		t.Fatal(err)
	}
	id4, err := st.SaveBoard(e.ctx, db.Board{Name: "Elsewhere", Layout: db.LayoutLine})
	if err != nil {
		t.Fatal(err)
	}
	id5, err := st.SaveBoard(e.ctx, db.Board{Name: "Lead-in", Layout: db.LayoutTiles, Next: f.board1.ID, RotateS: 30})
	if err != nil {
		t.Fatal(err)
	}
	save := func(b db.Board, next int64) {
		b.Next, b.RotateS = next, 30
		if _, err := st.SaveBoard(e.ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	save(f.board1, f.board2.ID)
	save(f.board2, id3)
	_, secret, err := st.CreateToken(e.ctx, "display", db.BoardScope(f.board1.ID), "tv", "admin")
	if err != nil {
		t.Fatal(err)
	}
	tv := e.anon()
	q := "?token=" + url.QueryEscape(secret)
	for _, c := range []struct {
		id   int64
		want int
	}{
		{f.board1.ID, http.StatusOK}, {f.board2.ID, http.StatusOK}, {id3, http.StatusOK},
		{id4, http.StatusForbidden}, {id5, http.StatusForbidden},
	} {
		path := "/display/" + strconv.FormatInt(c.id, 10) + q
		if resp, body := tv.get(t, path); resp.StatusCode != c.want {
			t.Errorf("GET board %d with board %d's token = %d, want %d; %.200s", c.id, f.board1.ID, resp.StatusCode, c.want, body)
		}
		if resp, _ := tv.get(t, path+"&fragment=1"); resp.StatusCode != c.want {
			t.Errorf("GET board %d's fragment = %d, want %d", c.id, resp.StatusCode, c.want)
		}
	}
	// The page of board 2 rotates on to board 3 with the same link.
	_, body := tv.get(t, "/display/"+strconv.FormatInt(f.board2.ID, 10)+q)
	if next := parseHTML(t, body).Find("body").AttrOr("data-next", ""); !strings.HasPrefix(next, "/display/"+strconv.FormatInt(id3, 10)+"?") {
		t.Errorf("board 2's next = %q, want board 3 with the token", next)
	}
	// Off the playlist, the websocket drops the board too.
	conn := dialToken(t, e, secret)
	subscribe(t, conn, "board:"+strconv.FormatInt(id4, 10), "board:"+strconv.FormatInt(id3, 10))
	m := await(t, conn, "board 3", func(m wsMsg) bool { return m.ID == "display-live" })
	if !strings.Contains(m.HTML, "Third") || strings.Contains(m.HTML, "Elsewhere") {
		t.Errorf("got %.200s, want board 3 only", m.HTML)
	}
	// Once the playlist no longer reaches board 3, its page is refused.
	save(f.board2, 0)
	if resp, _ := tv.get(t, "/display/"+strconv.FormatInt(id3, 10)+q); resp.StatusCode != http.StatusForbidden {
		t.Errorf("board 3 after the playlist changed = %d, want 403", resp.StatusCode)
	}
}

func TestPlaylistReaches(t *testing.T) {
	boards := []db.Board{{ID: 1, Next: 2}, {ID: 2, Next: 3}, {ID: 3, Next: 1}, {ID: 4, Next: 1}, {ID: 5}, {ID: 6, Next: 7}, {ID: 7, Next: 6}}
	for _, c := range []struct {
		from, to int64
		want     bool
	}{
		{1, 2, true}, {1, 3, true}, {1, 1, false}, {1, 4, false}, {4, 3, true}, {5, 1, false},
		{6, 7, true}, {7, 1, false}, {9, 1, false}, {3, 2, true},
	} {
		if got := playlistReaches(boards, c.from, c.to); got != c.want {
			t.Errorf("playlistReaches(%d → %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestDisplayLayouts(t *testing.T) {
	f := newDisplayFixture(t)
	e := f.e
	if err := e.store.SetMachineConfig(e.ctx, f.press1, plant.MachineConfig{CostPerHour: 600, IdealCycleS: 30}, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetMachineConfig(e.ctx, f.saw, plant.MachineConfig{CostPerHour: 60}, ""); err != nil {
		t.Fatal(err)
	}
	// An ended coded stop and an ongoing uncoded one.
	coded := f.stop(t, f.press1, plant.Down, f.now-16*60_000, f.now-6*60_000)
	if resp, body := f.post(t, "/downtime/stops/"+strconv.FormatInt(coded, 10)+"/code",
		url.Values{"reason_id": {strconv.FormatInt(f.reason.ID, 10)}}); resp.StatusCode >= 400 {
		t.Fatalf("code the stop: %d %.300s", resp.StatusCode, body)
	}
	f.stop(t, f.press1, plant.Down, f.now-5*60_000, 0)
	f.stop(t, f.saw, plant.Idle, f.now-3*60_000, 0)
	all := e.bearer(t, "display", "all")

	t.Run("line", func(t *testing.T) {
		b := f.board1
		b.Layout, b.LineIDs = db.LayoutLine, []int64{f.line1, f.line2}
		if _, err := e.store.SaveBoard(e.ctx, b); err != nil {
			t.Fatal(err)
		}
		resp, body := all.get(t, boardPath(b)+"?fragment=1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET = %d", resp.StatusCode)
		}
		d := parseHTML(t, body)
		if d.Find(".d-tile").Length() != 0 || d.Find(".d-panel").Length() != 2 {
			t.Fatalf("want two line panels and no tiles: %.500s", body)
		}
		p1 := d.Find(`[data-testid="display-line-` + strconv.FormatInt(f.line1, 10) + `"]`)
		if got := strings.Join(strings.Fields(p1.Find(`[data-testid="display-running"]`).Text()), " "); got != "1 / 2" {
			t.Errorf("line-1 running = %q, want 1 / 2", got)
		}
		if got := p1.Find(`[data-testid="display-line-cost"]`).Text(); !strings.Contains(got, "€") {
			t.Errorf("line-1 cost = %q, want money", got)
		}
		stops := p1.Find(".d-lstop")
		if stops.Length() != 1 || !strings.Contains(stops.Text(), "press-01") || stops.Find(".d-dur[data-start]").Length() != 1 ||
			!strings.Contains(stops.Find(".d-cost").Text(), "50") {
			t.Errorf("line-1 stops: %q, want press-01 down with a ticking 50 cost", stops.Text())
		}
		p2 := d.Find(`[data-testid="display-line-` + strconv.FormatInt(f.line2, 10) + `"]`)
		if !strings.Contains(p2.Find(".d-lstop").Text(), "saw-01") || p2.Find(`[data-testid="display-oee"]`).Length() != 1 {
			t.Errorf("line-2 panel: %q", p2.Text())
		}
	})
	t.Run("pareto", func(t *testing.T) {
		b := f.board2
		b.Layout, b.LineIDs = db.LayoutPareto, []int64{f.line1, f.line2}
		if _, err := e.store.SaveBoard(e.ctx, b); err != nil {
			t.Fatal(err)
		}
		_, body := all.get(t, boardPath(b)+"?fragment=1")
		d := parseHTML(t, body)
		var names []string
		d.Find(`[data-testid="display-bar"] .d-bar-name`).Each(func(_ int, s *goquery.Selection) { names = append(names, s.Text()) })
		// By cost: press-01's coded 10 min at 600/h (100) beats the two
		// ongoing uncoded stops (5 min at 600/h, 3 min at 60/h: 53).
		if got, want := strings.Join(names, ","), f.reason.Name+",Not coded yet"; got != want {
			t.Errorf("bars = %s, want %s", got, want)
		}
		first := d.Find(`[data-testid="display-bar"]`).First()
		if got := first.Find(".d-bar-cost").Text(); !strings.Contains(got, "100") {
			t.Errorf("first bar cost = %q, want 100", got)
		}
		if got := first.Find(".d-bar-facts").Text(); !strings.Contains(got, "1 stop") || !strings.Contains(got, "10 min") {
			t.Errorf("first bar facts = %q, want 1 stop, 10 min", got)
		}
		if w := first.Find("rect").AttrOr("width", ""); w != "100.0" {
			t.Errorf("first bar width = %q, want 100.0", w)
		}
		last := d.Find(`[data-testid="display-bar"]`).Last()
		if !last.HasClass("is-uncoded") || !strings.Contains(last.Find(".d-bar-facts").Text(), "2 stops") {
			t.Errorf("uncoded bar: class %q, facts %q", last.AttrOr("class", ""), last.Find(".d-bar-facts").Text())
		}
	})
}

// display.js runs on 2018 smart-TV browsers: ES5 only. Comments and string
// contents are blanked first, so a word in them does not count.
func TestDisplayScriptIsES5(t *testing.T) {
	src, err := os.ReadFile("../static/js/display.js")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*|'(?:[^'\\\n]|\\.)*'`).ReplaceAllString(string(src), "''")
	for _, c := range []struct{ name, re string }{
		{"let", `\blet\s`}, {"const", `\bconst\s`}, {"arrow function", `=>`}, {"template literal", "`"},
		{"class", `\bclass\s+\w`}, {"spread", `\.\.\.`}, {"fetch", `\bfetch\(`}, {"async", `\basync\s`},
	} {
		if loc := regexp.MustCompile(c.re).FindStringIndex(code); loc != nil {
			t.Errorf("display.js uses %s (not ES5): %q", c.name, code[max(0, loc[0]-30):min(len(code), loc[1]+30)])
		}
	}
}

// middayZone is a fixed zone in which it is noon (12:00 to 12:59) at now:
// 12 minus the UTC hour is always a valid offset, from -11 to +12 hours.
func middayZone(now time.Time) *time.Location {
	return time.FixedZone("midday", (12-now.UTC().Hour())*3600)
}

func TestMiddayZone(t *testing.T) {
	for h := range 24 {
		now := time.Date(2026, 11, 25, h, 7, 0, 0, time.UTC)
		if got := now.In(middayZone(now)); got.Hour() != 12 || got.Minute() != 7 {
			t.Errorf("at %s UTC the midday zone says %s", now.Format("15:04"), got.Format("15:04"))
		}
	}
}
