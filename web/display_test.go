package web

import (
	"net/http"
	"net/url"
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
	f := &displayFixture{dtFixture: newDTFixture(t)}
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

// A display token's websocket learns only that the plant changed, never
// other machines' tiles: its board page fetches what it may show.
func TestDisplayTokenWebsocketGetsNoContent(t *testing.T) {
	e := newEnv(t)
	e.write(t, plant.Reading{Path: plant.Path{Line: "line-9", Machine: "secret-press"}, Metric: "state", TS: time.Now().UnixMilli(), Word: "running"})
	board, err := e.store.SaveBoard(e.ctx, db.Board{Name: "b", Layout: "tiles"})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.store.CreateToken(e.ctx, "display", "board:"+strconv.FormatInt(board, 10), "tv", "admin")
	if err != nil {
		t.Fatal(err)
	}
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws?token=" + url.QueryEscape(secret)
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {e.ts.URL}})
	if err != nil {
		t.Fatalf("dial /ws with a display token: %v", err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string][]string{"sub": {"plant", "machine:1"}}); err != nil {
		t.Fatal(err)
	}
	e.write(t, plant.Reading{Path: plant.Path{Line: "line-9", Machine: "secret-press"}, Metric: "state", TS: time.Now().UnixMilli() + 1, Word: "down"})
	ticks := 0
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for ticks < 2 {
		_, b, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if strings.Contains(string(b), "secret-press") || strings.Contains(string(b), `"html"`) || strings.Contains(string(b), `"points"`) {
			t.Fatalf("a display token's websocket got content: %s", b)
		}
		if strings.Contains(string(b), `"tick"`) {
			ticks++
		}
	}
	if ticks == 0 {
		t.Error("the display token's websocket never heard that the plant changed")
	}
}
