package main

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// bareHubLatency is the baseline of live latency: a gorilla websocket hub
// with nothing behind it, as Andon's hub is built (a buffered channel and a
// writer goroutine per client, one PreparedMessage per frame), sending what
// Andon's hub sends for 100 machines at 1 Hz: a frame every 20 ms (its
// shortest gap between flushes) of two tiles, to n clients in this process
// for d. It returns the p99 from send to receipt, in ms.
func bareHubLatency(n int, d time.Duration) (float64, error) {
	var (
		mu      sync.Mutex
		clients = map[chan *websocket.PreparedMessage]struct{}{}
	)
	up := websocket.Upgrader{WriteBufferSize: 8192, CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ch := make(chan *websocket.PreparedMessage, 64)
		mu.Lock()
		clients[ch] = struct{}{}
		mu.Unlock()
		go func() {
			for {
				if _, _, err := conn.NextReader(); err != nil {
					mu.Lock()
					if _, ok := clients[ch]; ok {
						delete(clients, ch)
						close(ch)
					}
					mu.Unlock()
					conn.Close()
					return
				}
			}
		}()
		for pm := range ch {
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if conn.WritePreparedMessage(pm) != nil {
				return
			}
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var (
		all []float64
		wg  sync.WaitGroup
	)
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
		if err != nil {
			return 0, fmt.Errorf("bare hub: %w", err)
		}
		conns = append(conns, c)
		wg.Go(func() {
			var mine []float64
			for {
				_, b, err := c.ReadMessage()
				now := time.Now().UnixNano()
				if err != nil {
					break
				}
				// The frame starts with the send time in ns.
				if k := strings.IndexByte(string(b[:min(len(b), 32)]), ','); k > 0 {
					if at, err := strconv.ParseInt(string(b[1:k]), 10, 64); err == nil {
						mine = append(mine, float64(now-at)/1e6)
					}
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		k := len(clients)
		mu.Unlock()
		if k == n || time.Now().After(deadline) {
			break
		}
	}
	filler := strings.Repeat("x", 900) // about a tile's HTML
	tick := time.NewTicker(20 * time.Millisecond)
	for end, i := time.Now().Add(d), 0; time.Now().Before(end); i++ {
		<-tick.C
		body := fmt.Sprintf(`[%d,{"type":"html","id":"machine-%d","html":"%s"},{"type":"html","id":"machine-%d","html":"%s"}]`,
			time.Now().UnixNano(), (2*i)%plantMachines, filler, (2*i+1)%plantMachines, filler)
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(body))
		if err != nil {
			return 0, err
		}
		mu.Lock()
		for ch := range clients {
			select {
			case ch <- pm:
			default: // a slow client is dropped in Andon; here it just misses one
			}
		}
		mu.Unlock()
	}
	tick.Stop()
	time.Sleep(200 * time.Millisecond)
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	wg.Wait()
	mu.Lock()
	for ch := range clients {
		close(ch)
		delete(clients, ch)
	}
	mu.Unlock()
	if len(all) == 0 {
		return 0, fmt.Errorf("bare hub: nothing received")
	}
	slices.Sort(all)
	return all[min(len(all)-1, len(all)*99/100)], nil
}
