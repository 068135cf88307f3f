// Package mqtttest gives tests real MQTT peers: a mosquitto process on a free
// port that a test can stop and start again, and a plain MQTT 5 publisher.
package mqtttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Mosquitto is a mosquitto broker run by a test on 127.0.0.1.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	t    testing.TB
	conf string
	cmd  *exec.Cmd
	log  string
}

// mosquittoPath finds the broker; Debian installs it in /usr/sbin, which is
// not on every user's PATH.
func mosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mosquitto not found: `make deps` installs it (apt-get install mosquitto)")
}

// StartMosquitto starts a broker on a free port with persistence in a
// temporary directory, so a restart keeps sessions and queued messages. It
// is stopped when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	dir := t.TempDir()
	port := FreePort(t)
	m := &Mosquitto{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		t:    t,
		conf: filepath.Join(dir, "mosquitto.conf"),
		log:  filepath.Join(dir, "mosquitto.log"),
	}
	// Started as root, mosquitto drops to the user "mosquitto", which may not
	// write in the test's directory: no log and, worse, no persistence, so a
	// restarted broker would have forgotten every session. It stays the user
	// that runs the test instead.
	me := "root"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	conf := fmt.Sprintf(`user %s
listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
max_queued_messages 200000
log_dest file %s
`, me, port, dir, m.log)
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start starts (or restarts) the broker and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	bin, err := mosquittoPath()
	if err != nil {
		m.t.Fatal(err)
	}
	m.cmd = exec.Command(bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(m.log)
	m.t.Fatalf("mosquitto did not start on %s:\n%s", m.Addr, log)
}

// Stop stops the broker (SIGTERM, so it saves its persistence file) and waits for it.
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Publisher is a connected MQTT 5 client for tests.
type Publisher struct {
	c *paho.Client
}

// Connect opens an anonymous MQTT 5 connection to addr, closed when the
// test ends.
func Connect(t testing.TB, addr string) *Publisher {
	t.Helper()
	p, err := Dial(t, addr, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Dial opens an MQTT 5 connection with a username and password ("" for
// none) and reports a refusal as an error, closed when the test ends.
func Dial(t testing.TB, addr, username, password string) (*Publisher, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	cp := &paho.Connect{ClientID: fmt.Sprintf("test-%d", time.Now().UnixNano()), CleanStart: true, KeepAlive: 30}
	if username != "" {
		cp.Username, cp.UsernameFlag = username, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mqtt connect %s: %w", addr, err)
	}
	if ack.ReasonCode != 0 {
		conn.Close()
		return nil, fmt.Errorf("mqtt connect %s: reason 0x%x", addr, ack.ReasonCode)
	}
	p := &Publisher{c: c}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return p, nil
}

// Publish sends one message and, for QoS 1 and 2, waits for the broker's
// acknowledgement.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	resp, err := p.c.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: qos})
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("publish %s: reason code 0x%x", topic, resp.ReasonCode)
	}
	return nil
}

// Log returns what the broker has logged so far, for a failing test to show.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}
