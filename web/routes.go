package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"andon/static"
)

// csp allows only this origin's scripts, styles and connections: no inline
// scripts or style attributes, so device text can never become code.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

// routes lists every route of the web in one place.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Client addresses come from the connection, never from X-Forwarded-For
	// or X-Real-IP, which anyone can send (GO-2026-6872, GO-2026-6875).
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError

	e.Use(s.observe)
	e.Use(securityHeaders)
	e.Use(middleware.BodyLimit("1M"))

	// Every route goes through s.handle with its access rule (auth.go);
	// checkRules below refuses any that does not.
	s.handle(e, http.MethodGet, "/", s.overview, viewer)
	s.handle(e, http.MethodGet, "/machines/:id", s.machine, viewer)
	s.handle(e, http.MethodGet, "/admin/tags", s.adminTags, admin)
	s.handle(e, http.MethodGet, "/admin/rejects", s.adminRejects, admin)

	// Downtime and reason coding (downtime.go), reports, lines and the
	// plant's configuration (reports.go, admin_config.go).
	s.downtimeRoutes(e)
	s.reportRoutes(e)

	// Logging in, accounts, users, tokens (auth.go, users.go), the audit
	// log (audit.go) and the broker's devices (devices.go).
	s.authRoutes(e)
	s.userRoutes(e)
	s.handle(e, http.MethodGet, "/admin/audit", s.adminAudit, admin)
	s.handle(e, http.MethodGet, "/admin/audit.csv", s.adminAuditCSV, admin)
	s.handle(e, http.MethodGet, "/admin/storage", s.adminStorage, admin)
	s.deviceRoutes(e)
	s.boardRoutes(e)
	s.mappingRoutes(e) // mapping rules and the unmapped topics inbox (mapping.go)
	s.displayRoutes(e)
	s.exportRoutes(e) // CSV downloads, /api/v1 JSON, /admin/backup (export.go)

	s.handle(e, http.MethodGet, "/api/v1/machines", s.apiMachines, apiRead)
	s.handle(e, http.MethodGet, "/api/v1/tags/:id/series", s.apiSeries, apiRead)
	s.handle(e, http.MethodPost, "/api/v1/readings", s.apiIngest, apiIngest)

	s.handle(e, http.MethodGet, "/ws", s.websocket, viewer)
	s.handle(e, http.MethodGet, "/healthz", s.healthz, public)
	s.handle(e, http.MethodGet, "/api/v1/problems", s.apiProblems, viewer)
	// Prometheus scrapes with a read token as its bearer.
	s.handle(e, http.MethodGet, "/metrics", echo.WrapHandler(promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})), apiRead)

	assets := echo.WrapHandler(static.Handler())
	s.handle(e, http.MethodGet, static.Prefix+"*", assets, public)
	s.handle(e, http.MethodHead, static.Prefix+"*", assets, public)
	checkRules(e)
	return e
}

// securityHeaders sets the headers every response carries, errors included.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

// observe counts and times requests and writes the access log at Debug. It
// labels by route pattern, never the raw URL, so label sets stay bounded.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Let the error handler write the response now, so the status
			// below is the one the client gets.
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(strconv.Itoa(code), c.Request().Method).Inc()
		if route != "/ws" {
			// A websocket lives for hours; its duration would swamp the histogram.
			s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		}
		s.log.Debug("http request",
			"method", c.Request().Method, "route", route, "path", c.Request().URL.Path,
			"status", code, "duration_ms", elapsed.Milliseconds())
		return nil
	}
}

// noStore marks dynamic responses as not cacheable, so a page is always current.
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
}

var _ http.Handler = (*echo.Echo)(nil)
