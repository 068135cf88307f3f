package web

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"andon/db"
)

// boardNamed finds a board in the store by name.
func boardNamed(t *testing.T, e *env, name string) (db.Board, bool) {
	t.Helper()
	bs, err := e.store.Boards(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Name == name {
			return b, true
		}
	}
	return db.Board{}, false
}

func TestAdminBoards(t *testing.T) {
	e := newEnv(t)
	e.write(t, reading("line-1", "press-01", "temp", e.now().UnixMilli(), 20), reading("line-2", "saw-01", "temp", e.now().UnixMilli(), 20))
	lines := e.lineIDs(t)
	adm := e.asAdminClient()

	resp, body := adm.get(t, "/admin/boards")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/boards: %d", resp.StatusCode)
	}
	doc := parseDoc(t, body)
	if doc.Find(`[data-testid="no-boards"]`).Length() != 1 {
		t.Error("an empty board list does not say so")
	}
	if doc.Find(`[data-testid="line-`+strconv.FormatInt(lines["line-1"], 10)+`"]`).Length() != 1 {
		t.Error("the form has no checkbox for line-1")
	}

	// Create.
	l1 := strconv.FormatInt(lines["line-1"], 10)
	resp, _ = adm.post(t, "/admin/boards", url.Values{"name": {"Hall 1"}, "layout": {"tiles"}, "line": {l1}, "rotate_s": {"0"}, "next": {"0"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/boards?saved=1" {
		t.Fatalf("create: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b, ok := boardNamed(t, e, "Hall 1")
	if !ok || b.Layout != "tiles" || len(b.LineIDs) != 1 || b.LineIDs[0] != lines["line-1"] {
		t.Fatalf("created board: %+v (%v)", b, ok)
	}
	if a := lastAudit(t, e); a.Action != "board.create" || a.Actor != "admin" {
		t.Errorf("audit after create: %+v", a)
	}
	id := strconv.FormatInt(b.ID, 10)

	// A second board in a playlist after the first.
	resp, _ = adm.post(t, "/admin/boards", url.Values{"name": {"Costs"}, "layout": {"pareto"}, "rotate_s": {"30"}, "next": {id}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create second: %d", resp.StatusCode)
	}
	c, _ := boardNamed(t, e, "Costs")
	if c.Next != b.ID || c.RotateS != 30 || len(c.LineIDs) != 0 {
		t.Errorf("second board: %+v", c)
	}

	// Refused: an unknown layout, and a board as its own next; nothing changes.
	for _, form := range []url.Values{
		{"name": {"X"}, "layout": {"carousel"}},
		{"id": {id}, "name": {"Hall 1"}, "layout": {"tiles"}, "next": {id}},
		{"name": {"Y"}, "layout": {"tiles"}, "rotate_s": {"soon"}},
	} {
		resp, body = adm.post(t, "/admin/boards", form)
		if resp.StatusCode != http.StatusBadRequest || parseDoc(t, body).Find(`[data-testid="form-error"]`).Length() != 1 {
			t.Errorf("refused save %v: %d, want 400 with the reason", form, resp.StatusCode)
		}
	}
	if bs, _ := e.store.Boards(e.ctx); len(bs) != 2 {
		t.Errorf("%d boards after refused saves, want 2", len(bs))
	}

	// Edit: the edit page is filled in; saving changes the board.
	resp, body = adm.get(t, "/admin/boards/"+id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("edit page: %d", resp.StatusCode)
	}
	doc = parseDoc(t, body)
	if v, _ := doc.Find(`[data-testid="board-form"] input[name="name"]`).Attr("value"); v != "Hall 1" {
		t.Errorf("edit form name = %q", v)
	}
	if _, checked := doc.Find(`[data-testid="line-` + l1 + `"]`).Attr("checked"); !checked {
		t.Error("the board's line is not ticked in its edit form")
	}
	if doc.Find(`select[name="next"] option[value="`+id+`"]`).Length() != 0 {
		t.Error("a board is offered as its own next board")
	}
	resp, _ = adm.post(t, "/admin/boards", url.Values{"id": {id}, "name": {"Hall 1 big"}, "layout": {"line"}, "rotate_s": {"20"}, "next": {strconv.FormatInt(c.ID, 10)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", resp.StatusCode)
	}
	edited, err := e.store.Board(e.ctx, b.ID)
	if err != nil || edited.Name != "Hall 1 big" || edited.Layout != "line" || edited.Next != c.ID || edited.RotateS != 20 || len(edited.LineIDs) != 0 || edited.UpdatedMS <= b.UpdatedMS {
		t.Errorf("edited board: %+v, %v", edited, err)
	}
	if a := lastAudit(t, e); a.Action != "board.update" {
		t.Errorf("audit after edit: %+v", a)
	}
	if resp, _ := adm.get(t, "/admin/boards/9999"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("edit page of no board: %d, want 404", resp.StatusCode)
	}

	// The display link: a board:<id> display token, its URL and QR code
	// shown once, on a page that is not cached.
	resp, body = adm.post(t, "/admin/boards/"+id+"/link", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("link: %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with a link has Cache-Control %q, want no-store", cc)
	}
	doc = parseDoc(t, body)
	link, _ := doc.Find(`[data-testid="board-link-url"]`).Attr("value")
	prefix := e.ts.URL + "/display/" + id + "?token="
	if !strings.HasPrefix(link, prefix) {
		t.Fatalf("link %q, want %s<secret>", link, prefix)
	}
	secret := strings.TrimPrefix(link, prefix)
	tok, err := e.store.TokenBySecret(e.ctx, secret, e.now().UnixMilli())
	if err != nil || tok.Kind != "display" || tok.Scope != "board:"+id || tok.Name != "board Hall 1 big" || tok.CreatedBy != "admin" {
		t.Errorf("the link's token: %+v, %v", tok, err)
	}
	qr, _ := doc.Find(`[data-testid="board-link-qr"]`).Attr("src")
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr, "data:image/png;base64,"))
	if !strings.HasPrefix(qr, "data:image/png;base64,") || err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("QR code src %.40q…: not an inline PNG (%v)", qr, err)
	}
	if a := lastAudit(t, e); a.Action != "token.create" || strings.Contains(a.Object+a.Detail, secret) {
		t.Errorf("audit after link: %+v", a)
	}
	if _, body = adm.get(t, "/admin/boards"); strings.Contains(body, secret) {
		t.Error("the link's secret is shown again on the list")
	}

	// Delete: the board goes, the playlist pointing at it ends, its link is revoked.
	resp, _ = adm.post(t, "/admin/boards/"+id+"/delete", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, ok := boardNamed(t, e, "Hall 1 big"); ok {
		t.Error("the deleted board is still there")
	}
	if a := lastAudit(t, e); a.Action != "board.delete" {
		t.Errorf("audit after delete: %+v", a)
	}
	if _, err := e.store.TokenBySecret(e.ctx, secret, e.now().UnixMilli()); err == nil {
		t.Error("a deleted board's display link still works")
	}
	if resp, _ := adm.post(t, "/admin/boards/"+id+"/delete", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", resp.StatusCode)
	}
}

func TestAdminBoardsOnlyAdmins(t *testing.T) {
	e := newEnv(t)
	id, err := e.store.SaveBoard(e.ctx, db.Board{Name: "Hall 1", Layout: db.LayoutTiles})
	if err != nil {
		t.Fatal(err)
	}
	sid := strconv.FormatInt(id, 10)
	display := e.bearer(t, "display", "board:"+sid)
	for _, cl := range []*testClient{e.as(t, db.RoleViewer), e.as(t, db.RoleOperator), display} {
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/admin/boards"},
			{http.MethodGet, "/admin/boards/" + sid},
			{http.MethodPost, "/admin/boards"},
			{http.MethodPost, "/admin/boards/" + sid + "/delete"},
			{http.MethodPost, "/admin/boards/" + sid + "/link"},
		} {
			var form url.Values
			if r.method == http.MethodPost {
				form = url.Values{"name": {"Evil"}, "layout": {"tiles"}}
			}
			resp, _ := cl.do(t, r.method, r.path, form, nil)
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s %s: %d, want 403", cl.name, r.method, r.path, resp.StatusCode)
			}
			if cl != display && resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s %s: %d, want 403", cl.name, r.method, r.path, resp.StatusCode)
			}
		}
	}
	if bs, _ := e.store.Boards(e.ctx); len(bs) != 1 || bs[0].Name != "Hall 1" {
		t.Errorf("boards after refused requests: %+v", bs)
	}
	toks, err := e.store.Tokens(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 {
		t.Errorf("%d tokens after refused link requests, want only the test's own", len(toks))
	}
}
