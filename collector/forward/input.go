package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tailgate-dev/tailgate/collector"
)

// Defaults for the forward input's limits.
const (
	DefaultMaxChunkBytes  = 32 << 20 // Fluentd's chunk_size_limit
	DefaultMaxConnections = 1024
	DefaultIdleTimeout    = 5 * time.Minute
	// shutdownGrace bounds how long Run waits, after ctx ends, to acknowledge frames that
	// were already emitted before closing their connections.
	shutdownGrace = 5 * time.Second
)

// Input is the forward input. Create it with New; Run serves until its context ends.
type Input struct {
	name        string
	listen      string
	socket      string
	socketMode  os.FileMode
	socketGID   int // -1: leave the group alone
	sharedKey   string
	hostname    string
	tls         *tls.Config
	maxChunk    int
	maxUnpacked int
	maxConns    int
	idle        time.Duration

	log         *slog.Logger
	warn        *collector.WarnLimiter
	errors      *prometheus.CounterVec
	connections prometheus.Gauge

	addr  atomic.Value // net.Addr of the TCP listener
	peers PeerMetadata // nil: records carry no Kubernetes metadata

	mu    sync.Mutex
	conns map[*conn]struct{}
}

var _ collector.Input = (*Input)(nil)

// New checks cfg and returns the input; it binds nothing until Run.
func New(cfg collector.InputConfig, m *collector.Metrics, log *slog.Logger) (*Input, error) {
	if cfg.Listen == "" && cfg.Socket == "" {
		return nil, fmt.Errorf("input %s: forward needs listen or socket", cfg.Name)
	}
	if m == nil {
		m = collector.NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in := &Input{
		name:        cfg.Name,
		listen:      cfg.Listen,
		socket:      cfg.Socket,
		sharedKey:   cfg.SharedKey,
		maxChunk:    int(cfg.MaxChunkBytes),
		maxConns:    cfg.MaxConnections,
		idle:        time.Duration(cfg.IdleTimeout),
		log:         log,
		warn:        collector.NewWarnLimiter(log, time.Minute),
		errors:      m.InputErrors,
		connections: m.ForwardConnections.WithLabelValues(cfg.Name),
		conns:       make(map[*conn]struct{}),
	}
	if in.maxChunk <= 0 {
		in.maxChunk = DefaultMaxChunkBytes
	}
	// A compressed chunk may inflate well past its wire size; bound it still.
	in.maxUnpacked = 4 * in.maxChunk
	if in.maxConns <= 0 {
		in.maxConns = DefaultMaxConnections
	}
	if in.idle <= 0 {
		in.idle = DefaultIdleTimeout
	}
	if cfg.SocketMode != "" {
		mode, err := strconv.ParseUint(cfg.SocketMode, 8, 32)
		if err != nil || mode > 0o777 {
			return nil, fmt.Errorf("input %s: socket_mode %q: want an octal mode such as 0660", cfg.Name, cfg.SocketMode)
		}
		in.socketMode = os.FileMode(mode)
	}
	in.socketGID = -1
	if cfg.SocketGroup != "" {
		gid, err := lookupGroup(cfg.SocketGroup)
		if err != nil {
			return nil, fmt.Errorf("input %s: socket_group: %w", cfg.Name, err)
		}
		in.socketGID = gid
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		return nil, fmt.Errorf("input %s: tls needs both cert_file and key_file", cfg.Name)
	}
	if cfg.TLS.CertFile != "" {
		certs, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log)
		if err != nil {
			return nil, fmt.Errorf("input %s: tls: %w", cfg.Name, err)
		}
		in.tls = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
	}
	if in.sharedKey != "" {
		host, err := os.Hostname()
		if err != nil {
			host = "tailgate"
		}
		in.hostname = host
	}
	return in, nil
}

// Name is the configured input name.
func (in *Input) Name() string { return in.name }

// Addr is the bound TCP address once Run listens, or nil.
func (in *Input) Addr() net.Addr {
	a, _ := in.addr.Load().(net.Addr)
	return a
}

// Run listens and serves connections until ctx ends. It then stops accepting, lets each
// connection acknowledge what it already emitted (within a grace period), closes them and
// returns nil. A listen failure is returned.
func (in *Input) Run(ctx context.Context, out collector.Emitter) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if in.listen != "" {
		ln, err := net.Listen("tcp", in.listen)
		if err != nil {
			return fmt.Errorf("input %s: listen %s: %w", in.name, in.listen, err)
		}
		in.addr.Store(ln.Addr())
		if in.tls != nil {
			ln = tls.NewListener(ln, in.tls)
		}
		lns = append(lns, ln)
	}
	if in.socket != "" {
		ln, err := listenUnix(in.socket, in.socketMode, in.socketGID)
		if err != nil {
			closeAll()
			return fmt.Errorf("input %s: %w", in.name, err)
		}
		lns = append(lns, ln)
	}

	ackCtx, cancelAcks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAcks()
	sem := make(chan struct{}, in.maxConns)
	var accepting, serving sync.WaitGroup
	for _, ln := range lns {
		accepting.Go(func() { in.accept(ctx, ackCtx, ln, out, sem, &serving) })
	}

	<-ctx.Done()
	closeAll()
	accepting.Wait()
	in.mu.Lock()
	for c := range in.conns {
		c.stop()
	}
	in.mu.Unlock()
	done := make(chan struct{})
	go func() {
		serving.Wait()
		close(done)
	}()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		cancelAcks()
		in.mu.Lock()
		for c := range in.conns {
			c.nc.Close()
		}
		in.mu.Unlock()
		<-done
	}
	return nil
}

func (in *Input) accept(ctx, ackCtx context.Context, ln net.Listener, out collector.Emitter, sem chan struct{}, serving *sync.WaitGroup) {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: wait instead of spinning.
			in.warn.Warn("accept", "forward accept failed", "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case sem <- struct{}{}:
		default:
			nc.Close()
			in.countError(reasonMaxConnections)
			in.warn.Warn(reasonMaxConnections, "forward connection refused: max_connections reached", "max_connections", in.maxConns)
			continue
		}
		c := newConn(in, nc, out, ctx, rand.Uint64())
		in.mu.Lock()
		in.conns[c] = struct{}{}
		in.mu.Unlock()
		in.connections.Inc()
		serving.Go(func() {
			defer func() {
				in.mu.Lock()
				delete(in.conns, c)
				in.mu.Unlock()
				in.connections.Dec()
				<-sem
			}()
			c.serve(ackCtx)
		})
	}
}

func (in *Input) countError(reason string) {
	in.errors.WithLabelValues(in.name, reason).Inc()
}
