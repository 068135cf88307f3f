package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// UserStore is what the users and tokens admin pages need from the
// database; *db.Store implements it.
type UserStore interface {
	CreateUser(ctx context.Context, name string, role db.Role, password string) (db.User, error)
	Users(ctx context.Context) ([]db.User, error)
	UserByID(ctx context.Context, id int64) (db.User, error)
	SetPassword(ctx context.Context, id int64, password string) error
	SetUserRole(ctx context.Context, id int64, role db.Role) error
	SetUserDisabled(ctx context.Context, id int64, disabled bool) error
	DeleteUserSessions(ctx context.Context, userID int64) error
	CreateToken(ctx context.Context, kind, scope, name, createdBy string) (db.Token, string, error)
	Tokens(ctx context.Context) ([]db.Token, error)
	RevokeToken(ctx context.Context, id int64) error
}

// maxTokenName is the longest token name accepted, in bytes.
const maxTokenName = 64

// userRoutes registers the users and tokens admin pages.
func (s *Server) userRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/admin/users", s.adminUsers, admin)
	s.handle(e, http.MethodPost, "/admin/users", s.addUser, admin)
	s.handle(e, http.MethodPost, "/admin/users/:id/role", s.setUserRole, admin)
	s.handle(e, http.MethodPost, "/admin/users/:id/disabled", s.setUserDisabled, admin)
	s.handle(e, http.MethodPost, "/admin/users/:id/password", s.resetPassword, admin)
	s.handle(e, http.MethodGet, "/admin/tokens", s.adminTokens, admin)
	s.handle(e, http.MethodPost, "/admin/tokens", s.createToken, admin)
	s.handle(e, http.MethodPost, "/admin/tokens/:id/revoke", s.revokeToken, admin)
}

// usersPage builds /admin/users; saved and errMsg are the outcome of a change.
func (s *Server) usersPage(c echo.Context, saved, errMsg string) (views.UsersPage, error) {
	st := s.store
	us, err := st.Users(c.Request().Context())
	if err != nil {
		return views.UsersPage{}, fmt.Errorf("web: users: %w", err)
	}
	me, _, _ := principal(c)
	v := views.UsersPage{
		AdminPage: views.AdminPage{Page: s.page(c, "Users", "", "admin"), Tab: "users", Saved: saved},
		NewRole:   string(db.RoleViewer),
	}
	if errMsg != "" {
		v.Err = views.FormErr{Form: "users", Msg: errMsg}
	}
	for _, u := range us {
		v.Users = append(v.Users, views.UserRow{
			ID: u.ID, Name: u.Name, Role: string(u.Role), Disabled: u.Disabled,
			Self:      strings.EqualFold(u.Name, me),
			Created:   views.FormatTime(u.CreatedMS, s.loc),
			LastLogin: s.whenOrNever(u.LastLoginMS),
		})
	}
	return v, nil
}

func (s *Server) whenOrNever(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return views.FormatTime(ms, s.loc)
}

func (s *Server) adminUsers(c echo.Context) error {
	saved := ""
	if c.QueryParam("saved") != "" {
		saved = "Saved."
	}
	v, err := s.usersPage(c, saved, "")
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.UsersView(v))
}

// refuseUsers shows the users page again with the store's reason (400).
func (s *Server) refuseUsers(c echo.Context, err error, keep func(*views.UsersPage)) error {
	v, perr := s.usersPage(c, "", userMessage(err))
	if perr != nil {
		return perr
	}
	if keep != nil {
		keep(&v)
	}
	return s.render(c, http.StatusBadRequest, views.UsersView(v))
}

func (s *Server) addUser(c echo.Context) error {
	st := s.store
	name := strings.TrimSpace(c.FormValue("name"))
	keep := func(v *views.UsersPage) { v.NewName, v.NewRole = name, c.FormValue("role") }
	role, err := db.ParseRole(c.FormValue("role"))
	if err != nil {
		return s.refuseUsers(c, fmt.Errorf("pick a role: %w", plant.ErrInvalid), keep)
	}
	u, err := st.CreateUser(c.Request().Context(), name, role, c.FormValue("password"))
	if errors.Is(err, plant.ErrInvalid) {
		return s.refuseUsers(c, err, keep)
	}
	if err != nil {
		return fmt.Errorf("web: add user: %w", err)
	}
	s.audit(c, "user.create", u.Name, "role="+string(u.Role))
	return c.Redirect(http.StatusSeeOther, "/admin/users?saved=1")
}

// targetUser is the user named by the :id parameter.
func (s *Server) targetUser(c echo.Context, st UserStore) (db.User, error) {
	id, err := idParam(c, "user")
	if err != nil {
		return db.User{}, err
	}
	u, err := st.UserByID(c.Request().Context(), id)
	if err != nil {
		return db.User{}, fmt.Errorf("web: user %d: %w", id, err)
	}
	return u, nil
}

func (s *Server) setUserRole(c echo.Context) error {
	st := s.store
	u, err := s.targetUser(c, st)
	if err != nil {
		return err
	}
	role, err := db.ParseRole(c.FormValue("role"))
	if err != nil {
		return s.refuseUsers(c, fmt.Errorf("pick a role: %w", plant.ErrInvalid), nil)
	}
	if err := st.SetUserRole(c.Request().Context(), u.ID, role); err != nil {
		if errors.Is(err, plant.ErrInvalid) {
			return s.refuseUsers(c, err, nil)
		}
		return fmt.Errorf("web: set role of user %d: %w", u.ID, err)
	}
	s.audit(c, "user.role", u.Name, "role="+string(u.Role)+" → "+string(role))
	return c.Redirect(http.StatusSeeOther, "/admin/users?saved=1")
}

func (s *Server) setUserDisabled(c echo.Context) error {
	st := s.store
	u, err := s.targetUser(c, st)
	if err != nil {
		return err
	}
	disabled, err := strconv.ParseBool(c.FormValue("disabled"))
	if err != nil {
		return s.refuseUsers(c, fmt.Errorf("disabled must be true or false: %w", plant.ErrInvalid), nil)
	}
	// The store ends a disabled user's sessions itself.
	if err := st.SetUserDisabled(c.Request().Context(), u.ID, disabled); err != nil {
		if errors.Is(err, plant.ErrInvalid) {
			return s.refuseUsers(c, err, nil)
		}
		return fmt.Errorf("web: disable user %d: %w", u.ID, err)
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	if disabled {
		s.hub.closeLogins(u.ID, "")
	}
	s.audit(c, action, u.Name, "")
	return c.Redirect(http.StatusSeeOther, "/admin/users?saved=1")
}

// resetPassword sets a user's password and logs them out everywhere, so a
// leaked password stops working at once.
func (s *Server) resetPassword(c echo.Context) error {
	st := s.store
	u, err := s.targetUser(c, st)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := st.SetPassword(ctx, u.ID, c.FormValue("password")); err != nil {
		if errors.Is(err, plant.ErrInvalid) {
			return s.refuseUsers(c, err, nil)
		}
		return fmt.Errorf("web: reset password of user %d: %w", u.ID, err)
	}
	if err := st.DeleteUserSessions(ctx, u.ID); err != nil {
		return fmt.Errorf("web: end sessions of user %d: %w", u.ID, err)
	}
	s.hub.closeLogins(u.ID, "")
	s.audit(c, "user.password_reset", u.Name, "sessions ended")
	return c.Redirect(http.StatusSeeOther, "/admin/users?saved=1")
}

// tokensPage builds /admin/tokens; created is the token just made, if any.
func (s *Server) tokensPage(c echo.Context, saved string, created *views.CreatedToken) (views.TokensPage, error) {
	st := s.store
	ts, err := st.Tokens(c.Request().Context())
	if err != nil {
		return views.TokensPage{}, fmt.Errorf("web: tokens: %w", err)
	}
	v := views.TokensPage{
		AdminPage: views.AdminPage{Page: s.page(c, "Tokens", "", "admin"), Tab: "tokens", Saved: saved},
		Created:   created,
	}
	for _, t := range ts {
		row := views.TokenRow{
			ID: t.ID, Name: t.Name, Prefix: t.Prefix, Kind: t.Kind, Scope: t.Scope, CreatedBy: t.CreatedBy,
			Created: views.FormatTime(t.CreatedMS, s.loc), LastUsed: s.whenOrNever(t.LastUsedMS),
		}
		if t.RevokedMS != 0 {
			row.Revoked = views.FormatTime(t.RevokedMS, s.loc)
		}
		v.Tokens = append(v.Tokens, row)
	}
	return v, nil
}

func (s *Server) adminTokens(c echo.Context) error {
	saved := ""
	if c.QueryParam("saved") != "" {
		saved = "Token revoked."
	}
	v, err := s.tokensPage(c, saved, nil)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.TokensView(v))
}

// createToken makes a token and shows its secret on the response itself,
// never in a redirect URL: it is shown this once and stored only hashed.
func (s *Server) createToken(c echo.Context) error {
	st := s.store
	refuse := func(msg string) error {
		v, err := s.tokensPage(c, "", nil)
		if err != nil {
			return err
		}
		v.Err = views.FormErr{Form: "tokens", Msg: msg}
		return s.render(c, http.StatusBadRequest, views.TokensView(v))
	}
	name := strings.TrimSpace(c.FormValue("name"))
	if name == "" || len(name) > maxTokenName {
		return refuse(fmt.Sprintf("Give the token a name of 1 to %d characters.", maxTokenName))
	}
	kind, scope, ok := strings.Cut(c.FormValue("use"), ":")
	valid := ok && (kind == tokenKindAPI && (scope == "read" || scope == "ingest") ||
		kind == tokenKindDisplay && scope == "all")
	if !valid {
		return refuse("Pick what the token is for.")
	}
	who, _, _ := principal(c)
	t, secret, err := st.CreateToken(c.Request().Context(), kind, scope, name, who)
	if errors.Is(err, plant.ErrInvalid) {
		return refuse(userMessage(err))
	}
	if err != nil {
		return fmt.Errorf("web: create token: %w", err)
	}
	s.audit(c, "token.create", t.Name+" ("+t.Prefix+")", "kind="+t.Kind+" scope="+t.Scope)
	v, err := s.tokensPage(c, "", &views.CreatedToken{Name: t.Name, Kind: t.Kind, Scope: t.Scope, Secret: secret})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.TokensView(v))
}

func (s *Server) revokeToken(c echo.Context) error {
	st := s.store
	id, err := idParam(c, "token")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	// The log names the token as the list shows it, not by a bare id.
	object := "token " + strconv.FormatInt(id, 10)
	if ts, err := st.Tokens(ctx); err == nil {
		for _, t := range ts {
			if t.ID == id {
				object = t.Name + " (" + t.Prefix + ")"
			}
		}
	}
	if err := st.RevokeToken(ctx, id); err != nil {
		return fmt.Errorf("web: revoke token %d: %w", id, err)
	}
	s.audit(c, "token.revoke", object, "")
	return c.Redirect(http.StatusSeeOther, "/admin/tokens?saved=1")
}
