package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tailgate-dev/tailgate/buffer"
	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/filter"
	"github.com/tailgate-dev/tailgate/collector/forward"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/collector/tail"
	"github.com/tailgate-dev/tailgate/exporter"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch"
	"github.com/tailgate-dev/tailgate/sinks/file"
	"github.com/tailgate-dev/tailgate/sinks/pubsub"
)

// agent is the wired process: inputs -> pipeline (buffer) -> sinks, plus the metrics server.
// What a reload swaps (config, pipeline, sinks, inputs and their filters) is the generation;
// the registry, the metrics server, the pod exporter and the pod watch live as long as the
// process.
type agent struct {
	cfg      *collector.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	pods     *exporter.Pods
	metrics  *collector.Metrics
	pipeline *collector.Pipeline
	sinks    []collector.Sink // the current generation's, built from cfg.Sinks
	inputs   []collector.Input
	filters  []*filter.Rules // per input, nil when it has no filters or redact rules
	watch    *kube.Watcher   // nil without kubernetes
	srv      *http.Server
	ln       net.Listener
	ready    atomic.Bool

	// per generation: what it registered, to unregister at a swap
	collectors []prometheus.Collector
	// reload asks run to swap in a new config (a validated *collector.Config).
	reload  chan *collector.Config
	reloads *prometheus.CounterVec // tailgate_config_reloads_total{result}
}

func newAgent(ctx context.Context, cfg *collector.Config, log *slog.Logger) (*agent, error) {
	maxSeries := cfg.Metrics.MaxSeries
	if maxSeries == 0 {
		maxSeries = -1 // the config's 0 is no limit
	}
	a := &agent{cfg: cfg, log: log, reg: prometheus.NewRegistry(),
		pods:   exporter.NewPods(exporter.Options{MaxSeries: maxSeries, Logger: log.With("component", "exporter")}),
		reload: make(chan *collector.Config, 1)}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector(currentBuild()))
	a.metrics = collector.NewMetrics(a.reg)
	a.reloads = a.metrics.ConfigReloads
	watch, err := newPodWatch(cfg, a.reg, podSeries{a.pods}, log)
	if err != nil {
		return nil, err
	}
	a.watch = watch
	sinks, err := a.newSinks(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.startGeneration(cfg, sinks); err != nil {
		return nil, err
	}
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			a.pipeline.Stop(context.Background())
			return nil, fmt.Errorf("metrics listen %s: %w", cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", exporter.Handler(a.log, a.reg, a.pods))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !a.ready.Load() {
				http.Error(w, "starting\n", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok\n"))
		})
		a.srv, a.ln = newMetricsServer(ln, mux, cfg.Metrics.Pprof, metricsLimits())
	}
	return a, nil
}

// newSinks builds the sinks of cfg; nothing is started or registered yet.
func (a *agent) newSinks(ctx context.Context, cfg *collector.Config) ([]collector.Sink, error) {
	sinks := make([]collector.Sink, 0, len(cfg.Sinks))
	for _, sc := range cfg.Sinks {
		// A sink's own metric families are shared: by the sinks of its type, and by the sink
		// this config's sink replaces under the same name, whose counters go on.
		s, err := newSink(ctx, sc, a.log, a.reg)
		if err != nil {
			closeSinks(sinks)
			forgetSinks(sinks, cfg, a.cfg)
			return nil, err
		}
		sinks = append(sinks, s)
		if cl, ok := s.(*cloudlogging.Sink); ok {
			cl.SetNodeName(cfg.NodeName)
		}
	}
	return sinks, nil
}

func closeSinks(sinks []collector.Sink) {
	for _, s := range sinks {
		s.Close(context.Background())
	}
}

// forgetSinks deletes the own metric series of the closed sinks (built from the config from)
// that the config keep has not under the same name and type: a sink removed by a reload, or
// built for a reload that failed, must not leave its last values (a "refused" gauge at 1, say)
// exported for the life of the process. Those keep has are shared by its sinks and stay.
func forgetSinks(sinks []collector.Sink, from, keep *collector.Config) {
	typeOf := func(cfg *collector.Config, name string) string {
		if cfg == nil {
			return ""
		}
		for _, sc := range cfg.Sinks {
			if sc.Name == name {
				return sc.Type
			}
		}
		return ""
	}
	for _, s := range sinks {
		f, ok := s.(interface{ ForgetMetrics() })
		if !ok {
			continue
		}
		if t := typeOf(keep, s.Name()); t != "" && t == typeOf(from, s.Name()) {
			continue
		}
		f.ForgetMetrics()
	}
}

// startGeneration opens the pipeline of cfg over sinks (recovering input positions and sink
// cursors from the buffer in data_dir) and builds its inputs; start runs them.
func (a *agent) startGeneration(cfg *collector.Config, sinks []collector.Sink) error {
	policy := buffer.Block
	if cfg.Buffer.WhenFull == "drop_oldest" {
		policy = buffer.DropOldest
	}
	p, err := collector.NewPipeline(collector.PipelineOptions{
		DataDir: cfg.DataDir,
		Buffer: buffer.Options{
			MaxBytes:     int64(cfg.Buffer.MaxBytes),
			SegmentBytes: int64(cfg.Buffer.SegmentBytes),
			Sync:         cfg.Buffer.Sync.D(),
			WhenFull:     policy,
		},
		Routes:  cfg.Routes,
		Sinks:   sinks,
		Metrics: a.metrics,
		Pods:    podLogs{a.pods.Logs()},
		Logger:  a.log,
	})
	if err != nil {
		closeSinks(sinks)
		return err
	}
	var inputs []collector.Input
	var filters []*filter.Rules
	for _, ic := range cfg.Inputs {
		in, err := newInput(ic, cfg.NodeName, a.metrics, a.log)
		if err != nil {
			p.Stop(context.Background())
			return err
		}
		rules, err := filter.Compile(ic.Filters, ic.Redact)
		if err != nil {
			p.Stop(context.Background())
			return fmt.Errorf("input %s: %w", ic.Name, err)
		}
		if t, ok := in.(*tail.Input); ok {
			t.SetProgress(a.pods) // per-container written/read/lag
		}
		bindMetadata(in, ic, a.watch, a.log)
		inputs = append(inputs, in)
		filters = append(filters, rules)
	}
	cs := []prometheus.Collector{collector.NewBufferCollector(p.Buffer())}
	for _, c := range a.collectors {
		a.reg.Unregister(c)
	}
	for _, c := range cs {
		if err := a.reg.Register(c); err != nil {
			a.log.Warn("metrics of the new config not registered", "err", err)
		}
	}
	a.cfg, a.pipeline, a.sinks, a.inputs, a.filters, a.collectors = cfg, p, sinks, inputs, filters, cs
	return nil
}

// sinkType is one sink type this binary builds.
type sinkType struct {
	// validate makes the constructor's checks that need no network (nil: the config's own
	// checks are all); `tailgate check` runs it, so check fails where run would.
	validate func(collector.SinkConfig) error
	build    func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, reg prometheus.Registerer) (collector.Sink, error)
}

// sinkTypes is the one list of the sink types this binary builds: check accepts exactly
// these, and newSink builds them.
func sinkTypes() map[string]sinkType {
	fileSink := func(_ context.Context, sc collector.SinkConfig, _ *slog.Logger, _ prometheus.Registerer) (collector.Sink, error) {
		return file.New(sc)
	}
	return map[string]sinkType{
		"file":   {build: fileSink},
		"stdout": {build: fileSink},
		"pubsub": {
			validate: func(sc collector.SinkConfig) error { return pubsub.Validate(sc, pubsubOptions(sc)) },
			build: func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, _ prometheus.Registerer) (collector.Sink, error) {
				return pubsub.NewWithOptions(ctx, sc, pubsubOptions(sc), log)
			},
		},
		"cloud_logging": {
			validate: func(sc collector.SinkConfig) error { return cloudlogging.Validate(cloudLoggingOptions(sc)) },
			build: func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, reg prometheus.Registerer) (collector.Sink, error) {
				opts := cloudLoggingOptions(sc)
				opts.Registerer = reg
				return cloudlogging.New(ctx, sc, opts, log)
			},
		},
		"cloudwatch": {
			validate: cloudwatch.Validate,
			build: func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, reg prometheus.Registerer) (collector.Sink, error) {
				return cloudwatch.New(ctx, sc, cloudwatch.Options{Registerer: reg, Logger: log})
			},
		},
	}
}

func cloudLoggingOptions(sc collector.SinkConfig) cloudlogging.Options {
	return cloudlogging.Options{
		LogID:                sc.LogID,
		Location:             sc.Location,
		ClusterName:          sc.ClusterName,
		StdoutSeverity:       sc.StdoutSeverity,
		StderrSeverity:       sc.StderrSeverity,
		FutureTimestamp:      sc.FutureTimestamp,
		Oversize:             sc.Oversize,
		MaxEntryBytes:        int(sc.MaxEntryBytes),
		MaxEntriesPerRequest: sc.MaxEntriesPerRequest,
		RequestTimeout:       sc.RequestTimeout.D(),
		PermissionRetry:      sc.PermissionRetry.D(),
	}
}

// sinkChecks is sinkTypes as collector.LoadOptions.SinkTypes wants it.
func sinkChecks() map[string]func(collector.SinkConfig) error {
	out := make(map[string]func(collector.SinkConfig) error)
	for name, t := range sinkTypes() {
		out[name] = t.validate
	}
	return out
}

func pubsubOptions(sc collector.SinkConfig) pubsub.Options {
	return pubsub.Options{
		OrderingKey:     sc.OrderingKey,
		MaxMessageBytes: int(sc.MaxMessageBytes),
		Oversize:        sc.Oversize,
		PublishTimeout:  sc.PublishTimeout.D(),
		Compression:     sc.Compression,
	}
}

// newSink builds the sink sc names; its own metrics (if any) go to reg, which may be nil.
func newSink(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, reg prometheus.Registerer) (collector.Sink, error) {
	t, ok := sinkTypes()[sc.Type]
	if !ok {
		return nil, fmt.Errorf("sink %s: type %s is not built into this binary", sc.Name, sc.Type)
	}
	return t.build(ctx, sc, log.With("sink", sc.Name), reg)
}

// newInput is the one place input types are chosen.
func newInput(ic collector.InputConfig, node string, m *collector.Metrics, log *slog.Logger) (collector.Input, error) {
	switch ic.Type {
	case "tail":
		return tail.New(ic, node, m, log.With("input", ic.Name))
	case "forward":
		return forward.New(ic, m, log.With("input", ic.Name))
	}
	return nil, fmt.Errorf("input %s: unknown type %s", ic.Name, ic.Type)
}

// MetricsAddr is the bound metrics address (the demo and tests listen on port 0).
func (a *agent) MetricsAddr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// run serves until ctx ends, then shuts down in reverse order: inputs stop reading, sinks
// drain the buffer within shutdown_timeout, cursors are persisted, the metrics server stops.
// A config sent on a.reload is swapped in between (see swap).
func (a *agent) run(ctx context.Context) error {
	if a.srv != nil {
		go func() {
			if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server", "err", err)
			}
		}()
	}
	resCtx, stopResources := context.WithCancel(context.WithoutCancel(ctx))
	resDone := make(chan struct{})
	pr := a.cfg.Metrics.PodResources // metrics settings are restart-only: a reload keeps them
	go func() {
		defer close(resDone)
		a.pods.RunResources(resCtx, exporter.ResourceOptions{LogDir: pr.LogDir, Interval: pr.Interval.D(),
			Cgroup: pr.Cgroup, CgroupRoot: pr.CgroupRoot})
	}()
	defer func() { stopResources(); <-resDone }()
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watchDone := make(chan struct{})
	if a.watch != nil {
		go func() { defer close(watchDone); a.watch.Run(watchCtx) }()
	} else {
		close(watchDone)
	}
	defer func() { stopWatch(); <-watchDone }() // after the inputs: their last records still bind
	gen := a.start(ctx)
	a.ready.Store(true)
	b := currentBuild()
	a.log.Info("tailgate running", "version", b.Version, "commit", b.Commit, "modified", b.Modified, "node", a.cfg.NodeName, "data_dir", a.cfg.DataDir,
		"inputs", len(a.inputs), "sinks", len(a.cfg.Sinks), "metrics", a.MetricsAddr())
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping: inputs first, then draining sinks", "timeout", a.cfg.ShutdownTimeout.D())
			break loop
		case runErr = <-gen.errs:
			a.log.Error("input failed; stopping", "err", runErr)
			break loop
		case cfg := <-a.reload:
			next, err := a.swap(ctx, gen, cfg)
			if err != nil {
				runErr = err
				gen = nil
				break loop
			}
			gen = next
		}
	}
	a.ready.Store(false)
	if gen != nil {
		runErr = errors.Join(runErr, a.stop(gen))
	}
	if a.srv != nil {
		shCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.srv.Shutdown(shCtx)
		cancel()
	}
	a.log.Info("tailgate stopped")
	return runErr
}

// running is a started generation: its inputs' goroutines.
type running struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// start starts the current pipeline's sinks and inputs.
func (a *agent) start(ctx context.Context) *running {
	a.pipeline.Start(context.WithoutCancel(ctx))
	inCtx, cancel := context.WithCancel(ctx)
	g := &running{cancel: cancel, errs: make(chan error, len(a.inputs))}
	for i, in := range a.inputs {
		var out collector.Emitter = a.pipeline.Emitter(in.Name())
		if a.filters[i] != nil {
			out = filter.NewEmitter(out, a.filters[i], a.metrics.InputRedactions.MustCurryWith(prometheus.Labels{"input": in.Name()}))
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := in.Run(inCtx, out); err != nil {
				g.errs <- fmt.Errorf("input %s: %w", in.Name(), err)
			}
		}()
	}
	return g
}

// stop stops the inputs (they emit what they read, with its positions), then drains every
// sink within shutdown_timeout and persists the cursors.
func (a *agent) stop(g *running) error {
	g.cancel()
	g.wg.Wait()
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.D())
	defer cancel()
	return a.pipeline.Stop(stopCtx)
}

// podLogs adapts exporter.PodLogs to the collector's consumer-owned interface.
type podLogs struct{ *exporter.PodLogs }

func (p podLogs) Acquire(namespace, pod, container, stream string) collector.PodSeries {
	if s := p.PodLogs.Acquire(namespace, pod, container, stream); s != nil {
		return s
	}
	return nil // refused by the series budget: an untyped nil, so the pipeline sees it
}

func (p podLogs) Release(s collector.PodSeries) {
	if ls, ok := s.(*exporter.LogSeries); ok {
		p.PodLogs.Release(ls)
	}
}
