package web

import "github.com/labstack/echo/v4"

// DowntimeStore is what the downtime pages need from the database.
type DowntimeStore interface{}

// downtimeRoutes registers the downtime and reason-coding pages.
func (s *Server) downtimeRoutes(e *echo.Echo) {}
