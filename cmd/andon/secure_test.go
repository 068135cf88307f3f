package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"andon/ingest/mqtttest"
)

// TestSecureByDefault: a fresh install has no open door. Pages send people
// to the login, the API and the broker refuse strangers, the console shows
// a one-time link that creates the first admin, and a device with its own
// credentials may publish only under its prefix.
func TestSecureByDefault(t *testing.T) {
	data := t.TempDir()
	s := launch(t, nil, "serve", "--data", data, "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for path, want := range map[string]int{"/": 303, "/downtime": 303, "/reports": 303, "/admin/users": 303,
		"/api/v1/machines": 401, "/metrics": 401, "/healthz": 200, "/login": 200} {
		resp, err := noFollow.Get(s.url(path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}

	if _, err := mqtttest.Dial(t, s.addrs.MQTT, "", ""); err == nil {
		t.Error("the broker took an anonymous client")
	}

	// The console shows the setup link; it creates the first admin, once.
	m := regexp.MustCompile(`/setup/([A-Za-z0-9_-]+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no setup link on the console:\n%s", s.stderr)
	}
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar, CheckRedirect: noFollow.CheckRedirect}
	form := url.Values{"name": {"boss"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}}
	post := func(c *http.Client, path string, v url.Values) int {
		code, _ := postForm(t, s, c, path, v)
		return code
	}
	if code := post(admin, "/setup/"+m[1], form); code != http.StatusSeeOther {
		t.Fatalf("setup link: %d", code)
	}
	if code, _ := getWith(t, admin, s.url("/admin/users")); code != 200 {
		t.Errorf("the first admin cannot open /admin/users: %d", code)
	}
	if code := post(noFollow, "/setup/"+m[1], form); code == http.StatusSeeOther {
		t.Error("the setup link worked twice")
	}

	// A device with credentials publishes under its prefix, and only there.
	var out bytes.Buffer
	e := &environment{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := e.run(context.Background(), []string{"device", "add", "--data", data, "--name", "press-01", "--prefix", "acme/hall-1/line-1/press-01", "--generate"}); err != nil {
		t.Fatalf("device add: %v\n%s", err, out.String())
	}
	pw := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out.String())
	if pw == nil {
		t.Fatalf("no generated password in %q", out.String())
	}
	if _, err := mqtttest.Dial(t, s.addrs.MQTT, "press-01", "wrong password!"); err == nil {
		t.Error("the broker took a wrong password")
	}
	dev, err := mqtttest.Dial(t, s.addrs.MQTT, "press-01", pw[1])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dev.Publish(ctx, "acme/hall-1/line-1/press-01/temperature", []byte("21.5"), 1); err != nil {
		t.Fatalf("publish under its prefix: %v", err)
	}
	if err := dev.Publish(ctx, "acme/hall-1/line-2/press-09/temperature", []byte("99"), 1); err == nil {
		t.Error("a device published outside its prefix")
	}
	_, page := getWith(t, admin, s.url("/"))
	if !strings.Contains(page, "press-01") || strings.Contains(page, "press-09") {
		t.Errorf("the overview should show press-01 only")
	}
	_, audit := getWith(t, admin, s.url("/admin/audit"))
	for _, want := range []string{"device.create", "press-01"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
}
