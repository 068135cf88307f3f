package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A lean MQTT 3.1.1 client for load: it writes PUBLISH packets into a
// buffered connection and counts what comes back, nothing else. paho.golang
// (what Andon and its simulator use) costs more CPU per message than the
// embedded broker and SQLite together, so a load generator built on it
// measures itself (DESIGN.md: ~145k readings/s fed by paho, ~260k by a lean
// publisher). Packets are encoded by hand: a PUBLISH is a header byte, a
// length, the topic and the payload.

const (
	pktConnect   = 1
	pktConnack   = 2
	pktPublish   = 3
	pktPuback    = 4
	pktSubscribe = 8
	pktSuback    = 9
	pktPingresp  = 13
)

// leanConn is one MQTT connection.
type leanConn struct {
	c  net.Conn
	bw *bufio.Writer
	br *bufio.Reader
	wm sync.Mutex // guards bw: publishes and acks share it

	// window holds a token per QoS 1 publish in flight; a PUBACK returns it.
	window chan struct{}
	nextID uint16

	acked    atomic.Int64 // PUBACKs received
	received atomic.Int64 // PUBLISH packets received (subscribers)
	lastRecv atomic.Int64 // unix ns of the latest PUBLISH received
	onMsg    func(topic string, payload []byte)
	readErr  chan error
}

// dialLean connects with a clean session and starts reading. inflight bounds
// the QoS 1 publishes awaiting their PUBACK.
func dialLean(addr, clientID string, inflight int) (*leanConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("mqtt dial %s: %w", addr, err)
	}
	lc := &leanConn{
		c:       c,
		bw:      bufio.NewWriterSize(c, 64<<10),
		br:      bufio.NewReaderSize(c, 64<<10),
		window:  make(chan struct{}, max(inflight, 1)),
		readErr: make(chan error, 1),
	}
	// CONNECT: protocol "MQTT" level 4, clean session, keepalive 300 s.
	var body []byte
	body = appendString(body, "MQTT")
	body = append(body, 4, 0x02, 0x01, 0x2c)
	body = appendString(body, clientID)
	if err := lc.writePacket(pktConnect<<4, body); err != nil {
		c.Close()
		return nil, err
	}
	if err := lc.bw.Flush(); err != nil {
		c.Close()
		return nil, fmt.Errorf("mqtt connect %s: %w", addr, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, ack, err := lc.readPacket()
	_ = c.SetReadDeadline(time.Time{})
	if err != nil || typ>>4 != pktConnack || len(ack) < 2 || ack[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("mqtt connect %s: refused (type %d, %x, %v)", addr, typ>>4, ack, err)
	}
	go lc.readLoop()
	return lc, nil
}

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func (lc *leanConn) writePacket(header byte, body []byte) error {
	var hdr [5]byte
	h := appendLength(append(hdr[:0], header), len(body))
	if _, err := lc.bw.Write(h); err != nil {
		return err
	}
	_, err := lc.bw.Write(body)
	return err
}

// publish queues one PUBLISH. A QoS 1 publish waits for room in the window;
// before waiting, whatever is buffered is sent, or the window never drains.
func (lc *leanConn) publish(topic string, payload []byte, qos byte) error {
	var id uint16
	if qos > 0 {
		select {
		case lc.window <- struct{}{}:
		default:
			if err := lc.flush(); err != nil {
				return err
			}
			select {
			case lc.window <- struct{}{}:
			case err := <-lc.readErr:
				return fmt.Errorf("mqtt: connection lost: %w", err)
			}
		}
		lc.nextID++
		if lc.nextID == 0 {
			lc.nextID = 1
		}
		id = lc.nextID
	}
	lc.wm.Lock()
	defer lc.wm.Unlock()
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	var hdr [7]byte
	h := appendLength(append(hdr[:0], pktPublish<<4|qos<<1), n)
	if _, err := lc.bw.Write(h); err != nil {
		return err
	}
	_ = lc.bw.WriteByte(byte(len(topic) >> 8))
	_ = lc.bw.WriteByte(byte(len(topic)))
	_, _ = lc.bw.WriteString(topic)
	if qos > 0 {
		_ = lc.bw.WriteByte(byte(id >> 8))
		_ = lc.bw.WriteByte(byte(id))
	}
	_, err := lc.bw.Write(payload)
	return err
}

func (lc *leanConn) flush() error {
	lc.wm.Lock()
	defer lc.wm.Unlock()
	return lc.bw.Flush()
}

// drain sends what is buffered and waits until every QoS 1 publish is
// acknowledged.
func (lc *leanConn) drain(timeout time.Duration) error {
	if err := lc.flush(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for len(lc.window) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("mqtt: %d publishes unacknowledged after %s", len(lc.window), timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// subscribe subscribes to filter at qos and waits for the SUBACK.
func (lc *leanConn) subscribe(filter string, qos byte) error {
	done := make(chan struct{})
	lc.wm.Lock()
	body := appendString([]byte{0, 1}, filter)
	body = append(body, qos)
	err := lc.writePacket(pktSubscribe<<4|0x02, body)
	if err == nil {
		err = lc.bw.Flush()
	}
	lc.wm.Unlock()
	if err != nil {
		return fmt.Errorf("mqtt subscribe: %w", err)
	}
	go func() {
		for lc.acked.Load() == 0 && lc.received.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case err := <-lc.readErr:
		return fmt.Errorf("mqtt subscribe: %w", err)
	case <-time.After(5 * time.Second):
		return errors.New("mqtt subscribe: no SUBACK within 5 s")
	}
}

func (lc *leanConn) close() { _ = lc.c.Close() }

func (lc *leanConn) readPacket() (byte, []byte, error) {
	typ, err := lc.br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := lc.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("mqtt: malformed length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(lc.br, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

// readLoop counts PUBACKs and PUBLISHes. A QoS 1 PUBLISH is acknowledged at
// once; acks are flushed when nothing more is waiting to be read, so a burst
// costs one write.
func (lc *leanConn) readLoop() {
	for {
		typ, body, err := lc.readPacket()
		if err != nil {
			lc.readErr <- err
			return
		}
		switch typ >> 4 {
		case pktPuback:
			lc.acked.Add(1)
			select {
			case <-lc.window:
			default:
			}
		case pktSuback:
			lc.acked.Add(1)
		case pktPublish:
			lc.received.Add(1)
			lc.lastRecv.Store(time.Now().UnixNano())
			qos := (typ >> 1) & 3
			if len(body) < 2 {
				continue
			}
			tl := int(body[0])<<8 | int(body[1])
			if len(body) < 2+tl {
				continue
			}
			rest := body[2+tl:]
			if qos > 0 && len(rest) >= 2 {
				lc.wm.Lock()
				_ = lc.writePacket(pktPuback<<4, rest[:2])
				lc.wm.Unlock()
				rest = rest[2:]
			}
			if lc.onMsg != nil {
				lc.onMsg(string(body[2:2+tl]), rest)
			}
		case pktPingresp:
		}
		if lc.br.Buffered() == 0 {
			_ = lc.flush()
		}
	}
}
