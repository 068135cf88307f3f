package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// The wall display: GET /display/:board is a full-screen board for a TV,
// opened by a person's session or, without a login, by a display token in
// its URL (?token=, rule display in auth.go). The page subscribes to "plant"
// on /ws and, after an update, fetches its tiles again as a server-rendered
// fragment (?fragment=1), so the TV's browser only swaps HTML.

// boardStore is what the display needs from the database; *db.Store
// implements it (db/boards.go).
type boardStore interface {
	Board(ctx context.Context, id int64) (db.Board, error)
}

const (
	// displayMaxCols and displayMaxRows bound the board's grid: the CSS has
	// a class for each count.
	displayMaxCols = 8
	displayMaxRows = 8
	// displayAspect is the area a board's tiles share, width over height (a
	// 16:9 screen less the header), and displayTileAspect a tile's shape
	// that reads best.
	displayAspect     = 16.0 / (9.0 * 0.86)
	displayTileAspect = 1.5
)

// displayRoutes registers the wall display.
func (s *Server) displayRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/display/:board", s.displayPage, display)
}

// displayPage is GET /display/:board, or its live part with ?fragment=1.
func (s *Server) displayPage(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := dtIDParam(c, "board")
	if err != nil {
		return err
	}
	bs, ok := s.store.(boardStore)
	if !ok {
		return fmt.Errorf("web: display %d: the store keeps no boards: %w", id, plant.ErrNotFound)
	}
	b, err := bs.Board(ctx, id)
	if err != nil {
		return err
	}
	nowMS := s.now().UnixMilli()
	body, err := s.displayBody(ctx, b, nowMS)
	if err != nil {
		return err
	}
	// The TV's browser must never show a cached board, nor pass its token
	// on to anyone.
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	if c.QueryParam("fragment") != "" {
		return s.render(c, http.StatusOK, views.DisplayLive(body))
	}
	token := ""
	if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
		token = c.QueryParam(tokenQuery)
	}
	now := s.now().In(s.loc)
	_, off := now.Zone()
	v := views.DisplayPage{
		BoardID:     b.ID,
		Title:       body.Title,
		Version:     s.cfg.Version,
		UpdatedMS:   b.UpdatedMS,
		ServerMS:    nowMS,
		ZoneOffset:  off / 60,
		HeartbeatMS: body.HeartbeatMS,
		StaleMS:     displayStaleAfter(body.HeartbeatMS).Milliseconds(),
		Fragment:    displayHref(b.ID, token, true),
		Token:       token,
		Body:        body,
	}
	if b.Next > 0 && b.RotateS > 0 {
		v.RotateS = b.RotateS
		v.Next = displayHref(b.Next, token, false)
	}
	return s.render(c, http.StatusOK, views.DisplayView(v))
}

// displayHref is a board's address, with the token the page came with.
func displayHref(id int64, token string, fragment bool) string {
	q := url.Values{}
	if fragment {
		q.Set("fragment", "1")
	}
	if token != "" {
		q.Set(tokenQuery, token)
	}
	h := "/display/" + strconv.FormatInt(id, 10)
	if len(q) > 0 {
		h += "?" + q.Encode()
	}
	return h
}

// displayBody computes a board's live part: its machines' states, current
// stops with their ticking cost, this shift's OEE and output, and the
// shift's cost of downtime.
func (s *Server) displayBody(ctx context.Context, b db.Board, nowMS int64) (views.DisplayBody, error) {
	all, err := s.store.Lines(ctx)
	if err != nil {
		return views.DisplayBody{}, fmt.Errorf("web: display lines: %w", err)
	}
	tags, err := s.store.Tags(ctx)
	if err != nil {
		return views.DisplayBody{}, fmt.Errorf("web: display tags: %w", err)
	}
	var lines []plant.Line
	for _, l := range all {
		if len(b.LineIDs) == 0 || slices.Contains(b.LineIDs, l.ID) {
			withTags(l.Machines, tags)
			lines = append(lines, l)
		}
	}
	base, err := s.kpiBase(ctx)
	if err != nil {
		return views.DisplayBody{}, err
	}
	p, err := parsePeriod("shift", "", "", nowMS, base.cal, s.loc)
	if err != nil {
		return views.DisplayBody{}, err
	}
	set, err := s.kpis(ctx, base, p.From, p.To, nowMS, lines)
	if err != nil {
		return views.DisplayBody{}, err
	}
	cs := costs{settings: base.settings, configs: base.configs}
	if cs.settings.Currency == "" {
		cs.settings.Currency = plant.DefaultSettings().Currency
	}
	heartbeat := s.heartbeatOf(base.settings)
	// The ongoing stop of each machine, among the shift's stops.
	ongoing := map[int64]plant.Stop{}
	for _, st := range set.Stops {
		if st.Ongoing() {
			ongoing[st.MachineID] = st
		}
	}
	body := views.DisplayBody{
		Title:       b.Name,
		Shift:       p.Label,
		Currency:    cs.settings.Currency,
		ShiftCost:   set.Plant.Cost,
		CostOK:      set.Plant.CostOK,
		NowMS:       nowMS,
		Clock:       time.UnixMilli(nowMS).In(s.loc).Format("15:04"),
		UpdatedMS:   b.UpdatedMS,
		HeartbeatMS: heartbeat,
	}
	var names []string
	for _, l := range lines {
		names = append(names, lineLabel(l))
		for _, m := range l.Machines {
			body.Tiles = append(body.Tiles, s.displayTile(m, lineLabel(l), set, cs, ongoing, heartbeat, nowMS))
		}
	}
	body.Lines = strings.Join(names, " · ")
	if body.Title == "" {
		body.Title = "Plant"
	}
	body.Cols, body.Rows = displayGrid(len(body.Tiles))
	if n := body.Cols * body.Rows; len(body.Tiles) > n {
		body.Hidden = len(body.Tiles) - n
		body.Tiles = body.Tiles[:n]
	}
	return body, nil
}

// displayTile is one machine's tile on a board.
func (s *Server) displayTile(m plant.Machine, line string, set kpiSet, cs costs, ongoing map[int64]plant.Stop, heartbeat, nowMS int64) views.DisplayTile {
	k := set.Machines[m.ID]
	t := views.DisplayTile{
		ID:       m.ID,
		Name:     machineName(m),
		Line:     line,
		State:    plant.CurrentState(m, nowMS, heartbeat),
		LastSeen: m.LastSeen,
		OEE:      k.OEE,
		Good:     k.Good,
		Total:    k.Total,
	}
	if cfg := set.config(m.ID); cfg.IdealCycleS > 0 && k.RunMS+k.DownMS+k.OfflineMS > 0 {
		// The target is what the ideal cycle makes in the planned
		// production time so far.
		t.Target = float64(k.PlannedMS) / 1000 / cfg.IdealCycleS
		t.HasTarget = true
	}
	if st, ok := ongoing[m.ID]; ok {
		card := s.card(st, cs, nowMS)
		t.Stop = &card
	}
	return t
}

// displayGrid picks the columns and rows that give n tiles the largest
// tile of a readable shape on a 16:9 screen.
func displayGrid(n int) (cols, rows int) {
	if n <= 0 {
		return 1, 1
	}
	best := -1.0
	for c := 1; c <= displayMaxCols; c++ {
		r := (n + c - 1) / c
		if r > displayMaxRows {
			continue
		}
		size := min(displayAspect/float64(c)/displayTileAspect, 1/float64(r))
		if size > best+1e-9 {
			best, cols, rows = size, c, r
		}
	}
	if cols == 0 {
		// More tiles than the grid holds: the densest grid, and the rest
		// are cut (an admin should split the board).
		return displayMaxCols, displayMaxRows
	}
	return cols, rows
}

// displayStaleAfter is how long a TV waits without data before it says so.
func displayStaleAfter(heartbeat int64) time.Duration {
	return max(45*time.Second, 2*time.Duration(heartbeat)*time.Millisecond)
}
