package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	pubsubpb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailgate-dev/tailgate/collector"
)

// cmdDemo runs the whole pipeline on generated pod logs in a temp dir: no cluster, no cloud.
func cmdDemo(ctx context.Context, args []string, std stdio) error {
	stdout, stderr := std.out, std.err
	fs := newFlags("demo", "demo [--duration D] [flags]")
	duration := fs.Duration("duration", 0, "stop after this long (default: until Ctrl-C)")
	rate := fs.Int("rate", 5000, "log lines per second to generate")
	listen := fs.String("metrics-listen", "127.0.0.1:2020", "address of /metrics (port 0 picks a free one)")
	dir := fs.String("dir", "", "work directory (default: a new temp dir)")
	withPubSub := fs.Bool("pubsub", true, "also publish every record to an in-process Pub/Sub fake")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tailgate-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		*dir = d
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	gen, err := newDemoGenerator(*dir)
	if err != nil {
		return err
	}
	cfg := demoConfig(*dir, *listen)
	var fake *pstest.Server
	if *withPubSub {
		fake, err = startDemoPubSub(ctx)
		if err != nil {
			return err
		}
		defer fake.Close()
		cfg.Sinks = append(cfg.Sinks, collector.SinkConfig{Name: "pubsub", Type: "pubsub", Project: demoProject,
			Topic: demoTopic, Endpoint: fake.Addr, Insecure: true})
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newAgent(ctx, cfg, log)
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		cfg.Metrics.Listen = "127.0.0.1:0"
		a, err = newAgent(ctx, cfg, log)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tailgate demo: pod logs in %s/containers, output %s, metrics http://%s/metrics\n",
		*dir, cfg.Sinks[0].Path, a.MetricsAddr())
	if fake != nil {
		fmt.Fprintf(stdout, "tailgate demo: also publishing to an in-process Pub/Sub fake at %s (topic %s)\n", fake.Addr, demoTopic)
	}

	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan error, 1)
	go func() { genDone <- gen.run(genCtx, *rate) }()

	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.run(agentCtx) }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last demoStats
	start := time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-agentDone:
			stopGen()
			return err
		case <-tick.C:
			s := readDemoStats(a)
			fmt.Fprintf(stdout, "%5.1fs  in %7.0f rec/s %6.2f MiB/s  file %7.0f rec/s  pubsub %7.0f rec/s  buffer %6.2f MiB  file lag %d rec\n",
				time.Since(start).Seconds(), s.in-last.in, (s.inBytes-last.inBytes)/(1<<20), s.out-last.out,
				s.published-last.published, s.bufBytes/(1<<20), int64(s.in-s.out))
			last = s
		}
	}
	stopGen()
	if err := <-genDone; err != nil {
		fmt.Fprintf(stderr, "demo generator: %v\n", err)
	}
	// Let the agent catch up with the last lines written before stopping it.
	want := float64(gen.records.Load())
	deadline := time.Now().Add(10 * time.Second)
	for st := readDemoStats(a); (st.out < want || (fake != nil && st.published < want)) && time.Now().Before(deadline); st = readDemoStats(a) {
		time.Sleep(100 * time.Millisecond)
	}
	s := readDemoStats(a)
	stopAgent()
	err = <-agentDone
	fmt.Fprintf(stdout, "done: generated %d records (%d rotations), delivered %.0f to %s in %s\n",
		gen.records.Load(), gen.rotations.Load(), s.out, cfg.Sinks[0].Path, time.Since(start).Round(time.Millisecond))
	if fake != nil {
		fmt.Fprintf(stdout, "done: published %.0f records to Pub/Sub (in-process fake)\n", s.published)
	}
	return err
}

const (
	demoProject = "demo-project"
	demoTopic   = "logs"
)

// startDemoPubSub runs pstest, the Pub/Sub client library's own in-process fake, with the demo
// topic. It keeps what it receives in memory, so the demo drops it every few seconds.
func startDemoPubSub(ctx context.Context) (*pstest.Server, error) {
	srv := pstest.NewServer()
	if _, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + demoProject + "/topics/" + demoTopic}); err != nil {
		srv.Close()
		return nil, fmt.Errorf("demo: create Pub/Sub topic: %w", err)
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				srv.ClearMessages()
			}
		}
	}()
	return srv, nil
}

func demoConfig(dir, listen string) *collector.Config {
	cfg := collector.DefaultConfig()
	cfg.NodeName = "demo-node"
	cfg.Kubernetes.Enabled = false // generated pods: no API server to ask
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Metrics.Listen = listen
	cfg.Metrics.PodResources.LogDir = filepath.Join(dir, "pods")
	cfg.Buffer.MaxBytes = 256 << 20
	cfg.Buffer.SegmentBytes = 8 << 20
	in := collector.InputConfig{Name: "pods", Type: "tail", Paths: []string{filepath.Join(dir, "containers", "*.log")}, ParseJSON: true}
	cfg.Inputs = []collector.InputConfig{in}
	cfg.Sinks = []collector.SinkConfig{{Name: "local", Type: "file", Path: filepath.Join(dir, "out.jsonl")}}
	for i := range cfg.Inputs {
		collector.ApplyInputDefaults(&cfg.Inputs[i])
	}
	return &cfg
}

type demoStats struct{ in, inBytes, out, published, bufBytes float64 }

func readDemoStats(a *agent) demoStats {
	mfs, err := a.reg.Gather()
	if err != nil {
		return demoStats{}
	}
	var s demoStats
	sum := func(mf *dto.MetricFamily) float64 {
		t := 0.0
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				t += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				t += g.GetValue()
			}
		}
		return t
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "tailgate_input_records_total":
			s.in = sum(mf)
		case "tailgate_input_bytes_total":
			s.inBytes = sum(mf)
		case "tailgate_sink_records_total":
			for _, m := range mf.GetMetric() {
				if hasLabel(m, "result", collector.ResultSent) {
					if hasLabel(m, "sink", "local") {
						s.out += m.GetCounter().GetValue()
					} else if hasLabel(m, "sink", "pubsub") {
						s.published += m.GetCounter().GetValue()
					}
				}
			}
		case "tailgate_buffer_bytes":
			s.bufBytes = sum(mf)
		}
	}
	return s
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// demoGenerator writes CRI logs for a few pods the way containerd and the kubelet do: absolute
// symlinks in containers/, 16 KiB P chunks for long lines, rename rotation of 0.log.
type demoGenerator struct {
	dir       string
	pods      []*demoPod
	records   atomic.Int64
	rotations atomic.Int64
}

type demoPod struct {
	ns, name, container, path string
	f                         *os.File
	w                         *bufio.Writer
	size                      int64
}

func newDemoGenerator(dir string) (*demoGenerator, error) {
	g := &demoGenerator{dir: dir}
	specs := []struct{ ns, pod, container string }{
		{"shop", "cart-7d9f8b6c5-x2x9k", "app"}, {"shop", "checkout-5c6d7f8-9kq2w", "app"},
		{"shop", "checkout-5c6d7f8-9kq2w", "envoy"}, {"payments", "ledger-0", "app"},
		{"payments", "fraud-6b7c8d-mm2p4", "app"}, {"kube-system", "coredns-5d78c9869d-abcde", "coredns"},
	}
	if err := os.MkdirAll(filepath.Join(dir, "containers"), 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for i, s := range specs {
		uid := fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", i+1, i+1)
		podDir := filepath.Join(dir, "pods", fmt.Sprintf("%s_%s_%s", s.ns, s.pod, uid), s.container)
		if err := os.MkdirAll(podDir, 0o755); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		p := &demoPod{ns: s.ns, name: s.pod, container: s.container, path: filepath.Join(podDir, "0.log")}
		if err := p.open(); err != nil {
			return nil, err
		}
		link := filepath.Join(dir, "containers", fmt.Sprintf("%s_%s_%s-%064x.log", s.pod, s.ns, s.container, i+1))
		if err := os.Symlink(p.path, link); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("demo: %w", err)
		}
		g.pods = append(g.pods, p)
	}
	return g, nil
}

func (p *demoPod) open() error {
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	p.f, p.w, p.size = f, bufio.NewWriterSize(f, 64<<10), 0
	return nil
}

// rotate renames the file away and starts a new one, as the kubelet does at its size limit.
func (p *demoPod) rotate() error {
	if err := p.w.Flush(); err != nil {
		return err
	}
	p.f.Close()
	if err := os.Rename(p.path, p.path+"."+time.Now().UTC().Format("20060102-150405.000000")); err != nil {
		return fmt.Errorf("demo: rotate: %w", err)
	}
	return p.open()
}

var demoLevels = []string{"info", "info", "info", "debug", "warn", "error"}

func (g *demoGenerator) run(ctx context.Context, rate int) error {
	if rate <= 0 {
		rate = 1
	}
	const tick = 20 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	rng := rand.New(rand.NewPCG(1, 2))
	var n int64
	line := make([]byte, 0, 64<<10)
	defer func() {
		for _, p := range g.pods {
			p.w.Flush()
			p.f.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i := 0; i < perTick; i++ {
			p := g.pods[rng.IntN(len(g.pods))]
			stream := "stdout"
			level := demoLevels[rng.IntN(len(demoLevels))]
			if level == "error" || level == "warn" {
				stream = "stderr"
			}
			msg := fmt.Sprintf(`{"level":%q,"msg":"handled request","pod":%q,"seq":%d,"latency_ms":%d,"trace_id":"%016x"}`,
				level, p.name, n, rng.IntN(500), rng.Uint64())
			if n%200 == 199 { // a long line the runtime splits into 16 KiB partials
				msg = fmt.Sprintf(`{"level":"info","msg":"large payload","seq":%d,"blob":%q}`, n, strings.Repeat("x", 40<<10))
			}
			ts := time.Now().UTC().Format(time.RFC3339Nano)
			for len(msg) > 16<<10 {
				line = append(line[:0], ts...)
				line = append(line, ' ')
				line = append(line, stream...)
				line = append(line, " P "...)
				line = append(line, msg[:16<<10]...)
				line = append(line, '\n')
				p.w.Write(line)
				p.size += int64(len(line))
				msg = msg[16<<10:]
			}
			line = append(line[:0], ts...)
			line = append(line, ' ')
			line = append(line, stream...)
			line = append(line, " F "...)
			line = append(line, msg...)
			line = append(line, '\n')
			if _, err := p.w.Write(line); err != nil {
				return fmt.Errorf("demo: write: %w", err)
			}
			p.size += int64(len(line))
			n++
			g.records.Add(1)
			if p.size > 1<<20 {
				if err := p.rotate(); err != nil {
					return err
				}
				g.rotations.Add(1)
			}
		}
		for _, p := range g.pods {
			if err := p.w.Flush(); err != nil {
				return fmt.Errorf("demo: flush: %w", err)
			}
		}
	}
}
