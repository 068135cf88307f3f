package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"andon/plant"
	"andon/views"
)

// handleError is the one place errors become responses: plant.ErrNotFound is
// a 404, plant.ErrInvalid a 400 with its message, echo's HTTP errors keep their code, everything else is a 500 that is
// logged here once and never shown to the user.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Error("http error after response started",
			"method", c.Request().Method, "route", c.Path(), "err", err)
		return
	}
	code := http.StatusInternalServerError
	msg := "Something went wrong on our side. It has been logged; please try again."
	var he *echo.HTTPError
	switch {
	case errors.Is(err, plant.ErrNotFound):
		code = http.StatusNotFound
		msg = "There is nothing at this address."
	case errors.Is(err, plant.ErrInvalid):
		// The store's wording says what cannot be done ("a category cannot
		// code a stop"); it is our own text, never device text, and the page
		// escapes it anyway.
		code = http.StatusBadRequest
		msg = userMessage(err)
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok && code < 500 {
			msg = m
		} else if code < 500 {
			msg = http.StatusText(code)
		}
		if he.Internal != nil && code >= 500 {
			s.log.Error("http handler failed", "method", c.Request().Method, "route", c.Path(), "err", he.Internal)
		}
	default:
		s.log.Error("http handler failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	if code == http.StatusNotFound && !wantsJSON(c) && msg == http.StatusText(http.StatusNotFound) {
		msg = "There is nothing at this address."
	}

	if wantsJSON(c) {
		_ = c.JSON(code, map[string]string{"error": msg})
		return
	}
	heading := http.StatusText(code)
	switch code {
	case http.StatusNotFound:
		heading = "Not found"
	case http.StatusBadRequest:
		heading = "That cannot be done"
	case http.StatusInternalServerError:
		heading = "Something went wrong"
	}
	page := views.ErrorPage{Page: s.page(c, heading, "", ""), Code: code, Heading: heading, Message: msg}
	var buf bytes.Buffer
	if rerr := views.ErrorView(page).Render(c.Request().Context(), &buf); rerr != nil {
		s.log.Error("render error page", "err", rerr)
		_ = c.String(code, heading)
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.HTMLBlob(code, buf.Bytes())
}

// wantsJSON is true for the API and for clients that ask for JSON.
func wantsJSON(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/api/") || p == "/healthz" ||
		strings.Contains(c.Request().Header.Get("Accept"), "application/json") &&
			!strings.Contains(c.Request().Header.Get("Accept"), "text/html")
}

// render writes a templ component through a buffer, so a failure while
// rendering is a clean 500 instead of half a page.
func (s *Server) render(c echo.Context, code int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	noStore(c)
	return c.HTMLBlob(code, buf.Bytes())
}

// renderString renders a fragment for the hub.
func renderString(ctx context.Context, comp templ.Component) (string, error) {
	var buf bytes.Buffer
	if err := comp.Render(ctx, &buf); err != nil {
		return "", err
	}
	return buf.String(), nil
}
