package ingest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// mosquitto is a mosquitto broker a test runs on a free 127.0.0.1 port.
type mosquitto struct {
	addr string
	cmd  *exec.Cmd
	log  string
}

// startMosquitto starts a broker that keeps up to 200,000 queued QoS 1
// messages per client (the default of 1000 silently drops the rest). It is
// stopped when the test ends. A missing mosquitto fails the test: CI installs
// it, so a skip would only hide the gap.
func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatal("mosquitto not found: apt-get install -y mosquitto")
	}
	dir := t.TempDir()
	port := freePort(t)
	m := &mosquitto{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		log:  filepath.Join(dir, "mosquitto.log"),
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 200000\nlog_dest file %s\n", port, m.log)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(bin, "-c", conf)
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case err := <-exited:
			logText, _ := os.ReadFile(m.log)
			t.Fatalf("mosquitto exited: %v\n%s", err, logText)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not accept connections on %s", m.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for a port that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
