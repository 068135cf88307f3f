package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/static"
)

// routeRules is what every registered route must require. A route missing
// here fails TestRouteAccess: adding a route means deciding who may use it.
var routeRules = map[string]access{
	"GET /":                          viewer,
	"GET /machines/:id":              viewer,
	"GET /downtime":                  viewer,
	"GET /downtime/stops/:id":        viewer,
	"POST /downtime/stops/:id/code":  operator,
	"POST /downtime/stops/:id/split": operator,
	"GET /m/:id":                     viewer,
	"GET /reports":                   viewer,
	"GET /lines/:id":                 viewer,

	"GET /admin/tags":                  admin,
	"GET /admin/rejects":               admin,
	"GET /admin/mapping":               admin,
	"POST /admin/mapping":              admin,
	"POST /admin/mapping/:id/delete":   admin,
	"POST /admin/mapping/:id/move":     admin,
	"GET /admin/qr":                    admin,
	"GET /qr/:file":                    admin,
	"GET /admin/machines":              admin,
	"POST /admin/machines/:id":         admin,
	"GET /admin/reasons":               admin,
	"POST /admin/reasons":              admin,
	"POST /admin/reasons/:id":          admin,
	"GET /admin/shifts":                admin,
	"POST /admin/shifts":               admin,
	"POST /admin/shifts/:id":           admin,
	"POST /admin/shifts/:id/delete":    admin,
	"POST /admin/holidays":             admin,
	"GET /admin/settings":              admin,
	"POST /admin/settings":             admin,
	"GET /admin/users":                 admin,
	"POST /admin/users":                admin,
	"POST /admin/users/:id/role":       admin,
	"POST /admin/users/:id/disabled":   admin,
	"POST /admin/users/:id/password":   admin,
	"GET /admin/tokens":                admin,
	"POST /admin/tokens":               admin,
	"POST /admin/tokens/:id/revoke":    admin,
	"GET /admin/audit":                 admin,
	"GET /admin/audit.csv":             admin,
	"GET /admin/storage":               admin,
	"GET /admin/devices":               admin,
	"POST /admin/devices":              admin,
	"POST /admin/devices/:id/disabled": admin,
	"POST /admin/devices/:id/delete":   admin,
	"POST /admin/devices/:id/password": admin,
	"GET /admin/boards":                admin,
	"GET /admin/boards/:id":            admin,
	"POST /admin/boards":               admin,
	"POST /admin/boards/:id/delete":    admin,
	"POST /admin/boards/:id/link":      admin,

	"GET /login":                  public,
	"POST /login":                 public,
	"POST /logout":                viewer,
	"GET /account/password":       viewer,
	"POST /account/password":      viewer,
	"GET /setup/:secret":          public,
	"POST /setup/:secret":         public,
	"GET /healthz":                public,
	"GET " + static.Prefix + "*":  public,
	"HEAD " + static.Prefix + "*": public,

	"GET /api/v1/machines":        apiRead,
	"GET /api/v1/tags/:id/series": apiRead,
	"POST /api/v1/readings":       apiIngest,
	"GET /metrics":                apiRead,
	"GET /ws":                     viewer,
	"GET /api/v1/problems":        viewer,

	"GET /display/:board": display,

	// Exports (export.go, api_v1.go): the access of the page each comes from.
	"GET /export/readings.csv": viewer,
	"GET /export/downtime.csv": viewer,
	"GET /export/kpis.csv":     viewer,
	"GET /export/tags.csv":     admin,
	"GET /export/rejects.csv":  admin,
	"GET /admin/backup":        admin,
	"GET /api/v1/tags":         apiRead,
	"GET /api/v1/tags.csv":     apiRead,
	"GET /api/v1/readings":     apiRead,
	"GET /api/v1/readings.csv": apiRead,
	"GET /api/v1/downtime":     apiRead,
	"GET /api/v1/downtime.csv": apiRead,
	"GET /api/v1/kpis":         apiRead,
	"GET /api/v1/kpis.csv":     apiRead,
}

// callerKind is one kind of caller in the route table.
type callerKind string

const (
	cAnon     callerKind = "anonymous"
	cViewer   callerKind = "viewer"
	cOperator callerKind = "operator"
	cAdmin    callerKind = "admin"
	cDisplay  callerKind = "display-token"
	cRead     callerKind = "read-token"
	cIngest   callerKind = "ingest-token"
)

// outcome is what a caller must get: in (not 401/403, not sent to log in),
// login (303 to /login), unauth (401) or forbidden (403).
type outcome string

const (
	in        outcome = "in"
	login     outcome = "303 to /login"
	unauth    outcome = "401"
	forbidden outcome = "403"
)

// expect is written out from the contract, independently of allowed().
func expect(rule access, who callerKind, method, path string) outcome {
	api := strings.HasPrefix(path, "/api/") || path == "/ws" || path == "/metrics"
	denyAnon := login
	if api {
		denyAnon = unauth
	}
	switch rule {
	case public:
		return in
	case viewer:
		switch who {
		case cAnon:
			return denyAnon
		case cViewer, cOperator, cAdmin:
			return in
		case cRead:
			if method == http.MethodGet && strings.HasPrefix(path, "/api/") {
				return in
			}
		case cDisplay:
			// A wall display's live connection.
			if method == http.MethodGet && path == "/ws" {
				return in
			}
		}
		return forbidden
	case display:
		switch who {
		case cAnon:
			return denyAnon
		case cViewer, cOperator, cAdmin, cDisplay: // the table's display token is scoped "all"
			return in
		}
		return forbidden
	case operator, admin:
		switch who {
		case cAnon:
			return denyAnon
		case cOperator:
			if rule == operator {
				return in
			}
		case cAdmin:
			return in
		}
		return forbidden
	case apiRead:
		switch who {
		case cAnon:
			return unauth
		case cViewer, cOperator, cAdmin, cRead:
			return in
		}
		return forbidden
	case apiIngest:
		switch who {
		case cAnon:
			return unauth
		case cIngest:
			return in
		}
		return forbidden
	}
	panic("unknown rule")
}

// concrete fills a route pattern's parameters.
func concrete(path string) string {
	r := strings.NewReplacer(":id", "1", ":file", "1.png", ":secret", "no-such-link", ":board", "1", "*", "css/app.css")
	return r.Replace(path)
}

func TestRouteAccess(t *testing.T) {
	e := newEnv(t)
	e.write(t, reading("line-1", "press-01", "temperature", time.Now().UnixMilli(), 20))
	routes := e.srv.echo.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		seen[key] = true
		rule, ok := routeRules[key]
		if !ok {
			t.Errorf("route %s is not in the test's table: add it with its access rule", key)
			continue
		}
		if !strings.HasPrefix(r.Name, routeRulePrefix+rule.String()+" ") {
			t.Errorf("route %s registered as %q, want rule %s", key, r.Name, rule)
		}
		path := concrete(r.Path)
		for _, who := range []callerKind{cAnon, cViewer, cOperator, cAdmin, cDisplay, cRead, cIngest} {
			t.Run(key+"/"+string(who), func(t *testing.T) {
				// Fresh credentials for every request: a POST /logout or a
				// revoke must not spoil the next case.
				var cl *testClient
				switch who {
				case cAnon:
					cl = e.anon()
				case cViewer:
					cl = e.as(t, db.RoleViewer)
				case cOperator:
					cl = e.as(t, db.RoleOperator)
				case cAdmin:
					cl = e.as(t, db.RoleAdmin)
				case cDisplay:
					cl = e.bearer(t, "display", "all")
				case cRead:
					cl = e.bearer(t, "api", "read")
				case cIngest:
					cl = e.bearer(t, "api", "ingest")
				}
				var form url.Values
				if r.Method == http.MethodPost {
					form = url.Values{}
				}
				resp, body := cl.do(t, r.Method, path, form, nil)
				loc := resp.Header.Get("Location")
				got := in
				switch {
				case resp.StatusCode == http.StatusUnauthorized:
					got = unauth
				case resp.StatusCode == http.StatusForbidden:
					got = forbidden
				case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/login"):
					got = login
					if key == "POST /logout" && cl.cookie != "" {
						// Logging out also ends on the login page: it
						// got in if the session is now gone.
						_, err := e.store.Session(e.ctx, cl.cookie, e.now().UnixMilli(), time.Hour.Milliseconds())
						if errors.Is(err, plant.ErrNotFound) {
							got = in
						}
					}
				}
				want := expect(rule, who, r.Method, r.Path)
				if got != want {
					t.Errorf("%s %s as %s: status %d (Location %q) = %s, want %s; body: %.200s",
						r.Method, path, cl.name, resp.StatusCode, loc, got, want, body)
				}
				if want == login && r.Method == http.MethodGet && loc != "/login?next="+url.QueryEscape(path) {
					t.Errorf("redirect to %q, want back to %s after login", loc, path)
				}
			})
		}
	}
	for key := range routeRules {
		if !seen[key] {
			t.Errorf("table names %s, which is not registered", key)
		}
	}
}

func TestUnruledRouteRefused(t *testing.T) {
	e := newEnv(t)
	ec := e.srv.echo
	ec.GET("/sneaky", func(echo.Context) error { return nil })
	defer func() {
		if recover() == nil {
			t.Error("a route added without s.handle passed checkRules")
		}
	}()
	checkRules(ec)
}

func TestOpenViewing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OpenViewing = true })
	anon := e.anon()
	for _, tc := range []struct {
		method, path string
		want         outcome
	}{
		{http.MethodGet, "/", in},
		{http.MethodGet, "/reports", in},
		{http.MethodGet, "/api/v1/machines", in},
		{http.MethodGet, "/admin/machines", login},
		{http.MethodPost, "/admin/tokens", login},
		{http.MethodPost, "/downtime/stops/1/code", login},
		{http.MethodPost, "/api/v1/readings", unauth},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var form url.Values
			if tc.method == http.MethodPost {
				form = url.Values{}
			}
			resp, _ := anon.do(t, tc.method, tc.path, form, nil)
			got := in
			switch {
			case resp.StatusCode == http.StatusUnauthorized:
				got = unauth
			case resp.StatusCode == http.StatusForbidden:
				got = forbidden
			case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"):
				got = login
			}
			if got != tc.want {
				t.Errorf("status %d = %s, want %s", resp.StatusCode, got, tc.want)
			}
		})
	}
	d := docOf(t, anon, "/")
	if d.Find(`[data-testid="login-link"]`).Length() != 1 || d.Find(`[data-testid="nav-admin"]`).Length() != 0 {
		t.Error("open viewing: want a Log in link and no Admin nav")
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	adm := e.asAdminClient()
	// POST /admin/tokens with an empty form is refused as a bad form (400)
	// when it gets through, and 403 when the origin check stops it.
	for _, tc := range []struct {
		name string
		hdr  http.Header
		want int
	}{
		{"same origin", http.Header{"Origin": {e.ts.URL}}, http.StatusBadRequest},
		{"foreign origin", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"null origin", http.Header{"Origin": {"null"}}, http.StatusForbidden},
		{"no origin, no referer", http.Header{"Origin": {""}}, http.StatusForbidden},
		{"same-origin referer", http.Header{"Origin": {""}, "Referer": {e.ts.URL + "/admin/tokens"}}, http.StatusBadRequest},
		{"foreign referer", http.Header{"Origin": {""}, "Referer": {"http://evil.example/admin/tokens"}}, http.StatusForbidden},
		{"sec-fetch-site same-origin", http.Header{"Origin": {""}, "Sec-Fetch-Site": {"same-origin"}}, http.StatusBadRequest},
		{"sec-fetch-site cross-site", http.Header{"Origin": {""}, "Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := adm.do(t, http.MethodPost, "/admin/tokens", url.Values{}, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d; body %.200s", resp.StatusCode, tc.want, body)
			}
		})
	}
	t.Run("login form from another site", func(t *testing.T) {
		resp, _ := e.anon().do(t, http.MethodPost, "/login",
			url.Values{"name": {"admin"}, "password": {testPassword}}, http.Header{"Origin": {"http://evil.example"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("bearer token needs no origin", func(t *testing.T) {
		ing := e.bearer(t, "api", "ingest")
		resp, body := ing.do(t, http.MethodPost, "/api/v1/readings?topic=a/b/c/m/temp", url.Values{}, http.Header{"Origin": {""}})
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			t.Errorf("status %d, want the token accepted; body %.200s", resp.StatusCode, body)
		}
	})
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sessionFrom is the session cookie a response sets, "" if none.
func sessionFrom(resp *http.Response) string {
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.MaxAge >= 0 {
			return ck.Value
		}
	}
	return ""
}

func loginForm(name, pw, next string) url.Values {
	return url.Values{"name": {name}, "password": {pw}, "next": {next}}
}

func docOf(t *testing.T, cl *testClient, path string) *goquery.Document {
	t.Helper()
	resp, body := cl.get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as %s: status %d", path, cl.name, resp.StatusCode)
	}
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.CreateUser(e.ctx, "mia", db.RoleOperator, testPassword); err != nil {
		t.Fatal(err)
	}
	anon := e.anon()
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "mia", "not the password"},
		{"unknown name", "nobody", testPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := anon.post(t, "/login", loginForm(tc.user, tc.pw, "/"))
			if resp.StatusCode != http.StatusOK || sessionFrom(resp) != "" {
				t.Fatalf("status %d cookie %q, want the form again without a session", resp.StatusCode, sessionFrom(resp))
			}
			if !strings.Contains(body, badLogin) {
				t.Errorf("the refusal does not say %q", badLogin)
			}
		})
	}
	t.Run("right password", func(t *testing.T) {
		resp, _ := anon.post(t, "/login", loginForm("Mia", testPassword, "/reports?period=today"))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reports?period=today" {
			t.Fatalf("status %d to %q, want 303 to the page asked for", resp.StatusCode, resp.Header.Get("Location"))
		}
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
			t.Fatalf("cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure over http", ck)
		}
		me := &testClient{e: e, name: "mia", cookie: ck.Value}
		d := docOf(t, me, "/")
		if got := d.Find(`[data-testid="user-name"]`).Text(); got != "mia" {
			t.Errorf("header names %q, want mia", got)
		}
		if d.Find(`[data-testid="nav-admin"]`).Length() != 0 {
			t.Error("an operator sees the Admin nav")
		}
		if d.Find(`form[action="/logout"][method="post"]`).Length() != 1 {
			t.Error("no logout form in the header")
		}
	})
	t.Run("next stays on this site", func(t *testing.T) {
		for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
			resp, _ := anon.post(t, "/login", loginForm("mia", testPassword, next))
			if got := resp.Header.Get("Location"); got != "/" {
				t.Errorf("next %q: redirect to %q, want /", next, got)
			}
		}
	})
	t.Run("admin sees Admin", func(t *testing.T) {
		d := docOf(t, e.asAdminClient(), "/")
		if d.Find(`[data-testid="nav-admin"]`).Length() != 1 {
			t.Error("no Admin nav for an admin")
		}
	})
}

func TestLoginLockout(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.CreateUser(e.ctx, "sam", db.RoleViewer, testPassword); err != nil {
		t.Fatal(err)
	}
	anon := e.anon()
	for i := range 5 {
		if resp, _ := anon.post(t, "/login", loginForm("sam", "wrong password", "/")); sessionFrom(resp) != "" {
			t.Fatalf("attempt %d: logged in with a wrong password", i+1)
		}
	}
	resp, body := anon.post(t, "/login", loginForm("sam", testPassword, "/"))
	if sessionFrom(resp) != "" {
		t.Fatal("the right password worked during the lockout")
	}
	if !strings.Contains(body, "15 minutes") {
		t.Errorf("the lockout is not explained: %.300s", body)
	}
}

func TestLoginRateLimit(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	anon := e.anon()
	// Different names, so the per-user lockout is not what stops them.
	for i := range loginAttempts {
		resp, _ := anon.post(t, "/login", loginForm("guess"+string(rune('a'+i)), "password12345", "/"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d: status %d, want 200", i+1, resp.StatusCode)
		}
	}
	resp, _ := anon.post(t, "/login", loginForm("admin", testPassword, "/"))
	if resp.StatusCode != http.StatusTooManyRequests || sessionFrom(resp) != "" {
		t.Fatalf("attempt %d: status %d, want 429 and no session", loginAttempts+1, resp.StatusCode)
	}
	clk.Add(loginWindow + time.Second)
	resp, _ = anon.post(t, "/login", loginForm("admin", testPassword, "/"))
	if resp.StatusCode != http.StatusSeeOther || sessionFrom(resp) == "" {
		t.Errorf("after a minute: status %d, want a login", resp.StatusCode)
	}
}

func TestSessionLifecycle(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := newEnv(t, func(c *Config) { c.Now = clk.Now; c.SessionIdle = time.Hour })
	if _, err := e.store.CreateUser(e.ctx, "ola", db.RoleViewer, testPassword); err != nil {
		t.Fatal(err)
	}
	logIn := func(t *testing.T, old string) string {
		t.Helper()
		cl := &testClient{e: e, name: "ola", cookie: old}
		resp, _ := cl.post(t, "/login", loginForm("ola", testPassword, "/"))
		s := sessionFrom(resp)
		if resp.StatusCode != http.StatusSeeOther || s == "" {
			t.Fatalf("login: status %d", resp.StatusCode)
		}
		return s
	}
	works := func(secret string) bool {
		resp, _ := (&testClient{e: e, name: "ola", cookie: secret}).get(t, "/")
		return resp.StatusCode == http.StatusOK
	}

	first := logIn(t, "")
	t.Run("rotation", func(t *testing.T) {
		second := logIn(t, first)
		if second == first {
			t.Fatal("login kept the session id")
		}
		if works(first) {
			t.Error("the session from before the login still works")
		}
		if !works(second) {
			t.Error("the new session does not work")
		}
	})
	t.Run("logout", func(t *testing.T) {
		s := logIn(t, "")
		cl := &testClient{e: e, name: "ola", cookie: s}
		resp, _ := cl.post(t, "/logout", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: status %d", resp.StatusCode)
		}
		if _, err := e.store.Session(e.ctx, s, clk.Now().UnixMilli(), time.Hour.Milliseconds()); !errors.Is(err, plant.ErrNotFound) {
			t.Errorf("session after logout: err %v, want not found", err)
		}
		if works(s) {
			t.Error("the cookie works after logout")
		}
	})
	t.Run("idle expiry", func(t *testing.T) {
		s := logIn(t, "")
		clk.Add(50 * time.Minute)
		if !works(s) {
			t.Fatal("expired after 50 minutes of a 1 h idle limit")
		}
		clk.Add(50 * time.Minute) // 50 min since it was last used
		if !works(s) {
			t.Fatal("use did not extend the session")
		}
		clk.Add(61 * time.Minute)
		resp, _ := (&testClient{e: e, name: "ola", cookie: s}).get(t, "/reports")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Errorf("after 61 idle minutes: status %d, want 303 to login", resp.StatusCode)
		}
	})
	t.Run("disabled user kicked out", func(t *testing.T) {
		s := logIn(t, "")
		if !works(s) {
			t.Fatal("fresh session does not work")
		}
		adm := &testClient{e: e, name: "admin", cookie: mustSession(t, e, e.admin.ID, clk.Now())}
		u := userNamed(t, e, "ola")
		resp, body := adm.post(t, "/admin/users/"+itoa64(u.ID)+"/disabled", url.Values{"disabled": {"true"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: status %d; %.300s", resp.StatusCode, body)
		}
		if works(s) {
			t.Error("a disabled user's session still works")
		}
		resp, _ = e.anon().post(t, "/login", loginForm("ola", testPassword, "/"))
		if sessionFrom(resp) != "" {
			t.Error("a disabled user can log in")
		}
	})
}

func mustSession(t *testing.T, e *env, userID int64, now time.Time) string {
	t.Helper()
	s, err := e.store.CreateSession(e.ctx, userID, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func userNamed(t *testing.T, e *env, name string) db.User {
	t.Helper()
	us, err := e.store.Users(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no user %q", name)
	return db.User{}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func TestRevokedTokenStopsAtOnce(t *testing.T) {
	e := newEnv(t)
	tok, secret, err := e.store.CreateToken(e.ctx, "api", "read", "grafana", "test")
	if err != nil {
		t.Fatal(err)
	}
	cl := &testClient{e: e, name: "grafana", bearer: secret}
	if resp, _ := cl.get(t, "/api/v1/machines"); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token: status %d", resp.StatusCode)
	}
	resp, _ := e.asAdminClient().post(t, "/admin/tokens/"+itoa64(tok.ID)+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
	if resp, _ := cl.get(t, "/api/v1/machines"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", resp.StatusCode)
	}
}

func TestSetupLink(t *testing.T) {
	store := db.OpenTest(t)
	srv, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	e := &env{srv: srv, ts: ts, store: store, ctx: t.Context(), now: time.Now}
	secret, err := store.CreateSetupLink(e.ctx, time.Now().UnixMilli(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	anon := e.anon()
	if resp, _ := anon.get(t, "/setup/"+secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("setup form: status %d", resp.StatusCode)
	}
	form := url.Values{"name": {"boss"}, "password": {testPassword}, "password2": {testPassword}}
	resp, body := anon.post(t, "/setup/"+secret, form)
	if resp.StatusCode != http.StatusSeeOther || sessionFrom(resp) == "" {
		t.Fatalf("setup: status %d; %.300s", resp.StatusCode, body)
	}
	boss := &testClient{e: e, name: "boss", cookie: sessionFrom(resp)}
	if resp, _ := boss.get(t, "/admin/users"); resp.StatusCode != http.StatusOK {
		t.Errorf("the new admin gets /admin/users with status %d", resp.StatusCode)
	}
	form.Set("name", "intruder")
	if resp, _ := anon.post(t, "/setup/"+secret, form); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second use: status %d, want 404", resp.StatusCode)
	}
	if n, err := store.CountUsers(e.ctx); err != nil || n != 1 {
		t.Errorf("users = %d (%v), want 1", n, err)
	}
}

func TestForbiddenPageShowsWhoIsLoggedIn(t *testing.T) {
	e := newEnv(t)
	resp, body := e.as(t, db.RoleViewer).get(t, "/admin/machines")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	d := docFromBody(t, body)
	if got := d.Find(`[data-testid="user-name"]`).Text(); got != "viewer-user" {
		t.Errorf("403 page names %q, want viewer-user, so they see why", got)
	}
	if d.Find(`[data-testid="error-403"]`).Length() != 1 {
		t.Error("not the friendly error page")
	}
}
