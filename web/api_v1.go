package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// The JSON API gives the exports' rows as JSON, with the same parameters as
// the CSV downloads (see parseExport), for scripts with an API read token.
// Every endpoint has a .csv twin that gives the CSV download to a token.
//
//	GET /api/v1/tags        every tag
//	GET /api/v1/readings    ?tags=1,2&from=&to=&res=raw|1m|1h
//	GET /api/v1/downtime    ?line=&machine=&show=&from=&to=
//	GET /api/v1/kpis        ?period=|from=&to=&line=&by=period|day|shift
func (s *Server) apiV1Routes(e *echo.Echo) {
	for _, kind := range []string{ExportTags, ExportReadings, ExportDowntime, ExportKPIs} {
		s.handle(e, http.MethodGet, "/api/v1/"+kind, s.jsonHandler(kind), apiRead)
		s.handle(e, http.MethodGet, "/api/v1/"+kind+".csv", s.csvHandler(kind), apiRead)
	}
}

// jsonHandler serves one kind of export as a JSON document streamed row by
// row: {"kind": ..., "rows": [{...}, ...]}. Times are ISO 8601 in the
// plant's zone with a *_ms twin in epoch milliseconds; n/a values are null.
func (s *Server) jsonHandler(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		x, err := s.parseExport(c, kind)
		if err != nil {
			return err
		}
		if x.Wide {
			return echo.NewHTTPError(http.StatusBadRequest, "format=wide is for CSV (readings.csv); JSON rows are long")
		}
		ctx := c.Request().Context()
		if err := s.precheck(ctx, x); err != nil {
			return err
		}
		meta := []jsonField{{"kind", kind}, {"time_zone", s.loc.String()}}
		if x.From != 0 || x.To != 0 {
			meta = append(meta,
				jsonField{"from", time.UnixMilli(x.From).In(s.loc).Format(isoMS)},
				jsonField{"to", time.UnixMilli(x.To).In(s.loc).Format(isoMS)})
		}
		switch kind {
		case ExportReadings:
			meta = append(meta, jsonField{"res", string(x.Res)})
		case ExportKPIs:
			meta = append(meta, jsonField{"by", x.By})
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		noStore(c)
		c.Response().WriteHeader(http.StatusOK)
		t := newJSONTable(c.Response(), s.loc, streamFlusher(c.Response()), meta...)
		if err := s.export(ctx, t, x); err != nil {
			s.abortStream(c, kind, t.rows, fmt.Errorf("web: api %s: %w", kind, err))
		}
		if err := t.finish(); err != nil {
			s.abortStream(c, kind, t.rows, fmt.Errorf("web: api %s: %w", kind, err))
		}
		return nil
	}
}
