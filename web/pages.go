package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"andon/views"
)

// overview is the plant overview page.
func (s *Server) overview(c echo.Context) error {
	g, err := s.grid(c.Request().Context())
	if err != nil {
		return err
	}
	v := views.Overview{Page: s.page(c, "Plant", "plant", "overview"), Grid: g}
	return s.render(c, http.StatusOK, views.OverviewPage(v))
}

// machine is the page of one machine.
func (s *Server) machine(c echo.Context) error {
	id, err := idParam(c, "machine")
	if err != nil {
		return err
	}
	m, err := s.machineWithTags(c.Request().Context(), id)
	if err != nil {
		return err
	}
	nowMS := s.now().UnixMilli()
	st := s.status(m, nowMS)
	r := parseRange(c.QueryParam("range"))
	dt, err := s.machineDowntime(c.Request().Context(), id, r, nowMS)
	if err != nil {
		return err
	}
	v := views.MachinePage{
		Page:     s.page(c, st.Name, machineSub(id, r.Key), ""),
		Downtime: &dt,
		Status:   st,
		Crumbs:   crumbs(m, st.Name),
		Range:    r.Key,
		RangeMS:  r.Dur.Milliseconds(),
	}
	for _, t := range visibleTags(m.Tags) {
		v.Values = append(v.Values, value(t, nowMS, m.OfflineSince))
		if !t.Text {
			v.Charts = append(v.Charts, views.Chart{TagID: t.ID, Metric: t.Metric, Unit: t.Unit})
		}
	}
	return s.render(c, http.StatusOK, views.MachineView(v))
}

// adminTags lists every discovered tag.
func (s *Server) adminTags(c echo.Context) error {
	tags, err := s.store.Tags(c.Request().Context())
	if err != nil {
		return fmt.Errorf("web: tags: %w", err)
	}
	v := views.TagsPage{Page: s.page(c, "Tags", "", "tags"), Location: s.loc, NowMS: s.now().UnixMilli(), Tags: tags}
	return s.render(c, http.StatusOK, views.TagsView(v))
}

// rejectsShown is how many rejected messages the admin page lists.
const rejectsShown = 200

// adminRejects lists the newest rejected messages.
func (s *Server) adminRejects(c echo.Context) error {
	rs, err := s.store.Rejects(c.Request().Context(), rejectsShown)
	if err != nil {
		return fmt.Errorf("web: rejects: %w", err)
	}
	v := views.RejectsPage{Page: s.page(c, "Rejected messages", "", "rejects"), Location: s.loc, Rejects: rs}
	return s.render(c, http.StatusOK, views.RejectsView(v))
}
