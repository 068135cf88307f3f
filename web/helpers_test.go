package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
type env struct {
	srv   *Server
	ts    *httptest.Server
	store *db.Store
	w     *db.Writer
	reg   *prometheus.Registry
	ctx   context.Context
	stop  func() // cancels the hub and the writer and waits for them
}

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
	ts := httptest.NewServer(srv.Handler())
	var once sync.Once
	e := &env{srv: srv, ts: ts, store: store, w: w, reg: reg, ctx: context.Background()}
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
