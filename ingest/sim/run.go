package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"
)

const (
	// maxStepInterval keeps state changes timely when the metric rate is low:
	// a state word goes out within a second of the change.
	maxStepInterval = time.Second

	// publishTimeout bounds one QoS1 publish waiting for its PUBACK, so a
	// broker that stalls costs a few dropped readings, not a stuck simulator.
	publishTimeout = 10 * time.Second

	// publishConcurrency lets a big simulated plant keep up with its rate
	// without waiting for each PUBACK in turn; paho honours the broker's
	// receive maximum on top of this.
	publishConcurrency = 32

	// errorLogEvery rate-limits error logs: a broker that is away for an
	// hour gives a few hundred lines, not one per reading.
	errorLogEvery = 10 * time.Second

	disconnectTimeout = 3 * time.Second

	// historyStep is the spacing of the readings published for History.
	historyStep = 10 * time.Second
)

// Run connects to the broker (retrying until it answers) and publishes the
// simulated plant until ctx is done. It returns nil on a normal shutdown and
// an error only for a configuration it cannot run with.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	u, err := cfg.validate()
	if err != nil {
		return err
	}
	log := cfg.Logger.With(slog.String("component", "sim"))
	errs := &errLimiter{logger: log, every: errorLogEvery}

	clientID, err := newClientID()
	if err != nil {
		return err
	}
	pc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        &tls.Config{MinVersion: tls.VersionTLS12},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(time.Second, 30*time.Second, 2*time.Second, 2),
		ConnectTimeout:                10 * time.Second,
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			log.Info("sim: connected", slog.String("broker", u.Redacted()),
				slog.String("client_id", clientID), slog.Int("machines", cfg.Machines),
				slog.Float64("rate_hz", cfg.Rate))
		},
		OnConnectError: func(err error) {
			errs.log(time.Now(), "sim: connect failed", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID: clientID,
			OnClientError: func(err error) {
				errs.log(time.Now(), "sim: connection error", err)
			},
		},
	}
	if u.User != nil {
		pc.ConnectUsername = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			pc.ConnectPassword = []byte(pw)
		}
	}

	// The connection lives on a context that outlives ctx by the
	// disconnect, so shutdown can send a clean DISCONNECT.
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConn()
	cm, err := autopaho.NewConnection(connCtx, pc)
	if err != nil {
		return fmt.Errorf("sim: connect %s: %w", u.Redacted(), err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), disconnectTimeout)
		defer cancel()
		if err := cm.Disconnect(dctx); err != nil {
			log.Warn("sim: disconnect", slog.Any("error", err))
		}
	}()

	// Start the model once the broker answers, so the first states, which
	// make the overview colourful, are not dropped on the floor.
	if err := cm.AwaitConnection(ctx); err != nil {
		// ctx ended before the broker answered: a normal shutdown.
		return nil
	}
	now := time.Now()
	p := NewPlant(cfg, now.Add(-cfg.History))
	if cfg.History > 0 {
		// Replay the past in coarse steps with explicit timestamps; a state
		// changes at most a step late in the history, which no chart shows.
		for t := now.Add(-cfg.History); t.Before(now) && ctx.Err() == nil; t = t.Add(historyStep) {
			publish(ctx, cm, p.Backfill(t), errs)
		}
		log.Info("sim: history published", slog.Duration("history", cfg.History))
		now = time.Now()
	}

	interval := time.Duration(float64(time.Second) / cfg.Rate)
	interval = min(max(interval, time.Millisecond), maxStepInterval)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		publish(ctx, cm, p.Step(now), errs)
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick.C:
		}
	}
}

// publish sends one step's messages and waits for them, so messages of one
// topic stay in order from step to step. Failures are counted and logged
// rate-limited; the model carries on regardless, as a real plant would.
func publish(ctx context.Context, cm *autopaho.ConnectionManager, msgs []Message, errs *errLimiter) {
	var g errgroup.Group
	g.SetLimit(publishConcurrency)
	for _, m := range msgs {
		g.Go(func() error {
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			defer cancel()
			_, err := cm.Publish(pctx, &paho.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain})
			if err != nil && ctx.Err() == nil {
				errs.log(time.Now(), "sim: publish failed", fmt.Errorf("topic %q: %w", m.Topic, err))
			}
			return nil
		})
	}
	_ = g.Wait() // The goroutines report through errs and never return an error.
}

// errLimiter logs at most one error per interval and says how many it held
// back, so an absent broker does not flood the log.
type errLimiter struct {
	mu         sync.Mutex
	logger     *slog.Logger
	every      time.Duration
	last       time.Time
	suppressed int
}

func (l *errLimiter) log(now time.Time, msg string, err error) {
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.logger.Warn(msg, slog.Any("error", err), slog.Int("suppressed", n))
}

func newClientID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sim: client id: %w", err)
	}
	return "andon-sim-" + hex.EncodeToString(b[:]), nil
}
