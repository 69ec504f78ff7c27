package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tailgate-dev/tailgate/collector"
)

// shutdownGrace bounds how long Run waits, after ctx ends, to acknowledge frames that were
// already emitted before closing their connections.
const shutdownGrace = 5 * time.Second

// Input is the forward input. Create it with New; Run serves until its context ends.
type Input struct {
	name             string
	listen           string
	socket           string
	socketMode       os.FileMode
	socketGID        int // -1: leave the group alone
	sharedKey        string
	hostname         string
	tls              *tls.Config
	maxChunk         int
	maxUnpacked      int
	maxConns         int
	perPeer          int
	idle             time.Duration
	handshakeTimeout time.Duration
	frameTimeout     time.Duration
	budget           *budget

	log         *slog.Logger
	warn        *collector.WarnLimiter
	errors      *prometheus.CounterVec
	closedTotal *prometheus.CounterVec
	connections prometheus.Gauge

	addr    atomic.Value // net.Addr of the TCP listener
	podMeta PeerMetadata // nil: records carry no Kubernetes metadata

	mu    sync.Mutex
	conns map[*conn]struct{}
	peers map[netip.Addr]int // connections per remote IP
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
		name:             cfg.Name,
		listen:           cfg.Listen,
		socket:           cfg.Socket,
		sharedKey:        cfg.SharedKey,
		maxChunk:         int(cfg.MaxChunkBytes),
		maxConns:         cfg.MaxConnections,
		perPeer:          cfg.MaxConnectionsPerPeer,
		idle:             cfg.IdleTimeout.D(),
		handshakeTimeout: cfg.HandshakeTimeout.D(),
		frameTimeout:     cfg.FrameTimeout.D(),
		log:              log,
		warn:             collector.NewWarnLimiter(log, time.Minute),
		errors:           m.InputErrors,
		closedTotal:      m.ForwardClosed,
		connections:      m.ForwardConnections.WithLabelValues(cfg.Name),
		conns:            make(map[*conn]struct{}),
		peers:            make(map[netip.Addr]int),
	}
	// Zero values take the defaults (configs that went through collector.LoadConfig have them).
	if in.maxChunk <= 0 {
		in.maxChunk = collector.DefaultMaxChunkBytes
	}
	// A compressed chunk may inflate well past its wire size; bound it still.
	in.maxUnpacked = 4 * in.maxChunk
	if in.maxConns <= 0 {
		in.maxConns = collector.DefaultMaxConnections
	}
	if in.perPeer <= 0 {
		in.perPeer = collector.DefaultMaxConnectionsPerPeer
	}
	if in.handshakeTimeout <= 0 {
		in.handshakeTimeout = collector.DefaultHandshakeTimeout
	}
	if in.frameTimeout <= 0 {
		in.frameTimeout = collector.DefaultFrameTimeout
	}
	maxBuffered := int64(cfg.MaxBufferedBytes)
	if maxBuffered <= 0 {
		maxBuffered = collector.DefaultMaxBufferedBytes
	}
	in.budget = &budget{max: max(maxBuffered, int64(in.maxChunk))}
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
	var accepting, serving sync.WaitGroup
	for _, ln := range lns {
		accepting.Go(func() { in.accept(ctx, ackCtx, ln, out, &serving) })
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

func (in *Input) accept(ctx, ackCtx context.Context, ln net.Listener, out collector.Emitter, serving *sync.WaitGroup) {
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
		c := newConn(in, nc, out, ctx, rand.Uint64())
		if reason := in.admit(c); reason != "" {
			nc.Close()
			in.closed(reason)
			in.warn.Warn(reason, "forward connection refused: limit reached and no idle connection to close",
				"remote", nc.RemoteAddr().String(), "reason", reason,
				"max_connections", in.maxConns, "max_connections_per_peer", in.perPeer)
			continue
		}
		serving.Go(func() { in.release(c, c.serve(ackCtx)) })
	}
}

func (in *Input) countError(reason string) {
	in.errors.WithLabelValues(in.name, reason).Inc()
}
