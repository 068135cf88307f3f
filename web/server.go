// Package web serves Andon's pages, its JSON API, /metrics, /healthz and the
// /ws live updates. echo.Context never leaves this package; pages are
// rendered by package views from view models built here.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"andon/plant"
)

// Store is what the web needs from the database; *db.Store implements it.
// The downtime and report pages declare what they need beside their handlers.
type Store interface {
	PageStore
	DowntimeStore
	ReportStore
	AuthStore
	UserStore
	AuditStore
	DeviceStore
	BoardStore
	ExportStore // exports, the JSON API and backups (export.go)
	HistoryStore
	MappingStore // mapping rules and unmapped topics (mapping.go)
}

// PageStore is what the overview, machine, admin-list and API pages need.
type PageStore interface {
	Lines(ctx context.Context) ([]plant.Line, error)
	Machine(ctx context.Context, id int64) (plant.Machine, error) // plant.ErrNotFound (wrapped) if unknown
	Tags(ctx context.Context) ([]plant.Tag, error)
	Series(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int) ([]plant.Point, error)
	Rejects(ctx context.Context, limit int) ([]plant.Reject, error)
}

// Config is what New needs. Store and Logger are required.
type Config struct {
	Store       Store
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // nil: metrics are not registered
	Gatherer    prometheus.Gatherer   // served on /metrics; nil: Registerer if it is a Gatherer
	Version     string
	MQTTAddr    string         // "host:port" of the embedded broker for the empty state; "" if off
	HeartbeatMS int64          // default plant.DefaultHeartbeatMS
	Location    *time.Location // plant time zone; default time.Local
	Health      func(ctx context.Context) error
	// Problems, if set, lists what is wrong now (a full disk, a lost broker)
	// as sentences; every page shows them in a banner.
	Problems func() []string
	Now      func() time.Time
	// Engine is told when an admin changes what it derives states from;
	// nil: nobody to tell.
	Engine Engine

	// Security (see auth.go). OpenViewing lets anyone read the pages without
	// logging in (the demo's convenience, said loudly at start); writes always
	// need a user. SecureCookies marks cookies Secure (HTTPS). SessionIdle is
	// how long a session lives without use (default 12 h).
	OpenViewing   bool
	SecureCookies bool
	SessionIdle   time.Duration

	// Ingest takes readings posted to /api/v1/readings (with an ingest
	// token); nil: the route answers 503.
	Ingest IngestSink

	// OnMappingChanged is called after an admin changed the mapping rules
	// (mapping.go), so ingest reloads them; its error is shown to the
	// admin. nil: nobody to tell.
	OnMappingChanged func(ctx context.Context) error
}

// IngestSink is where HTTP-posted readings go: the DB writer.
type IngestSink interface {
	Write(ctx context.Context, rs []plant.Reading) error
	Reject(r plant.Reject)
}

// Engine is the live state engine as the configuration pages see it.
type Engine interface {
	Reload()                    // machines' rules, ideal cycle times and tag roles changed
	SetSettings(plant.Settings) // thresholds, heartbeat or state words changed
}

// noEngine stands in when there is no engine to tell.
type noEngine struct{}

func (noEngine) Reload()                    {}
func (noEngine) SetSettings(plant.Settings) {}

// Server is the web front of Andon: HTTP handlers plus the websocket hub.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	loc     *time.Location
	now     func() time.Time
	metrics *metrics
	echo    *echo.Echo
	hub     *hub
}

// New checks the configuration and builds the server; call Run to start the hub.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: config: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatMS <= 0 {
		cfg.HeartbeatMS = plant.DefaultHeartbeatMS
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Engine == nil {
		cfg.Engine = noEngine{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnMappingChanged == nil {
		cfg.OnMappingChanged = func(context.Context) error { return nil }
	}
	if cfg.Gatherer == nil {
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			cfg.Gatherer = g
		} else {
			cfg.Gatherer = prometheus.NewRegistry()
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   cfg.Store,
		loc:     cfg.Location,
		now:     cfg.Now,
		metrics: m,
	}
	s.hub = newHub(s)
	s.echo = s.routes()
	return s, nil
}

// Handler is the HTTP handler for every route.
func (s *Server) Handler() http.Handler { return s.echo }

// Run runs the websocket hub until ctx is done, then closes every client
// with close code 1012 ("service restart") and returns.
func (s *Server) Run(ctx context.Context) error { return s.hub.run(ctx) }

// Committed is called by the DB writer after each commit, on its goroutine.
// It never blocks on the network: it records what changed for the next flush.
func (s *Server) Committed(rs []plant.Stored, newTags bool) { s.hub.committed(rs, newTags) }
