// Package sim is the demo plant: a believable set of machines on lines that
// run, starve, break down and change over on a real time scale, publishing
// their states and metrics over MQTT the way shop-floor gateways do.
//
// The model (Plant) is pure and deterministic for a seed: it has no clock of
// its own and does no I/O, so tests step it through an hour in milliseconds.
// Run wraps it with a real MQTT 5 client (paho.golang autopaho).
package sim

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Defaults for the fields of Config left at their zero value.
const (
	DefaultMachines = 10
	DefaultRate     = 1.0
	DefaultSite     = "acme"
	DefaultArea     = "hall-1"
	MachinesPerLine = 5

	// maxMachines and maxRate keep a typo on the command line from turning
	// the demo into a load test of the broker.
	maxMachines = 10_000
	maxRate     = 100.0
)

// Config says what plant to simulate and where to publish it.
type Config struct {
	URL      string  // broker, e.g. mqtt://127.0.0.1:1883 (mqtts:// for TLS, user:pass@ for credentials)
	Machines int     // default 10, spread over lines of 5
	Rate     float64 // metric publishes per second per machine, default 1
	Seed     int64   // 0 = derived from the start time
	Site     string  // default "acme"
	Area     string  // default "hall-1"
	Logger   *slog.Logger
	// History is how much of the past to publish first, with the readings'
	// own timestamps, so charts are full from the first look (0: none).
	History time.Duration
}

// withDefaults fills the zero fields so the model and Run agree on them.
func (c Config) withDefaults() Config {
	if c.Machines <= 0 {
		c.Machines = DefaultMachines
	}
	if c.Rate <= 0 || math.IsNaN(c.Rate) {
		c.Rate = DefaultRate
	}
	if c.Site == "" {
		c.Site = DefaultSite
	}
	if c.Area == "" {
		c.Area = DefaultArea
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks what Run needs beyond the defaults. It is called after
// withDefaults, so zero values are already replaced.
func (c Config) validate() (*url.URL, error) {
	if c.Machines > maxMachines {
		return nil, fmt.Errorf("sim: machines %d: at most %d", c.Machines, maxMachines)
	}
	if c.Rate > maxRate || math.IsInf(c.Rate, 0) {
		return nil, fmt.Errorf("sim: rate %g: at most %g per second", c.Rate, maxRate)
	}
	for _, level := range []string{c.Site, c.Area} {
		if strings.ContainsAny(level, "/+#") {
			return nil, fmt.Errorf("sim: topic level %q: must not contain '/', '+' or '#'", level)
		}
	}
	if c.URL == "" {
		return nil, fmt.Errorf("sim: no broker URL (e.g. mqtt://127.0.0.1:1883)")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("sim: broker URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss":
	default:
		return nil, fmt.Errorf("sim: broker URL %q: scheme must be mqtt, mqtts, ws or wss", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("sim: broker URL %q: no host", u.Redacted())
	}
	return u, nil
}
