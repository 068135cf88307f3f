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
// its URL (?token=, rule display in auth.go). The page subscribes to
// "board:<id>" on /ws and the hub pushes the board's live part as rendered
// HTML (hub.go), so the TV's browser only swaps HTML. ?fragment=1 answers
// the same live part over HTTP: the page's fallback while the websocket is
// down, and how it learns that its link was revoked.

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
	id, err := pathID(c, "board", "board")
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

// displayBody computes a board's live part from the store.
func (s *Server) displayBody(ctx context.Context, b db.Board, nowMS int64) (views.DisplayBody, error) {
	all, err := s.store.Lines(ctx)
	if err != nil {
		return views.DisplayBody{}, fmt.Errorf("web: display lines: %w", err)
	}
	tags, err := s.store.Tags(ctx)
	if err != nil {
		return views.DisplayBody{}, fmt.Errorf("web: display tags: %w", err)
	}
	for _, l := range all {
		withTags(l.Machines, tags)
	}
	return s.displayBodyOf(ctx, b, all, nowMS)
}

// displayBodyOf computes a board's live part from the plant's lines (with
// their machines' tags): its machines' states, current stops with their
// ticking cost, this shift's OEE and output, and the shift's cost of
// downtime, laid out as the board's layout asks. The hub calls it once per
// board and flush with the lines it has loaded anyway.
func (s *Server) displayBodyOf(ctx context.Context, b db.Board, all []plant.Line, nowMS int64) (views.DisplayBody, error) {
	var lines []plant.Line
	for _, l := range all {
		if len(b.LineIDs) == 0 || slices.Contains(b.LineIDs, l.ID) {
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
		Layout:      b.Layout,
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
	}
	body.Lines = strings.Join(names, " · ")
	if body.Title == "" {
		body.Title = "Plant"
	}
	switch b.Layout {
	case db.LayoutLine:
		for _, l := range lines {
			body.Panels = append(body.Panels, s.displayPanel(l, set, cs, ongoing, heartbeat, nowMS))
		}
		body.Cols, body.Rows = displayPanelGrid(len(body.Panels))
		if n := body.Cols * body.Rows; len(body.Panels) > n {
			body.Hidden = len(body.Panels) - n
			body.Panels = body.Panels[:n]
		}
	case db.LayoutPareto:
		body.Pareto, body.ParetoBy = displayPareto(set)
	default:
		for _, l := range lines {
			for _, m := range l.Machines {
				body.Tiles = append(body.Tiles, s.displayTile(m, lineLabel(l), set, cs, ongoing, heartbeat, nowMS))
			}
		}
		body.Cols, body.Rows = displayGrid(len(body.Tiles))
		if n := body.Cols * body.Rows; len(body.Tiles) > n {
			body.Hidden = len(body.Tiles) - n
			body.Tiles = body.Tiles[:n]
		}
	}
	return body, nil
}

// displayPanel is one line's big numbers on a "line" board.
func (s *Server) displayPanel(l plant.Line, set kpiSet, cs costs, ongoing map[int64]plant.Stop, heartbeat, nowMS int64) views.DisplayLinePanel {
	k := set.Lines[l.ID]
	p := views.DisplayLinePanel{
		ID: l.ID, Name: lineLabel(l), OEE: k.OEE, Good: k.Good,
		Cost: k.Cost, CostOK: k.CostOK, CostWhy: k.CostWhy, Machines: len(l.Machines),
	}
	bottleneck := set.Rules[l.ID].bottleneckID()
	for _, m := range l.Machines {
		if plant.CurrentState(m, nowMS, heartbeat) == plant.Running {
			p.Running++
		}
		p.LastSeen = max(p.LastSeen, m.LastSeen)
		// The line's target follows its output: the bottleneck's when
		// one is set, else the sum of its machines'.
		if bottleneck == 0 || m.ID == bottleneck {
			mk := set.Machines[m.ID]
			if cfg := set.config(m.ID); cfg.IdealCycleS > 0 && mk.PlannedMS > 0 {
				p.Target += float64(mk.PlannedMS) / 1000 / cfg.IdealCycleS
				p.HasTarget = true
			}
		}
		if st, ok := ongoing[m.ID]; ok {
			card := s.card(st, cs, nowMS)
			if card.Machine == "" || card.Machine == "Machine "+strconv.FormatInt(m.ID, 10) {
				card.Machine = machineName(m)
			}
			p.Stops = append(p.Stops, card)
		}
	}
	// The longest stop first: it is the one costing most and the one
	// someone should be at.
	slices.SortStableFunc(p.Stops, func(a, b views.StopCard) int { return int(a.Start - b.Start) })
	if len(p.Stops) > views.DisplayLineStopsMax {
		p.MoreStops = len(p.Stops) - views.DisplayLineStopsMax
		p.Stops = p.Stops[:views.DisplayLineStopsMax]
	}
	return p
}

// displayParetoMax is how many bars a Pareto board shows; the rest are
// summed in one last bar, so every bar stays readable from afar.
const displayParetoMax = 8

// displayPareto is this shift's unplanned stops of the board's machines by
// reason, the costliest first, uncoded stops as a bar of their own. When no
// stop has a cost (no machine has a cost per hour) the bars go by duration,
// which still says where the time went.
func displayPareto(set kpiSet) ([]views.DisplayParetoBar, string) {
	byDur, byCost := plant.Pareto(set.Stops, set.config, set.From, set.To, set.Now, false)
	rows, by := byCost, "cost"
	if len(rows) == 0 || rows[0].Cost <= 0 {
		rows, by = byDur, "duration"
	}
	var other *plant.ParetoRow
	if len(rows) > displayParetoMax {
		other = &plant.ParetoRow{Reason: fmt.Sprintf("%d other reasons", len(rows)-displayParetoMax+1)}
		for _, r := range rows[displayParetoMax-1:] {
			other.Stops += r.Stops
			other.DurationMS += r.DurationMS
			other.Cost += r.Cost
		}
		rows = rows[:displayParetoMax-1]
	}
	value := func(r plant.ParetoRow) float64 {
		if by == "cost" {
			return r.Cost
		}
		return float64(r.DurationMS)
	}
	top := 0.0
	for _, r := range rows {
		top = max(top, value(r))
	}
	if other != nil {
		top = max(top, value(*other))
	}
	bar := func(r plant.ParetoRow, uncoded bool) views.DisplayParetoBar {
		b := views.DisplayParetoBar{
			Reason: r.Reason, Uncoded: uncoded,
			Cost: r.Cost, CostOK: by == "cost", Stops: r.Stops, DurationMS: r.DurationMS,
		}
		if top > 0 {
			b.Width = 100 * value(r) / top
		}
		return b
	}
	bars := make([]views.DisplayParetoBar, 0, len(rows)+1)
	for _, r := range rows {
		bars = append(bars, bar(r, r.ReasonID == 0))
	}
	if other != nil {
		bars = append(bars, bar(*other, false))
	}
	return bars, by
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

// displayPanelGrid lays out n line panels: side by side up to three, then
// in two or three rows; a line panel lists stops, so it wants height.
func displayPanelGrid(n int) (cols, rows int) {
	switch {
	case n <= 1:
		return 1, 1
	case n <= 3:
		return n, 1
	case n == 4:
		return 2, 2
	case n <= 6:
		return 3, 2
	case n <= 8:
		return 4, 2
	}
	return 4, 3
}

// displayStaleAfter is how long a TV waits without data before it says so.
func displayStaleAfter(heartbeat int64) time.Duration {
	return max(45*time.Second, 2*time.Duration(heartbeat)*time.Millisecond)
}

// grantedBoards keeps the board topics a display token grants: its own
// board and those along its playlist, or every board for scope "all".
// Anything else (the plant, machines, other boards) is dropped.
func (s *Server) grantedBoards(ctx context.Context, t db.Token, topics []string) ([]string, error) {
	var boards []db.Board
	out := make([]string, 0, len(topics))
	for _, topic := range topics {
		id, ok := boardTopic(topic)
		if !ok || t.Kind != tokenKindDisplay {
			continue
		}
		if !displayScopeCovers(t.Scope, strconv.FormatInt(id, 10)) && boards == nil {
			var err error
			if boards, err = s.store.Boards(ctx); err != nil {
				return nil, fmt.Errorf("web: display grants: %w", err)
			}
		}
		if boardGranted(t.Scope, id, boards) {
			out = append(out, topic)
		}
	}
	return out, nil
}

// playlistAllows is the display rule's second chance for a display token
// the board's id does not match: a token made for board A also opens the
// boards A's playlist goes on to (A's next, its next, ... until it loops),
// so one link on a TV rotates through the playlist. Nothing else.
func (s *Server) playlistAllows(c echo.Context, a access, p caller) (bool, error) {
	if a != display || !p.isToken || p.token.Kind != tokenKindDisplay || unsafeMethod(c.Request().Method) {
		return false, nil
	}
	if _, ok := strings.CutPrefix(p.token.Scope, displayScopeBoard); !ok {
		return false, nil
	}
	id, err := strconv.ParseInt(c.Param("board"), 10, 64)
	if err != nil || id <= 0 {
		return false, nil
	}
	boards, err := s.store.Boards(c.Request().Context())
	if err != nil {
		return false, fmt.Errorf("web: display grants: %w", err)
	}
	return boardGranted(p.token.Scope, id, boards), nil
}

// boardGranted says whether a display token's scope grants a board, its
// playlist included; boards may be nil when the scope alone decides.
func boardGranted(scope string, board int64, boards []db.Board) bool {
	if displayScopeCovers(scope, strconv.FormatInt(board, 10)) {
		return true
	}
	own, ok := strings.CutPrefix(scope, displayScopeBoard)
	if !ok {
		return false
	}
	from, err := strconv.ParseInt(own, 10, 64)
	if err != nil || from <= 0 {
		return false
	}
	return playlistReaches(boards, from, board)
}

// playlistReaches says whether board to comes after board from along the
// playlist's next links. A playlist may loop; the walk stops when it comes
// back round or has visited every board.
func playlistReaches(boards []db.Board, from, to int64) bool {
	next := make(map[int64]int64, len(boards))
	for _, b := range boards {
		next[b.ID] = b.Next
	}
	if _, ok := next[from]; !ok {
		return false
	}
	cur := next[from]
	for range len(boards) {
		if cur == 0 || cur == from {
			return false
		}
		if cur == to {
			return true
		}
		cur = next[cur]
	}
	return false
}
