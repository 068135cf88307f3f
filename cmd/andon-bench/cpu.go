package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTime is the CPU time (user + system) a process has used so far; pid 0
// is this process, and a negative pid none (0). What limited a figure shows in who used the two cores:
// Andon, the external broker, or the load generator in this process.
func cpuTime(pid int) time.Duration {
	if pid < 0 {
		return 0
	}
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after
	// the name, in clock ticks of 1/100 s on Linux.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+sy) * 10 * time.Millisecond
}

// cpuMeter measures the CPU share of some processes over an interval, as
// percent of one core.
type cpuMeter struct {
	pids  []int
	start []time.Duration
	at    time.Time
}

func newCPUMeter(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, at: time.Now()}
	for _, p := range pids {
		m.start = append(m.start, cpuTime(p))
	}
	return m
}

// percent returns each process's share of one core since the meter began.
func (m *cpuMeter) percent() []float64 {
	el := time.Since(m.at)
	out := make([]float64, len(m.pids))
	for i, p := range m.pids {
		out[i] = 100 * float64(cpuTime(p)-m.start[i]) / float64(el)
	}
	return out
}
