package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tailgate-dev/tailgate/collector"
)

// envelope is the DESIGN.md record contract, parsed back for assertions.
type envelope struct {
	ID         string         `json:"id"`
	Time       string         `json:"time"`
	Stream     string         `json:"stream"`
	Message    string         `json:"message"`
	Source     string         `json:"source"`
	Tag        string         `json:"tag"`
	Kubernetes map[string]any `json:"kubernetes"`
	Fields     map[string]any `json:"fields"`
}

func parseEnvelope(t *testing.T, s string) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatalf("envelope %s: %v", s, err)
	}
	return e
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and returns the file names.
func writeTestCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "tailgate-test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// clientFor points a fluent-logger-golang config at the harness.
func clientFor(t *testing.T, h *harness, cfg fluent.Config) *fluent.Fluent {
	t.Helper()
	if cfg.FluentNetwork == "unix" {
		cfg.FluentSocketPath = h.address
	} else {
		host, port, _ := net.SplitHostPort(h.address)
		cfg.FluentHost = host
		cfg.FluentPort, _ = strconv.Atoi(port)
	}
	cfg.MaxRetry = 3
	cfg.RetryWait = 10
	cfg.Timeout = 10 * time.Second
	f, err := fluent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFluentLoggerRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		client fluent.Config
		socket bool
		tls    bool
	}{
		{name: "sync tcp", client: fluent.Config{}},
		{name: "async tcp", client: fluent.Config{Async: true}},
		{name: "sync ack", client: fluent.Config{RequestAck: true}},
		{name: "async ack", client: fluent.Config{Async: true, RequestAck: true}},
		{name: "subsecond", client: fluent.Config{SubSecondPrecision: true}},
		{name: "subsecond ack", client: fluent.Config{SubSecondPrecision: true, RequestAck: true}},
		{name: "json", client: fluent.Config{MarshalAsJSON: true}},
		{name: "json ack", client: fluent.Config{MarshalAsJSON: true, RequestAck: true}},
		{name: "unix", client: fluent.Config{FluentNetwork: "unix"}, socket: true},
		{name: "unix async ack", client: fluent.Config{FluentNetwork: "unix", Async: true, RequestAck: true, SubSecondPrecision: true}, socket: true},
		{name: "tls", client: fluent.Config{FluentNetwork: "tls", TlsInsecureSkipVerify: true}, tls: true},
		{name: "tls ack", client: fluent.Config{FluentNetwork: "tls", TlsInsecureSkipVerify: true, RequestAck: true}, tls: true},
	}
	const n = 20
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg collector.InputConfig
			if tc.socket {
				cfg.Socket = socketPath(t)
				cfg.SocketMode = "0660"
			}
			if tc.tls {
				cfg.TLS.CertFile, cfg.TLS.KeyFile = writeTestCert(t, t.TempDir(), 1)
			}
			h := start(t, cfg)
			if tc.socket {
				fi, err := os.Stat(cfg.Socket)
				if err != nil || fi.Mode().Perm() != 0o660 {
					t.Errorf("socket mode %v, %v", fi.Mode(), err)
				}
			}
			f := clientFor(t, h, tc.client)
			for i := range n {
				tm := t0.Add(time.Duration(i) * time.Second)
				rec := map[string]any{"message": fmt.Sprintf("hello %d", i), "n": i, "nested": map[string]any{"ok": true}}
				if err := f.PostWithTime("app.web", tm, rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			envs := h.out.waitRecords(t, n)
			if len(envs) != n {
				t.Fatalf("%d records, want %d", len(envs), n)
			}
			ids := map[string]bool{}
			for i, s := range envs {
				e := parseEnvelope(t, s)
				tm := t0.Add(time.Duration(i) * time.Second)
				if !tc.client.SubSecondPrecision || tc.client.MarshalAsJSON {
					tm = tm.Truncate(time.Second)
				}
				if e.Stream != "app" || e.Tag != "app.web" || e.Source != "apps" || e.Message != fmt.Sprintf("hello %d", i) {
					t.Errorf("record %d: %s", i, s)
				}
				if e.Time != tm.Format("2006-01-02T15:04:05.000000000Z") {
					t.Errorf("record %d: time %s, want %s", i, e.Time, tm)
				}
				if e.Fields["n"] != float64(i) || fmt.Sprint(e.Fields["nested"]) != "map[ok:true]" {
					t.Errorf("record %d: fields %v", i, e.Fields)
				}
				if ids[e.ID] {
					t.Errorf("record %d: duplicate id %s", i, e.ID)
				}
				ids[e.ID] = true
			}
		})
	}
}

// TestAckWaitsForDurable holds the buffer's sync back: the record is emitted, but the client's
// Post (which returns only on the ack) must not return before the Durable is released.
func TestAckWaitsForDurable(t *testing.T) {
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			h := start(t, collector.InputConfig{})
			h.out.hold()
			f := clientFor(t, h, fluent.Config{RequestAck: true, MarshalAsJSON: json})
			defer f.Close()
			done := make(chan error, 1)
			go func() { done <- f.Post("app", map[string]string{"log": "x"}) }()
			h.out.waitRecords(t, 1)
			<-h.out.waiting // the ack writer is blocked on the Durable
			select {
			case err := <-done:
				t.Fatalf("Post returned before the batch was durable (err %v)", err)
			default:
			}
			h.out.release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConcurrentClients: several real clients with acks on their own connections at once.
func TestConcurrentClients(t *testing.T) {
	h := start(t, collector.InputConfig{})
	const clients, each = 8, 50
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			f := clientFor(t, h, fluent.Config{RequestAck: true, SubSecondPrecision: true})
			defer f.Close()
			for i := range each {
				if err := f.Post("app", map[string]any{"log": fmt.Sprintf("c%d-%d", c, i)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	envs := h.out.waitRecords(t, clients*each)
	seen := map[string]bool{}
	for _, s := range envs {
		seen[parseEnvelope(t, s).Message] = true
	}
	if len(seen) != clients*each {
		t.Errorf("%d distinct messages, want %d", len(seen), clients*each)
	}
}

// TestTLSReload: a certificate replaced on disk is served to the next connection.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeTestCert(t, dir, 1)
	h := start(t, collector.InputConfig{TLS: collector.TLSConfig{CertFile: certFile, KeyFile: keyFile}})
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", h.address, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writeTestCert(t, dir, 2)
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	if got := serial(); got != 2 {
		t.Fatalf("serial %d after reload, want 2", got)
	}
}

// TestIdleClientWithoutAcksKeepsItsConnection: with the defaults, a fluent-logger-golang client
// without acks (the library's default) that stays quiet between records keeps its connection,
// so no record of it is written into a connection closed under it (TCP would accept the write
// and the record would be lost).
func TestIdleClientWithoutAcksKeepsItsConnection(t *testing.T) {
	h := start(t, collector.InputConfig{})
	f := clientFor(t, h, fluent.Config{})
	defer f.Close()
	if err := f.Post("app.quiet", map[string]any{"message": "before the silence"}); err != nil {
		t.Fatal(err)
	}
	h.out.waitRecords(t, 1)
	time.Sleep(300 * time.Millisecond) // quiet: no frame, no deadline running
	if err := f.Post("app.quiet", map[string]any{"message": "after the silence"}); err != nil {
		t.Fatal(err)
	}
	envs := h.out.waitRecords(t, 2)
	if m := parseEnvelope(t, envs[1]).Message; m != "after the silence" {
		t.Errorf("second record %q", m)
	}
	if n := h.closedCount(closeIdleTimeout); n != 0 {
		t.Errorf("%v connections closed for idle_timeout with the defaults, want 0", n)
	}
	if n := h.connections(); n != 1 {
		t.Errorf("%v connections open, want the client's one, never closed", n)
	}
}
