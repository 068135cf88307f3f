package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
)

// Session and connection settings of the external client.
const (
	// sessionExpiry keeps the broker-side session (subscriptions and queued
	// QoS 1 messages) through a restart or an outage of up to a day.
	sessionExpiry = 24 * 60 * 60
	keepAlive     = 30 // seconds
	// receiveMaximum bounds the QoS 1 messages in flight to Andon, and with
	// them the linear scans of paho's ack tracker.
	receiveMaximum = 1000
	// sendAcksInterval is how often paho sends the acks made so far; its
	// default of 50 ms holds a stream back.
	sendAcksInterval = 5 * time.Millisecond
	dialTimeout      = 10 * time.Second
	readBufferSize   = 64 << 10
)

// ClientConfig configures the client of an external MQTT broker.
type ClientConfig struct {
	URL        string   // mqtt://host:1883, tcp://..., mqtts://... (TLS), optional user:pass@
	ClientID   string   // stable across restarts (the caller keeps it in the data dir); required
	Topics     []string // default ["#"]
	Sink       Sink
	Limits     Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time

	// Dialects configures the decoders: mapping rules, the plant's time
	// zone and the Sparkplug B host, which has a connection of its own
	// unless its host id is "off".
	Dialects DialectConfig

	// For mqtts:// only. CAFile is a PEM file of the certificate
	// authorities to trust instead of the system's (a plant's private CA);
	// CertFile and KeyFile, given together, are a client certificate for
	// brokers that require one.
	CAFile, CertFile, KeyFile string
}

// Client subscribes to an external broker (MQTT 5) with a persistent session
// and acknowledges each message only after its readings are committed, so a
// crash or a restart loses nothing the broker still holds.
type Client struct {
	url       *url.URL
	tls       *tls.Config // nil unless the scheme is mqtts
	clientID  string
	topics    []string
	in        *ingester
	log       *slog.Logger
	connected atomic.Bool
	cm        atomic.Pointer[autopaho.ConnectionManager]
	gauge     prometheus.Gauge
	losses    prometheus.Counter
	now       func() time.Time
	// since is when the connection last came up or went down (unix ms),
	// or when Run started while it has not connected yet.
	since atomic.Int64
	// subscribed counts successful subscriptions, so tests can wait for the
	// broker to route messages to the client.
	subscribed atomic.Int64
	// spb is the Sparkplug host's own connection; nil when it is off, and
	// then this connection decodes Sparkplug messages itself.
	spb *sparkplugHost
}

// NewClient checks the configuration; Run connects.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("ingest: client: no client id")
	}
	if cfg.Sink == nil {
		return nil, errors.New("ingest: client: no sink")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ingest: client: broker url: %w", err)
	}
	port := "1883"
	var tlsCfg *tls.Config
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
			return nil, fmt.Errorf("ingest: client: broker url %q: a CA file or client certificate needs mqtts://", u.Redacted())
		}
	case "mqtts", "ssl", "tls":
		port = "8883"
		if tlsCfg, err = clientTLS(cfg.CAFile, cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("ingest: client: broker url %q: scheme must be mqtt, tcp or mqtts", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("ingest: client: broker url %q: no host", u.Redacted())
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	topics := cfg.Topics
	if len(topics) == 0 {
		topics = []string{"#"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	if err := m.registerConnected(cfg.Registerer); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{
		url:      u,
		tls:      tlsCfg,
		clientID: cfg.ClientID,
		topics:   topics,
		in:       newIngester(cfg.Sink, cfg.Limits, log, cfg.Now, m.messages.WithLabelValues(sourceExternal)),
		log:      log.With("broker", u.Redacted()),
		gauge:    m.connected,
		now:      now,
	}
	if id := cfg.Dialects.Sparkplug.hostID(); id != "" {
		c.spb = &sparkplugHost{c: c, id: id}
	}
	c.in.dialects = newDialects(cfg.Dialects, cfg.Limits, c.publish, c.log)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newSparkplugCollector(c.in.dialects.spb, sourceExternal)); err != nil {
			return nil, fmt.Errorf("ingest: client: register metrics: %w", err)
		}
	}
	c.since.Store(now().UnixMilli())
	c.losses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "andon_mqtt_connection_losses_total",
		Help: "Times the connection to the external MQTT broker was lost.",
	})
	down := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "andon_mqtt_disconnected_seconds",
		Help: "How long the external MQTT broker has been out of reach; 0 while connected.",
	}, func() float64 {
		st := c.Status()
		if st.Connected {
			return 0
		}
		return now().Sub(st.Since).Seconds()
	})
	if cfg.Registerer != nil {
		if c.losses, err = register(cfg.Registerer, c.losses); err != nil {
			return nil, err
		}
		if _, err = register[prometheus.Collector](cfg.Registerer, down); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Connected reports whether the client is connected to the broker now.
func (c *Client) Connected() bool { return c.connected.Load() }

// BrokerStatus is what pages and /metrics say about the external broker.
type BrokerStatus struct {
	URL       string    // without the password
	Connected bool      // connected now
	Since     time.Time // since when connected, or since when not
}

// Status reports the connection to the external broker.
func (c *Client) Status() BrokerStatus {
	return BrokerStatus{URL: c.url.Redacted(), Connected: c.connected.Load(), Since: time.UnixMilli(c.since.Load())}
}

// Run connects (retrying with backoff), subscribes on every connection and
// ingests until ctx is done.
func (c *Client) Run(ctx context.Context) error {
	c.since.Store(c.now().UnixMilli())
	// Credentials travel in the CONNECT packet only: autopaho puts the URL
	// into its error messages, which end up in the log.
	server := *c.url
	server.User = nil
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{&server},
		KeepAlive:  keepAlive,
		// The session lives in the broker: a fixed client id, no clean start
		// and an expiry keep QoS 1 messages queued while Andon is away.
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         sessionExpiry,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(500*time.Millisecond, time.Minute, 2*time.Second, 1.5),
		ConnectTimeout:                dialTimeout,
		AttemptConnection:             c.dial,
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			rm := uint16(receiveMaximum)
			cp.Properties.ReceiveMaximum = &rm
			return cp, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
			away := c.setConnected(true)
			c.log.Info("mqtt broker connected", "session_present", ack.SessionPresent, "after", away.Round(time.Millisecond))
			// OnConnectionUp must not block, and a resumed session may not
			// hold the subscriptions (it may have expired), so subscribe
			// again every time, in the background.
			go c.subscribe(ctx, cm)
		},
		OnConnectionDown: func() bool {
			c.setConnected(false)
			c.losses.Inc()
			c.log.Warn("mqtt broker connection lost; reconnecting")
			return true
		},
		OnConnectError: func(err error) {
			c.log.Warn("mqtt broker connect failed", "error", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID:                   c.clientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           sendAcksInterval,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					c.handle(ctx, pr)
					return true, nil
				},
			},
			OnClientError: func(err error) {
				c.log.Debug("mqtt client error", "error", err)
			},
			OnServerDisconnect: func(d *paho.Disconnect) {
				c.log.Warn("mqtt broker disconnected the client", "reason_code", d.ReasonCode)
			},
		},
	}
	c.credentials(&cfg)
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ingest: client: %w", err)
	}
	c.cm.Store(cm)
	var bg sync.WaitGroup
	bg.Go(func() { c.in.dialects.tick(ctx, c.now) })
	if c.spb != nil {
		bg.Go(func() {
			if err := c.spb.run(ctx); err != nil {
				c.log.Error("sparkplug host connection failed", "error", err)
			}
		})
	}
	defer bg.Wait()
	<-ctx.Done()
	// autopaho disconnects cleanly once its context is done; wait for it so
	// no handler runs after Run returns.
	<-cm.Done()
	c.setConnected(false)
	return nil
}

// setConnected records a change of the connection and returns how long the
// previous state lasted.
func (c *Client) setConnected(up bool) time.Duration {
	nowMS := c.now().UnixMilli()
	var lasted time.Duration
	if c.connected.Swap(up) != up {
		lasted = time.Duration(nowMS-c.since.Swap(nowMS)) * time.Millisecond
	}
	if up {
		c.gauge.Set(1)
	} else {
		c.gauge.Set(0)
	}
	return lasted
}

// subscribe subscribes to the configured topics with QoS 1.
func (c *Client) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) {
	subs := make([]paho.SubscribeOptions, len(c.topics))
	for i, t := range c.topics {
		subs[i] = paho.SubscribeOptions{Topic: t, QoS: 1}
	}
	sctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		// The connection is probably gone; the next OnConnectionUp tries again.
		if ctx.Err() == nil {
			c.log.Warn("mqtt subscribe failed", "topics", c.topics, "error", err)
		}
		return
	}
	c.subscribed.Add(1)
	c.log.Info("mqtt subscribed", "topics", c.topics)
}

// handle ingests one message. It never waits for a commit: QoS 1 readings
// are acknowledged from the writer's done callback, in arrival order (paho
// holds acks back until all earlier ones are made). Every message is
// acknowledged, bad payloads too, because one message never acked stalls the
// stream. Acks made on a connection that has dropped are lost and the broker
// redelivers, which the store turns into no-ops.
func (c *Client) handle(ctx context.Context, pr paho.PublishReceived) {
	p := pr.Packet
	if c.spb != nil && isSparkplug(p.Topic) {
		// The host's own connection takes these (client_sparkplug.go).
		c.ack(pr)
		return
	}
	rs := c.in.message(Message{Topic: p.Topic, Payload: p.Payload, Retained: p.Retain})
	if len(rs) == 0 {
		c.ack(pr)
		return
	}
	if p.QoS == 0 {
		// A false means the queue was full; the sink counts the drop.
		c.in.sink.TryEnqueue(rs)
		return
	}
	err := c.in.sink.Enqueue(ctx, rs, func(err error) {
		if err != nil {
			// Without an ack the stream stalls, so the connection is
			// dropped: after reconnecting the broker resends what was not
			// acknowledged (MQTT-4.4.0-1).
			c.log.Warn("mqtt message not stored; reconnecting so the broker resends", "topic", p.Topic, "error", err)
			pr.Client.TerminateConnectionForTest()
			return
		}
		c.ack(pr)
	})
	if err != nil && ctx.Err() == nil {
		c.log.Warn("mqtt message not queued; reconnecting so the broker resends", "topic", p.Topic, "error", err)
		pr.Client.TerminateConnectionForTest()
	}
}

// publish sends a Sparkplug command: on the host's own connection when it
// has one, else on this one.
func (c *Client) publish(topic string, payload []byte) error {
	if c.spb != nil {
		return c.spb.publish(topic, payload)
	}
	return publishOn(c.cm.Load(), topic, payload)
}

// publishOn sends a QoS 0 command on cm, nil while not connected: the
// command is then lost, and what caused it causes it again.
func publishOn(cm *autopaho.ConnectionManager, topic string, payload []byte) error {
	if cm == nil {
		return errNotConnected
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	_, err := cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 0})
	return err
}

// credentials puts the URL's user and password into the CONNECT packet:
// autopaho puts URLs into its error messages, so they stay out of it.
func (c *Client) credentials(cfg *autopaho.ClientConfig) {
	if c.url.User != nil {
		cfg.ConnectUsername = c.url.User.Username()
		if pw, ok := c.url.User.Password(); ok {
			cfg.ConnectPassword = []byte(pw)
		}
	}
}

// errNotConnected is a command that could not be sent for want of a connection.
var errNotConnected = errors.New("ingest: not connected to the broker")

func (c *Client) ack(pr paho.PublishReceived) {
	if pr.Packet.QoS == 0 {
		return
	}
	// An error means the connection this message came on is gone; the
	// broker will deliver it again.
	_ = pr.Client.Ack(pr.Packet)
}

// dial opens the network connection with a read buffer: paho reads each
// packet with several small reads, which cost a system call each on a bare
// connection.
func (c *Client) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	switch strings.ToLower(u.Scheme) {
	case "mqtts", "ssl", "tls":
		// The dialer sets ServerName from the host when the config has none.
		d := tls.Dialer{Config: c.tls.Clone()}
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	default:
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Host, err)
	}
	return &bufConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize)}, nil
}

// bufConn is a connection with buffered reads. paho reads from one goroutine
// at a time but writes from several; it locks a connection that is a
// sync.Locker around each write, which the embedded mutex provides (a
// tls.Conn's writes are not safe to interleave).
type bufConn struct {
	net.Conn
	sync.Mutex
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// clientTLS is the TLS configuration of a connection to an external broker:
// TLS 1.2 or newer, the system's CAs or those in caFile, and a client
// certificate when certFile and keyFile are given.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest: client: CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("ingest: client: a client certificate needs both a certificate file and a key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: client: client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
