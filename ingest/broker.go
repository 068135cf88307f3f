package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// storeTimeout bounds how long a QoS 1/2 publish waits for its commit. A
// store that takes longer is failing; the device keeps the message and
// resends it after reconnecting.
const storeTimeout = 30 * time.Second

// BrokerConfig configures the embedded MQTT broker.
type BrokerConfig struct {
	// Listener is bound by the caller, so the caller can report "address in
	// use" and pick a fallback port. The broker serves on it and closes it.
	Listener net.Listener
	// ExtraListeners are served beside Listener with the same hooks (an
	// MQTTS listener, tls.NewListener, beside plain MQTT, say); the broker
	// closes them too.
	ExtraListeners []net.Listener
	Sink           Sink
	Limits         Limits
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	Now            func() time.Time

	// Auth checks device usernames and passwords (*db.Store); nil: no
	// device can log in. AllowAnonymous lets clients without a username
	// connect and publish or subscribe anywhere: a convenience for the demo,
	// never the default. With neither, every client is refused.
	Auth           DeviceAuth
	AllowAnonymous bool
	// AuthCacheTTL is how long a successful device login is remembered, and
	// so the longest a disabled or deleted device keeps working; default
	// DefaultAuthCacheTTL.
	AuthCacheTTL time.Duration

	// DeviceRate caps the readings one client may publish per second (QoS 0
	// beyond it dropped, QoS 1 slowed), so one device cannot starve the
	// others; 0 means no cap.
	DeviceRate float64
}

// Broker is the embedded MQTT broker (MQTT 3.1.1 and 5) with ingest as a
// hook, so devices can publish to Andon directly.
type Broker struct {
	srv  *mqtt.Server
	hook *ingestHook
	auth *authHook
	addr net.Addr
}

// NewBroker builds the broker; Run serves it.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Listener == nil {
		return nil, errors.New("ingest: broker: no listener")
	}
	if cfg.Sink == nil {
		return nil, errors.New("ingest: broker: no sink")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}

	// mochi logs every connection at Info; only its warnings and errors are
	// worth a line in Andon's log.
	mochiLog := slog.New(minLevelHandler{min: slog.LevelWarn, inner: log.Handler()}).With("component", "mqtt_broker")
	// A packet limit well above the payload limit keeps a runaway device from
	// making the broker buffer megabytes, while payloads just over the
	// payload limit still arrive and are counted as too large.
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(max(1<<20, 4*cfg.Limits.withDefaults().MaxPayload))
	srv := mqtt.New(&mqtt.Options{Logger: mochiLog, Capabilities: caps})

	share, err := newDeviceShare(cfg.DeviceRate, cfg.Limits.withDefaults().MaxValues, log, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	hook := &ingestHook{
		in:    newIngester(cfg.Sink, cfg.Limits, log, cfg.Now, m.messages.WithLabelValues(sourceEmbedded)),
		srv:   srv,
		log:   log,
		share: share,
	}
	ah := newAuthHook(cfg, srv, log)
	switch {
	case cfg.Auth == nil && !cfg.AllowAnonymous:
		log.Warn("mqtt broker: no device credentials and anonymous access off: every client will be refused")
	case cfg.AllowAnonymous:
		log.Warn("mqtt broker: ANONYMOUS ACCESS IS ON: any client without a username may publish and subscribe to every topic")
	}
	// The auth hook comes first, so a refused publish never reaches the
	// ingest hook: mochi checks the ACL before it calls OnPublish.
	if err := srv.AddHook(ah, nil); err != nil {
		return nil, fmt.Errorf("ingest: broker: add auth hook: %w", err)
	}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("ingest: broker: add ingest hook: %w", err)
	}
	// listeners.Net serves on a listener bound elsewhere, unlike listeners.TCP
	// which binds its own address.
	if err := srv.AddListener(listeners.NewNet("andon", cfg.Listener)); err != nil {
		return nil, fmt.Errorf("ingest: broker: add listener: %w", err)
	}
	for i, ln := range cfg.ExtraListeners {
		if ln == nil {
			continue
		}
		if err := srv.AddListener(listeners.NewNet(fmt.Sprintf("andon-%d", i+2), ln)); err != nil {
			return nil, fmt.Errorf("ingest: broker: add listener %s: %w", ln.Addr(), err)
		}
	}
	return &Broker{srv: srv, hook: hook, auth: ah, addr: cfg.Listener.Addr()}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.addr }

// Run serves until ctx is done, then closes the broker and waits for
// publishes that are still being stored.
func (b *Broker) Run(ctx context.Context) error {
	b.hook.start(ctx)
	b.auth.start(ctx)
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("ingest: broker: serve: %w", err)
	}
	var sweeping sync.WaitGroup
	sweeping.Go(func() { b.auth.sweep(ctx) })
	<-ctx.Done()
	sweeping.Wait()
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("ingest: broker: close: %w", err)
	}
	b.hook.stop()
	return nil
}

// ingestHook ingests every publish in mochi's OnPublish, which runs on the
// publishing client's goroutine before the PUBACK is written.
type ingestHook struct {
	mqtt.HookBase
	in    *ingester
	srv   *mqtt.Server
	log   *slog.Logger
	share *deviceShare // nil: no cap per client

	// mu is held for reading while a publish is being ingested, so stop can
	// wait for those in flight: after Run returns, the sink is not called.
	mu     sync.RWMutex
	ctx    context.Context
	closed bool
}

// ID names the hook in mochi's logs.
func (h *ingestHook) ID() string { return "andon-ingest" }

// Provides declares the events the hook handles.
func (h *ingestHook) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnDisconnect }

// OnDisconnect forgets a client's share of the ingest rate.
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if h.share != nil {
		h.share.forget(cl.ID)
	}
}

func (h *ingestHook) start(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
}

func (h *ingestHook) stop() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// OnPublish stores the readings of a publish. For QoS 1 and 2 it waits for
// the commit, so the PUBACK (or PUBREC) means "stored". A store failure
// returns packets.ErrRejectPacket, which makes mochi send no ack, and
// disconnects the client so it resends; the error must never be a wrapped
// packets.Code, which panics inside mochi. A payload that cannot be parsed is
// not a store failure: it is acknowledged and forwarded as usual, or the
// device would resend garbage forever.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed || h.ctx == nil {
		return pk, packets.ErrRejectPacket
	}
	rs := h.in.readings(pk.TopicName, pk.Payload)
	if len(rs) == 0 {
		return pk, nil
	}
	// Inline publishes come from Andon itself with nobody to resend them, so
	// they are never waited for.
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		if h.share != nil && !cl.Net.Inline && !h.share.allow(cl.ID, len(rs)) {
			return pk, nil // over the client's share: dropped and counted
		}
		// A false means the queue was full; the sink counts the drop.
		h.in.sink.TryEnqueue(rs)
		return pk, nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	var err error
	if h.share != nil {
		err = h.share.wait(ctx, cl.ID, len(rs))
	}
	if err == nil {
		err = h.in.sink.Write(ctx, rs)
	}
	cancel()
	if err != nil {
		h.log.Warn("mqtt publish not stored; disconnecting the client so it resends",
			"client_id", cl.ID, "topic", pk.TopicName, "error", err)
		// MQTT-3.3.4-1 lets a client resend an unacknowledged publish only
		// after reconnecting, so the connection is closed here.
		_ = h.srv.DisconnectClient(cl, packets.ErrServerBusy)
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// minLevelHandler drops records below min, so a noisy library logs only what
// matters through the application's handler.
type minLevelHandler struct {
	min   slog.Level
	inner slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.inner.Enabled(ctx, l)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{min: h.min, inner: h.inner.WithAttrs(attrs)}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: h.min, inner: h.inner.WithGroup(name)}
}
