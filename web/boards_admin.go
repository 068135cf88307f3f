package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// BoardStore is what the wall-display boards need from the database;
// *db.Store implements it.
type BoardStore interface {
	Boards(ctx context.Context) ([]db.Board, error)
	Board(ctx context.Context, id int64) (db.Board, error)
	SaveBoard(ctx context.Context, b db.Board) (int64, error)
	DeleteBoard(ctx context.Context, id int64) error
}

// boardRoutes registers /admin/boards: the wall displays' boards and their
// display links. Every change is a POST answered with a redirect, except
// "make a display link": that page shows the link, once.
func (s *Server) boardRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/admin/boards", s.adminBoards, admin)
	s.handle(e, http.MethodGet, "/admin/boards/:id", s.adminBoard, admin)
	s.handle(e, http.MethodPost, "/admin/boards", s.saveBoard, admin)
	s.handle(e, http.MethodPost, "/admin/boards/:id/delete", s.deleteBoard, admin)
	s.handle(e, http.MethodPost, "/admin/boards/:id/link", s.boardLink, admin)
}

// boardsPage builds /admin/boards with the form filled from f (the board
// being edited, or a new one); checked are the form's ticked lines.
func (s *Server) boardsPage(c echo.Context, f db.Board, rotate, saved, errMsg string) (views.BoardsPage, error) {
	ctx := c.Request().Context()
	bs, err := s.store.Boards(ctx)
	if err != nil {
		return views.BoardsPage{}, fmt.Errorf("web: boards: %w", err)
	}
	lines, err := s.store.Lines(ctx)
	if err != nil {
		return views.BoardsPage{}, fmt.Errorf("web: boards: lines: %w", err)
	}
	lineName := make(map[int64]string, len(lines))
	for _, l := range lines {
		lineName[l.ID] = boardLineName(l)
	}
	boardName := make(map[int64]string, len(bs))
	for _, b := range bs {
		boardName[b.ID] = b.Name
	}
	v := views.BoardsPage{AdminPage: views.AdminPage{Page: s.page(c, "Boards", "", "admin"), Tab: "boards", Saved: saved}}
	if errMsg != "" {
		v.Err = views.FormErr{Form: "board", Msg: errMsg}
	}
	for _, b := range bs {
		row := views.BoardRow{
			ID: b.ID, Name: b.Name, Layout: views.BoardLayoutLabel(b.Layout),
			Lines: "all lines", Rotate: "no rotation", Updated: views.FormatTime(b.UpdatedMS, s.loc),
		}
		if len(b.LineIDs) > 0 {
			names := make([]string, 0, len(b.LineIDs))
			for _, id := range b.LineIDs {
				if n, ok := lineName[id]; ok {
					names = append(names, n)
				} else {
					names = append(names, "line "+strconv.FormatInt(id, 10)+" (gone)")
				}
			}
			row.Lines = strings.Join(names, ", ")
		}
		switch {
		case b.Next != 0 && b.RotateS > 0:
			row.Rotate = fmt.Sprintf("%d s → %s", b.RotateS, boardName[b.Next])
		case b.Next != 0:
			row.Rotate = "→ " + boardName[b.Next] + " (no rotation time)"
		case b.RotateS > 0:
			row.Rotate = fmt.Sprintf("%d s, no next board", b.RotateS)
		}
		v.Boards = append(v.Boards, row)
	}
	if f.Layout == "" {
		f.Layout = db.LayoutTiles
	}
	if rotate == "" {
		rotate = strconv.Itoa(f.RotateS)
	}
	form := views.BoardForm{ID: f.ID, Name: f.Name, Layout: f.Layout, RotateS: rotate, Next: f.Next}
	for _, l := range lines {
		form.Lines = append(form.Lines, views.BoardLineChoice{ID: l.ID, Name: lineName[l.ID], Checked: containsID(f.LineIDs, l.ID)})
	}
	for _, b := range bs {
		if b.ID != f.ID || f.ID == 0 {
			form.Boards = append(form.Boards, views.BoardChoice{ID: b.ID, Name: b.Name})
		}
	}
	v.Form = form
	return v, nil
}

// boardLineName is a line's name in the boards page.
func boardLineName(l plant.Line) string {
	switch {
	case l.Name != "":
		return l.Name
	case l.Path != "":
		return l.Path
	}
	return "(machines without a line)"
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (s *Server) adminBoards(c echo.Context) error {
	saved := ""
	if c.QueryParam("saved") == "1" {
		saved = "Saved."
	}
	v, err := s.boardsPage(c, db.Board{}, "", saved, "")
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.BoardsAdminView(v))
}

// adminBoard is the page with the board's edit form.
func (s *Server) adminBoard(c echo.Context) error {
	b, err := s.targetBoard(c)
	if err != nil {
		return err
	}
	v, err := s.boardsPage(c, b, "", "", "")
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.BoardsAdminView(v))
}

// targetBoard is the board named by the :id parameter.
func (s *Server) targetBoard(c echo.Context) (db.Board, error) {
	id, err := idParam(c, "board")
	if err != nil {
		return db.Board{}, err
	}
	b, err := s.store.Board(c.Request().Context(), id)
	if err != nil {
		return db.Board{}, fmt.Errorf("web: board %d: %w", id, err)
	}
	return b, nil
}

// saveBoard adds (no id) or replaces a board from the form.
func (s *Server) saveBoard(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return fmt.Errorf("web: save board: %w", err)
	}
	b := db.Board{Name: form.Get("name"), Layout: form.Get("layout")}
	rotate := strings.TrimSpace(form.Get("rotate_s"))
	refuse := func(err error) error {
		v, perr := s.boardsPage(c, b, rotate, "", userMessage(err))
		if perr != nil {
			return perr
		}
		return s.render(c, http.StatusBadRequest, views.BoardsAdminView(v))
	}
	if raw := form.Get("id"); raw != "" && raw != "0" {
		if b.ID, err = strconv.ParseInt(raw, 10, 64); err != nil || b.ID <= 0 {
			return fmt.Errorf("web: board id %q: %w", raw, plant.ErrNotFound)
		}
	}
	for _, raw := range form["line"] {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 0 {
			return refuse(fmt.Errorf("line %q is not a line: %w", raw, plant.ErrInvalid))
		}
		b.LineIDs = append(b.LineIDs, id)
	}
	if rotate != "" {
		if b.RotateS, err = strconv.Atoi(rotate); err != nil {
			return refuse(fmt.Errorf("rotation must be a whole number of seconds: %w", plant.ErrInvalid))
		}
	}
	if raw := form.Get("next"); raw != "" {
		if b.Next, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return refuse(fmt.Errorf("next board %q is not a board: %w", raw, plant.ErrInvalid))
		}
	}
	id, err := s.store.SaveBoard(c.Request().Context(), b)
	if errors.Is(err, plant.ErrInvalid) {
		return refuse(err)
	}
	if err != nil {
		return fmt.Errorf("web: save board: %w", err)
	}
	action := "board.update"
	if b.ID == 0 {
		action = "board.create"
	}
	s.audit(c, action, "board:"+strconv.FormatInt(id, 10), fmt.Sprintf("name=%q layout=%s lines=%v rotate_s=%d next=%d",
		strings.TrimSpace(b.Name), b.Layout, b.LineIDs, b.RotateS, b.Next))
	return c.Redirect(http.StatusSeeOther, "/admin/boards?saved=1")
}

func (s *Server) deleteBoard(c echo.Context) error {
	b, err := s.targetBoard(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteBoard(c.Request().Context(), b.ID); err != nil {
		return fmt.Errorf("web: delete board %d: %w", b.ID, err)
	}
	s.audit(c, "board.delete", db.BoardScope(b.ID), "name="+strconv.Quote(b.Name))
	return c.Redirect(http.StatusSeeOther, "/admin/boards?saved=1")
}

// boardLink makes a display token for one board and shows its link and QR
// code once. The QR code is inline (a data: URL): as an image URL the secret
// would land in access logs and caches.
func (s *Server) boardLink(c echo.Context) error {
	b, err := s.targetBoard(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	who, _, _ := principal(c)
	tok, secret, err := s.store.CreateToken(ctx, tokenKindDisplay, db.BoardScope(b.ID), boardTokenName(b.Name), who)
	if err != nil {
		return fmt.Errorf("web: display link of board %d: %w", b.ID, err)
	}
	s.audit(c, "token.create", tok.Name+" ("+tok.Prefix+")", "kind="+tok.Kind+" scope="+tok.Scope)
	link := c.Scheme() + "://" + c.Request().Host + "/display/" + strconv.FormatInt(b.ID, 10) + "?token=" + secret
	png, err := qrcode.Encode(link, qrcode.Medium, qrSize)
	if err != nil {
		return fmt.Errorf("web: display link of board %d: qr: %w", b.ID, err)
	}
	v, err := s.boardsPage(c, db.Board{}, "", "Display link made.", "")
	if err != nil {
		return err
	}
	v.Link = &views.BoardLink{Board: b.Name, URL: link, QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)}
	return s.render(c, http.StatusOK, views.BoardsAdminView(v))
}

// boardTokenName is "board <name>", cut to maxTokenName bytes (whole characters).
func boardTokenName(name string) string {
	n := "board " + name
	for len(n) > maxTokenName {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	return n
}
