package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRetentionConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "andon.yaml")
	yaml := "retention:\n  raw: 30d\n  1m: 1y\n  1h: forever\n  max_size: 20GB\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	parse := func(args []string, env map[string]string) (serveConfig, error) {
		var c serveConfig
		_, err := parseArgs(newFlagSet(&c), args, func(k string) string { return env[k] })
		return c, err
	}

	c, err := parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.KeepRaw) != 90*24*time.Hour || time.Duration(c.KeepMinute) != 730*24*time.Hour || c.KeepHour != 0 || c.MaxDBSize != 0 {
		t.Errorf("defaults: raw %v 1m %v 1h %v cap %d", c.KeepRaw.String(), c.KeepMinute.String(), c.KeepHour.String(), c.MaxDBSize)
	}

	c, err = parse([]string{"--config", file}, map[string]string{"ANDON_RETENTION_1M": "400d"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.KeepRaw) != 30*24*time.Hour || time.Duration(c.KeepMinute) != 400*24*time.Hour || c.KeepHour != 0 || c.MaxDBSize != 20e9 {
		t.Errorf("file and env: raw %s 1m %s 1h %s cap %d", c.KeepRaw.String(), c.KeepMinute.String(), c.KeepHour.String(), c.MaxDBSize)
	}

	for _, tc := range []struct{ args []string }{
		{[]string{"--retention-raw", "10m"}},
		{[]string{"--retention-raw", "ninety days"}},
		{[]string{"--retention-1h", "1000y"}},
		{[]string{"--retention-max-size", "20"}},
		{[]string{"--retention-max-size", "1MB"}},
		{[]string{"--retention-max-size", "-5GB"}},
	} {
		if _, err := parse(tc.args, nil); err == nil || !strings.Contains(err.Error(), "retention") {
			t.Errorf("%v: err = %v, want an error naming the flag", tc.args, err)
		}
	}
	c, err = parse([]string{"--retention-raw", "36h", "--retention-max-size", "1.5GiB"}, nil)
	if err != nil || time.Duration(c.KeepRaw) != 36*time.Hour || c.MaxDBSize != 1.5*(1<<30) {
		t.Errorf("36h, 1.5GiB: %v %d, %v", c.KeepRaw.String(), c.MaxDBSize, err)
	}
}
