package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"andon/db"
	"andon/plant"
)

// rawConn is MQTT 3.1.1 by hand, so a test sees each PUBACK as it comes and
// can keep many publishes in flight on one connection, as a PLC does.
type rawConn struct {
	t    *testing.T
	conn net.Conn
}

func dialRaw(t *testing.T, addr, clientID string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, byte(len(clientID))}
	body = append(body, clientID...)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil || !bytes.Equal(connack, []byte{0x20, 2, 0, 0}) {
		t.Fatalf("connack % x: %v", connack, err)
	}
	return &rawConn{t: t, conn: conn}
}

// publish1 sends a QoS 1 publish (retained if asked) without waiting.
func (c *rawConn) publish1(topic, payload string, id uint16, retain bool) {
	c.t.Helper()
	h := byte(0x32)
	if retain {
		h |= 1
	}
	pk := []byte{h, byte(2 + len(topic) + 2 + len(payload)), 0, byte(len(topic))}
	pk = append(pk, topic...)
	pk = append(pk, byte(id>>8), byte(id))
	pk = append(pk, payload...)
	if _, err := c.conn.Write(pk); err != nil {
		c.t.Fatal(err)
	}
}

// puback reads the next packet, which must be a PUBACK, and returns its id.
func (c *rawConn) puback() (uint16, error) {
	b := make([]byte, 4)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return 0, err
	}
	if b[0] != 0x40 || b[1] != 2 {
		return 0, fmt.Errorf("not a PUBACK: % x", b)
	}
	return uint16(b[2])<<8 | uint16(b[3]), nil
}

func startWriter(t *testing.T) (*db.Store, *db.Writer) {
	t.Helper()
	store := db.OpenTest(t)
	w := db.NewWriter(store, db.WriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("writer Run: %v", err)
		}
	})
	return store, w
}

// TestBrokerAcksInOrderAfterCommit keeps 300 QoS 1 publishes in flight on
// one connection, among them payloads that cannot be parsed and a retained
// message, which mochi acknowledges itself: every PUBACK must come, in the
// order the publishes were sent (MQTT-4.6.0-2), and every good reading must
// be stored.
func TestBrokerAcksInOrderAfterCommit(t *testing.T) {
	store, w := startWriter(t)
	addr := startBroker(t, w, nil)
	c := dialRaw(t, addr, "plc")
	const n = 300
	good := 0
	for id := uint16(1); id <= n; id++ {
		switch {
		case id%25 == 0:
			c.publish1("l1/m1/temp", "{bad json", id, false)
		case id == 151:
			c.publish1("l1/m1/mode", "running", id, true)
			good++
		default:
			c.publish1("l1/m1/temp", fmt.Sprintf(`{"value": %d, "ts": %d}`, id, 1_732_450_000_000+int64(id)), id, false)
			good++
		}
	}
	for want := uint16(1); want <= n; want++ {
		got, err := c.puback()
		if err != nil {
			t.Fatalf("PUBACK %d of %d: %v", want, n, err)
		}
		if got != want {
			t.Fatalf("PUBACK for %d arrived where %d's was due", got, want)
		}
	}
	tags, err := store.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, tg := range tags {
		rs, err := store.Series(context.Background(), tg.ID, 0, 2_000_000_000_000, 0)
		if err != nil {
			t.Fatal(err)
		}
		counts[tg.Metric] = int64(len(rs))
	}
	if counts["temp"]+counts["mode"] != int64(good) || counts["mode"] != 1 {
		t.Errorf("stored %v, want %d readings with one of mode", counts, good)
	}
}

// gateSink holds every commit report until released, as a slow disk does.
type gateSink struct {
	testSink
	gmu  sync.Mutex
	held []func(error)
}

func (s *gateSink) Enqueue(ctx context.Context, rs []plant.Reading, done func(error)) error {
	return s.testSink.Enqueue(ctx, rs, func(err error) {
		s.gmu.Lock()
		defer s.gmu.Unlock()
		s.held = append(s.held, func(error) { done(err) })
	})
}

func (s *gateSink) release() int {
	s.gmu.Lock()
	held := s.held
	s.held = nil
	s.gmu.Unlock()
	for _, f := range held {
		f(nil)
	}
	return len(held)
}

// TestBrokerAckWaitsForCommit: no PUBACK leaves before the commit is
// reported, and it leaves once it is.
func TestBrokerAckWaitsForCommit(t *testing.T) {
	sink := &gateSink{}
	addr := startBroker(t, sink, nil)
	c := dialRaw(t, addr, "plc")
	c.publish1("l1/m1/temp", "21.5", 7, false)
	waitFor(t, "the reading queued", func() bool {
		sink.gmu.Lock()
		defer sink.gmu.Unlock()
		return len(sink.held) == 1
	})
	_ = c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if id, err := c.puback(); err == nil {
		t.Fatalf("PUBACK %d before the commit", id)
	} else if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v, want a timeout", err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	sink.release()
	if id, err := c.puback(); err != nil || id != 7 {
		t.Fatalf("PUBACK %d, %v; want 7 after the commit", id, err)
	}
}

// TestBrokerAckedPublishFailsToCommit: with nobody subscribed the publish
// takes the acker's path; a failed commit sends no PUBACK and disconnects
// the client, so it resends.
func TestBrokerAckedPublishFailsToCommit(t *testing.T) {
	sink := &testSink{fail: errStoreDown}
	addr := startBroker(t, sink, nil)
	c := dialRaw(t, addr, "plc")
	c.publish1("l1/m1/temp", "21.5", 1, false)
	if id, err := c.puback(); err == nil {
		t.Fatalf("PUBACK %d for a publish that was not stored", id)
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the client was not disconnected")
	}
}
