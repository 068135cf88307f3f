package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"andon/db"
)

// MQTT 5 reason codes the tests expect from the broker.
const (
	rcBadUserOrPassword = 0x86 // CONNACK, MQTT 5 3.2.2.2
	rcNotAuthorized     = 0x87 // PUBACK and SUBACK
)

// dbEnv is a real store with its writer running until the test ends.
func dbEnv(t *testing.T) (*db.Store, *db.Writer) {
	t.Helper()
	store := db.OpenTest(t)
	w := db.NewWriter(store, db.WriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("writer Run: %v", err)
		}
	})
	return store, w
}

// connectAs opens an MQTT 5 connection over conn with a username and
// password ("" for none) and returns the client and its CONNACK's reason.
func connectAs(t *testing.T, conn net.Conn, clientID, user, password string) (*pahoClient, byte) {
	t.Helper()
	pc := &pahoClient{}
	pc.Client = paho.NewClient(paho.ClientConfig{
		ClientID: clientID,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				pc.mu.Lock()
				pc.received = append(pc.received, pr.Packet)
				pc.mu.Unlock()
				return true, nil
			},
		},
	})
	cp := &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.UsernameFlag, cp.Username = true, user
		cp.PasswordFlag, cp.Password = true, []byte(password)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := pc.Connect(ctx, cp)
	if ca == nil {
		t.Fatalf("connect as %q: no CONNACK: %v", user, err)
	}
	if ca.ReasonCode == 0 {
		t.Cleanup(func() { _ = pc.Disconnect(&paho.Disconnect{}) })
	}
	return pc, ca.ReasonCode
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// storedTopics lists the topics of the tags the store holds.
func storedTopics(t *testing.T, store *db.Store) []string {
	t.Helper()
	tags, err := store.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ts []string
	for _, tg := range tags {
		ts = append(ts, tg.Topic)
	}
	return ts
}

func TestBrokerDeviceCredentialsAndACL(t *testing.T) {
	ctx := context.Background()
	store, w := dbEnv(t)
	if _, err := store.CreateDevice(ctx, "press-01", "correct horse", "acme/hall-1/line-1"); err != nil {
		t.Fatal(err)
	}
	addr := startBrokerWith(t, BrokerConfig{Sink: w, Auth: store})

	t.Run("refused logins", func(t *testing.T) {
		for _, tt := range []struct{ name, user, pw string }{
			{"wrong password", "press-01", "wrong horse"},
			{"unknown device", "press-99", "correct horse"},
			{"anonymous", "", ""},
		} {
			if _, rc := connectAs(t, dialTCP(t, addr), "c-"+tt.name, tt.user, tt.pw); rc != rcBadUserOrPassword {
				t.Errorf("%s: CONNACK reason %#x, want %#x", tt.name, rc, rcBadUserOrPassword)
			}
		}
	})

	dev, rc := connectAs(t, dialTCP(t, addr), "press-01", "press-01", "correct horse")
	if rc != 0 {
		t.Fatalf("right password: CONNACK reason %#x", rc)
	}

	publish := func(topic string, qos byte) byte {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		resp, err := dev.Publish(pctx, &paho.Publish{Topic: topic, Payload: []byte("42"), QoS: qos})
		if qos == 0 {
			if err != nil {
				t.Fatalf("publish %s: %v", topic, err)
			}
			return 0
		}
		if resp == nil {
			t.Fatalf("publish %s: no PUBACK: %v", topic, err)
		}
		return resp.ReasonCode
	}
	// Outside the prefix: a QoS 0 publish is dropped silently, a QoS 1 one
	// answered "not authorized"; neither is stored.
	publish("acme/hall-1/line-10/press-01/temp", 0)
	for _, topic := range []string{
		"acme/hall-1/line-10/press-01/temp", // a sibling sharing the prefix's letters
		"acme/hall-1/other/temp",
		"acme/hall-1",
		"other/line-1/press-01/temp",
	} {
		if rc := publish(topic, 1); rc != rcNotAuthorized {
			t.Errorf("publish to %s: PUBACK reason %#x, want %#x", topic, rc, rcNotAuthorized)
		}
	}
	// Inside: stored, and the PUBACK means it is committed. mochi handles a
	// connection's packets in order, so the refused ones above are done.
	if rc := publish("acme/hall-1/line-1/press-01/temp", 1); rc != 0 {
		t.Fatalf("publish under the prefix: PUBACK reason %#x", rc)
	}
	if got := storedTopics(t, store); len(got) != 1 || got[0] != "acme/hall-1/line-1/press-01/temp" {
		t.Errorf("stored topics %q, want only the one under the prefix", got)
	}

	for _, tt := range []struct {
		filter string
		ok     bool
	}{
		{"acme/hall-1/line-1/#", true},
		{"acme/hall-1/line-1/+/temp", true},
		{"acme/hall-1/#", false},
		{"acme/+/line-1/#", false},
		{"#", false},
		{"$SYS/#", false},
	} {
		sctx, cancel := context.WithTimeout(ctx, waitTimeout)
		sa, err := dev.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: tt.filter, QoS: 1}}})
		cancel()
		if sa == nil {
			t.Fatalf("subscribe %s: no SUBACK: %v", tt.filter, err)
		}
		if got := sa.Reasons[0] < 0x80; got != tt.ok {
			t.Errorf("subscribe %s: SUBACK reason %#x, want allowed=%v", tt.filter, sa.Reasons[0], tt.ok)
		}
		if !tt.ok && sa.Reasons[0] != rcNotAuthorized {
			t.Errorf("subscribe %s: SUBACK reason %#x, want %#x", tt.filter, sa.Reasons[0], rcNotAuthorized)
		}
	}
}

func TestBrokerAnonymous(t *testing.T) {
	tests := []struct {
		name      string
		auth      bool
		anonymous bool
		wantAnon  byte // CONNACK reason for a client without a username
		wantUser  byte // ... and for a device with the right password
	}{
		{"nothing configured refuses everyone", false, false, rcBadUserOrPassword, rcBadUserOrPassword},
		{"anonymous only", false, true, 0, rcBadUserOrPassword},
		{"devices only", true, false, rcBadUserOrPassword, 0},
		{"both", true, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, w := dbEnv(t)
			if _, err := store.CreateDevice(context.Background(), "plc", "correct horse", "acme"); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			cfg := BrokerConfig{Sink: w, AllowAnonymous: tt.anonymous, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if tt.auth {
				cfg.Auth = store
			}
			addr := startBrokerWith(t, cfg)
			anon, rc := connectAs(t, dialTCP(t, addr), "anon", "", "")
			if rc != tt.wantAnon {
				t.Errorf("anonymous: CONNACK reason %#x, want %#x", rc, tt.wantAnon)
			}
			if _, rc := connectAs(t, dialTCP(t, addr), "plc", "plc", "correct horse"); rc != tt.wantUser {
				t.Errorf("device: CONNACK reason %#x, want %#x", rc, tt.wantUser)
			}
			if rc == 0 && tt.wantAnon == 0 {
				// An admitted anonymous client may publish anywhere.
				anon.publish(t, "anywhere/m/v", "1", 1)
				waitFor(t, "the anonymous reading", func() bool { return len(storedTopics(t, store)) == 1 })
			}
			refusedAll := strings.Count(logs.String(), "every client will be refused")
			if want := map[bool]int{true: 1, false: 0}[!tt.auth && !tt.anonymous]; refusedAll != want {
				t.Errorf("%d log lines saying every client is refused, want %d:\n%s", refusedAll, want, logs.String())
			}
		})
	}
}

// countingAuth counts the credential checks that reach the store.
type countingAuth struct {
	DeviceAuth
	n atomic.Int64
}

func (a *countingAuth) AuthenticateDevice(ctx context.Context, u, p string) (db.Device, error) {
	a.n.Add(1)
	return a.DeviceAuth.AuthenticateDevice(ctx, u, p)
}

func TestBrokerCachesLogins(t *testing.T) {
	store, w := dbEnv(t)
	if _, err := store.CreateDevice(context.Background(), "plc", "correct horse", "acme"); err != nil {
		t.Fatal(err)
	}
	auth := &countingAuth{DeviceAuth: store}
	var logs syncBuffer
	addr := startBrokerWith(t, BrokerConfig{Sink: w, Auth: auth, AuthCacheTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	steps := []struct {
		name, pw  string
		wantRC    byte
		wantCalls int64
	}{
		{"first login checks the store", "correct horse", 0, 1},
		{"reconnect is cached", "correct horse", 0, 1},
		{"again cached", "correct horse", 0, 1},
		{"a wrong password is never cached as right", "wrong horse", rcBadUserOrPassword, 2},
		{"and is checked every time", "wrong horse", rcBadUserOrPassword, 3},
	}
	for i, st := range steps {
		pc, rc := connectAs(t, dialTCP(t, addr), "plc", "plc", st.pw)
		if rc != st.wantRC || auth.n.Load() != st.wantCalls {
			t.Errorf("%s: CONNACK %#x after %d store checks, want %#x after %d", st.name, rc, auth.n.Load(), st.wantRC, st.wantCalls)
		}
		if rc == 0 && i < len(steps)-1 {
			_ = pc.Disconnect(&paho.Disconnect{})
		}
	}
	// Refusals are logged once a minute per username, and never with the password.
	if got := strings.Count(logs.String(), "mqtt client refused"); got != 1 {
		t.Errorf("%d refusal log lines for two refusals within a minute, want 1:\n%s", got, logs.String())
	}
	if strings.Contains(logs.String(), "wrong horse") {
		t.Errorf("the log holds a password:\n%s", logs.String())
	}
}

func TestBrokerDisabledDeviceStops(t *testing.T) {
	ctx := context.Background()
	store, w := dbEnv(t)
	d, err := store.CreateDevice(ctx, "plc", "correct horse", "acme")
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 200 * time.Millisecond
	addr := startBrokerWith(t, BrokerConfig{Sink: w, Auth: store, AuthCacheTTL: ttl})
	dev, rc := connectAs(t, dialTCP(t, addr), "plc", "plc", "correct horse")
	if rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	dev.publish(t, "acme/m/v", "1", 1)

	if err := store.SetDeviceDisabled(ctx, d.ID, true); err != nil {
		t.Fatal(err)
	}
	// Within a TTL or so the open connection is dropped ...
	select {
	case <-dev.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the disabled device's connection was not dropped")
	}
	// ... and logging in again is refused, the cache notwithstanding.
	if _, rc := connectAs(t, dialTCP(t, addr), "plc", "plc", "correct horse"); rc != rcBadUserOrPassword {
		t.Errorf("disabled device: CONNACK %#x, want %#x", rc, rcBadUserOrPassword)
	}
	if err := store.SetDeviceDisabled(ctx, d.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, rc := connectAs(t, dialTCP(t, addr), "plc", "plc", "correct horse"); rc != 0 {
		t.Errorf("enabled again: CONNACK %#x", rc)
	}
}

func TestFilterUnder(t *testing.T) {
	const prefix = "acme/hall-1/line-1"
	tests := []struct {
		filter string
		want   bool
	}{
		{"acme/hall-1/line-1", true},
		{"acme/hall-1/line-1/press-01/temp", true},
		{"acme/hall-1/line-1/#", true},
		{"acme/hall-1/line-1/+", true},
		{"$share/g/acme/hall-1/line-1/#", true},
		{"acme/hall-1/line-10/press-01/temp", false},
		{"acme/hall-1/line-1x", false},
		{"acme/hall-1", false},
		{"acme/hall-1/#", false},
		{"acme/hall-1/+/press-01", false},
		{"#", false},
		{"+/hall-1/line-1/x", false},
		{"$share/g/#", false},
		{"$share/acme/hall-1/line-1/x", false}, // the group is not a level of the filter
		{"", false},
		{"/acme/hall-1/line-1/x", false},
	}
	for _, tt := range tests {
		if got := filterUnder(prefix, tt.filter); got != tt.want {
			t.Errorf("filterUnder(%q, %q) = %v, want %v", prefix, tt.filter, got, tt.want)
		}
	}
	if filterUnder("", "anything") {
		t.Error("an empty prefix allowed a topic")
	}
}

func TestBrokerTLS(t *testing.T) {
	store, w := dbEnv(t)
	if _, err := store.CreateDevice(context.Background(), "plc", "correct horse", "acme"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	tlsCfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadTLS: %v", err)
	}
	if tlsCfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %#x, want TLS 1.2", tlsCfg.MinVersion)
	}
	if _, err := LoadTLS(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Error("LoadTLS accepted a missing certificate file")
	}
	// MQTTS as an extra listener beside plain MQTT, as `andon serve` runs them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	plainAddr := startBrokerWith(t, BrokerConfig{Sink: w, Auth: store, ExtraListeners: []net.Listener{tls.NewListener(ln, tlsCfg)}})
	if _, rc := connectAs(t, dialTCP(t, plainAddr), "plain", "plc", "correct horse"); rc != 0 {
		t.Errorf("plain MQTT beside MQTTS: CONNACK %#x", rc)
	}

	// A client that trusts the CA publishes fine.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial with the CA: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	dev, rc := connectAs(t, &lockedConn{Conn: conn}, "plc", "plc", "correct horse")
	if rc != 0 {
		t.Fatalf("CONNACK %#x over TLS", rc)
	}
	dev.publish(t, "acme/m/temp", "21.5", 1)
	if got := storedTopics(t, store); len(got) != 1 || got[0] != "acme/m/temp" {
		t.Errorf("stored topics %q, want acme/m/temp", got)
	}

	// A client that does not trust the CA does not get through.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("a TLS client without the CA connected")
	}
}

// TestClientTLSWithPrivateCA runs the external-broker client against a
// broker on a TLS listener that trusts only client certificates from a
// private CA: with CAFile, CertFile and KeyFile the client subscribes and
// ingests.
func TestClientTLSWithPrivateCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth, "")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := LoadTLS(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.ClientAuth = tls.RequireAndVerifyClientCert
	tlsCfg.ClientCAs = ca.pool()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := startBrokerWith(t, BrokerConfig{Sink: &testSink{}, AllowAnonymous: true, Listener: tls.NewListener(ln, tlsCfg)})

	sink := &testSink{}
	c, err := NewClient(ClientConfig{
		URL: "mqtts://" + addr, ClientID: "andon-test", Topics: []string{"plant/#"}, Sink: sink,
		CAFile: caFile, CertFile: clientCert, KeyFile: clientKey,
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("client Run: %v", err)
		}
	})
	waitFor(t, "the client's subscription", func() bool { return c.subscribed.Load() > 0 })

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{mustKeyPair(t, clientCert, clientKey)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pub, rc := connectAs(t, &lockedConn{Conn: conn}, "pub", "", "")
	if rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	pub.publish(t, "plant/m/temp", "7", 1)
	waitFor(t, "the reading through the TLS client", func() bool { return sink.count() == 1 })
}

func TestNewClientTLSOptions(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth, "")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    ClientConfig
		wantOK bool
	}{
		{"CA and client certificate", ClientConfig{URL: "mqtts://b:8883", CAFile: caFile, CertFile: cert, KeyFile: key}, true},
		{"CA only", ClientConfig{URL: "mqtts://b", CAFile: caFile}, true},
		{"CA on plain mqtt", ClientConfig{URL: "mqtt://b", CAFile: caFile}, false},
		{"certificate without key", ClientConfig{URL: "mqtts://b", CertFile: cert}, false},
		{"missing CA file", ClientConfig{URL: "mqtts://b", CAFile: filepath.Join(dir, "nope.pem")}, false},
		{"CA file without a certificate", ClientConfig{URL: "mqtts://b", CAFile: notPEM}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ClientID, tt.cfg.Sink = "x", &testSink{}
			_, err := NewClient(tt.cfg)
			if (err == nil) != tt.wantOK {
				t.Errorf("NewClient: %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "andon test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a certificate signed by the CA and its key as PEM files in
// dir and returns their paths; ip, if set, is the certificate's IP address.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage, ip string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if ip != "" {
		tmpl.IPAddresses = []net.IP{net.ParseIP(ip)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func mustKeyPair(t *testing.T, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lockedConn serialises writes: paho writes from several goroutines and a
// tls.Conn must not interleave them; paho locks a conn that is a sync.Locker.
type lockedConn struct {
	net.Conn
	sync.Mutex
}
