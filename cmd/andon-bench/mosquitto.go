package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// mosquittoProc is a mosquitto of the benchmark's own on a free port, with the
// queue limit the README asks users to set.
type mosquittoProc struct {
	addr string
	cmd  *exec.Cmd
	dir  string
}

func startMosquitto(workDir string) (*mosquittoProc, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return nil, fmt.Errorf("mosquitto not found: `make deps` installs it")
		}
		bin = "/usr/sbin/mosquitto"
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(workDir, "mosquitto-")
	if err != nil {
		return nil, err
	}
	me := "root"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	conf := fmt.Sprintf("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n", me, port)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	m := &mosquittoProc{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, cmd: exec.Command(bin, "-c", confPath)}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", m.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return m, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.stop()
	return nil, fmt.Errorf("mosquitto did not start on %s", m.addr)
}

func (m *mosquittoProc) stop() {
	if m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(os.Interrupt)
		_ = m.cmd.Wait()
	}
	_ = os.RemoveAll(m.dir)
}
