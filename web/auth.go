package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// access is the rule a route is registered with; see handle.
type access int

const (
	public    access = iota // anyone
	viewer                  // a session of any role; a read token on GET /api/...; anyone under OpenViewing
	operator                // a session of at least operator
	admin                   // an admin session
	apiRead                 // a read token or any session; anyone under OpenViewing
	apiIngest               // an ingest token only
	display                 // a session of any role, or a display token for the route's :board ("all" or "board:<id>"); anyone under OpenViewing
)

func (a access) String() string {
	switch a {
	case public:
		return "public"
	case viewer:
		return "viewer"
	case operator:
		return "operator"
	case admin:
		return "admin"
	case apiRead:
		return "apiRead"
	case apiIngest:
		return "apiIngest"
	case display:
		return "display"
	}
	return fmt.Sprintf("access(%d)", int(a))
}

const (
	// sessionCookie holds the session secret; the store keeps only its hash.
	sessionCookie = "andon_session"
	// defaultSessionIdle is how long a session lives without use when
	// Config.SessionIdle is not set: a working day and a half of shifts.
	defaultSessionIdle = 12 * time.Hour
	// sessionCookieAge bounds the cookie itself; the store ends sessions
	// older than 7 days whatever the cookie says.
	sessionCookieAge = 7 * 24 * time.Hour
	// routeRulePrefix marks a route's Name as registered through handle,
	// so routes can check that none was added around it.
	routeRulePrefix = "rule="
	// principalKey is where the authenticated caller sits in echo's context.
	principalKey = "andon.principal"
	// tokenKindAPI and tokenKindDisplay are db.Token kinds.
	tokenKindAPI     = "api"
	tokenKindDisplay = "display"
	// tokenQuery carries a display token in the URL, for TVs that cannot
	// set headers. It is read only on display routes and on /ws.
	tokenQuery = "token"
	// displayScopeAll is a display token's scope for every board; one board
	// is "board:<id>".
	displayScopeAll   = "all"
	displayScopeBoard = "board:"
)

// AuthStore is what authentication, sessions and the audit log need from the
// database; *db.Store implements it.
type AuthStore interface {
	Authenticate(ctx context.Context, name, password string, nowMS int64) (db.User, error)
	CreateSession(ctx context.Context, userID, nowMS int64) (string, error)
	Session(ctx context.Context, secret string, nowMS, idleMS int64) (db.Session, error)
	DeleteSession(ctx context.Context, secret string) error
	DeleteUserSessions(ctx context.Context, userID int64) error
	SetPassword(ctx context.Context, id int64, password string) error
	TokenBySecret(ctx context.Context, secret string, nowMS int64) (db.Token, error)
	UseSetupLink(ctx context.Context, secret, name, password string, nowMS int64) (db.User, error)
	Audit(ctx context.Context, e db.AuditEntry) error
}

// caller is who made a request, once authenticated.
type caller struct {
	user    db.User // zero for tokens
	token   db.Token
	isToken bool
	secret  string // the session secret, for logout; "" for tokens
}

func (p caller) who() string {
	if p.isToken {
		return "token:" + p.token.Prefix
	}
	return p.user.Name
}

// principal is who is calling, for "coded by" and the audit log: the user's
// name, or "token:<prefix>". ok is false for anonymous callers (only possible
// on public routes and under OpenViewing). Tokens have no role.
func principal(c echo.Context) (who string, role db.Role, ok bool) {
	p, ok := c.Get(principalKey).(caller)
	if !ok {
		return "", "", false
	}
	if p.isToken {
		return p.who(), "", true
	}
	return p.user.Name, p.user.Role, true
}

// sessionOf is the caller's session user, if the request came with one.
func sessionOf(c echo.Context) (caller, bool) {
	p, ok := c.Get(principalKey).(caller)
	if !ok || p.isToken {
		return caller{}, false
	}
	return p, true
}

// handle registers a route with its access rule. It is the only way routes
// are added (routes checks), so no route exists without a rule.
func (s *Server) handle(e *echo.Echo, method, path string, h echo.HandlerFunc, a access) {
	r := e.Add(method, path, h, s.require(a))
	r.Name = routeRulePrefix + a.String() + " " + runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
}

// checkRules panics when a route was registered without handle: that is a
// programming error every test that builds a server catches at once.
func checkRules(e *echo.Echo) {
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Name, routeRulePrefix) {
			panic(fmt.Sprintf("web: route %s %s has no access rule: register it with s.handle", r.Method, r.Path))
		}
	}
}

// require is the middleware of one access rule.
func (s *Server) require(a access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a == public {
				// Public forms (login, setup) get the origin check too:
				// it stops a foreign page logging a browser in as
				// someone else.
				if unsafeMethod(c.Request().Method) && !sameOrigin(c) {
					return forbiddenOrigin()
				}
				return next(c)
			}
			p, found, err := s.authenticate(c, tokenInURL(a, c.Request()))
			if err != nil {
				return err
			}
			if !found {
				if s.cfg.OpenViewing && (a == viewer || a == apiRead || a == display) && !unsafeMethod(c.Request().Method) {
					return next(c)
				}
				if a == display && namesToken(c) {
					// A TV whose link was revoked or mistyped: say so
					// rather than show a login form nobody will fill in.
					return echo.NewHTTPError(http.StatusUnauthorized, "This display link is wrong or was revoked. Ask an admin for the board's new link.")
				}
				return s.anonymous(c)
			}
			// Known before the verdict, so a 403 page still shows who is
			// logged in.
			c.Set(principalKey, p)
			if !allowed(a, p, c.Request(), c.Param("board")) {
				// A display token also opens the boards along its
				// board's playlist (display.go).
				ok, err := s.playlistAllows(c, a, p)
				if err != nil {
					return err
				}
				if !ok {
					return echo.NewHTTPError(http.StatusForbidden, "Your account may not do this.")
				}
			}
			// Cookies ride along on cross-site requests; bearer tokens do
			// not, so only session requests need the origin check.
			if !p.isToken && unsafeMethod(c.Request().Method) && !sameOrigin(c) {
				return forbiddenOrigin()
			}
			return next(c)
		}
	}
}

// allowed applies a rule to an authenticated caller. board is the route's
// :board parameter ("" when it has none).
func allowed(a access, p caller, r *http.Request, board string) bool {
	if p.isToken {
		t := p.token
		switch a {
		case viewer:
			if t.Kind == tokenKindDisplay {
				// A wall display's live connection: /ws and nothing else.
				return r.Method == http.MethodGet && r.URL.Path == "/ws"
			}
			return t.Kind == tokenKindAPI && t.Scope == "read" && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/")
		case apiRead:
			return t.Kind == tokenKindAPI && t.Scope == "read"
		case apiIngest:
			return t.Kind == tokenKindAPI && t.Scope == "ingest"
		case display:
			return t.Kind == tokenKindDisplay && !unsafeMethod(r.Method) && displayScopeCovers(t.Scope, board)
		}
		// Display tokens serve only the wall-display routes and /ws;
		// operator and admin need a person.
		return false
	}
	switch a {
	case viewer, apiRead, display:
		return p.user.Role.AtLeast(db.RoleViewer)
	case operator:
		return p.user.Role.AtLeast(db.RoleOperator)
	case admin:
		return p.user.Role.AtLeast(db.RoleAdmin)
	}
	return false
}

// displayScopeCovers says whether a display token's scope grants a board:
// "all" grants every board, "board:<id>" that one only. A route without a
// board is granted to neither.
func displayScopeCovers(scope, board string) bool {
	if board == "" {
		return false
	}
	if scope == displayScopeAll {
		return true
	}
	id, ok := strings.CutPrefix(scope, displayScopeBoard)
	return ok && id != "" && id == board
}

// tokenInURL says whether a request may carry its token as ?token=: only a
// display route's GET and the live connection, because a TV cannot set an
// Authorization header. Anywhere else a token in the URL is ignored (it would
// leak into logs and Referer headers of pages that do not need it).
func tokenInURL(a access, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return a == display || (a == viewer && r.URL.Path == "/ws")
}

// namesToken says whether a display route's request came with a token,
// in the header or the URL.
func namesToken(c echo.Context) bool {
	return c.Request().Header.Get(echo.HeaderAuthorization) != "" || c.QueryParam(tokenQuery) != ""
}

// authenticate finds the caller from a bearer token, the session cookie or,
// when urlToken is set, a display token in ?token=. found is false for no or
// unknown credentials; err only for a store failure.
func (s *Server) authenticate(c echo.Context, urlToken bool) (p caller, found bool, err error) {
	st := s.store
	ctx := c.Request().Context()
	nowMS := s.now().UnixMilli()
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if h == "" && urlToken {
		if q := c.QueryParam(tokenQuery); q != "" {
			h = "Bearer " + q
		}
	}
	if h != "" {
		// A request that names a token is judged by it alone, even with a
		// cookie beside it: no mixing of credentials.
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			return caller{}, false, nil
		}
		t, err := st.TokenBySecret(ctx, strings.TrimSpace(secret), nowMS)
		if errors.Is(err, plant.ErrNotFound) {
			return caller{}, false, nil
		}
		if err != nil {
			return caller{}, false, fmt.Errorf("web: token: %w", err)
		}
		return caller{token: t, isToken: true}, true, nil
	}
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return caller{}, false, nil
	}
	sess, err := st.Session(ctx, ck.Value, nowMS, s.sessionIdle().Milliseconds())
	if errors.Is(err, plant.ErrNotFound) {
		// Expired or ended: drop the cookie so the browser stops sending it.
		s.clearSessionCookie(c)
		return caller{}, false, nil
	}
	if err != nil {
		return caller{}, false, fmt.Errorf("web: session: %w", err)
	}
	return caller{user: sess.User, secret: ck.Value}, true, nil
}

// anonymous answers a request that needs credentials and has none: pages
// send the browser to the login form, the API and /ws get 401.
func (s *Server) anonymous(c echo.Context) error {
	r := c.Request()
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/ws" || r.URL.Path == "/metrics" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="andon"`)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "authentication required"})
	}
	to := "/login"
	if r.Method == http.MethodGet {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	noStore(c)
	return c.Redirect(http.StatusSeeOther, to)
}

func forbiddenOrigin() error {
	return echo.NewHTTPError(http.StatusForbidden, "This form was sent from another site, so it was refused. Reload the page and try again.")
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin is true when a state-changing request comes from a page of this
// site: Origin, else Referer, else Sec-Fetch-Site. No signal at all is a
// refusal: every browser sends one of them with a form or fetch.
func sameOrigin(c echo.Context) bool {
	r := c.Request()
	want := c.Scheme() + "://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return strings.EqualFold(o, want)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && strings.EqualFold(u.Scheme+"://"+u.Host, want)
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

func (s *Server) sessionIdle() time.Duration {
	if s.cfg.SessionIdle > 0 {
		return s.cfg.SessionIdle
	}
	return defaultSessionIdle
}

func (s *Server) setSessionCookie(c echo.Context, secret string) {
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(sessionCookieAge.Seconds()),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// audit records a change in the audit log. A failure is logged, never
// returned: the change it records has already happened.
func (s *Server) audit(c echo.Context, action, object, detail string) {
	who, _, ok := principal(c)
	if !ok {
		who = "anonymous"
	}
	err := s.store.Audit(context.WithoutCancel(c.Request().Context()), db.AuditEntry{
		TS: s.now().UnixMilli(), Actor: who, Action: action, Object: object, Detail: detail,
	})
	if err != nil {
		s.log.Error("audit log write failed", "action", action, "object", object, "actor", who, "err", err)
	}
}

// loginLimiter allows each client address a few login attempts a minute, in
// memory: it slows guessing across many names, which the store's per-user
// lockout does not.
type loginLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	hits   map[string][]time.Time
}

func newLoginLimiter(max int, window time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{max: max, window: window, now: now, hits: map[string][]time.Time{}}
}

// allow records an attempt from ip and says whether it may go ahead.
func (l *loginLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cut := now.Add(-l.window)
	if len(l.hits) > 10_000 {
		// Many addresses (a scan): forget the ones that are quiet, so the
		// map stays bounded.
		for k, ts := range l.hits {
			if len(ts) == 0 || ts[len(ts)-1].Before(cut) {
				delete(l.hits, k)
			}
		}
	}
	ts := l.hits[ip]
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) >= l.max {
		l.hits[ip] = ts
		return false
	}
	l.hits[ip] = append(ts, now)
	return true
}

// clientIP is the connection's address. Forwarded-for headers are not
// trusted: anyone can send them, and the limit would be void.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-login redirect on this site: a local absolute path,
// never "//host" or "/\host", which browsers treat as another site.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

const (
	// loginAttempts per loginWindow per client address, before 429.
	loginAttempts = 10
	loginWindow   = time.Minute
	// badLogin is the one message for every refused login: it never says
	// whether the name exists or the password was wrong.
	badLogin = "Wrong name or password."
)

// authRoutes registers logging in and out, the own password and the setup link.
func (s *Server) authRoutes(e *echo.Echo) {
	lim := newLoginLimiter(loginAttempts, loginWindow, s.now)
	s.handle(e, http.MethodGet, "/login", s.loginForm, public)
	s.handle(e, http.MethodPost, "/login", func(c echo.Context) error { return s.login(c, lim) }, public)
	s.handle(e, http.MethodPost, "/logout", s.logout, viewer)
	s.handle(e, http.MethodGet, "/account/password", s.accountForm, viewer)
	s.handle(e, http.MethodPost, "/account/password", s.changePassword, viewer)
	s.handle(e, http.MethodGet, "/setup/:secret", s.setupForm, public)
	s.handle(e, http.MethodPost, "/setup/:secret", func(c echo.Context) error { return s.setup(c, lim) }, public)
}

func (s *Server) loginForm(c echo.Context) error {
	v := views.LoginPage{Page: s.page(c, "Log in", "", ""), Next: safeNext(c.QueryParam("next"))}
	return s.render(c, http.StatusOK, views.LoginView(v))
}

// login checks a name and password, then starts a new session. The session
// id is always new (rotation): a cookie planted before login is worthless.
func (s *Server) login(c echo.Context, lim *loginLimiter) error {
	v := views.LoginPage{
		Page: s.page(c, "Log in", "", ""),
		Name: strings.TrimSpace(c.FormValue("name")),
		Next: safeNext(c.FormValue("next")),
	}
	if !lim.allow(clientIP(c.Request())) {
		v.Error = "Too many login attempts from this computer. Wait a minute and try again."
		return s.render(c, http.StatusTooManyRequests, views.LoginView(v))
	}
	st := s.store
	ctx := c.Request().Context()
	nowMS := s.now().UnixMilli()
	u, err := st.Authenticate(ctx, v.Name, c.FormValue("password"), nowMS)
	// A refused login is the form again with a message (200): the request
	// itself was fine, and 401 belongs to the API's bearer scheme.
	switch {
	case errors.Is(err, db.ErrBadCredentials):
		s.log.Info("login refused", "user", v.Name, "ip", clientIP(c.Request()))
		v.Error = badLogin
		return s.render(c, http.StatusOK, views.LoginView(v))
	case errors.Is(err, db.ErrLocked):
		s.log.Warn("login refused: locked", "user", v.Name, "ip", clientIP(c.Request()))
		v.Error = "Too many failed logins for this account. Try again in 15 minutes."
		return s.render(c, http.StatusOK, views.LoginView(v))
	case err != nil:
		return fmt.Errorf("web: login: %w", err)
	}
	if err := s.startSession(c, st, u.ID, nowMS); err != nil {
		return err
	}
	s.log.Info("login", "user", u.Name, "role", string(u.Role))
	return c.Redirect(http.StatusSeeOther, v.Next)
}

// startSession ends the session the request came with, if any, and sets a
// new one's cookie.
func (s *Server) startSession(c echo.Context, st AuthStore, userID, nowMS int64) error {
	ctx := c.Request().Context()
	if old, err := c.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := st.DeleteSession(ctx, old.Value); err != nil && !errors.Is(err, plant.ErrNotFound) {
			return fmt.Errorf("web: end old session: %w", err)
		}
	}
	secret, err := st.CreateSession(ctx, userID, nowMS)
	if err != nil {
		return fmt.Errorf("web: create session: %w", err)
	}
	s.setSessionCookie(c, secret)
	return nil
}

// logout ends the session in the store, so the cookie is worthless even if
// it was copied.
func (s *Server) logout(c echo.Context) error {
	if p, ok := sessionOf(c); ok {
		st := s.store
		if err := st.DeleteSession(c.Request().Context(), p.secret); err != nil && !errors.Is(err, plant.ErrNotFound) {
			return fmt.Errorf("web: logout: %w", err)
		}
		s.hub.closeLogins(p.user.ID, p.secret)
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) accountForm(c echo.Context) error {
	if _, ok := sessionOf(c); !ok {
		return s.anonymous(c)
	}
	v := views.AccountPage{Page: s.page(c, "Your password", "", "")}
	if c.QueryParam("saved") != "" {
		v.Saved = "Password changed."
	}
	return s.render(c, http.StatusOK, views.AccountView(v))
}

// changePassword sets a new password after checking the current one, ends
// the user's other sessions and rotates this one.
func (s *Server) changePassword(c echo.Context) error {
	p, ok := sessionOf(c)
	if !ok {
		// A read token or open viewing: only a person has a password.
		return s.anonymous(c)
	}
	v := views.AccountPage{Page: s.page(c, "Your password", "", "")}
	refuse := func(msg string) error {
		v.Error = msg
		return s.render(c, http.StatusBadRequest, views.AccountView(v))
	}
	newPW, again := c.FormValue("new"), c.FormValue("new2")
	if newPW != again {
		return refuse("The two new passwords differ.")
	}
	st := s.store
	ctx := c.Request().Context()
	nowMS := s.now().UnixMilli()
	if _, err := st.Authenticate(ctx, p.user.Name, c.FormValue("current"), nowMS); err != nil {
		if errors.Is(err, db.ErrBadCredentials) || errors.Is(err, db.ErrLocked) {
			return refuse("The current password is wrong.")
		}
		return fmt.Errorf("web: check password: %w", err)
	}
	if err := st.SetPassword(ctx, p.user.ID, newPW); err != nil {
		if errors.Is(err, plant.ErrInvalid) {
			return refuse(userMessage(err))
		}
		return fmt.Errorf("web: set password: %w", err)
	}
	if err := st.DeleteUserSessions(ctx, p.user.ID); err != nil {
		return fmt.Errorf("web: end sessions: %w", err)
	}
	// The user's other open pages lose their login; this page gets a new
	// session and reconnects with it after the redirect.
	s.hub.closeLogins(p.user.ID, "")
	if err := s.startSession(c, st, p.user.ID, nowMS); err != nil {
		return err
	}
	s.audit(c, "user.password", p.user.Name, "changed own password")
	return c.Redirect(http.StatusSeeOther, "/account/password?saved=1")
}

func (s *Server) setupForm(c echo.Context) error {
	v := views.SetupPage{Page: s.page(c, "Set up Andon", "", ""), Action: c.Request().URL.Path}
	return s.render(c, http.StatusOK, views.SetupView(v))
}

// setup creates the first admin from the one-time link printed at start,
// and logs them in.
func (s *Server) setup(c echo.Context, lim *loginLimiter) error {
	v := views.SetupPage{
		Page:   s.page(c, "Set up Andon", "", ""),
		Action: c.Request().URL.Path,
		Name:   strings.TrimSpace(c.FormValue("name")),
	}
	if !lim.allow(clientIP(c.Request())) {
		v.Error = "Too many attempts from this computer. Wait a minute and try again."
		return s.render(c, http.StatusTooManyRequests, views.SetupView(v))
	}
	pw := c.FormValue("password")
	if pw != c.FormValue("password2") {
		v.Error = "The two passwords differ."
		return s.render(c, http.StatusBadRequest, views.SetupView(v))
	}
	st := s.store
	nowMS := s.now().UnixMilli()
	u, err := st.UseSetupLink(c.Request().Context(), c.Param("secret"), v.Name, pw, nowMS)
	switch {
	case errors.Is(err, plant.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound,
			"This setup link is wrong, used or expired. Ask for a new one with `andon user add`, or restart Andon while it has no users.")
	case errors.Is(err, plant.ErrInvalid):
		v.Error = userMessage(err)
		return s.render(c, http.StatusBadRequest, views.SetupView(v))
	case err != nil:
		return fmt.Errorf("web: setup: %w", err)
	}
	if err := s.startSession(c, st, u.ID, nowMS); err != nil {
		return err
	}
	c.Set(principalKey, caller{user: u})
	s.audit(c, "user.create", u.Name, "role=admin via setup link")
	return c.Redirect(http.StatusSeeOther, "/")
}
