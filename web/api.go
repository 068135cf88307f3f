package web

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
)

// Series limits: a chart never needs more points than it has pixels.
const (
	defaultMaxPoints = 2000
	maxMaxPoints     = 10000
	defaultSeriesMS  = int64(time.Hour / time.Millisecond)
	maxSeriesMS      = int64(400 * 24 * time.Hour / time.Millisecond)
)

// seriesJSON is uPlot's column format: times in unix seconds, values beside them.
type seriesJSON struct {
	Tag    int64     `json:"tag"`
	Metric string    `json:"metric"`
	Unit   string    `json:"unit"`
	T      []float64 `json:"t"`
	V      []float64 `json:"v"`
	// Res is the resolution the points come from (raw, 1m or 1h); Bucket
	// the envelope's bucket width in ms, 0 when the points are the rows.
	Res    string `json:"res"`
	Bucket int64  `json:"bucket_ms"`
}

// apiSeries serves GET /api/v1/tags/:id/series?from=MS&to=MS&max=N&res=raw|1m|1h
// (res absent or auto: chosen by the range).
func (s *Server) apiSeries(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "tag id must be a positive integer")
	}
	to := s.now().UnixMilli()
	if q := c.QueryParam("to"); q != "" {
		if to, err = strconv.ParseInt(q, 10, 64); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "to must be epoch milliseconds")
		}
	}
	from := to - defaultSeriesMS
	if q := c.QueryParam("from"); q != "" {
		if from, err = strconv.ParseInt(q, 10, 64); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "from must be epoch milliseconds")
		}
	}
	if from >= to {
		return echo.NewHTTPError(http.StatusBadRequest, "from must be before to")
	}
	if to-from > maxSeriesMS {
		return echo.NewHTTPError(http.StatusBadRequest, "the range is longer than 400 days")
	}
	maxPoints := defaultMaxPoints
	if q := c.QueryParam("max"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 2 || n > maxMaxPoints {
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("max must be an integer from 2 to %d", maxMaxPoints))
		}
		maxPoints = n
	}
	res, err := db.ParseResolution(c.QueryParam("res"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "res must be raw, 1m, 1h or auto")
	}
	ctx := c.Request().Context()
	tag, err := s.tagByID(c, id)
	if err != nil {
		return err
	}
	sr, err := s.store.SeriesAt(ctx, id, from, to, maxPoints, res)
	if err != nil {
		return fmt.Errorf("web: series of tag %d: %w", id, err)
	}
	pts := sr.Points
	out := seriesJSON{Tag: id, Metric: tag.Metric, Unit: tag.Unit, T: make([]float64, 0, len(pts)), V: make([]float64, 0, len(pts)),
		Res: string(sr.Res), Bucket: sr.BucketMS}
	for _, p := range pts {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		out.T = append(out.T, float64(p.TS)/1000)
		out.V = append(out.V, p.Value)
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// tagByID finds one tag. The Store has no single-tag query yet, so it scans
// the tag list, which a plant's tag limit keeps small.
func (s *Server) tagByID(c echo.Context, id int64) (plant.Tag, error) {
	tags, err := s.store.Tags(c.Request().Context())
	if err != nil {
		return plant.Tag{}, fmt.Errorf("web: tags: %w", err)
	}
	for _, t := range tags {
		if t.ID == id {
			return t, nil
		}
	}
	return plant.Tag{}, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no tag %d", id))
}

type tagJSON struct {
	ID     int64    `json:"id"`
	Metric string   `json:"metric"`
	Topic  string   `json:"topic"`
	Unit   string   `json:"unit"`
	Role   string   `json:"role"`
	Text   bool     `json:"text"`
	LastTS int64    `json:"last_ms"`
	Value  *float64 `json:"value,omitempty"`
	Word   string   `json:"word,omitempty"`
}

type machineJSON struct {
	ID       int64     `json:"id"`
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	State    string    `json:"state"`
	LastSeen int64     `json:"last_seen_ms"`
	Tags     []tagJSON `json:"tags"`
}

type lineJSON struct {
	ID       int64         `json:"id"`
	Name     string        `json:"name"`
	Machines []machineJSON `json:"machines"`
}

// apiMachines serves GET /api/v1/machines: lines, machines, tags and states.
func (s *Server) apiMachines(c echo.Context) error {
	ctx := c.Request().Context()
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return fmt.Errorf("web: lines: %w", err)
	}
	all, err := s.store.Tags(ctx)
	if err != nil {
		return fmt.Errorf("web: tags: %w", err)
	}
	nowMS := s.now().UnixMilli()
	out := struct {
		Lines []lineJSON `json:"lines"`
	}{Lines: make([]lineJSON, 0, len(lines))}
	for _, l := range lines {
		withTags(l.Machines, all)
		lj := lineJSON{ID: l.ID, Name: l.Name, Machines: make([]machineJSON, 0, len(l.Machines))}
		for _, m := range l.Machines {
			mj := machineJSON{
				ID: m.ID, Name: m.Name, Path: m.Path.String(), LastSeen: m.LastSeen,
				State: string(plant.CurrentState(m, nowMS, s.cfg.HeartbeatMS)), Tags: make([]tagJSON, 0, len(m.Tags)),
			}
			for _, t := range m.Tags {
				tj := tagJSON{ID: t.ID, Metric: t.Metric, Topic: t.Topic, Unit: t.Unit, Role: t.Role, Text: t.Text, LastTS: t.LastTS}
				if t.Text {
					tj.Word = t.LastWord
				} else if t.LastTS != 0 && !math.IsNaN(t.LastValue) && !math.IsInf(t.LastValue, 0) {
					v := t.LastValue
					tj.Value = &v
				}
				mj.Tags = append(mj.Tags, tj)
			}
			lj.Machines = append(lj.Machines, mj)
		}
		out.Lines = append(out.Lines, lj)
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// healthz is 200 when the store answers, else 503 with the reason.
func (s *Server) healthz(c echo.Context) error {
	noStore(c)
	if s.cfg.Health != nil {
		if err := s.cfg.Health(c.Request().Context()); err != nil {
			s.log.Warn("health check failed", "err", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{
				"status": "unavailable", "error": err.Error(), "version": s.cfg.Version,
			})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}
