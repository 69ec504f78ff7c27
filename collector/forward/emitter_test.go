package forward

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tailgate-dev/tailgate/collector"
)

// fakeEmitter stands in for the pipeline: it keeps a copy of every record, rendered as the
// envelope, and its Durables can be held back to prove acks wait for them.
type fakeEmitter struct {
	mu       sync.Mutex
	records  []collector.Record
	envs     []string
	batches  int
	released int
	gate     chan struct{} // nil: durable at once; else Wait blocks until closed
	waiting  chan struct{} // signalled when a Wait starts blocking
	changed  chan struct{}

	// Emit of a batch whose first record has blockTag waits for blockGate (a full buffer).
	blockTag  string
	blockGate chan struct{}
	blocked   chan struct{}
}

func newFakeEmitter() *fakeEmitter {
	return &fakeEmitter{changed: make(chan struct{}, 1), waiting: make(chan struct{}, 64)}
}

// hold makes the Durables of later batches block until release.
func (e *fakeEmitter) hold() {
	e.mu.Lock()
	e.gate = make(chan struct{})
	e.mu.Unlock()
}

func (e *fakeEmitter) release() {
	e.mu.Lock()
	close(e.gate)
	e.gate = nil
	e.mu.Unlock()
}

func (e *fakeEmitter) Emit(ctx context.Context, b *collector.Batch) (collector.Durable, error) {
	if e.blockTag != "" && len(b.Records) > 0 && string(b.Records[0].Tag) == e.blockTag {
		e.blocked <- struct{}{}
		select {
		case <-e.blockGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range b.Records {
		r.Message = append([]byte(nil), r.Message...)
		r.Tag = append([]byte(nil), r.Tag...)
		r.Fields = append([]byte(nil), r.Fields...)
		e.records = append(e.records, r)
		e.envs = append(e.envs, string(r.AppendJSON(nil)))
	}
	e.batches++
	e.signal()
	return &fakeDurable{gate: e.gate, waiting: e.waiting}, nil
}

func (e *fakeEmitter) signal() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

func (e *fakeEmitter) Release(*collector.Source) {
	e.mu.Lock()
	e.released++
	e.mu.Unlock()
	e.signal()
}

func (e *fakeEmitter) Dropped(*collector.Source, collector.Stream, string, int) {}
func (e *fakeEmitter) Altered(*collector.Source, collector.Stream, string, int) {}
func (e *fakeEmitter) State() map[string][]byte                                 { return nil }

// waitFor polls cond (under the emitter's lock) until it holds or the deadline passes.
func (e *fakeEmitter) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := cond()
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-e.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (e *fakeEmitter) waitRecords(t *testing.T, n int) []string {
	t.Helper()
	e.waitFor(t, "records", func() bool { return len(e.envs) >= n })
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.envs...)
}

func (e *fakeEmitter) snapshot() []collector.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]collector.Record(nil), e.records...)
}

type fakeDurable struct {
	gate    chan struct{}
	waiting chan struct{}
}

func (d *fakeDurable) Wait(ctx context.Context) error {
	if d.gate == nil {
		return nil
	}
	select {
	case d.waiting <- struct{}{}:
	default:
	}
	select {
	case <-d.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// harness runs an Input with a fakeEmitter for one test.
type harness struct {
	in      *Input
	out     *fakeEmitter
	m       *collector.Metrics
	cancel  context.CancelFunc
	done    chan error
	network string
	address string
}

// start runs the input; cfg.Listen defaults to 127.0.0.1:0 unless cfg.Socket is set.
func start(t *testing.T, cfg collector.InputConfig) *harness {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "apps"
	}
	if cfg.Listen == "" && cfg.Socket == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	m := collector.NewMetrics(nil)
	in, err := New(cfg, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{in: in, out: newFakeEmitter(), m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- in.Run(ctx, h.out) }()
	t.Cleanup(func() { h.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cfg.Listen != "" {
			if a := in.Addr(); a != nil {
				h.network, h.address = "tcp", a.String()
				return h
			}
		} else if c, err := net.Dial("unix", cfg.Socket); err == nil {
			c.Close()
			h.network, h.address = "unix", cfg.Socket
			return h
		}
		if time.Now().After(deadline) {
			t.Fatal("input did not start listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func (h *harness) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial(h.network, h.address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// metricValue reads a counter's or a gauge's value; -1 when it cannot be read.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func (h *harness) errorCount(reason string) float64 {
	return metricValue(h.m.InputErrors.WithLabelValues(h.in.name, reason))
}

func (h *harness) waitErrors(t *testing.T, reason string, n float64) {
	t.Helper()
	h.out.waitFor(t, reason+" errors", func() bool { return h.errorCount(reason) >= n })
}

func socketPath(t *testing.T) string {
	// Unix socket paths are limited to ~108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "fwd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "fwd.sock")
}

func (h *harness) connections() float64 {
	return metricValue(h.m.ForwardConnections.WithLabelValues(h.in.name))
}

func (h *harness) closedCount(reason string) float64 {
	return metricValue(h.m.ForwardClosed.WithLabelValues(h.in.name, reason))
}

// waitClosed waits until at least n connections were closed for reason.
func (h *harness) waitClosed(t *testing.T, reason string, n float64) {
	t.Helper()
	h.out.waitFor(t, reason+" closes", func() bool { return h.closedCount(reason) >= n })
}
