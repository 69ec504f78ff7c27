//go:build linux

// Package kubetest starts a real etcd and kube-apiserver on loopback for tests that must show
// what the client-go fake clientset cannot: field selectors applied by the server, watch
// semantics across an apiserver restart, server-side validation.
//
// The binaries come from TAILGATE_KUBE_APISERVER and TAILGATE_ETCD (.ci/run exports them from
// `.ci/tools.sh env`), or from the tools cache when .ci/tools.sh already built them. Without
// them a test is skipped with a loud message saying how to get them; nothing is built here.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/internal/freeport"
	"k8s.io/client-go/rest"
)

// Versions the binaries are built at (.ci/tools.sh).
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.7.3"
)

// Binaries returns the kube-apiserver and etcd paths, or skips t loudly.
func Binaries(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	apiserver, etcd = os.Getenv("TAILGATE_KUBE_APISERVER"), os.Getenv("TAILGATE_ETCD")
	cache := os.Getenv("TAILGATE_TOOLS_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "tailgate-tools")
		}
	}
	if apiserver == "" && cache != "" {
		apiserver = filepath.Join(cache, "kube-apiserver-"+KubeVersion, "kube-apiserver")
	}
	if etcd == "" && cache != "" {
		etcd = filepath.Join(cache, "etcd-"+EtcdVersion, "etcd")
	}
	for _, p := range []string{apiserver, etcd} {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Skipf("!!! SKIPPING real kube-apiserver test: %q is not an executable. Build and export both with "+
				"`eval \"$(.ci/tools.sh env)\"` (or `.ci/tools.sh kube-apiserver` and `.ci/tools.sh etcd`; "+
				"the first build takes ~8 min), then set TAILGATE_KUBE_APISERVER and TAILGATE_ETCD. !!!", p)
		}
	}
	return apiserver, etcd
}

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	Dir string
	// URL is the apiserver's https address; Config a client config authenticated as a
	// system:masters user; Kubeconfig a file with the same.
	URL        string
	Config     *rest.Config
	Kubeconfig string

	t                 testing.TB
	apiserverBin      string
	etcdBin           string
	etcdURL           string
	securePort        int
	mu                sync.Mutex
	etcdCmd, apiCmd   *exec.Cmd
	etcdDone, apiDone chan struct{}
	log               *bytes.Buffer
}

// Start starts etcd and kube-apiserver for t (skipping it when the binaries are missing) and
// stops them when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	apiserver, etcd := Binaries(t)
	s := &Server{Dir: t.TempDir(), t: t, apiserverBin: apiserver, etcdBin: etcd, log: &bytes.Buffer{}}
	ports := freePorts(t, 4)
	s.etcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	s.securePort = ports[3]
	s.URL = "https://127.0.0.1:" + strconv.Itoa(s.securePort)
	s.writeCerts()
	s.startEtcd(ports[1], ports[2])
	t.Cleanup(s.Stop)
	s.StartAPIServer()
	return s
}

func (s *Server) startEtcd(peerPort, metricsPort int) {
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	cmd := exec.Command(s.etcdBin,
		"--name=default",
		"--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+s.etcdURL, "--advertise-client-urls="+s.etcdURL,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--listen-metrics-urls=http://127.0.0.1:"+strconv.Itoa(metricsPort),
		"--unsafe-no-fsync", "--log-level=warn")
	s.etcdCmd, s.etcdDone = s.start(cmd, "etcd")
	s.waitHealthy("etcd", s.etcdURL+"/health", nil, s.etcdDone)
}

// StartAPIServer (re)starts kube-apiserver on the same port and waits for /readyz.
func (s *Server) StartAPIServer() {
	s.t.Helper()
	d := s.Dir
	cmd := exec.Command(s.apiserverBin,
		"--etcd-servers="+s.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(s.securePort),
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+filepath.Join(d, "serving.crt"), "--tls-private-key-file="+filepath.Join(d, "serving.key"),
		"--client-ca-file="+filepath.Join(d, "ca.crt"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(d, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(d, "sa.key"),
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins=ServiceAccount",
		"--cert-dir="+filepath.Join(d, "apiserver-certs"),
		"--v=0")
	s.mu.Lock()
	s.apiCmd, s.apiDone = s.start(cmd, "kube-apiserver")
	done := s.apiDone
	s.mu.Unlock()
	s.waitHealthy("kube-apiserver", s.URL+"/readyz", s.Config, done)
}

// StopAPIServer stops kube-apiserver (SIGTERM) and waits for it to exit; etcd keeps running.
func (s *Server) StopAPIServer() {
	s.mu.Lock()
	cmd, done := s.apiCmd, s.apiDone
	s.apiCmd = nil
	s.mu.Unlock()
	stopProcess(cmd, done)
}

// Stop stops both processes.
func (s *Server) Stop() {
	s.StopAPIServer()
	stopProcess(s.etcdCmd, s.etcdDone)
	s.etcdCmd = nil
	if s.t.Failed() {
		s.t.Logf("etcd and kube-apiserver output:\n%s", s.tailLog())
	}
}

func stopProcess(cmd *exec.Cmd, done chan struct{}) {
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (s *Server) start(cmd *exec.Cmd, name string) (*exec.Cmd, chan struct{}) {
	s.t.Helper()
	w := &prefixWriter{s: s, name: name}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return cmd, done
}

func (s *Server) waitHealthy(name, url string, cfg *rest.Config, done chan struct{}) {
	s.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	if cfg != nil {
		tc, err := rest.TransportFor(cfg)
		if err != nil {
			s.t.Fatal(err)
		}
		client.Transport = tc
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("%s exited before it was ready:\n%s", name, s.tailLog())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready after 90s (last: %v):\n%s", name, err, s.tailLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ready reports whether the apiserver answers /readyz now.
func (s *Server) Ready(ctx context.Context) bool {
	tc, err := rest.TransportFor(s.Config)
	if err != nil {
		return false
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
	resp, err := (&http.Client{Transport: tc, Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

type prefixWriter struct {
	s    *Server
	name string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.log.Len() > 4<<20 {
		w.s.log.Reset()
	}
	for _, line := range bytes.SplitAfter(p, []byte{'\n'}) {
		if len(line) > 0 {
			w.s.log.WriteString(w.name + ": ")
			w.s.log.Write(line)
		}
	}
	return len(p), nil
}

func (s *Server) tailLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.log.Bytes()
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// freePorts returns n distinct loopback ports free at the time of the call, outside the
// ephemeral range: etcd and the apiserver are restarted on them.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ps, err := freeport.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// writeCerts makes a CA, the apiserver's serving certificate (127.0.0.1, localhost), a client
// certificate in system:masters, the service-account key pair, and a kubeconfig.
func (s *Server) writeCerts() {
	t := s.t
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tailgate-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) ([]byte, *rsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subject,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	servDER, servKey := issue(2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}, []string{"localhost", "kubernetes", "kubernetes.default"})
	cliDER, cliKey := issue(3, pkix.Name{CommonName: "tailgate-test-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil)
	saKey := newKey(t)
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca.crt":      pemBytes("CERTIFICATE", caDER),
		"serving.crt": pemBytes("CERTIFICATE", servDER),
		"serving.key": pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(servKey)),
		"client.crt":  pemBytes("CERTIFICATE", cliDER),
		"client.key":  pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(cliKey)),
		"sa.key":      pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		"sa.pub":      pemBytes("PUBLIC KEY", saPub),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Config = &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: files["ca.crt"], CertData: files["client.crt"], KeyData: files["client.key"],
		},
		QPS: 100, Burst: 200,
	}
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, s.URL, filepath.Join(s.Dir, "ca.crt"), filepath.Join(s.Dir, "client.crt"), filepath.Join(s.Dir, "client.key"))
	if err := os.WriteFile(s.Kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
