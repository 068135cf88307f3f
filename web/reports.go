package web

import "github.com/labstack/echo/v4"

// ReportStore is what the report, line and configuration pages need from the database.
type ReportStore interface{}

// reportRoutes registers the report, line and configuration pages.
func (s *Server) reportRoutes(e *echo.Echo) {}
