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
	"github.com/tailgate-dev/tailgate/collector/tail"
	"github.com/tailgate-dev/tailgate/exporter"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch"
	"github.com/tailgate-dev/tailgate/sinks/file"
	"github.com/tailgate-dev/tailgate/sinks/pubsub"
)

// agent is the wired process: inputs -> pipeline (buffer) -> sinks, plus the metrics server.
type agent struct {
	cfg      *collector.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	pods     *exporter.Pods
	metrics  *collector.Metrics
	pipeline *collector.Pipeline
	inputs   []collector.Input
	filters  []*filter.Rules // per input, nil when it has no filters or redact rules
	srv      *http.Server
	ln       net.Listener
	ready    atomic.Bool
}

func newAgent(ctx context.Context, cfg *collector.Config, log *slog.Logger) (*agent, error) {
	maxSeries := cfg.Metrics.MaxSeries
	if maxSeries == 0 {
		maxSeries = -1 // the config's 0 is no limit
	}
	a := &agent{cfg: cfg, log: log, reg: prometheus.NewRegistry(),
		pods: exporter.NewPods(exporter.Options{MaxSeries: maxSeries, Logger: log.With("component", "exporter")})}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector(currentBuild()))
	a.metrics = collector.NewMetrics(a.reg)

	sinks := make([]collector.Sink, 0, len(cfg.Sinks))
	closeSinks := func() {
		for _, s := range sinks {
			s.Close(context.Background())
		}
	}
	for _, sc := range cfg.Sinks {
		s, err := newSink(ctx, sc, log, a.reg)
		if err != nil {
			closeSinks()
			return nil, err
		}
		sinks = append(sinks, s)
		if cl, ok := s.(*cloudlogging.Sink); ok {
			cl.SetNodeName(cfg.NodeName)
			a.reg.MustRegister(cl.Metrics())
		}
	}
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
		Logger:  log,
	})
	if err != nil {
		closeSinks()
		return nil, err
	}
	a.pipeline = p
	a.reg.MustRegister(collector.NewBufferCollector(p.Buffer()))

	for _, ic := range cfg.Inputs {
		in, err := newInput(ic, cfg.NodeName, a.metrics, log)
		if err != nil {
			p.Stop(context.Background())
			return nil, err
		}
		rules, err := filter.Compile(ic.Filters, ic.Redact)
		if err != nil {
			p.Stop(context.Background())
			return nil, fmt.Errorf("input %s: %w", ic.Name, err)
		}
		if t, ok := in.(*tail.Input); ok {
			t.SetProgress(a.pods) // per-container written/read/lag
		}
		a.inputs = append(a.inputs, in)
		a.filters = append(a.filters, rules)
	}
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			p.Stop(context.Background())
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
		"cloudwatch": {
			validate: cloudwatch.Validate,
			build: func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, reg prometheus.Registerer) (collector.Sink, error) {
				return cloudwatch.New(ctx, sc, cloudwatch.Options{Registerer: reg, Logger: log})
			},
		},
		"cloud_logging": {
			validate: func(sc collector.SinkConfig) error { return cloudlogging.Validate(cloudLoggingOptions(sc)) },
			build: func(ctx context.Context, sc collector.SinkConfig, log *slog.Logger, _ prometheus.Registerer) (collector.Sink, error) {
				return cloudlogging.New(ctx, sc, cloudLoggingOptions(sc), log)
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
func (a *agent) run(ctx context.Context) error {
	if a.srv != nil {
		go func() {
			if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server", "err", err)
			}
		}()
	}
	a.pipeline.Start(context.WithoutCancel(ctx))
	resCtx, stopResources := context.WithCancel(context.WithoutCancel(ctx))
	resDone := make(chan struct{})
	go func() {
		defer close(resDone)
		pr := a.cfg.Metrics.PodResources
		a.pods.RunResources(resCtx, exporter.ResourceOptions{LogDir: pr.LogDir, Interval: pr.Interval.D(),
			Cgroup: pr.Cgroup, CgroupRoot: pr.CgroupRoot})
	}()
	defer func() { stopResources(); <-resDone }()
	inCtx, stopInputs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(a.inputs))
	for i, in := range a.inputs {
		var out collector.Emitter = a.pipeline.Emitter(in.Name())
		if a.filters[i] != nil {
			out = filter.NewEmitter(out, a.filters[i], a.metrics.InputRedactions.WithLabelValues(in.Name()))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Run(inCtx, out); err != nil {
				errs <- fmt.Errorf("input %s: %w", in.Name(), err)
			}
		}()
	}
	a.ready.Store(true)
	b := currentBuild()
	a.log.Info("tailgate running", "version", b.Version, "commit", b.Commit, "modified", b.Modified, "node", a.cfg.NodeName, "data_dir", a.cfg.DataDir,
		"inputs", len(a.inputs), "sinks", len(a.cfg.Sinks), "metrics", a.MetricsAddr())
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("stopping: inputs first, then draining sinks", "timeout", a.cfg.ShutdownTimeout.D())
	case runErr = <-errs:
		a.log.Error("input failed; stopping", "err", runErr)
	}
	a.ready.Store(false)
	stopInputs()
	wg.Wait()
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.D())
	defer cancel()
	if err := a.pipeline.Stop(stopCtx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if a.srv != nil {
		shCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.srv.Shutdown(shCtx)
		cancel()
	}
	a.log.Info("tailgate stopped")
	return runErr
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
