// Command cloudwatch times log agents that tail a node log tree (written by the anchors kit's
// gen-k8s-logs or bench/gen) into CloudWatch Logs, side by side on one fake service: the
// harness serves sinks/cloudwatch/cwfake over TLS on 127.0.0.1 (Fluent Bit's cloudwatch_logs
// output speaks only TLS; tailgate trusts the harness' certificate through AWS_CA_BUNDLE), with
// a new, empty fake per run, optionally throttling a share of the PutLogEvents calls.
//
//	go run ./bench/cloudwatch -data /tmp/anchors/cw256 -tailgate /tmp/tailgate \
//	    -fluent-bit /path/to/fluent-bit -throttle 0,0.1 -runs 3
//
// A run ends when the fake holds one event per record of the manifest (by distinct message),
// or when nothing new arrived for -stall. CPU seconds (utime+stime, all threads) and peak RSS
// are read from /proc at that moment; the fake's own CPU is the harness's and is not counted.
// Lost = records - distinct events stored; duplicated = events stored - distinct events.
//
// The tree's timestamps must be within the last 14 days, as for the real service: the fake
// rejects older events, and tailgate does not send them (it dead-letters them as too_old).
// The anchors kit's generator stamps its records from 2026-11-23 03:00 UTC.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailgate-dev/tailgate/bench/internal/procstat"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch/cwfake"
)

type options struct {
	data, tailgate, fluentBit, fbConf, workDir string
	profile                                    string
	throttles                                  []float64
	runs                                       int
	stall, timeout                             time.Duration
}

type result struct {
	Peer       string  `json:"peer"`
	Throttle   float64 `json:"throttle"`
	Run        int     `json:"run"`
	OK         bool    `json:"ok"`
	Wall       float64 `json:"wall_s"`
	CPU        float64 `json:"cpu_s"`
	RSS        float64 `json:"peak_rss_mib"`
	MiBs       float64 `json:"mib_per_s"`
	CPUPerGiB  float64 `json:"cpu_s_per_gib"`
	Records    int64   `json:"records"`
	Events     int     `json:"events"`
	Distinct   int     `json:"distinct"`
	Lost       int64   `json:"lost"`
	Duplicated int     `json:"duplicated"`
	Puts       int     `json:"put_log_events"`
	Throttled  int     `json:"throttled"`
}

func main() {
	var o options
	var throttles string
	flag.StringVar(&o.data, "data", "", "log tree with manifest.json and containers/*.log")
	flag.StringVar(&o.tailgate, "tailgate", "", "tailgate binary (empty: not run)")
	flag.StringVar(&o.fluentBit, "fluent-bit", "", "fluent-bit binary (empty: not run)")
	flag.StringVar(&o.fbConf, "fb-conf", "../shared/anchors/fluent-bit/fluent-bit-cloudwatch.conf", "Fluent Bit config (the anchors kit's)")
	flag.StringVar(&throttles, "throttle", "0,0.1", "comma-separated shares of PutLogEvents calls to throttle, one set of runs each")
	flag.IntVar(&o.runs, "runs", 1, "runs per peer and throttle share (peers alternate)")
	flag.DurationVar(&o.stall, "stall", 20*time.Second, "end a run when no new event arrived for this long")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "end a run after this long")
	flag.StringVar(&o.workDir, "workdir", "", "run directories (default: a new temp dir)")
	flag.StringVar(&o.profile, "profile", "", "write a 10 s CPU profile of each tailgate run to this prefix")
	flag.Parse()
	for _, s := range strings.Split(throttles, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad -throttle %q\n", s)
			os.Exit(2)
		}
		o.throttles = append(o.throttles, v)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		slog.Error("cloudwatch bench failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var man struct {
		TotalBytes   int64 `json:"total_bytes"`
		TotalRecords int64 `json:"total_records"`
	}
	b, err := os.ReadFile(filepath.Join(o.data, "manifest.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &man); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(o.data, "containers", "*.log"))
	for _, f := range files { // read once: the runs read from the page cache
		if fh, err := os.Open(f); err == nil {
			io.Copy(io.Discard, fh)
			fh.Close()
		}
	}
	if o.workDir == "" {
		if o.workDir, err = os.MkdirTemp("", "cwbench-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return err
	}
	cert, caFile, err := selfSigned(o.workDir)
	if err != nil {
		return err
	}
	var peers []string
	if o.tailgate != "" {
		peers = append(peers, "tailgate")
	}
	if o.fluentBit != "" {
		peers = append(peers, "fluent-bit")
	}
	var results []result
	for _, th := range o.throttles {
		for i := range o.runs {
			for _, p := range peers {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := runPeer(ctx, o, p, th, i, cert, caFile, man.TotalRecords, man.TotalBytes)
				if err != nil {
					return fmt.Errorf("%s run %d: %w", p, i, err)
				}
				results = append(results, r)
				line, _ := json.Marshal(r)
				fmt.Fprintln(os.Stderr, string(line))
			}
		}
	}
	fmt.Print(table(results))
	return nil
}

func runPeer(ctx context.Context, o options, peer string, throttle float64, i int, cert tls.Certificate, caFile string, records, bytes int64) (result, error) {
	res := result{Peer: peer, Throttle: throttle, Run: i, Records: records}
	fake := cwfake.New(cwfake.Options{ThrottleRate: throttle, Seed: uint64(i + 1), RequireSignature: true})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	dir := filepath.Join(o.workDir, fmt.Sprintf("%s-%g-%d", peer, throttle, i))
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench-secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true")
	var cmd *exec.Cmd
	metricsPort := 0
	switch peer {
	case "tailgate":
		metricsPort = freePort()
		cfg := filepath.Join(dir, "tailgate.yaml")
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		text := fmt.Sprintf(`node_name: bench
data_dir: %s
shutdown_timeout: 5s
metrics: {listen: "127.0.0.1:%d"}
buffer: {sync: 200ms, max_bytes: 4GiB, segment_bytes: 64MiB}
kubernetes: {enabled: false}
inputs:
  - {name: pods, type: tail, paths: [%s], read_from: head}
sinks:
  - name: cw
    type: cloudwatch
    region: us-east-1
    endpoint: "https://127.0.0.1:%d"
    log_group: /k8s/bench
    log_stream: "from-tailgate-{namespace}_{pod}_{container}"
`, q(filepath.Join(dir, "data")), metricsPort, q(filepath.Join(o.data, "containers", "*.log")), port)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			return res, err
		}
		cmd = exec.Command(o.tailgate, "run", "--config", cfg)
		env = append(env, "AWS_CA_BUNDLE="+caFile)
	case "fluent-bit":
		cmd = exec.Command(o.fluentBit, "-c", o.fbConf)
		env = append(env, "CW_HOST=127.0.0.1", "CW_PORT="+strconv.Itoa(port), "DATA_ROOT="+o.data, "STATE_DIR="+dir,
			"FLB_HTTP_PORT="+strconv.Itoa(freePort()),
			// The anchors kit's throughput-tuned settings.
			"FLB_ML_PARSER=cri", "FLB_FLUSH=1", "FLB_MEM_BUF_LIMIT=64MB", "FLB_BUF_CHUNK=256k", "FLB_BUF_MAX=256k", "FLB_THREADED=off")
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	if o.profile != "" && metricsPort != 0 {
		go func() {
			time.Sleep(time.Second)
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=10", metricsPort))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if f, err := os.Create(fmt.Sprintf("%s-%g-%d.pprof", o.profile, throttle, i)); err == nil {
				io.Copy(f, resp.Body)
				f.Close()
			}
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", metricsPort)); err == nil {
				if f, err := os.Create(fmt.Sprintf("%s-%g-%d.heap", o.profile, throttle, i)); err == nil {
					io.Copy(f, resp.Body)
					f.Close()
				}
				resp.Body.Close()
			}
		}()
	}
	last, lastChange := -1, time.Now()
	for {
		d := fake.DistinctEvents()
		if d != last {
			last, lastChange = d, time.Now()
		}
		if int64(d) >= records || time.Since(lastChange) > o.stall || time.Since(start) > o.timeout || ctx.Err() != nil {
			res.OK = int64(d) >= records
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.Wall = time.Since(start).Seconds()
	if !res.OK {
		res.Wall = lastChange.Sub(start).Seconds()
	}
	res.CPU, _ = procstat.CPUSeconds(cmd.Process.Pid)
	res.RSS, _ = procstat.PeakRSSMiB(cmd.Process.Pid)
	// Late duplicates (a resent chunk still in flight) land within a few seconds.
	time.Sleep(3 * time.Second)
	st := fake.Stats()
	res.Events, res.Distinct = st.Events, fake.DistinctEvents()
	res.Lost, res.Duplicated = records-int64(res.Distinct), res.Events-res.Distinct
	res.Puts, res.Throttled = st.Calls["PutLogEvents"], st.Errors["ThrottlingException"]
	gib := float64(bytes) / (1 << 30)
	res.MiBs = float64(bytes) / (1 << 20) / res.Wall
	res.CPUPerGiB = res.CPU / gib
	return res, nil
}

func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| peer | throttled | ok | wall s | MiB/s | CPU s | CPU s/GiB | peak RSS MiB | events | lost | duplicated | PutLogEvents (throttled) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	slices.SortStableFunc(rs, func(a, b result) int {
		if a.Throttle != b.Throttle {
			if a.Throttle < b.Throttle {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Peer, b.Peer)
	})
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.0f%% | %v | %.2f | %.1f | %.2f | %.2f | %.0f | %d | %d | %d | %d (%d) |\n",
			r.Peer, 100*r.Throttle, r.OK, r.Wall, r.MiBs, r.CPU, r.CPUPerGiB, r.RSS, r.Events, r.Lost, r.Duplicated, r.Puts, r.Throttled)
	}
	return b.String()
}

// selfSigned makes a certificate for 127.0.0.1 and writes it (PEM) where AWS_CA_BUNDLE can
// name it.
func selfSigned(dir string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cwfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	caFile := filepath.Join(dir, "cwfake-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
