package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"andon/db"
	"andon/ingest"
	"andon/ingest/sim"
	"andon/plant"
	"andon/web"
)

func (env *environment) serveCmd(ctx context.Context, args []string) error {
	var cfg serveConfig
	fs := newFlagSet(&cfg)
	explicit, err := env.parse(fs, args, "andon serve [flags]")
	if err != nil {
		return err
	}
	cfg.explicit = explicit
	if cfg.Demo {
		// The demo is for looking around: open viewing and an open broker,
		// unless said otherwise, and announced loudly at start.
		if !explicit["open-viewing"] {
			cfg.OpenViewing = true
		}
		if !explicit["mqtt-anonymous"] {
			cfg.MQTTAnonymous = true
		}
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return env.serve(ctx, cfg)
}

// startCPUProfile profiles the process until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("serve: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("serve: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// servePprof serves Go's profiling endpoints on a listener of their own,
// apart from the pages and their logins: heap and goroutine profiles of a
// running plant, for performance reports.
func servePprof(log *slog.Logger, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve: --pprof-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("profiling endpoints served", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// serve wires the product together: store → writer → ingest (embedded broker
// and/or external client) → web, and runs it until ctx is done. Shutdown goes
// in the order that loses nothing: stop taking readings, commit what is
// queued, then close websockets (code 1012) and the HTTP server.
func (env *environment) serve(ctx context.Context, cfg serveConfig) error {
	log := env.logger(cfg.LogLevel, cfg.LogFormat)
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	// GOMEMLIMIT, read by the runtime itself, wins unless the flag is given.
	if cfg.explicit["memory-limit"] || os.Getenv("GOMEMLIMIT") == "" {
		limit := int64(cfg.MemoryLimit)
		if limit <= 0 {
			limit = math.MaxInt64
		}
		debug.SetMemoryLimit(limit)
	}
	if cfg.PprofAddr != "" {
		stop, err := servePprof(log, cfg.PprofAddr)
		if err != nil {
			return err
		}
		defer stop()
	}

	// Bind the listeners first: a port in use is the commonest failure on a
	// first start and deserves a one-line answer before anything else happens.
	httpLn, err := env.listen(log, "http", cfg.HTTP, defaultHTTP, cfg.Demo && !cfg.explicit["http"])
	if err != nil {
		return err
	}
	defer httpLn.Close()
	var mqttLn net.Listener
	if cfg.MQTTListen != "off" {
		mqttLn, err = env.listen(log, "mqtt-listen", cfg.MQTTListen, defaultMQTTListen, cfg.Demo && !cfg.explicit["mqtt-listen"])
		if err != nil {
			return err
		}
		defer mqttLn.Close()
	}

	// TLS: one certificate for HTTPS and for MQTT over TLS.
	var tlsCfg *tls.Config
	var mqttsLn net.Listener
	if cfg.TLSCert != "" {
		if tlsCfg, err = ingest.LoadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("serve: --tls-cert: %w", err)
		}
		httpLn = tls.NewListener(httpLn, tlsCfg)
		if cfg.MQTTSListen != "off" && cfg.MQTTListen != "off" {
			ln, err := env.listen(log, "mqtts-listen", cfg.MQTTSListen, ":8883", false)
			if err != nil {
				return err
			}
			defer ln.Close()
			mqttsLn = tls.NewListener(ln, tlsCfg)
		}
	}

	section, err := readPlantSection(cfg.Config)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	configRules, err := readMappingSection(cfg.Config)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	store, err := db.Open(ctx, filepath.Join(cfg.Data, "andon.db"), db.Options{
		Synchronous: strings.ToUpper(cfg.Synchronous),
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer store.Close()
	var demoSeed int64
	demoHistory := time.Hour
	if cfg.Demo {
		// The same demo plant on the same data dir: its seed is kept there,
		// so machines keep their ideal cycle times across restarts, and the
		// hour of history is published only into a data dir without machines
		// (a second copy would interleave with the stored readings).
		if demoSeed, err = keptSeed(cfg.Data); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		lines, err := store.Lines(ctx)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if len(lines) > 0 {
			demoHistory = 0
		}
		section = demoPlant(section, cfg.DemoMachines, demoSeed)
	}
	// The config file's mapping rules replace those of the last start;
	// the admin's stay, after them.
	if err := store.SetConfigMappingRules(ctx, configRules); err != nil {
		return fmt.Errorf("serve: config: mapping: %w", err)
	}
	mapping := ingest.NewMapping(nil)
	reloadMapping := func(ctx context.Context) error {
		rules, err := store.MappingRules(ctx)
		if err != nil {
			return err
		}
		set, err := ingest.CompileRules(rules)
		if err != nil {
			return fmt.Errorf("mapping rules: %w", err)
		}
		mapping.Set(set)
		return nil
	}
	if err := reloadMapping(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	dialects := ingest.DialectConfig{
		Mapping:            mapping,
		Location:           cfg.location,
		HomeAssistantBirth: true,
		Sparkplug: ingest.SparkplugConfig{
			HostID:         cfg.SparkplugHostID,
			RebirthOnGap:   cfg.SparkplugRebirthOnGap,
			ReorderTimeout: cfg.SparkplugReorder,
		},
	}
	pending, err := applyPlant(ctx, store, section, cfg.location)
	if err != nil {
		return fmt.Errorf("serve: config: %w", err)
	}
	settings, err := store.Settings(ctx)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if cfg.explicit["heartbeat"] {
		settings.HeartbeatMS = cfg.Heartbeat.Milliseconds()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "andon_build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))

	mqttAddr := ""
	if mqttLn != nil {
		mqttAddr = publicAddr(mqttLn.Addr())
	}
	// The engine turns committed readings into state spans and stops, inside
	// the writer's transactions, and tells the pages which machines changed
	// (site is set below, before any reading can arrive).
	var site *web.Server
	engine, err := db.NewEngine(ctx, store, db.EngineConfig{Settings: settings, Logger: log,
		Notify: func(machines []int64) { site.StopsChanged(machines) }})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer engine.Close()
	writer := db.NewWriter(store, db.WriterConfig{
		QueueReadings: cfg.WriteQueue,
		Registerer:    reg,
		Logger:        log,
		OnCommit:      func(rs []plant.Stored, newTags bool) { site.Committed(rs, newTags) },
		Hook:          engine,
	})
	// History: old readings' rollups are built and retention enforced in
	// the background, in small steps through the writer (db/retention.go).
	retention, err := db.NewRetention(ctx, writer, db.RetentionConfig{
		Raw: time.Duration(cfg.KeepRaw), Minute: time.Duration(cfg.KeepMinute), Hour: time.Duration(cfg.KeepHour),
		MaxBytes: int64(cfg.MaxDBSize), Logger: log,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	reg.MustRegister(db.NewStorageCollector(store))
	var client *ingest.Client // set below, before the pages are served
	site, err = web.New(web.Config{
		Store:            store,
		Logger:           log,
		Registerer:       reg,
		Gatherer:         reg,
		Version:          version,
		MQTTAddr:         mqttAddr,
		HeartbeatMS:      settings.HeartbeatMS,
		Location:         cfg.location,
		Health:           health(store, writer),
		Problems:         func() []string { return problems(writer, client, cfg.location) },
		Engine:           engine,
		OpenViewing:      cfg.OpenViewing,
		SecureCookies:    tlsCfg != nil,
		SessionIdle:      cfg.SessionIdle,
		Ingest:           writer,
		OnMappingChanged: reloadMapping,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := env.announceAccess(ctx, log, store, cfg, httpLn, tlsCfg != nil); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	var broker *ingest.Broker
	if mqttLn != nil {
		broker, err = ingest.NewBroker(ingest.BrokerConfig{
			Listener:       mqttLn,
			ExtraListeners: listenersOf(mqttsLn),
			Sink:           writer,
			Auth:           store,
			AllowAnonymous: cfg.MQTTAnonymous,
			DeviceRate:     cfg.DeviceRate,
			Dialects:       dialects,
			Limits:         ingest.DefaultLimits(),
			Logger:         log,
			Registerer:     reg,
		})
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if cfg.MQTTURL != "" {
		id, err := clientID(cfg.Data)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		client, err = ingest.NewClient(ingest.ClientConfig{
			URL:        cfg.MQTTURL,
			ClientID:   id,
			Topics:     splitList(cfg.MQTTTopics),
			CAFile:     cfg.MQTTCA,
			Dialects:   dialects,
			Sink:       writer,
			Limits:     ingest.DefaultLimits(),
			Logger:     log,
			Registerer: reg,
		})
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}

	srv := &http.Server{
		Handler:           site.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	g, gctx := errgroup.WithContext(ctx)
	// The writer outlives ingest: it stops only after every source of
	// readings has returned, so what they queued is committed.
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriter()
	g.Go(func() error { return writer.Run(writerCtx) })

	sources, sctx := errgroup.WithContext(gctx)
	if broker != nil {
		sources.Go(func() error { return broker.Run(sctx) })
	}
	if client != nil {
		sources.Go(func() error { return client.Run(sctx) })
	}
	if cfg.Demo {
		url := cfg.MQTTURL
		if mqttLn != nil {
			url = "mqtt://" + loopbackAddr(mqttLn.Addr())
		}
		sources.Go(func() error {
			// An hour of history first, so the demo's charts are full at once.
			err := sim.Run(sctx, sim.Config{URL: url, Machines: cfg.DemoMachines, Seed: demoSeed, History: demoHistory, Logger: log.With("component", "demo")})
			if err != nil && sctx.Err() == nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		err := sources.Wait()
		stopWriter()
		return err
	})

	if len(pending) > 0 {
		// Machines the config names but that have not published yet get
		// their settings once their first reading has arrived.
		g.Go(func() error {
			applyPending(gctx, store, pending, log)
			engine.Reload()
			return nil
		})
	}
	g.Go(func() error { return db.RunBackfill(gctx, writer, db.BackfillConfig{Logger: log}) })
	g.Go(func() error { return retention.Run(gctx) })
	g.Go(func() error { return site.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: committing what is queued, closing connections")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})

	log.Info("andon is up",
		"version", version,
		"url", "http://"+publicAddr(httpLn.Addr()),
		"mqtt", orOff(mqttAddr),
		"mqtt_url", redactURL(cfg.MQTTURL),
		"data", cfg.Data,
		"demo", cfg.Demo)
	if env.ready != nil {
		env.ready(listening{HTTP: loopbackAddr(httpLn.Addr()), MQTT: loopbackIfSet(mqttLn)})
	}

	err = g.Wait()
	log.Info("andon stopped")
	return err
}

// listen binds addr. An address in use is a one-line error that names the
// flag to change, unless fallback is set (the demo on a default port), in
// which case a free port is taken and the log says so loudly.
func (env *environment) listen(log *slog.Logger, flagName, addr, def string, fallback bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("--%s %s: %w", flagName, addr, err)
	}
	if !fallback || addr != def {
		return nil, fmt.Errorf("address %s is already in use by another program: choose another with --%s ADDR (or %s)",
			addr, flagName, envName(flagName))
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("--%s: %s is in use and no free port was found: %w", flagName, addr, err)
	}
	log.Warn("!!! DEFAULT PORT IN USE: the demo took a free port instead !!!",
		"flag", "--"+flagName, "wanted", addr, "using", publicAddr(ln.Addr()))
	return ln, nil
}

// clientID is the external-broker client id, made once and kept in the data
// directory: the broker keeps the persistent session under this id, so it
// must not change across restarts.
func clientID(dir string) (string, error) {
	path := filepath.Join(dir, "mqtt-client-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("client id: %w", err)
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("client id: %w", err)
	}
	id := "andon-" + hex.EncodeToString(r[:])
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("client id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("client id: %w", err)
	}
	return id, nil
}

// publicAddr is how a listener is shown to people: "localhost:8080" for a
// wildcard bind, which is what they would type into a browser on this host.
func publicAddr(a net.Addr) string { return withHost(a, "localhost") }

// loopbackAddr is an address this process can dial to reach its own listener.
func loopbackAddr(a net.Addr) string { return withHost(a, "127.0.0.1") }

// withHost replaces a wildcard (or missing) host in a listener's address.
func withHost(a net.Addr, wildcard string) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = wildcard
	}
	return net.JoinHostPort(host, port)
}

func loopbackIfSet(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return loopbackAddr(ln.Addr())
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// redactURL hides a password in a broker URL before it is logged.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	userinfo := u[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		userinfo = userinfo[:i] + ":xxxxx"
	}
	return u[:scheme+3] + userinfo + u[at:]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func listenersOf(ln net.Listener) []net.Listener {
	if ln == nil {
		return nil
	}
	return []net.Listener{ln}
}

// announceAccess says at start who can get in: a one-time link to create
// the first admin when there are no users, and loudly what the demo opened.
func (env *environment) announceAccess(ctx context.Context, log *slog.Logger, store *db.Store, cfg serveConfig, httpLn net.Listener, https bool) error {
	if cfg.OpenViewing {
		log.Warn("!!! OPEN VIEWING: anyone who can reach this server can see the pages without logging in (--open-viewing) !!!")
	}
	if cfg.MQTTAnonymous && cfg.MQTTListen != "off" {
		log.Warn("!!! ANONYMOUS MQTT: any client can publish to the embedded broker without credentials (--mqtt-anonymous) !!!")
	}
	n, err := store.CountUsers(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	secret, err := store.CreateSetupLink(ctx, time.Now().UnixMilli(), 24*time.Hour)
	if err != nil {
		return err
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	// The link is the one secret Andon prints: it is what creates the first
	// admin, and it works once, within a day. Printed to the console (stderr),
	// not only to a log file someone else might read.
	fmt.Fprintf(env.stderr, "\nNo users yet. Create the first admin within 24 h, once, at:\n\n    %s://%s/setup/%s\n\nor with: andon user add --data %s --name NAME --role admin\n\n",
		scheme, publicAddr(httpLn.Addr()), secret, cfg.Data)
	return nil
}

// health is /healthz's check: the database answers, and the writer is not
// failing (a full disk answers reads but takes no readings).
func health(store *db.Store, writer *db.Writer) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := store.Ping(ctx); err != nil {
			return err
		}
		if since, err := writer.Failing(); err != nil {
			return fmt.Errorf("readings cannot be stored since %s: %w", since.Format(time.RFC3339), err)
		}
		return nil
	}
}

// brokerGrace is how long the external broker may be out of reach before
// the pages say so: the first connection and a quick reconnect are not news.
var brokerGrace = 10 * time.Second

// problems are what every page's banner says is wrong right now, in
// sentences for the people on the shop floor.
func problems(writer *db.Writer, client *ingest.Client, loc *time.Location) []string {
	var out []string
	if since, err := writer.Failing(); err != nil {
		out = append(out, fmt.Sprintf("Readings cannot be stored since %s (%v). Pages show what is stored; devices keep what was not acknowledged and send it again.",
			since.In(loc).Format("15:04"), err))
	}
	if client != nil {
		if st := client.Status(); !st.Connected && time.Since(st.Since) > brokerGrace {
			out = append(out, fmt.Sprintf("No connection to the MQTT broker %s since %s (%s): no readings arrive from it. Andon keeps trying to reconnect.",
				st.URL, st.Since.In(loc).Format("15:04"), time.Since(st.Since).Round(time.Second)))
		}
	}
	return out
}
