package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"andon/db"
)

// serveConfig is everything `andon serve` needs, loaded once from defaults,
// an optional YAML file, ANDON_* environment variables and flags, in that
// order of increasing precedence, then validated.
type serveConfig struct {
	Config       string
	Data         string
	HTTP         string
	MQTTListen   string // "off" disables the embedded broker
	MQTTURL      string // external broker to subscribe to; "" for none
	MQTTTopics   string // comma-separated subscription filters on the external broker
	Demo         bool
	DemoMachines int
	Heartbeat    time.Duration
	TimeZone     string
	Synchronous  string
	WriteQueue   int     // readings waiting for their commit, at most
	DeviceRate   float64 // readings per second one MQTT client may publish; 0: no cap
	LogLevel     string
	LogFormat    string
	CPUProfile   string // file for a CPU profile of the whole run; "" for none
	PprofAddr    string // where to serve Go's /debug/pprof; "" for nowhere

	// Sparkplug B host application: its id in spBv1.0/STATE/<id> ("off":
	// no STATE and no host connection), and whether a gap in an edge node's
	// sequence numbers, unfilled after the reorder timeout, asks for a rebirth.
	SparkplugHostID       string
	SparkplugRebirthOnGap bool
	SparkplugReorder      time.Duration

	OpenViewing   bool          // anyone may view pages without logging in
	MQTTAnonymous bool          // the embedded broker takes clients without credentials
	TLSCert       string        // HTTPS (and MQTT over TLS) certificate file
	TLSKey        string        // its key
	MQTTSListen   string        // MQTT over TLS listen address, used with --tls-cert; "off" to disable
	MQTTCA        string        // CA file for an external broker's certificate (mqtts://)
	SessionIdle   time.Duration // a login ends after this long without use

	// History retention (the YAML `retention:` section): how long each
	// resolution is kept (0: forever) and the database's size cap (0: none).
	KeepRaw    keepFlag
	KeepMinute keepFlag
	KeepHour   keepFlag
	MaxDBSize  sizeFlag

	// MemoryLimit is the Go runtime's soft memory limit; 0 for none.
	MemoryLimit sizeFlag

	location *time.Location
	// explicit records which settings the user gave (flag, env or file), so
	// --demo can fall back to a free port only for defaults.
	explicit map[string]bool
}

const (
	defaultHTTP       = ":8080"
	defaultMQTTListen = ":1883"
)

// newFlagSet is the `serve` command's flags, bound to c.
func newFlagSet(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.flags(fs)
	return fs
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Config, "config", "", "YAML file with settings (keys are the flag names, e.g. `http: \":8080\"`)")
	fs.StringVar(&c.Data, "data", "./data", "directory for the SQLite database and state")
	fs.StringVar(&c.HTTP, "http", defaultHTTP, "HTTP listen address")
	fs.StringVar(&c.MQTTListen, "mqtt-listen", defaultMQTTListen, "embedded MQTT broker listen address, or \"off\"")
	fs.StringVar(&c.MQTTURL, "mqtt-url", "", "external MQTT broker to subscribe to, e.g. mqtt://user:pass@host:1883")
	fs.StringVar(&c.MQTTTopics, "mqtt-topics", "#", "topic filters to subscribe to on the external broker, comma-separated")
	fs.BoolVar(&c.Demo, "demo", false, "run the demo plant simulator in-process")
	fs.IntVar(&c.DemoMachines, "demo-machines", 10, "machines in the demo plant")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 30*time.Second, "a machine silent for longer than this shows as offline")
	fs.StringVar(&c.TimeZone, "time-zone", "Local", "the plant's time zone (IANA name, e.g. Europe/Berlin)")
	fs.StringVar(&c.Synchronous, "synchronous", "normal", "SQLite synchronous mode: normal, or full for power-loss durability")
	fs.Float64Var(&c.DeviceRate, "device-rate", 20_000, "readings per second one client of the embedded broker may publish (QoS 0 beyond it dropped, QoS 1 slowed); 0 for no cap")
	fs.IntVar(&c.WriteQueue, "write-queue", 50_000, "readings waiting to be written, at most; beyond it QoS 1 publishers wait and QoS 0 readings are dropped")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	c.MemoryLimit = defaultMemoryLimit
	fs.Var(&c.MemoryLimit, "memory-limit", "soft limit on the memory Andon's Go runtime holds, e.g. 256MiB (off: none); near it the garbage collector works harder rather than grow (default 80MiB, or GOMEMLIMIT when set)")
	fs.StringVar(&c.PprofAddr, "pprof-listen", "", "serve Go's /debug/pprof profiles on this address (keep it on 127.0.0.1), for performance reports")
	fs.StringVar(&c.CPUProfile, "cpu-profile", "", "write a CPU profile (pprof) of the whole run to this file, for benchmarks and performance reports")
	fs.BoolVar(&c.OpenViewing, "open-viewing", false, "let anyone view the pages without logging in (writes still need a login); on by default with --demo")
	fs.BoolVar(&c.MQTTAnonymous, "mqtt-anonymous", false, "let MQTT clients publish to the embedded broker without credentials; on by default with --demo")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file (PEM): serve HTTPS, and MQTT over TLS on --mqtts-listen")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the certificate's key file (PEM)")
	fs.StringVar(&c.MQTTSListen, "mqtts-listen", ":8883", "MQTT over TLS listen address (with --tls-cert), or \"off\"")
	fs.StringVar(&c.MQTTCA, "mqtt-ca", "", "CA certificate file (PEM) to trust for an external broker reached with mqtts://")
	fs.DurationVar(&c.SessionIdle, "session-idle", 12*time.Hour, "a login ends after this long without use")
	fs.StringVar(&c.SparkplugHostID, "sparkplug-host-id", "andon", "Sparkplug B host application id, published as spBv1.0/STATE/<id>; \"off\" for no STATE messages")
	fs.BoolVar(&c.SparkplugRebirthOnGap, "sparkplug-rebirth-on-gap", false, "ask a Sparkplug edge node for a rebirth when its sequence numbers skip and the gap is not filled within --sparkplug-reorder-timeout")
	fs.DurationVar(&c.SparkplugReorder, "sparkplug-reorder-timeout", 2*time.Second, "how long a gap in a Sparkplug edge node's sequence numbers may stay open")
	c.KeepRaw, c.KeepMinute, c.KeepHour = keepFlag(db.DefaultKeepRaw), keepFlag(db.DefaultKeepMinute), keepFlag(db.DefaultKeepHour)
	fs.Var(&c.KeepRaw, "retention-raw", "how long raw readings are kept: 90d, 2y, 36h, or forever")
	fs.Var(&c.KeepMinute, "retention-1m", "how long 1-minute rollups are kept")
	fs.Var(&c.KeepHour, "retention-1h", "how long 1-hour rollups are kept")
	fs.Var(&c.MaxDBSize, "retention-max-size", "database size cap, e.g. 20GB; the oldest raw readings go first, then 1-minute rollups (default none)")
}

// keepFlag is a retention period: a Go duration, or whole days (90d) or
// years of 365 days (2y); "forever" (or 0) keeps for ever.
type keepFlag time.Duration

func (k *keepFlag) String() string {
	d := time.Duration(*k)
	switch {
	case d <= 0:
		return "forever"
	case d%(365*24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(365*24*time.Hour)), 10) + "y"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (k *keepFlag) Set(v string) error {
	v = strings.TrimSpace(strings.ToLower(v))
	if v == "forever" || v == "0" || v == "off" {
		*k = 0
		return nil
	}
	var d time.Duration
	if n, unit := strings.TrimRight(v, "dy"), strings.TrimLeft(v, "0123456789"); (unit == "d" || unit == "y") && n != "" {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100*365 {
			return fmt.Errorf("%q: want a number of days or years up to 100 years", v)
		}
		if unit == "y" {
			days *= 365
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%q: want 90d, 2y, 36h or forever", v)
		}
	}
	// Retention works in whole hours; anything shorter would delete what
	// the current hour's rollups are still being built from.
	if d < time.Hour {
		return fmt.Errorf("%q: keep at least 1h, or forever", v)
	}
	*k = keepFlag(d)
	return nil
}

// sizeFlag is a size in bytes written with a unit: 500MB, 20GB, 1.5TB
// (powers of 1000; KiB/MiB/GiB/TiB for powers of 1024); "" or 0 for none.
// defaultMemoryLimit keeps a plant's small box small: Andon's live memory
// is a few tens of MB even with 1,000 pages open, and without a limit the
// garbage collector lets the heap grow to twice that before it collects.
const defaultMemoryLimit = 80 << 20

type sizeFlag int64

func (z *sizeFlag) String() string {
	if *z <= 0 {
		return ""
	}
	return strconv.FormatInt(int64(*z), 10) + "B"
}

func (z *sizeFlag) Set(v string) error {
	v = strings.TrimSpace(strings.ToUpper(v))
	if v == "" || v == "0" || v == "OFF" || v == "NONE" {
		*z = 0
		return nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || f <= 0 || f*u.mult > 1e15 {
				return fmt.Errorf("%q: want a size such as 500MB or 20GB", v)
			}
			if f*u.mult < 10e6 {
				return fmt.Errorf("%q: under 10MB is too small", v)
			}
			*z = sizeFlag(f * u.mult)
			return nil
		}
	}
	return fmt.Errorf("%q: want a size with a unit, such as 500MB or 20GB", v)
}

func (c *serveConfig) validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("--data must not be empty"))
	}
	if c.MQTTListen == "off" && c.MQTTURL == "" {
		errs = append(errs, errors.New("no way to receive readings: --mqtt-listen is off and --mqtt-url is empty"))
	}
	if c.MQTTURL != "" && !hasScheme(c.MQTTURL, "mqtt", "mqtts", "tcp", "ssl", "tls", "ws", "wss") {
		errs = append(errs, fmt.Errorf("--mqtt-url %q: want mqtt://host:port or mqtts://host:port", c.MQTTURL))
	}
	if c.Heartbeat < time.Second {
		errs = append(errs, fmt.Errorf("--heartbeat %s: must be at least 1s", c.Heartbeat))
	}
	if c.DemoMachines < 1 || c.DemoMachines > 1000 {
		errs = append(errs, fmt.Errorf("--demo-machines %d: want 1 to 1000", c.DemoMachines))
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		errs = append(errs, fmt.Errorf("--time-zone %q: %w", c.TimeZone, err))
	}
	c.location = loc
	if c.DeviceRate < 0 || c.DeviceRate > 1e9 {
		errs = append(errs, fmt.Errorf("--device-rate %v: want 0 (no cap) or readings per second", c.DeviceRate))
	}
	if c.WriteQueue < 100 || c.WriteQueue > 10_000_000 {
		errs = append(errs, fmt.Errorf("--write-queue %d: want 100 to 10,000,000 readings", c.WriteQueue))
	}
	switch strings.ToLower(c.Synchronous) {
	case "normal", "full":
	default:
		errs = append(errs, fmt.Errorf("--synchronous %q: want normal or full", c.Synchronous))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.SessionIdle < time.Minute {
		errs = append(errs, fmt.Errorf("--session-idle %s: must be at least 1m", c.SessionIdle))
	}
	if c.SparkplugHostID == "" || strings.ContainsAny(c.SparkplugHostID, "/+#") || len(c.SparkplugHostID) > 128 {
		errs = append(errs, fmt.Errorf("--sparkplug-host-id %q: want a name without / + or # (or off)", c.SparkplugHostID))
	}
	if c.SparkplugReorder < 10*time.Millisecond || c.SparkplugReorder > time.Minute {
		errs = append(errs, fmt.Errorf("--sparkplug-reorder-timeout %s: want 10ms to 1m", c.SparkplugReorder))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(u, s+"://") {
			return true
		}
	}
	return false
}

// parseArgs fills fs's variables from, in increasing precedence, the YAML
// file named by --config or ANDON_CONFIG, the ANDON_* environment twins of
// the flags, and the command line. It returns the names of the settings that
// were given explicitly by any of the three.
func parseArgs(fs *flag.FlagSet, args []string, getenv func(string) string) (map[string]bool, error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	explicit := map[string]bool{}
	for name := range onCommandLine {
		explicit[name] = true
	}

	// The config file's name itself may come from the flag or the environment.
	file := ""
	if f := fs.Lookup("config"); f != nil {
		file = f.Value.String()
		if file == "" {
			file = getenv(envName("config"))
		}
	}
	if file != "" {
		settings, err := readConfigFile(file)
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			name := strings.ReplaceAll(key, "_", "-")
			if fs.Lookup(name) == nil || name == "config" {
				return nil, fmt.Errorf("%s: unknown setting %q", file, key)
			}
			if onCommandLine[name] || getenv(envName(name)) != "" {
				continue
			}
			if err := fs.Set(name, settings[key]); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, key, err)
			}
			explicit[name] = true
		}
	}

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || onCommandLine[f.Name] {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			return
		}
		explicit[f.Name] = true
	})
	return explicit, err
}

// envName is a flag's environment twin: --mqtt-url is ANDON_MQTT_URL.
func envName(flagName string) string {
	return "ANDON_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if k == "plant" || k == "mapping" {
			continue // the plant's set-up and the mapping rules, read by readPlantSection and readMappingSection
		}
		if sub, ok := v.(map[string]any); ok && k == "retention" {
			// retention: {raw: 90d, 1m: 2y, 1h: forever, max_size: 20GB}
			// is the flags --retention-raw, --retention-1m, ...
			for sk, sv := range sub {
				switch sv.(type) {
				case string, bool, int, float64:
					out["retention_"+sk] = fmt.Sprint(sv)
				default:
					return nil, fmt.Errorf("config %s: retention: %s: want a single value, got %T", path, sk, sv)
				}
			}
			continue
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool, int, float64:
			out[k] = fmt.Sprint(v)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("config %s: %s: want a single value, got %T", path, k, v)
		}
	}
	return out, nil
}

// usage prints a flag set's flags with their environment twins.
func usage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "usage: %s\n\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n        %s", f.Name, name, help)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, " [%s]\n", envName(f.Name))
	})
}
