package ingest

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"andon/ingest/sparkplug"
)

// sparkplugPrefix starts every Sparkplug B topic.
const sparkplugPrefix = "spBv1.0/"

// sparkplugHost is the Sparkplug B host application's own connection to an
// external broker. Sparkplug 3.0 demands a clean session of a host
// application and a STATE birth and death, which the client's persistent,
// acknowledged session for plain readings cannot be; so the host has a
// connection of its own, and the main one leaves Sparkplug topics to it.
// Edge nodes configured with this host as their primary host wait for its
// STATE online before they publish, and reconnect when it goes offline.
type sparkplugHost struct {
	c      *Client
	id     string // the host id in spBv1.0/STATE/<id>
	cm     atomic.Pointer[autopaho.ConnectionManager]
	bornMS atomic.Int64 // the timestamp of this connection's STATE birth and will
	ready  atomic.Int64 // connections that subscribed, for tests
}

// statePayload is a STATE message as it arrives, to tell the host's own
// death (a stale will, or another instance) from its birth.
type statePayload struct {
	Online    bool  `json:"online"`
	Timestamp int64 `json:"timestamp"`
}

func (h *sparkplugHost) stateTopic() string { return sparkplug.StateTopic(h.id) }

// run keeps the host connected until ctx is done, then publishes its STATE
// death and disconnects.
func (h *sparkplugHost) run(ctx context.Context) error {
	c := h.c
	server := *c.url
	server.User = nil
	cfg := autopaho.ClientConfig{
		ServerUrls:        []*url.URL{&server},
		KeepAlive:         keepAlive,
		ReconnectBackoff:  autopaho.NewExponentialBackoff(500*time.Millisecond, time.Minute, 2*time.Second, 1.5),
		ConnectTimeout:    dialTimeout,
		AttemptConnection: c.dial,
		// [tck-id-host-topic-phid-birth-*]: every connection is a clean
		// session with no expiry, and carries a STATE death as its will,
		// with the timestamp its birth will carry.
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			cp.CleanStart = true
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			zero := uint32(0)
			cp.Properties.SessionExpiryInterval = &zero
			ts := c.now().UnixMilli()
			h.bornMS.Store(ts)
			cp.WillMessage = &paho.WillMessage{Topic: h.stateTopic(), Payload: sparkplug.StatePayload(false, ts), QoS: 1, Retain: true}
			cp.WillProperties = &paho.WillProperties{}
			return cp, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			h.cm.Store(cm)
			c.log.Info("sparkplug host connected", "host_id", h.id)
			go h.birth(ctx, cm)
		},
		OnConnectionDown: func() bool {
			h.cm.Store(nil)
			// Without the broker nothing is known of any edge node:
			// every node and device is stale until its next birth.
			if rs := c.in.dialects.spb.Lost(c.now().UnixMilli()); len(rs) > 0 {
				c.in.sink.TryEnqueue(rs)
			}
			c.log.Warn("sparkplug host connection lost; reconnecting", "host_id", h.id)
			return true
		},
		OnConnectError: func(err error) {
			c.log.Warn("sparkplug host connect failed", "error", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID: c.clientID + "-sparkplug",
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					h.handle(ctx, pr)
					return true, nil
				},
			},
			OnClientError: func(err error) { c.log.Debug("sparkplug host client error", "error", err) },
		},
	}
	c.credentials(&cfg)
	// The connection outlives ctx by the moment it takes to say goodbye:
	// autopaho disconnects cleanly when its context ends, and a clean
	// disconnect discards the will, so the death must be sent first.
	connCtx, closeConn := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConn()
	cm, err := autopaho.NewConnection(connCtx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	// A host that leaves on purpose says so before it goes
	// [tck-id-operational-behavior-host-application-termination].
	if live := h.cm.Load(); live != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := live.Publish(dctx, &paho.Publish{Topic: h.stateTopic(), QoS: 1, Retain: true,
			Payload: sparkplug.StatePayload(false, h.bornMS.Load())}); err != nil {
			c.log.Warn("sparkplug host: STATE death not published", "error", err)
		}
		_ = live.Disconnect(dctx)
		cancel()
	}
	closeConn()
	<-cm.Done()
	return nil
}

// birth subscribes to the host's own STATE topic, publishes its STATE
// birth and then subscribes to every Sparkplug B message, in the order
// Sparkplug 3.0 gives [tck-id-host-topic-phid-birth-sub-required].
func (h *sparkplugHost) birth(ctx context.Context, cm *autopaho.ConnectionManager) {
	sctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: h.stateTopic(), QoS: 1}}}); err != nil {
		h.c.log.Warn("sparkplug host: subscribe to its STATE failed", "error", err)
		return
	}
	if err := h.publishBirth(sctx, cm); err != nil {
		h.c.log.Warn("sparkplug host: STATE birth failed", "error", err)
		return
	}
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: sparkplugPrefix + "#", QoS: 1}}}); err != nil {
		h.c.log.Warn("sparkplug host: subscribe failed", "error", err)
		return
	}
	h.ready.Add(1)
}

func (h *sparkplugHost) publishBirth(ctx context.Context, cm *autopaho.ConnectionManager) error {
	_, err := cm.Publish(ctx, &paho.Publish{Topic: h.stateTopic(), QoS: 1, Retain: true,
		Payload: sparkplug.StatePayload(true, h.bornMS.Load())})
	return err
}

// handle ingests one Sparkplug message. The session is clean, so nothing
// is waited for: what a lost connection loses, the next births restore.
func (h *sparkplugHost) handle(ctx context.Context, pr paho.PublishReceived) {
	p := pr.Packet
	if p.Topic == h.stateTopic() {
		// Someone else's word, or a stale will of this host, says it is
		// offline while it is connected: say otherwise
		// [tck-id-host-topic-phid-death-payload-off].
		var st statePayload
		if json.Unmarshal(p.Payload, &st) == nil && !st.Online {
			if cm := h.cm.Load(); cm != nil {
				go func() {
					pctx, cancel := context.WithTimeout(ctx, dialTimeout)
					defer cancel()
					_ = h.publishBirth(pctx, cm)
				}()
			}
		}
		return
	}
	if rs := h.c.in.message(Message{Topic: p.Topic, Payload: p.Payload, Retained: p.Retain}); len(rs) > 0 {
		// Waiting while the write queue is full holds the broker back,
		// rather than dropping what the births said.
		if err := h.c.in.sink.Enqueue(ctx, rs, nil); err != nil && ctx.Err() == nil {
			h.c.log.Warn("sparkplug message not queued", "topic", p.Topic, "error", err)
		}
	}
}

// publish sends a command (a rebirth request) on the host's connection;
// it is dropped while the host is not connected: the next data message
// after the reconnect asks again.
func (h *sparkplugHost) publish(topic string, payload []byte) error {
	return publishOn(h.cm.Load(), topic, payload)
}

// isSparkplug tells whether topic belongs to the Sparkplug B namespace.
func isSparkplug(topic string) bool { return strings.HasPrefix(topic, sparkplugPrefix) }
