package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// andon is one `andon serve` process on free ports with a fresh data dir.
type andon struct {
	cmd     *exec.Cmd
	dir     string
	httpURL string
	mqtt    string // embedded broker address, "" when off
	started time.Duration
	log     *bytes.Buffer
	exited  chan error
}

// freePort asks the kernel for a port nobody listens on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startAndon runs bin serve with open viewing and an anonymous broker (the
// benchmarks measure ingest and pages, not logins), no per-device cap, and
// extra args. It returns once /healthz answers 200; started is the time from
// exec to that answer: the cold start.
func startAndon(bin, workDir string, extra ...string) (*andon, error) {
	dir, err := os.MkdirTemp(workDir, "andon-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:" + strconv.Itoa(hp),
		"--log-level", "warn", "--device-rate", "0", "--open-viewing", "--mqtt-anonymous"}
	a := &andon{dir: dir, httpURL: "http://127.0.0.1:" + strconv.Itoa(hp), log: &bytes.Buffer{}, exited: make(chan error, 1)}
	if !hasArg(extra, "--mqtt-listen") {
		mp, err := freePort()
		if err != nil {
			return nil, err
		}
		a.mqtt = "127.0.0.1:" + strconv.Itoa(mp)
		args = append(args, "--mqtt-listen", a.mqtt)
	}
	args = append(args, extra...)
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stdout = io.Discard
	a.cmd.Stderr = a.log
	t0 := time.Now()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-a.exited:
			return nil, fmt.Errorf("andon serve exited before answering: %v\n%s", err, a.log)
		default:
		}
		resp, err := client.Get(a.httpURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				a.started = time.Since(t0)
				return a, nil
			}
		}
		if time.Since(t0) > 30*time.Second {
			a.stop()
			return nil, fmt.Errorf("andon serve: /healthz not 200 within 30 s\n%s", a.log)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hasArg(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// stop ends the process as SIGTERM does and removes its data dir.
func (a *andon) stop() {
	if a.cmd.Process != nil {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(15 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
	}
	_ = os.RemoveAll(a.dir)
}

// metric reads one un-labelled sample from /metrics.
func (a *andon) metric(name string) (float64, error) {
	resp, err := http.Get(a.httpURL + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(rest, 64)
		}
	}
	return 0, nil
}

// ingested is the readings committed so far.
func (a *andon) ingested() (float64, error) { return a.metric("andon_readings_ingested_total") }

// waitIngested waits until at least want readings are committed, or until
// nothing more arrives for stall; it returns the count it saw last.
func (a *andon) waitIngested(want float64, stall time.Duration) (float64, error) {
	last, lastChange := -1.0, time.Now()
	for {
		got, err := a.ingested()
		if err != nil {
			return got, err
		}
		if got >= want {
			return got, nil
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > stall {
			return got, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memory is the process's resident set now and at its peak, in bytes.
func (a *andon) memory() (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return rss, peak
}

// resetPeak restarts VmHWM, so a peak belongs to one scenario.
func (a *andon) resetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", a.cmd.Process.Pid), []byte("5"), 0)
}

// machine is one machine as /api/v1/machines lists it.
type machine struct {
	ID   int64  `json:"id"`
	Path string `json:"path"`
	Tags []struct {
		ID int64 `json:"id"`
	} `json:"tags"`
}

// machines lists the plant's machines.
func (a *andon) machines(ctx context.Context) ([]machine, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.httpURL+"/api/v1/machines", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("machines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("machines: GET /api/v1/machines = %d", resp.StatusCode)
	}
	var out struct {
		Lines []struct {
			Machines []machine `json:"machines"`
		} `json:"lines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("machines: %w", err)
	}
	var ms []machine
	for _, l := range out.Lines {
		ms = append(ms, l.Machines...)
	}
	return ms, nil
}
