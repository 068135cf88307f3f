// Command andon turns a factory's MQTT readings into a live plant dashboard:
// one binary with an embedded broker, a SQLite store and a web server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if err := env.run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "andon: %v\n", err)
		}
		os.Exit(2)
	}
}

// environment is what a run of the command sees of the outside world, so
// that tests can run the real command in-process on free ports.
type environment struct {
	stdin          io.Reader // passwords for `andon user`; nil reads as empty
	stdout, stderr io.Writer
	getenv         func(string) string
	// ready, if set, is told the addresses `serve` actually listens on.
	ready func(listening)
}

type listening struct {
	HTTP string // host:port
	MQTT string // host:port of the embedded broker; "" when off
}

const topUsage = `andon turns a factory's MQTT readings into a live plant dashboard.

usage:
  andon serve     [--config FILE] [--data DIR] [--http ADDR] [--mqtt-listen ADDR|off] [--mqtt-url URL] [--demo]
  andon simulate  --mqtt-url URL [--machines N] [--rate HZ]
  andon user      add|list|passwd|disable|enable --data DIR [--name NAME] [--role ROLE]
  andon device    add|list|disable|enable|passwd --data DIR [--name USER] [--prefix TOPIC/PREFIX] [--generate]
  andon export    --data DIR --kind readings|downtime|kpis|tags [--tags LIST] [--from T] [--to T] [--out FILE]
  andon backup    --data DIR --out FILE
  andon version

"andon COMMAND --help" lists a command's flags. Every flag has an ANDON_* environment
twin: --mqtt-url is ANDON_MQTT_URL.
`

func (env *environment) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, topUsage)
		return flag.ErrHelp
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return env.serveCmd(ctx, rest)
	case "simulate":
		return env.simulateCmd(ctx, rest)
	case "device":
		return env.deviceCmd(ctx, rest)
	case "user":
		return env.userCmd(ctx, rest)
	case "export":
		return env.exportCmd(ctx, rest)
	case "backup":
		return env.backupCmd(ctx, rest)
	case "version", "--version", "-v":
		fmt.Fprintf(env.stdout, "andon %s\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(env.stdout, topUsage)
		return nil
	default:
		fmt.Fprint(env.stderr, topUsage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// parse parses a command's flags; --help prints them with their environment twins.
func (env *environment) parse(fs *flag.FlagSet, args []string, synopsis string) (map[string]bool, error) {
	explicit, err := parseArgs(fs, args, env.getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(env.stdout, fs, synopsis)
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w (see \"andon %s --help\")", fs.Name(), err, fs.Name())
	}
	return explicit, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (env *environment) logger(level, format string) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.stderr, opts))
}
