package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// problems is what is wrong right now (Config.Problems), never nil.
func (s *Server) problems() []string {
	if s.cfg.Problems == nil {
		return []string{}
	}
	if ps := s.cfg.Problems(); ps != nil {
		return ps
	}
	return []string{}
}

// apiProblems serves GET /api/v1/problems: the banner's sentences, which
// app.js asks for every 15 s so that an open page learns of a lost broker
// or a full disk (no reading arrives to tell it) and of the recovery.
func (s *Server) apiProblems(c echo.Context) error {
	noStore(c)
	return c.JSON(http.StatusOK, map[string][]string{"problems": s.problems()})
}
