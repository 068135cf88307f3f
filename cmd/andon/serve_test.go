package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/websocket"

	"andon/ingest/mqtttest"
)

// server is a real `andon serve` run in-process on free ports.
type server struct {
	addrs  listening
	stop   context.CancelFunc
	done   chan error
	stderr *syncBuffer
	data   string // the data dir it runs on
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `andon serve` with args on free ports, a fresh data dir
// and debug logs (args can override each) and waits until it listens. It is
// stopped, and its exit checked, when the test ends.
func startServe(t testing.TB, env map[string]string, args ...string) *server {
	t.Helper()
	// Open viewing and an anonymous broker keep the ingest and page tests
	// about ingest and pages; TestSecureByDefault covers the closed doors.
	base := []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--log-level", "debug",
		"--open-viewing", "--mqtt-anonymous"}
	return launch(t, env, append(base, args...)...)
}

// launch runs the andon command with exactly args, in-process, and waits
// until it listens.
func launch(t testing.TB, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stop: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	ready := make(chan listening, 1)
	e := &environment{
		stdout: io.Discard,
		stderr: s.stderr,
		getenv: func(k string) string { return env[k] },
		ready:  func(l listening) { ready <- l },
	}
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			s.data = args[i+1]
		}
	}
	if s.data == "" {
		s.data = env["ANDON_DATA"]
	}
	go func() { s.done <- e.run(ctx, args) }()
	select {
	case s.addrs = <-ready:
	case err := <-s.done:
		cancel()
		t.Fatalf("serve exited before listening: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 30 s\n%s", s.stderr)
	}
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("serve returned %v\n%s", err, s.stderr)
		}
	})
	return s
}

// shutdown stops the server as SIGTERM would and returns what serve returned.
func (s *server) shutdown() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(15 * time.Second):
		return fmt.Errorf("serve did not stop within 15 s")
	}
}

func (s *server) url(path string) string { return "http://" + s.addrs.HTTP + path }

// get is an anonymous GET that follows redirects.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	return getWith(t, http.DefaultClient, url)
}

// machineIDs reads the overview page and returns machine ids by machine name.
func machineIDs(t testing.TB, s *server) map[string]int64 {
	t.Helper()
	code, body := get(t, s.url("/"))
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	doc.Find(`[data-testid^="machine-tile-"]`).Each(func(_ int, sel *goquery.Selection) {
		tid, _ := sel.Attr("data-testid")
		id, err := strconv.ParseInt(strings.TrimPrefix(tid, "machine-tile-"), 10, 64)
		if err != nil {
			t.Errorf("tile id %q: %v", tid, err)
			return
		}
		ids[strings.TrimSpace(sel.Find(`[data-testid="machine-name"]`).Text())] = id
	})
	return ids
}

// wsClient subscribes to topics on the server's /ws.
func wsClient(t testing.TB, s *server, subs ...string) *websocket.Conn {
	t.Helper()
	hdr := http.Header{"Origin": {"http://" + s.addrs.HTTP}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addrs.HTTP+"/ws", hdr)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WriteJSON(map[string][]string{"sub": subs}); err != nil {
		t.Fatal(err)
	}
	return c
}

type wsMessage struct {
	Type string    `json:"type"`
	Tag  int64     `json:"tag"`
	T    []float64 `json:"t"`
	V    []float64 `json:"v"`
	ID   string    `json:"id"`
	HTML string    `json:"html"`
}

// waitFor reads websocket messages until match returns true or 15 s pass.
func waitFor(t *testing.T, c *websocket.Conn, what string, match func(wsMessage) bool) wsMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		// A frame is one message or an array of them.
		var ms []wsMessage
		if len(b) > 0 && b[0] == '[' {
			if err := json.Unmarshal(b, &ms); err != nil {
				t.Fatalf("bad websocket frame %q: %v", b, err)
			}
		} else {
			var m wsMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("bad websocket message %q: %v", b, err)
			}
			ms = append(ms, m)
		}
		for _, m := range ms {
			if match(m) {
				return m
			}
		}
	}
}

// TestServeEmbeddedBroker is the product's main path: a reading published to
// the embedded broker is stored, shown on the pages, and pushed live.
func TestServeEmbeddedBroker(t *testing.T) {
	s := startServe(t, nil)
	code, body := get(t, s.url("/"))
	if code != 200 || !strings.Contains(body, "mosquitto_pub") || !strings.Contains(body, s.addrs.MQTT[strings.LastIndex(s.addrs.MQTT, ":")+1:]) {
		t.Fatalf("empty overview should show a mosquitto_pub line with the broker's port; got %d:\n%s", code, body)
	}

	pub := mqtttest.Connect(t, s.addrs.MQTT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// QoS1: the PUBACK means the reading is committed.
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte("23.5"), 1); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/state", []byte("running"), 1); err != nil {
		t.Fatal(err)
	}
	ids := machineIDs(t, s)
	id, ok := ids["press-01"]
	if !ok {
		t.Fatalf("overview has no press-01 tile after a stored reading; tiles: %v", ids)
	}
	code, body = get(t, s.url(fmt.Sprintf("/machines/%d", id)))
	if code != 200 || !strings.Contains(body, "temperature") || !strings.Contains(body, "23.5") {
		t.Fatalf("machine page: %d, want temperature 23.5:\n%s", code, body)
	}

	ws := wsClient(t, s, fmt.Sprintf("machine:%d", id))
	// The snapshot says the subscription is in place; deltas follow it.
	waitFor(t, ws, "the snapshot", func(m wsMessage) bool { return m.Type == "html" })
	ts := time.Now().UnixMilli()
	payload := fmt.Sprintf(`{"value": 71.25, "ts": %d}`, ts)
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte(payload), 1); err != nil {
		t.Fatal(err)
	}
	m := waitFor(t, ws, "the new point", func(m wsMessage) bool {
		return m.Type == "points" && len(m.V) > 0 && m.V[len(m.V)-1] == 71.25
	})
	if got := int64(m.T[len(m.T)-1]*1000 + 0.5); got != ts {
		t.Errorf("pushed point time = %d ms, want %d", got, ts)
	}

	// A bad payload is rejected, counted, listed for admins, and harms nothing.
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte("{not json"), 1); err != nil {
		t.Fatalf("a bad payload must still be acknowledged: %v", err)
	}
	if err := pub.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte("24"), 1); err != nil {
		t.Fatal(err)
	}
	_, metrics := get(t, s.url("/metrics"))
	for _, want := range []string{`andon_readings_rejected_total{reason="bad_json"} 1`, "andon_readings_ingested_total 4", "andon_ws_clients 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, rejects := getWith(t, s.login(t, "admin"), s.url("/admin/rejects"))
	if !strings.Contains(rejects, "bad_json") || !strings.Contains(rejects, "{not json") {
		t.Errorf("/admin/rejects does not list the bad payload")
	}
	if code, body := get(t, s.url("/healthz")); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %s", code, body)
	}

	// Graceful shutdown closes the websocket with 1012 (service restart).
	if err := s.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
			t.Errorf("websocket closed with %v, want close code 1012", err)
		}
		break
	}
}

// TestServeExternalBroker subscribes to a real mosquitto and stores what is
// published there, including what was published while Andon was down.
func TestServeExternalBroker(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t)
	data := t.TempDir()
	args := []string{"--mqtt-listen", "off", "--mqtt-url", "mqtt://" + mosq.Addr, "--data", data}
	s := startServe(t, nil, args...)

	pub := mqtttest.Connect(t, mosq.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	publishUntilSeen(t, ctx, s, pub, "line-2/oven-1/temperature", "oven-1")

	// Stop Andon, publish while it is away, start it again on the same data:
	// the persistent session delivers what it missed.
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := pub.Publish(ctx, "line-2/oven-2/temperature", []byte(strconv.Itoa(100+i)), 1); err != nil {
			t.Fatal(err)
		}
	}
	s2 := startServe(t, nil, args...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, ok := machineIDs(t, s2)["oven-2"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readings published while andon was down never arrived\n%s", s2.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	id := machineIDs(t, s2)["oven-2"]
	code, body := get(t, s2.url(fmt.Sprintf("/machines/%d", id)))
	if code != 200 {
		t.Fatalf("machine page %d", code)
	}
	tag := firstTagID(t, body)
	deadline = time.Now().Add(15 * time.Second)
	for {
		n := seriesLen(t, s2, tag)
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart the tag has %d readings, want all 50 published while andon was down", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publishUntilSeen publishes to topic until the machine shows on the
// overview: the first subscription may take a moment to be in place.
func publishUntilSeen(t *testing.T, ctx context.Context, s *server, pub *mqtttest.Publisher, topic, machine string) {
	t.Helper()
	for i := 0; ; i++ {
		if err := pub.Publish(ctx, topic, []byte(strconv.Itoa(i)), 1); err != nil {
			t.Fatal(err)
		}
		if _, ok := machineIDs(t, s)[machine]; ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never appeared on the overview\n%s", machine, s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstTagID(t *testing.T, page string) int64 {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	tid, ok := doc.Find(`[data-testid^="chart-"]`).First().Attr("data-testid")
	if !ok {
		t.Fatalf("machine page has no chart:\n%s", page)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(tid, "chart-"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func seriesLen(t *testing.T, s *server, tag int64) int {
	t.Helper()
	from := time.Now().Add(-time.Hour).UnixMilli()
	code, body := get(t, s.url(fmt.Sprintf("/api/v1/tags/%d/series?from=%d&to=%d", tag, from, time.Now().Add(time.Minute).UnixMilli())))
	if code != 200 {
		t.Fatalf("series: %d %s", code, body)
	}
	var r struct{ V []float64 }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return len(r.V)
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	for _, flagName := range []string{"http", "mqtt-listen"} {
		t.Run(flagName, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &environment{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
			args := []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--" + flagName, taken}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := e.run(ctx, args)
			if err == nil {
				t.Fatal("serve on a taken address succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "--"+flagName) || !strings.Contains(msg, "in use") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming --%s", msg, flagName)
			}
		})
	}
}

// TestDemoFallsBackToAFreePort: `make run` on a machine that already runs a
// broker on :1883 still starts, on another port, and says so.
func TestDemoFallsBackToAFreePort(t *testing.T) {
	// Hold :1883 if it is free; if it is not, someone else holds it. Either
	// way the default MQTT port is taken for this test.
	if ln, err := net.Listen("tcp", ":1883"); err == nil {
		defer ln.Close()
	}
	data := t.TempDir()
	e := map[string]string{"ANDON_HTTP": "127.0.0.1:0", "ANDON_DATA": data}
	s := launch(t, e, "serve", "--demo", "--demo-machines", "2")
	if strings.HasSuffix(s.addrs.MQTT, ":1883") || s.addrs.MQTT == "" {
		t.Fatalf("demo MQTT address %q: want a free port instead of the taken :1883", s.addrs.MQTT)
	}
	if !strings.Contains(s.stderr.String(), "DEFAULT PORT IN USE") || !strings.Contains(s.stderr.String(), "--mqtt-listen") {
		t.Errorf("the log does not say loudly which port the demo took:\n%s", s.stderr)
	}
	// The demo plant shows up by itself.
	deadline := time.Now().Add(15 * time.Second)
	for len(machineIDs(t, s)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("demo plant did not appear: %v\n%s", machineIDs(t, s), s.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	e := &environment{stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }}
	if err := e.run(context.Background(), []string{"version"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "andon dev\n" {
		t.Errorf("version printed %q", got)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "andon.yaml")
	if err := os.WriteFile(file, []byte("http: \":9000\"\nmqtt_listen: \":9001\"\ndata: /from/file\ndemo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantHTTP string
		wantMQTT string
		wantData string
		wantDemo bool
		wantErr  string
	}{
		{name: "defaults", wantHTTP: ":8080", wantMQTT: ":1883", wantData: "./data"},
		{name: "env twin", env: map[string]string{"ANDON_HTTP": ":81", "ANDON_DEMO": "true"}, wantHTTP: ":81", wantMQTT: ":1883", wantData: "./data", wantDemo: true},
		{name: "flag beats env", args: []string{"--http", ":82"}, env: map[string]string{"ANDON_HTTP": ":81"}, wantHTTP: ":82", wantMQTT: ":1883", wantData: "./data"},
		{name: "file", args: []string{"--config", file}, wantHTTP: ":9000", wantMQTT: ":9001", wantData: "/from/file", wantDemo: true},
		{name: "file named by env", env: map[string]string{"ANDON_CONFIG": file}, wantHTTP: ":9000", wantMQTT: ":9001", wantData: "/from/file", wantDemo: true},
		{name: "env beats file", args: []string{"--config", file}, env: map[string]string{"ANDON_DATA": "/from/env"}, wantHTTP: ":9000", wantMQTT: ":9001", wantData: "/from/env", wantDemo: true},
		{name: "flag beats file", args: []string{"--config", file, "--mqtt-listen", "off", "--mqtt-url", "mqtt://x:1"}, wantHTTP: ":9000", wantMQTT: "off", wantData: "/from/file", wantDemo: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "nope"},
		{name: "bad env value", env: map[string]string{"ANDON_DEMO": "maybe"}, wantErr: "ANDON_DEMO"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "missing.yaml")}, wantErr: "missing.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c serveConfig
			fs := newFlagSet(&c)
			_, err := parseArgs(fs, tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTP != tt.wantHTTP || c.MQTTListen != tt.wantMQTT || c.Data != tt.wantData || c.Demo != tt.wantDemo {
				t.Errorf("got http=%q mqtt=%q data=%q demo=%v", c.HTTP, c.MQTTListen, c.Data, c.Demo)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "ok", args: nil},
		{name: "no source", args: []string{"--mqtt-listen", "off"}, wantErr: "no way to receive readings"},
		{name: "bad url", args: []string{"--mqtt-url", "http://x"}, wantErr: "--mqtt-url"},
		{name: "bad zone", args: []string{"--time-zone", "Mars/Olympus"}, wantErr: "--time-zone"},
		{name: "bad sync", args: []string{"--synchronous", "off"}, wantErr: "--synchronous"},
		{name: "bad heartbeat", args: []string{"--heartbeat", "10ms"}, wantErr: "--heartbeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c serveConfig
			fs := newFlagSet(&c)
			if _, err := parseArgs(fs, tt.args, func(string) string { return "" }); err != nil {
				t.Fatal(err)
			}
			err := c.validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://host:1883":               "mqtt://host:1883",
		"mqtt://user:secret@host:1883":   "mqtt://user:xxxxx@host:1883",
		"mqtts://user@host:8883":         "mqtts://user@host:8883",
		"mqtt://u:p@ss:w@rd@host:1883/x": "mqtt://u:xxxxx@host:1883/x",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// addUser creates a user on the server's data dir with `andon user add`,
// as an admin would, and returns its password.
func (s *server) addUser(t testing.TB, name, role string) string {
	t.Helper()
	password := "pw-" + name + "-0123456789"
	var out bytes.Buffer
	e := &environment{stdin: strings.NewReader(password + "\n"), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := e.run(context.Background(), []string{"user", "add", "--data", s.data, "--name", name, "--role", role}); err != nil {
		t.Fatalf("andon user add %s: %v\n%s", name, err, out.String())
	}
	return password
}

// login returns an HTTP client logged in as a new user of the role.
func (s *server) login(t testing.TB, role string) *http.Client {
	t.Helper()
	name := role + "-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)
	password := s.addUser(t, name, role)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, s.url("/login"), strings.NewReader(url.Values{"name": {name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+s.addrs.HTTP)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d", name, resp.StatusCode)
	}
	return c
}

// getWith is get with a given client.
func getWith(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDemoRestartKeepsItsPlant: a demo restarted on its data dir is the same
// plant (same seed, so the same ideal cycle times) and does not publish its
// hour of history a second time over the stored readings.
func TestDemoRestartKeepsItsPlant(t *testing.T) {
	data := t.TempDir()
	args := []string{"--demo", "--demo-machines", "2", "--data", data}
	s := startServe(t, nil, args...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.stderr.String(), "history published") {
		if time.Now().After(deadline) {
			t.Fatalf("the first demo start did not publish its history\n%s", s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seed, err := os.ReadFile(filepath.Join(data, "demo-seed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	s2 := startServe(t, nil, args...)
	time.Sleep(2 * time.Second)
	if strings.Contains(s2.stderr.String(), "history published") {
		t.Error("the restarted demo published its history again")
	}
	again, _ := os.ReadFile(filepath.Join(data, "demo-seed"))
	if string(again) != string(seed) {
		t.Errorf("the demo seed changed across a restart: %q → %q", seed, again)
	}
}
