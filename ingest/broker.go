package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"andon/ingest/sparkplug"
	"andon/plant"
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

	// Dialects configures the decoders: mapping rules, the plant's time
	// zone and the Sparkplug B host.
	Dialects DialectConfig
}

// Broker is the embedded MQTT broker (MQTT 3.1.1 and 5) with ingest as a
// hook, so devices can publish to Andon directly.
type Broker struct {
	srv  *mqtt.Server
	hook *ingestHook
	auth *authHook
	addr net.Addr
	// haBirth: publish Home Assistant's birth message at start.
	haBirth bool
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
	// The inline client lets Andon publish itself: the Sparkplug host's
	// STATE and its rebirth requests.
	srv := mqtt.New(&mqtt.Options{Logger: mochiLog, Capabilities: caps, InlineClient: true})

	share, err := newDeviceShare(cfg.DeviceRate, cfg.Limits.withDefaults().MaxValues, log, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	hook := &ingestHook{
		in:     newIngester(cfg.Sink, cfg.Limits, log, cfg.Now, m.messages.WithLabelValues(sourceEmbedded)),
		srv:    srv,
		log:    log,
		share:  share,
		ackers: map[*mqtt.Client]*acker{},
	}
	hook.in.dialects = newDialects(cfg.Dialects, cfg.Limits, func(topic string, payload []byte) error {
		// A rebirth request is decided inside a client's OnPublish; the
		// inline publish runs the hooks again, so it goes on its own
		// goroutine (a few a minute at most: the host limits them).
		go func() {
			if err := srv.Publish(topic, payload, false, 0); err != nil {
				log.Warn("sparkplug: command not published", "topic", topic, "error", err)
			}
		}()
		return nil
	}, log)
	hook.hostID = cfg.Dialects.Sparkplug.hostID()
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newSparkplugCollector(hook.in.dialects.spb, sourceEmbedded)); err != nil {
			return nil, fmt.Errorf("ingest: broker: register metrics: %w", err)
		}
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
	return &Broker{srv: srv, hook: hook, auth: ah, addr: cfg.Listener.Addr(), haBirth: cfg.Dialects.HomeAssistantBirth}, nil
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
	b.hook.state(true)
	// The embedded broker keeps no retained messages across a restart, so
	// Home Assistant discovery configs are gone with it. Devices that speak
	// discovery (zigbee2mqtt, ESPHome, Tasmota) publish them again when
	// Home Assistant's birth message says online; retained, a device that
	// connects later hears it too.
	if b.haBirth {
		if err := b.srv.Publish(haStatusTopic, []byte("online"), true, 1); err != nil {
			b.hook.log.Warn("home assistant birth message not published", "error", err)
		}
	}
	var sweeping sync.WaitGroup
	sweeping.Go(func() { b.auth.sweep(ctx) })
	sweeping.Go(func() { b.hook.in.dialects.tick(ctx, b.hook.in.now) })
	<-ctx.Done()
	sweeping.Wait()
	b.hook.state(false)
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
	in     *ingester
	hostID string // the Sparkplug host's STATE id; "" for none
	bornMS int64  // the timestamp of its STATE birth, which its death repeats
	srv    *mqtt.Server
	log    *slog.Logger
	share  *deviceShare // nil: no cap per client

	// ackers acknowledge QoS 1 publishes after their commits, one per
	// connected client.
	amu    sync.Mutex
	ackers map[*mqtt.Client]*acker

	// mu is held for reading while a publish is being ingested, so stop can
	// wait for those in flight: after Run returns, the sink is not called.
	mu     sync.RWMutex
	ctx    context.Context
	closed bool
}

// ID names the hook in mochi's logs.
func (h *ingestHook) ID() string { return "andon-ingest" }

// Provides declares the events the hook handles.
func (h *ingestHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnDisconnect || b == mqtt.OnWillSent
}

// OnWillSent ingests a client's last will once the broker has published it:
// mochi sends wills to subscribers without calling OnPublish, and a will is
// how a device says it went away (a Sparkplug NDEATH, a Tasmota LWT
// "Offline", a status topic's "offline"). Nobody waits for its commit.
func (h *ingestHook) OnWillSent(_ *mqtt.Client, pk packets.Packet) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed || h.ctx == nil {
		return
	}
	if rs := h.in.message(Message{Topic: pk.TopicName, Payload: pk.Payload, Retained: pk.FixedHeader.Retain}); len(rs) > 0 {
		h.in.sink.TryEnqueue(rs)
	}
}

// OnDisconnect forgets a client's share of the ingest rate and its acker.
// Publishes still being committed are stored, but not acknowledged: the
// client resends them and they are stored once.
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if h.share != nil {
		h.share.forget(cl.ID)
	}
	h.amu.Lock()
	if a := h.ackers[cl]; a != nil {
		a.stop()
		delete(h.ackers, cl)
	}
	h.amu.Unlock()
}

// state publishes the Sparkplug host application's STATE on the embedded
// broker, retained, so that an edge node configured with Andon as its
// primary host sees it whenever it connects (Sparkplug 3.0, host
// application STATE); the death repeats the birth's timestamp.
func (h *ingestHook) state(online bool) {
	if h.hostID == "" {
		return
	}
	if online {
		h.bornMS = h.in.now().UnixMilli()
	}
	if err := h.srv.Publish(sparkplug.StateTopic(h.hostID), sparkplug.StatePayload(online, h.bornMS), true, 1); err != nil {
		h.log.Warn("sparkplug host: STATE not published", "online", online, "error", err)
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

// OnPublish stores the readings of a publish. For QoS 1 and 2 the
// acknowledgement means "stored": a QoS 1 publish that nobody else
// subscribes to is queued for the writer and acknowledged by the client's
// acker after its commit (see acker), so one connection can have many
// publishes in one commit; anything else (QoS 2, retained messages, topics
// other clients subscribe to) waits here for its commit, and mochi then acks
// and forwards it as usual. A store failure returns packets.ErrRejectPacket,
// which makes mochi send no ack, and disconnects the client so it resends;
// the error must never be a wrapped packets.Code, which panics inside mochi.
// A payload that cannot be parsed is not a store failure: it is acknowledged
// and forwarded as usual, or the device would resend garbage forever.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed || h.ctx == nil {
		return pk, packets.ErrRejectPacket
	}
	if cl.Net.Inline && (strings.HasPrefix(pk.TopicName, sparkplugPrefix) || pk.TopicName == haStatusTopic) {
		return pk, nil // Andon's own words: the Sparkplug host's STATE and commands, Home Assistant's birth
	}
	rs := h.in.message(Message{Topic: pk.TopicName, Payload: pk.Payload, Retained: pk.FixedHeader.Retain})
	// Inline publishes come from Andon itself with nobody to resend them, so
	// they are never waited for.
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		if len(rs) == 0 {
			return pk, nil
		}
		if h.share != nil && !cl.Net.Inline && !h.share.allow(cl.ID, len(rs)) {
			return pk, nil // over the client's share: dropped and counted
		}
		// A false means the queue was full; the sink counts the drop.
		h.in.sink.TryEnqueue(rs)
		if !cl.Net.Inline && !pk.FixedHeader.Retain && !h.subscribed(pk.TopicName) {
			// Nothing to retain or forward: telling mochi so spares it
			// the scan for subscribers (5% of a QoS 0 flood's CPU).
			return pk, packets.ErrRejectPacket
		}
		return pk, nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	var err error
	if h.share != nil && len(rs) > 0 {
		err = h.share.wait(ctx, cl.ID, len(rs))
	}
	a := h.acker(cl)
	if err == nil && len(rs) > 0 && pk.FixedHeader.Qos == 1 && !pk.FixedHeader.Retain && !h.subscribed(pk.TopicName) {
		if err = a.enqueue(ctx, h.in.sink, rs, pk.PacketID); err == nil {
			return pk, packets.ErrRejectPacket // the acker acknowledges it after the commit
		}
	}
	if err == nil {
		// mochi acknowledges this one itself on return: the client's
		// earlier publishes must be acknowledged first (MQTT-4.6.0-2).
		err = a.waitIdle(ctx)
	}
	if err == nil && len(rs) > 0 {
		err = h.in.sink.Write(ctx, rs)
	}
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

// subscribed tells whether any client subscribes to topic, in which case
// mochi must forward the publish, which it does only for publishes it
// acknowledges itself.
func (h *ingestHook) subscribed(topic string) bool {
	// The broker's count of subscriptions spares the topic scan, and its
	// allocations, while nobody subscribes at all, which is the rule.
	if atomic.LoadInt64(&h.srv.Info.Subscriptions) <= 0 {
		return false
	}
	subs := h.srv.Topics.Subscribers(topic)
	return len(subs.Subscriptions) > 0 || len(subs.Shared) > 0 || len(subs.InlineSubscriptions) > 0
}

// acker returns the client's acker, starting it on first use.
func (h *ingestHook) acker(cl *mqtt.Client) *acker {
	h.amu.Lock()
	defer h.amu.Unlock()
	a := h.ackers[cl]
	if a == nil {
		a = newAcker(h, cl)
		h.ackers[cl] = a
	}
	return a
}

// acker acknowledges one client's QoS 1 publishes after their commits, in
// the order they arrived (MQTT-4.6.0-2): the writer reports commits in the
// order readings were queued, and one client's publishes are queued in the
// order mochi reads them. It writes on its own goroutine, so a client slow
// to read its acks never holds up the writer.
type acker struct {
	h    *ingestHook
	cl   *mqtt.Client
	wake chan struct{}
	quit chan struct{}

	mu      sync.Mutex
	ready   []uint16 // committed, acknowledgement not yet written
	pending int      // queued or ready, not yet acknowledged
	failed  error    // a commit failed: acknowledge nothing more
}

func newAcker(h *ingestHook, cl *mqtt.Client) *acker {
	a := &acker{h: h, cl: cl, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	go a.run()
	return a
}

// enqueue hands rs to the writer; its commit makes packet id ready to be
// acknowledged. It blocks while the write queue is full.
func (a *acker) enqueue(ctx context.Context, sink Sink, rs []plant.Reading, id uint16) error {
	a.mu.Lock()
	if a.failed != nil {
		err := a.failed
		a.mu.Unlock()
		return err
	}
	a.pending++
	a.mu.Unlock()
	err := sink.Enqueue(ctx, rs, func(err error) {
		// On the writer's goroutine: record and wake, never block.
		a.mu.Lock()
		if err != nil && a.failed == nil {
			a.failed = err
		} else if err == nil && a.failed == nil {
			a.ready = append(a.ready, id)
		}
		a.mu.Unlock()
		select {
		case a.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		a.mu.Lock()
		a.pending--
		a.mu.Unlock()
	}
	return err
}

// waitIdle waits until every publish enqueued so far is acknowledged, or
// returns the commit error that stopped the acknowledgements.
func (a *acker) waitIdle(ctx context.Context) error {
	for {
		a.mu.Lock()
		pending, failed := a.pending, a.failed
		a.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case pending == 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.quit:
			return mqtt.ErrConnectionClosed
		case <-time.After(time.Millisecond):
		}
	}
}

func (a *acker) run() {
	var ids []uint16
	var buf []byte
	for {
		select {
		case <-a.wake:
		case <-a.quit:
			return
		}
		a.mu.Lock()
		ids, a.ready = a.ready, ids[:0]
		failed := a.failed
		a.mu.Unlock()
		if len(ids) > 0 {
			// One write for all the acks ready, rather than mochi's
			// WritePacket and its write per packet (16% of the CPU under
			// QoS 1 load): a PUBACK with reason 0 and no properties is
			// the same four bytes in MQTT 3.1.1 and 5. It is written under
			// the client's lock, as mochi writes, so packets never
			// interleave.
			buf = buf[:0]
			for _, id := range ids {
				buf = append(buf, packets.Puback<<4, 2, byte(id>>8), byte(id))
			}
			a.cl.Lock()
			if !a.cl.Closed() && a.cl.Net.Conn != nil {
				// An error means the connection is gone; the client
				// resends what it lacks.
				_, _ = a.cl.Net.Conn.Write(buf)
			}
			a.cl.Unlock()
		}
		a.mu.Lock()
		a.pending -= len(ids)
		a.mu.Unlock()
		if failed != nil {
			a.h.log.Warn("mqtt publish not stored; disconnecting the client so it resends",
				"client_id", a.cl.ID, "error", failed)
			_ = a.h.srv.DisconnectClient(a.cl, packets.ErrServerBusy)
			return
		}
	}
}

func (a *acker) stop() { close(a.quit) }

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
