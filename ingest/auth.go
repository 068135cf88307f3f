package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"andon/db"
)

// DeviceAuth checks device credentials; *db.Store implements it.
type DeviceAuth interface {
	// AuthenticateDevice returns db.ErrBadCredentials (wrapped) for an
	// unknown, disabled or wrong device.
	AuthenticateDevice(ctx context.Context, username, password string) (db.Device, error)
	// Devices lists every device, so the broker can drop the connections of
	// devices that were disabled or deleted since they connected.
	Devices(ctx context.Context) ([]db.Device, error)
}

const (
	// DefaultAuthCacheTTL is how long a successful device login is
	// remembered. A reconnect storm (a switch rebooting, a hundred PLCs
	// reconnecting at once) then costs one bcrypt per device, not one per
	// attempt. It is also the longest a disabled or deleted device keeps
	// working: its cached login and its open connection go at the next sweep.
	DefaultAuthCacheTTL = 5 * time.Minute
	// authTimeout bounds one credential check; the store answering slowly
	// must not hold a connecting client forever.
	authTimeout = 10 * time.Second
	// refusalLogInterval is how often one username may log a refusal: a
	// misconfigured device retrying every second must not flood the log.
	refusalLogInterval = time.Minute
	// maxAuthEntries bounds each of the hook's maps; when one is full it is
	// emptied, which at worst costs some bcrypt checks or an early log line.
	maxAuthEntries = 10_000
)

// authKey is a cached login: the username and a hash of the password, so
// that the plain password is never kept in memory after the check.
type authKey struct {
	username string
	password [sha256.Size]byte
}

type authEntry struct {
	device  db.Device
	expires time.Time
}

// authHook authenticates clients of the embedded broker and limits each
// device to its topic prefix. Unlike the ingest hook it does I/O (a bcrypt
// check against the store) on the connecting client's own goroutine, which
// only delays that client; the cache keeps it rare.
type authHook struct {
	mqtt.HookBase
	auth DeviceAuth // nil: no device can log in
	anon bool       // clients without a username may connect and do anything
	ttl  time.Duration
	now  func() time.Time
	log  *slog.Logger
	srv  *mqtt.Server

	mu       sync.Mutex
	ctx      context.Context
	cache    map[authKey]authEntry
	prefixes map[string]db.Device // username -> the device as last authenticated, for the ACL
	lastLog  map[string]time.Time // username -> when it last logged a refusal
}

func newAuthHook(cfg BrokerConfig, srv *mqtt.Server, log *slog.Logger) *authHook {
	ttl := cfg.AuthCacheTTL
	if ttl <= 0 {
		ttl = DefaultAuthCacheTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &authHook{
		auth:     cfg.Auth,
		anon:     cfg.AllowAnonymous,
		ttl:      ttl,
		now:      now,
		log:      log,
		srv:      srv,
		ctx:      context.Background(),
		cache:    make(map[authKey]authEntry),
		prefixes: make(map[string]db.Device),
		lastLog:  make(map[string]time.Time),
	}
}

// ID names the hook in mochi's logs.
func (h *authHook) ID() string { return "andon-auth" }

// Provides declares the events the hook decides.
func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate admits a client with the username and password of an
// enabled device, or without a username when anonymous access is on. A
// password without a username (MQTT 5 allows it) counts as anonymous.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if user == "" {
		if !h.anon {
			h.refuse("", "connect", "", "anonymous access is off; give the device a username and password")
		}
		return h.anon
	}
	if h.auth == nil {
		h.refuse(user, "connect", "", "the broker has no device credentials to check against")
		return false
	}
	key := authKey{username: user, password: sha256.Sum256(pk.Connect.Password)}
	now := h.now()
	h.mu.Lock()
	e, ok := h.cache[key]
	if ok && now.Before(e.expires) {
		h.prefixes[user] = e.device
		h.mu.Unlock()
		return true
	}
	ctx := h.ctx
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	d, err := h.auth.AuthenticateDevice(ctx, user, string(pk.Connect.Password))
	cancel()
	if err != nil {
		if errors.Is(err, db.ErrBadCredentials) {
			h.refuse(user, "connect", "", "wrong username or password, or the device is disabled")
		} else {
			h.refuse(user, "connect", "", "the credentials could not be checked: "+err.Error())
		}
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cache) >= maxAuthEntries {
		clear(h.cache)
	}
	h.cache[key] = authEntry{device: d, expires: now.Add(h.ttl)}
	if len(h.prefixes) >= maxAuthEntries {
		clear(h.prefixes)
	}
	h.prefixes[user] = d
	return true
}

// OnACLCheck lets a device publish and subscribe only under its topic
// prefix; anonymous clients (admitted only when anonymous access is on) may
// do anything. mochi asks on every publish (write), on every subscribe with
// the filter, and on every delivery with the topic.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if user == "" {
		return h.anon
	}
	h.mu.Lock()
	d, ok := h.prefixes[user]
	h.mu.Unlock()
	if ok && filterUnder(d.TopicPrefix, topic) {
		return true
	}
	what := "subscribe"
	if write {
		what = "publish"
	}
	why := "outside the device's topic prefix " + d.TopicPrefix
	if !ok {
		why = "the device's login is no longer valid"
	}
	h.refuse(user, what, topic, why)
	return false
}

// filterUnder reports whether a topic or a subscription filter stays within
// prefix, level by level: "acme/hall-1/line-1" covers
// "acme/hall-1/line-1/press-01/temp" and "acme/hall-1/line-1/#", but not
// "acme/hall-1/line-10/x" nor "acme/hall-1/#". A shared subscription
// ($share/group/filter, MQTT 5 4.8.2) is judged by its filter.
func filterUnder(prefix, filter string) bool {
	if prefix == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, ok := strings.Cut(rest, "/")
		if !ok {
			return false
		}
		filter = f
	}
	if filter == prefix {
		return true
	}
	// Whole levels only: the prefix must be followed by a level separator.
	return strings.HasPrefix(filter, prefix+"/")
}

// refuse logs a refused connection, publish or subscription, at most once a
// minute per username. The password is never logged.
func (h *authHook) refuse(user, what, topic, why string) {
	now := h.now()
	h.mu.Lock()
	last, ok := h.lastLog[user]
	if ok && now.Sub(last) < refusalLogInterval {
		h.mu.Unlock()
		return
	}
	if len(h.lastLog) >= maxAuthEntries {
		clear(h.lastLog)
	}
	h.lastLog[user] = now
	h.mu.Unlock()
	attrs := []any{"username", user, "action", what, "reason", why}
	if topic != "" {
		attrs = append(attrs, "topic", topic)
	}
	h.log.Warn("mqtt client refused (logged at most once a minute per username)", attrs...)
}

// start sets the context that credential checks run under.
func (h *authHook) start(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
}

// sweep runs every TTL until ctx is done: it forgets the logins of devices
// that were disabled, deleted or recreated since, and disconnects their open
// connections, so a disabled device stops working within one TTL.
func (h *authHook) sweep(ctx context.Context) {
	if h.auth == nil {
		return
	}
	t := time.NewTicker(h.ttl)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sweepOnce(ctx)
		}
	}
}

func (h *authHook) sweepOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	ds, err := h.auth.Devices(ctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("mqtt device sweep failed; cached logins expire by themselves", "error", err)
		}
		return
	}
	enabled := make(map[string]int64, len(ds))
	for _, d := range ds {
		if !d.Disabled {
			enabled[d.Username] = d.ID
		}
	}
	gone := func(d db.Device) bool { return enabled[d.Username] != d.ID }
	now := h.now()
	h.mu.Lock()
	for k, e := range h.cache {
		if gone(e.device) || !now.Before(e.expires) {
			delete(h.cache, k)
		}
	}
	var kick []string
	for user, d := range h.prefixes {
		if gone(d) {
			delete(h.prefixes, user)
			kick = append(kick, user)
		}
	}
	h.mu.Unlock()
	if len(kick) == 0 {
		return
	}
	for _, cl := range h.srv.Clients.GetAll() {
		user := string(cl.Properties.Username)
		if user == "" || cl.Closed() || !slices.Contains(kick, user) {
			continue
		}
		h.log.Info("mqtt device disabled or deleted: disconnecting it", "username", user, "client_id", cl.ID)
		_ = h.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
}

// LoadTLS loads a certificate and its key (PEM files) for a TLS listener,
// MQTT or HTTPS, at TLS 1.2 or newer.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("ingest: tls certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
