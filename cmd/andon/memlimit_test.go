package main

import (
	"runtime/debug"
	"testing"
)

// TestMemoryLimitFlag: a soft memory limit of 80 MiB by default, settable by
// flag or environment, "off" for none; serve applies it to the runtime.
func TestMemoryLimitFlag(t *testing.T) {
	parse := func(args []string, env map[string]string) serveConfig {
		t.Helper()
		var c serveConfig
		if _, err := parseArgs(newFlagSet(&c), args, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(nil, nil); c.MemoryLimit != 80<<20 {
		t.Errorf("default %d, want 80 MiB", c.MemoryLimit)
	}
	if c := parse([]string{"--memory-limit", "256MiB"}, nil); c.MemoryLimit != 256<<20 {
		t.Errorf("--memory-limit 256MiB gave %d", c.MemoryLimit)
	}
	if c := parse(nil, map[string]string{"ANDON_MEMORY_LIMIT": "off"}); c.MemoryLimit != 0 {
		t.Errorf("ANDON_MEMORY_LIMIT=off gave %d", c.MemoryLimit)
	}
	var c serveConfig
	if _, err := parseArgs(newFlagSet(&c), []string{"--memory-limit", "2MB"}, func(string) string { return "" }); err == nil {
		t.Error("--memory-limit 2MB accepted")
	}

	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	s := startServe(t, nil, "--memory-limit", "200MiB")
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("runtime memory limit %d after serve --memory-limit 200MiB", got)
	}
	_ = s
}
