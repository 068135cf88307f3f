package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"andon/ingest/sim"
)

func (env *environment) simulateCmd(ctx context.Context, args []string) error {
	var (
		url      string
		machines int
		rate     float64
		seed     int64
		level    string
		history  time.Duration
	)
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.StringVar(&url, "mqtt-url", "mqtt://127.0.0.1:1883", "broker to publish the demo plant to")
	fs.IntVar(&machines, "machines", 10, "machines in the demo plant (lines of 5)")
	fs.Float64Var(&rate, "rate", 1, "readings per second per machine")
	fs.Int64Var(&seed, "seed", 0, "random seed for a repeatable plant (0: a new plant each run)")
	fs.DurationVar(&history, "history", 0, "first publish this much of the past, with timestamps (e.g. 1h)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	if _, err := env.parse(fs, args, "andon simulate --mqtt-url URL [--machines N] [--rate HZ]"); err != nil {
		return err
	}
	if machines < 1 || machines > 10000 {
		return fmt.Errorf("simulate: --machines %d: want 1 to 10000", machines)
	}
	if rate <= 0 || rate > 100 {
		return fmt.Errorf("simulate: --rate %g: want more than 0 and at most 100", rate)
	}
	if history < 0 || history > 7*24*time.Hour {
		return fmt.Errorf("simulate: --history %s: want 0 to 168h", history)
	}
	if _, err := parseLevel(level); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	log := env.logger(level, "text")
	log.Info("simulating a demo plant", "mqtt_url", redactURL(url), "machines", machines, "rate_hz", rate)
	err := sim.Run(ctx, sim.Config{URL: url, Machines: machines, Rate: rate, Seed: seed, History: history, Logger: log})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}
