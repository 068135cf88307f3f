package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/prometheus/client_golang/prometheus"

	"andon/db"
	"andon/plant"
)

// env is a real server on a real store, with the DB writer pushing its
// commits into the server the way cmd/andon wires them.
//
// Requests to ts that carry no credentials of their own (no Cookie, no
// Authorization, no anonymousHeader) are sent as the env's admin, with a
// same-origin Origin on POSTs: so every existing test, whatever client it
// uses (e.get, a plain http.Client, a websocket dialer), acts as a logged-in
// admin. Tests of access rules use e.as, e.anon and e.bearer, whose requests
// always name their credentials and pass through untouched.
type env struct {
	srv   *Server
	ts    *httptest.Server
	store *db.Store
	w     *db.Writer
	reg   *prometheus.Registry
	ctx   context.Context
	stop  func() // cancels the hub and the writer and waits for them

	admin       db.User
	adminCookie string // the admin's session secret
	now         func() time.Time
}

// anonymousHeader marks a test request that must go out without the
// default admin session.
const anonymousHeader = "X-Test-Anonymous"

// testPassword is every test user's password.
const testPassword = "correct horse battery"

func newEnv(t *testing.T, edit ...func(*Config)) *env {
	t.Helper()
	store := db.OpenTest(t)
	reg := prometheus.NewRegistry()
	cfg := Config{
		Store: store, Registerer: reg, Gatherer: reg, Version: "v-test",
		MQTTAddr: "0.0.0.0:18830", Location: time.UTC,
	}
	for _, f := range edit {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w := db.NewWriter(store, db.WriterConfig{OnCommit: srv.Committed})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("writer: %v", err)
		}
	})
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	ctx0 := context.Background()
	admin, err := store.CreateUser(ctx0, "admin", db.RoleAdmin, testPassword)
	if err != nil {
		t.Fatalf("create admin: %v", err)
	}
	secret, err := store.CreateSession(ctx0, admin.ID, now().UnixMilli())
	if err != nil {
		t.Fatalf("admin session: %v", err)
	}
	ts := httptest.NewServer(asAdmin(srv.Handler(), secret))
	var once sync.Once
	e := &env{srv: srv, ts: ts, store: store, w: w, reg: reg, ctx: ctx0, admin: admin, adminCookie: secret, now: now}
	e.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(func() {
		e.stop()
		ts.Close()
	})
	return e
}

// asAdmin sends requests without credentials of their own as the admin
// session secret, with a same-origin Origin on state-changing requests.
func asAdmin(h http.Handler, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") == "" && r.Header.Get("Authorization") == "" && r.Header.Get(anonymousHeader) == "" {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: secret})
			if unsafeMethod(r.Method) && r.Header.Get("Origin") == "" && r.Header.Get("Referer") == "" {
				r.Header.Set("Origin", "http://"+r.Host)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// testClient sends requests with fixed credentials (a session, a bearer token
// or none) and does not follow redirects, so 303s are seen.
type testClient struct {
	e      *env
	name   string
	cookie string // session secret, "" for none
	bearer string // token secret, "" for none
}

// anon is a client without credentials.
func (e *env) anon() *testClient { return &testClient{e: e, name: "anonymous"} }

// as creates a user of the role (named after it, once per env) and logs it in.
func (e *env) as(t *testing.T, role db.Role) *testClient {
	t.Helper()
	name := string(role) + "-user"
	u, err := e.store.CreateUser(e.ctx, name, role, testPassword)
	if err != nil {
		// Already made by an earlier call in this test: find it.
		us, uerr := e.store.Users(e.ctx)
		if uerr != nil {
			t.Fatalf("users: %v", uerr)
		}
		found := false
		for _, x := range us {
			if x.Name == name {
				u, found = x, true
			}
		}
		if !found {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	secret, err := e.store.CreateSession(e.ctx, u.ID, e.now().UnixMilli())
	if err != nil {
		t.Fatalf("session for %s: %v", name, err)
	}
	return &testClient{e: e, name: name, cookie: secret}
}

// asAdminClient is a client with the env's admin session.
func (e *env) asAdminClient() *testClient {
	return &testClient{e: e, name: "admin", cookie: e.adminCookie}
}

// bearer creates a token of the kind and scope and returns a client using it.
func (e *env) bearer(t *testing.T, kind, scope string) *testClient {
	t.Helper()
	tok, secret, err := e.store.CreateToken(e.ctx, kind, scope, kind+"-"+scope, "test")
	if err != nil {
		t.Fatalf("create token %s/%s: %v", kind, scope, err)
	}
	return &testClient{e: e, name: "token " + kind + ":" + scope + " " + tok.Prefix, bearer: secret}
}

// do sends a request; form (may be nil) is the body of a POST. hdr is added
// as given; a POST gets a same-origin Origin unless hdr says otherwise
// (an empty value there means: send no Origin).
func (cl *testClient) do(t *testing.T, method, path string, form url.Values, hdr http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, cl.e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if unsafeMethod(method) {
		req.Header.Set("Origin", cl.e.ts.URL)
	}
	for k, vs := range hdr {
		req.Header.Del(k)
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	req.Header.Set(anonymousHeader, "1")
	if cl.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cl.cookie})
	}
	if cl.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+cl.bearer)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp, string(b)
}

func (cl *testClient) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return cl.do(t, http.MethodGet, path, nil, nil)
}

func (cl *testClient) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return cl.do(t, http.MethodPost, path, form, nil)
}

// write commits readings through the real writer.
func (e *env) write(t *testing.T, rs ...plant.Reading) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.w.Write(ctx, rs); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// machineID finds a machine's id by its machine level.
func (e *env) machineID(t *testing.T, name string) int64 {
	t.Helper()
	lines, err := e.store.Lines(e.ctx)
	if err != nil {
		t.Fatalf("lines: %v", err)
	}
	for _, l := range lines {
		for _, m := range l.Machines {
			if m.Path.Machine == name {
				return m.ID
			}
		}
	}
	t.Fatalf("no machine %q", name)
	return 0
}

// tagID finds a tag's id by machine level and metric.
func (e *env) tagID(t *testing.T, machine, metric string) int64 {
	t.Helper()
	tags, err := e.store.Tags(e.ctx)
	if err != nil {
		t.Fatalf("tags: %v", err)
	}
	for _, tg := range tags {
		if strings.HasSuffix(tg.Machine, "/"+machine) || tg.Machine == machine {
			if tg.Metric == metric {
				return tg.ID
			}
		}
	}
	t.Fatalf("no tag %s/%s", machine, metric)
	return 0
}

func (e *env) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp, string(b)
}

func (e *env) doc(t *testing.T, path string, wantCode int) *goquery.Document {
	t.Helper()
	resp, body := e.get(t, path)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: status %d, want %d; body:\n%s", path, resp.StatusCode, wantCode, body)
	}
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return d
}

func reading(line, machine, metric string, ts int64, v float64) plant.Reading {
	return plant.Reading{
		Path: plant.Path{Site: "acme", Area: "hall-1", Line: line, Machine: machine}, Metric: metric,
		TS: ts, Value: v, Topic: "acme/hall-1/" + line + "/" + machine + "/" + metric,
	}
}

func word(line, machine, metric string, ts int64, w string) plant.Reading {
	r := reading(line, machine, metric, ts, 0)
	r.Word = w
	return r
}

// failingStore is a Store whose page queries fail, for 500 paths. The
// embedded nil Store stands in for the downtime and report methods: a page
// that reached one of them after a failed page query would panic, which the
// tests would show.
type failingStore struct{ Store }

var errBroken = errors.New("disk on fire: secret internals")

func (failingStore) Lines(context.Context) ([]plant.Line, error) { return nil, errBroken }
func (failingStore) Machine(context.Context, int64) (plant.Machine, error) {
	return plant.Machine{}, errBroken
}
func (failingStore) Tags(context.Context) ([]plant.Tag, error) { return nil, errBroken }
func (failingStore) Series(context.Context, int64, int64, int64, int) ([]plant.Point, error) {
	return nil, errBroken
}
func (failingStore) Rejects(context.Context, int) ([]plant.Reject, error) { return nil, errBroken }

// A failing store cannot check credentials either: a request with a cookie
// or token gets a 500, never a way in.
func (failingStore) Session(context.Context, string, int64, int64) (db.Session, error) {
	return db.Session{}, errBroken
}
func (failingStore) TokenBySecret(context.Context, string, int64) (db.Token, error) {
	return db.Token{}, errBroken
}

// lineIDs maps the store's line names to their ids.
func (e *env) lineIDs(t *testing.T) map[string]int64 {
	t.Helper()
	lines, err := e.store.Lines(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, l := range lines {
		ids[l.Name] = l.ID
	}
	return ids
}
