package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// latencyResult is one run of live latency: publish → a websocket client
// has the machine's new tile.
type latencyResult struct {
	p50, p99, max float64 // ms
	samples       int
	peakRSS       float64
	routines      float64
}

var tileKey = []byte(`"id":"machine-`)

// runLatency connects clients websocket clients to the overview of a running
// Andon whose 100 machines exist, then publishes one message per machine per
// second (a message every 10 ms, round robin) for d and measures, for each
// client and message, the time from just before the publish to the first
// frame that carries that machine's tile.
func runLatency(a *andon, l *load, clients int, d time.Duration) (latencyResult, error) {
	var res latencyResult
	ms, err := a.machines(context.Background())
	if err != nil {
		return res, err
	}
	// Tile ids are machine ids; the load's message i goes to machine i mod 100.
	index := map[int64]int{}
	for _, m := range ms {
		k := strings.LastIndex(m.Path, "m-")
		if k < 0 {
			continue
		}
		n, err := strconv.Atoi(m.Path[k+2:])
		if err == nil && n < plantMachines {
			index[m.ID] = n
		}
	}
	if len(index) != plantMachines {
		return res, fmt.Errorf("latency: %d of %d machines found", len(index), plantMachines)
	}
	var published [plantMachines]atomic.Int64 // unix ns of each machine's latest publish

	var (
		mu      sync.Mutex
		all     []float64
		wg      sync.WaitGroup
		ready   sync.WaitGroup
		conns   []*websocket.Conn
		dialErr error
	)
	for range clients {
		conn, err := dialWS(a)
		if err != nil {
			dialErr = err
			break
		}
		if err := conn.WriteJSON(map[string][]string{"sub": {"plant"}}); err != nil {
			dialErr = err
			break
		}
		conns = append(conns, conn)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}()
	if dialErr != nil {
		return res, fmt.Errorf("latency: %d clients connected, then: %w", len(conns), dialErr)
	}
	a.resetPeak()
	for _, conn := range conns {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			var credited [plantMachines]int64
			var mine []float64
			first := true
			// One buffer per client, reused: a thousand clients reading
			// fifty frames a second would otherwise load this process's
			// garbage collector, and the figures with it.
			var buf bytes.Buffer
			for {
				_, r, err := conn.NextReader()
				if err != nil {
					break
				}
				buf.Reset()
				if _, err := buf.ReadFrom(r); err != nil {
					break
				}
				now := time.Now().UnixNano()
				b := buf.Bytes()
				if first {
					first = false
					ready.Done()
				}
				// A frame with most tiles is a full refresh, which re-renders
				// every tile whether it changed or not: it proves nothing.
				if bytes.Count(b, tileKey) > plantMachines/2 {
					continue
				}
				for rest := b; ; {
					k := bytes.Index(rest, tileKey)
					if k < 0 {
						break
					}
					rest = rest[k+len(tileKey):]
					e := bytes.IndexByte(rest, '"')
					if e < 0 {
						break
					}
					id, err := strconv.ParseInt(string(rest[:e]), 10, 64)
					if err != nil {
						continue
					}
					m, ok := index[id]
					if !ok {
						continue
					}
					if at := published[m].Load(); at > credited[m] {
						credited[m] = at
						mine = append(mine, float64(now-at)/1e6)
					}
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	// Every client has its snapshot (or the wait gives up) before the clock.
	waitGroupTimeout(&ready, 30*time.Second)

	pub, err := dialLean(a.mqtt, fmt.Sprintf("bench-latency-%d", time.Now().UnixNano()), 1)
	if err != nil {
		return res, err
	}
	defer pub.close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		m := i % plantMachines
		// No timestamp: stamped on arrival, so every message is new to
		// the store (a repeated one would be a duplicate, never pushed).
		payload := fmt.Appendf(nil, `{"a":%d.5,"b":%d}`, i, i%7)
		published[m].Store(time.Now().UnixNano())
		if err := pub.publish(l.topics[m], payload, 0); err != nil {
			return res, err
		}
		if err := pub.flush(); err != nil {
			return res, err
		}
	}
	time.Sleep(500 * time.Millisecond) // the last messages' frames
	_, res.peakRSS = a.memory()
	res.routines, _ = a.metric("go_goroutines")
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	wg.Wait()
	if len(all) == 0 {
		return res, fmt.Errorf("latency: no tile reached a client")
	}
	slices.Sort(all)
	res.samples = len(all)
	res.p50 = all[len(all)/2]
	res.p99 = all[min(len(all)-1, len(all)*99/100)]
	res.max = all[len(all)-1]
	return res, nil
}

func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
