// Package file is the local sink: one DESIGN.md envelope JSON object per line, to a file or to
// standard output. It is the default sink of the demo and the bench harness.
package file

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// Sink appends envelope lines to a file (or stdout). A batch is acknowledged once its lines are
// written to the file in one write: the data is in the kernel, which survives a process crash;
// the file is fsynced on Close and every SyncEvery, so a machine crash can lose the last
// second of output, which the buffer no longer holds. That is the trade a local debug sink makes.
type Sink struct {
	name string
	w    io.Writer
	f    *os.File // nil for stdout

	mu       sync.Mutex
	buf      []byte
	lastSync time.Time
}

// SyncEvery bounds how long written lines stay unsynced.
const SyncEvery = time.Second

// New opens the sink of cfg (type file or stdout).
func New(cfg collector.SinkConfig) (*Sink, error) {
	s := &Sink{name: cfg.Name}
	switch cfg.Type {
	case "stdout":
		s.w = os.Stdout
		return s, nil
	case "file":
	default:
		return nil, fmt.Errorf("sink %s: type %q is not file or stdout", cfg.Name, cfg.Type)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("sink %s: create directory: %w", cfg.Name, err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sink %s: open %s: %w", cfg.Name, cfg.Path, err)
	}
	s.f, s.w = f, f
	return s, nil
}

func (s *Sink) Name() string { return s.name }

// Limits: one batch in flight keeps lines in buffer order; batches of up to 4 MiB amortize
// the write call.
func (s *Sink) Limits() collector.Limits {
	return collector.Limits{MaxRecords: 8192, MaxBytes: 4 << 20, MaxInFlight: 1, MaxDelay: 100 * time.Millisecond}
}

func (s *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return collector.Permanent(fmt.Errorf("sink %s: %w", s.name, collector.ErrClosed))
	}
	buf := s.buf[:0]
	for _, r := range b.Records {
		buf = r.AppendJSON(buf)
		buf = append(buf, '\n')
	}
	s.buf = buf
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("sink %s: write batch %d: %w", s.name, b.Seq, err)
	}
	if s.f != nil && time.Since(s.lastSync) > SyncEvery {
		s.lastSync = time.Now()
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sink %s: sync: %w", s.name, err)
		}
	}
	if len(s.buf) > 16<<20 {
		s.buf = nil // don't pin the memory of one huge batch
	}
	return nil
}

func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = nil
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	if cErr := s.f.Close(); err == nil {
		err = cErr
	}
	if err != nil {
		return fmt.Errorf("sink %s: close: %w", s.name, err)
	}
	return nil
}
