package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"andon/db"
	"andon/plant"
)

const deviceUsage = `andon device manages the usernames, passwords and topic prefixes of the devices
that may publish to the embedded MQTT broker.

usage:
  andon device add     --data DIR --name USER --prefix TOPIC/PREFIX [--generate]
  andon device list    --data DIR
  andon device disable --data DIR --name USER
  andon device enable  --data DIR --name USER
  andon device passwd  --data DIR --name USER [--generate]

add and passwd read the password as one line from standard input (at least 10
characters), or with --generate make one and print it once. A device may publish
and subscribe only under its prefix: "acme/hall-1/line-1" allows
"acme/hall-1/line-1/press-01/temp". Changes reach a running broker within 5 minutes.
`

// deviceCmd runs "andon device SUBCOMMAND". It opens the store itself, so it
// works beside a running "andon serve" on the same data directory.
func (env *environment) deviceCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(env.stdout, deviceUsage)
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	var (
		data, name, prefix string
		generate           bool
	)
	fs := flag.NewFlagSet("device "+sub, flag.ContinueOnError)
	fs.StringVar(&data, "data", "./data", "where the SQLite database (andon.db) lives")
	switch sub {
	case "add":
		fs.StringVar(&name, "name", "", "the device's MQTT username (case-sensitive)")
		fs.StringVar(&prefix, "prefix", "", "the topic prefix it may publish under, like acme/hall-1/line-1")
		fs.BoolVar(&generate, "generate", false, "generate a password and print it once, instead of reading one from standard input")
	case "passwd":
		fs.StringVar(&name, "name", "", "the device's MQTT username")
		fs.BoolVar(&generate, "generate", false, "generate a password and print it once, instead of reading one from standard input")
	case "disable", "enable":
		fs.StringVar(&name, "name", "", "the device's MQTT username")
	case "list":
	default:
		fmt.Fprint(env.stderr, deviceUsage)
		return fmt.Errorf("device: unknown subcommand %q", sub)
	}
	if _, err := env.parse(fs, rest, "andon device "+sub+" [flags]"); err != nil {
		return err
	}
	if sub != "list" && name == "" {
		return fmt.Errorf("device %s: --name is required", sub)
	}
	store, err := db.Open(ctx, filepath.Join(data, "andon.db"), db.Options{})
	if err != nil {
		return fmt.Errorf("device %s: %w", sub, err)
	}
	defer store.Close()

	switch sub {
	case "add":
		return env.deviceAdd(ctx, store, name, prefix, generate)
	case "passwd":
		return env.devicePasswd(ctx, store, name, generate)
	case "disable", "enable":
		return env.deviceSetDisabled(ctx, store, name, sub == "disable")
	default:
		return env.deviceList(ctx, store)
	}
}

func (env *environment) deviceAdd(ctx context.Context, store *db.Store, name, prefix string, generate bool) error {
	pw, err := env.devicePassword(generate)
	if err != nil {
		return fmt.Errorf("device add: %w", err)
	}
	d, err := store.CreateDevice(ctx, name, pw, prefix)
	if err != nil {
		return fmt.Errorf("device add: %w", cliMessage(err))
	}
	env.deviceAudit(ctx, store, "device.create", d.Username, d.TopicPrefix)
	fmt.Fprintf(env.stdout, "device %s created: it may publish and subscribe under %s/\n", d.Username, d.TopicPrefix)
	if generate {
		fmt.Fprintf(env.stdout, "password: %s\n(shown only now: put it into the device's MQTT settings)\n", pw)
	}
	return nil
}

func (env *environment) devicePasswd(ctx context.Context, store *db.Store, name string, generate bool) error {
	d, err := deviceByName(ctx, store, name)
	if err != nil {
		return fmt.Errorf("device passwd: %w", err)
	}
	pw, err := env.devicePassword(generate)
	if err != nil {
		return fmt.Errorf("device passwd: %w", err)
	}
	if err := store.SetDevicePassword(ctx, d.ID, pw); err != nil {
		return fmt.Errorf("device passwd: %w", cliMessage(err))
	}
	env.deviceAudit(ctx, store, "device.password", d.Username, "")
	fmt.Fprintf(env.stdout, "device %s has a new password\n", d.Username)
	if generate {
		fmt.Fprintf(env.stdout, "password: %s\n(shown only now)\n", pw)
	}
	return nil
}

func (env *environment) deviceSetDisabled(ctx context.Context, store *db.Store, name string, disabled bool) error {
	d, err := deviceByName(ctx, store, name)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	if err := store.SetDeviceDisabled(ctx, d.ID, disabled); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	action, word := "device.enable", "enabled"
	if disabled {
		action, word = "device.disable", "disabled"
	}
	env.deviceAudit(ctx, store, action, d.Username, "")
	fmt.Fprintf(env.stdout, "device %s %s\n", d.Username, word)
	return nil
}

func (env *environment) deviceList(ctx context.Context, store *db.Store) error {
	ds, err := store.Devices(ctx)
	if err != nil {
		return fmt.Errorf("device list: %w", err)
	}
	if len(ds) == 0 {
		fmt.Fprintln(env.stdout, "no devices yet: add one with \"andon device add\"")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tPREFIX\tSTATE\tLAST SEEN")
	for _, d := range ds {
		state := "enabled"
		if d.Disabled {
			state = "disabled"
		}
		seen := "never"
		if d.LastSeenMS > 0 {
			seen = time.UnixMilli(d.LastSeenMS).Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Username, d.TopicPrefix, state, seen)
	}
	return tw.Flush()
}

// devicePassword is a generated password, or one line of standard input.
func (env *environment) devicePassword(generate bool) (string, error) {
	if generate {
		return db.GenerateDevicePassword()
	}
	if env.stdin == nil {
		return "", errors.New("no password on standard input (or use --generate)")
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input (or use --generate)")
	}
	return pw, nil
}

func deviceByName(ctx context.Context, store *db.Store, name string) (db.Device, error) {
	ds, err := store.Devices(ctx)
	if err != nil {
		return db.Device{}, err
	}
	for _, d := range ds {
		if d.Username == name {
			return d, nil
		}
	}
	return db.Device{}, fmt.Errorf("no device named %q (see \"andon device list\")", name)
}

// deviceAudit records a change made from the command line; a failure is
// reported but does not undo the change.
func (env *environment) deviceAudit(ctx context.Context, store *db.Store, action, object, detail string) {
	if err := store.Audit(ctx, db.AuditEntry{Actor: "cli", Action: action, Object: object, Detail: detail}); err != nil {
		fmt.Fprintf(env.stderr, "andon: the change was made but not written to the audit log: %v\n", err)
	}
}

// cliMessage turns the store's "invalid" errors into their plain message
// (the store's wording is written for people); others stay as they are.
func cliMessage(err error) error {
	if errors.Is(err, plant.ErrInvalid) {
		msg := strings.ReplaceAll(err.Error(), ": "+plant.ErrInvalid.Error(), "")
		return errors.New(strings.TrimPrefix(msg, "db: "))
	}
	return err
}
