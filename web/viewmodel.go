package web

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/labstack/echo/v4"

	"andon/plant"
	"andon/views"
)

// maxTileValues is how many values an overview tile shows.
const maxTileValues = 6

// page is the frame every page shares.
func (s *Server) page(c echo.Context, title, sub, nav string) views.Page {
	now := s.now().In(s.loc)
	abbr, off := now.Zone()
	p := views.Page{
		Title:       title,
		Version:     s.cfg.Version,
		Now:         now,
		HeartbeatMS: s.cfg.HeartbeatMS,
		Sub:         sub,
		Nav:         nav,
		ZoneOffset:  off / 60,
		Problems:    s.problems(),
	}
	if c != nil {
		if p2, ok := sessionOf(c); ok {
			p.User = p2.user.Name
			p.Role = string(p2.user.Role)
		}
	}
	offset := now.Format("-07:00")
	if name := s.loc.String(); name != "Local" && name != "" {
		p.ZoneName = name
		p.Zone = fmt.Sprintf("%s (%s, UTC%s)", name, abbr, offset)
		if abbr == name {
			p.Zone = fmt.Sprintf("%s (UTC%s)", name, offset)
		}
	} else {
		p.Zone = fmt.Sprintf("the server's local time (%s, UTC%s)", abbr, offset)
	}
	return p
}

// withTags fills the machines' tags from all tags when the store's query did
// not, so the web works with either kind of Lines/Machine query.
func withTags(ms []plant.Machine, all []plant.Tag) {
	// Callers pass one line at a time: indexing every tag of the plant for
	// each line made a plant of 1,000 machines cost 100 lines × 3,000 tags
	// per overview. Usually every machine has its tags already.
	if !slices.ContainsFunc(ms, func(m plant.Machine) bool { return len(m.Tags) == 0 }) {
		return
	}
	by := tagsByMachine(all)
	for i := range ms {
		if len(ms[i].Tags) == 0 {
			ms[i].Tags = by[ms[i].ID]
		}
	}
}

// tagsByMachine groups tags by their machine's id.
func tagsByMachine(all []plant.Tag) map[int64][]plant.Tag {
	by := make(map[int64][]plant.Tag)
	for _, t := range all {
		by[t.MachineID] = append(by[t.MachineID], t)
	}
	return by
}

// machineWithTags loads one machine with its tags.
func (s *Server) machineWithTags(ctx context.Context, id int64) (plant.Machine, error) {
	m, err := s.store.Machine(ctx, id)
	if err != nil {
		return plant.Machine{}, fmt.Errorf("web: machine %d: %w", id, err)
	}
	if len(m.Tags) == 0 {
		all, err := s.store.Tags(ctx)
		if err != nil {
			return plant.Machine{}, fmt.Errorf("web: tags of machine %d: %w", id, err)
		}
		ms := []plant.Machine{m}
		withTags(ms, all)
		m = ms[0]
	}
	return m, nil
}

// fillTags fills the tags of the machines the store's Lines left without
// any. It asks the store for every tag only when there is such a machine:
// for a plant of 1,000 machines that query was a fifth of the overview.
func (s *Server) fillTags(ctx context.Context, lines []plant.Line) error {
	noTags := func(m plant.Machine) bool { return len(m.Tags) == 0 }
	if !slices.ContainsFunc(lines, func(l plant.Line) bool { return slices.ContainsFunc(l.Machines, noTags) }) {
		return nil
	}
	all, err := s.store.Tags(ctx)
	if err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	by := tagsByMachine(all)
	for _, l := range lines {
		for i := range l.Machines {
			if len(l.Machines[i].Tags) == 0 {
				l.Machines[i].Tags = by[l.Machines[i].ID]
			}
		}
	}
	return nil
}

// grid builds the overview's body from the store.
func (s *Server) grid(ctx context.Context) (views.Grid, error) {
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return views.Grid{}, fmt.Errorf("web: lines: %w", err)
	}
	if err := s.fillTags(ctx, lines); err != nil {
		return views.Grid{}, fmt.Errorf("web: %w", err)
	}
	return s.gridFrom(lines)
}

// gridFrom builds the overview's body from lines whose machines have tags.
func (s *Server) gridFrom(lines []plant.Line) (views.Grid, error) {
	nowMS := s.now().UnixMilli()
	g := views.Grid{}
	g.MQTTHost, g.MQTTPort = brokerHostPort(s.cfg.MQTTAddr)
	var unassigned []views.Tile
	for _, l := range lines {
		if len(l.Machines) == 0 {
			continue
		}
		tiles := make([]views.Tile, 0, len(l.Machines))
		for _, m := range l.Machines {
			tiles = append(tiles, s.tile(m, nowMS))
		}
		if l.Name == "" || l.ID == 0 {
			unassigned = append(unassigned, tiles...)
			continue
		}
		g.Lines = append(g.Lines, views.LineView{ID: l.ID, Name: l.Name, Tiles: tiles})
	}
	if len(unassigned) > 0 {
		g.Lines = append(g.Lines, views.LineView{ID: 0, Name: "Unassigned", Tiles: unassigned})
	}
	return g, nil
}

// brokerHostPort splits the embedded broker's address for copy-paste lines;
// a wildcard host becomes localhost, which is right on the machine itself.
func brokerHostPort(addr string) (host, port string) {
	if addr == "" {
		return "", ""
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "1883"
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		h = "localhost"
	}
	return h, p
}

// tile is one machine's overview tile.
func (s *Server) tile(m plant.Machine, nowMS int64) views.Tile {
	t := views.Tile{
		ID:       m.ID,
		Name:     m.Name,
		Path:     m.Path.String(),
		State:    plant.CurrentState(m, nowMS, s.cfg.HeartbeatMS),
		LastSeen: m.LastSeen,
		NowMS:    nowMS,

		OfflineSince: m.OfflineSince,
	}
	if t.Name == "" {
		t.Name = m.Path.Machine
	}
	for _, tag := range tileTags(m.Tags) {
		t.Values = append(t.Values, value(tag, nowMS, m.OfflineSince))
	}
	return t
}

// tileTags picks the most useful numeric tags for a tile: counters first
// (they say whether the machine produces), then gauges, by name.
func tileTags(tags []plant.Tag) []plant.Tag {
	var out []plant.Tag
	for _, t := range tags {
		if t.Hidden || t.Text || t.Role == "state" {
			continue
		}
		out = append(out, t)
	}
	rank := func(role string) int {
		switch role {
		case "total":
			return 0
		case "good":
			return 1
		case "scrap":
			return 2
		}
		return 3
	}
	slices.SortStableFunc(out, func(a, b plant.Tag) int {
		if c := cmp.Compare(rank(a.Role), rank(b.Role)); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	if len(out) > maxTileValues {
		out = out[:maxTileValues]
	}
	return out
}

// value is a tag's newest value as a tile shows it; offlineSince is when its
// machine's device announced it left (0 if not), which makes it stale.
func value(t plant.Tag, nowMS, offlineSince int64) views.Value {
	return views.Value{
		TagID: t.ID, Metric: t.Metric, Unit: t.Unit, Text: t.Text, Word: t.LastWord,
		Number: t.LastValue, TS: t.LastTS, NowMS: nowMS, Role: t.Role,
		Stale: offlineSince > 0 && t.LastTS != 0,
	}
}

// visibleTags are a machine's tags for its page, by name.
func visibleTags(tags []plant.Tag) []plant.Tag {
	out := make([]plant.Tag, 0, len(tags))
	for _, t := range tags {
		if !t.Hidden {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b plant.Tag) int {
		// The state first: it is what people look for.
		if (a.Role == "state") != (b.Role == "state") {
			if a.Role == "state" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	return out
}

func (s *Server) status(m plant.Machine, nowMS int64) views.MachineStatus {
	name := m.Name
	if name == "" {
		name = m.Path.Machine
	}
	return views.MachineStatus{
		ID: m.ID, Name: name, State: plant.CurrentState(m, nowMS, s.cfg.HeartbeatMS),
		LastSeen: m.LastSeen, NowMS: nowMS, Location: s.loc, OfflineSince: m.OfflineSince,
	}
}

// crumbs is the breadcrumb site › area › line › machine, present levels only.
func crumbs(m plant.Machine, name string) []views.Crumb {
	var out []views.Crumb
	for _, l := range []string{m.Path.Site, m.Path.Area, m.Path.Line} {
		if l != "" {
			out = append(out, views.Crumb{Label: l})
		}
	}
	out = append(out, views.Crumb{Label: name, Href: fmt.Sprintf("/machines/%d", m.ID)})
	return append([]views.Crumb{{Label: "Plant", Href: "/"}}, out...)
}

// parseRange maps ?range= to a choice; anything unknown is the default hour.
func parseRange(key string) views.RangeChoice {
	for _, r := range views.Ranges() {
		if r.Key == key {
			return r
		}
	}
	return views.Ranges()[0]
}
