// Package file is the local sink: one DESIGN.md envelope JSON object per line, to a file or to
// standard output. It is the default sink of the demo and the bench harness.
package file

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tailgate-dev/tailgate/collector"
)

// Sink appends envelope lines to a file (or stdout). A batch is acknowledged once its lines
// are durable: written, then covered by an fdatasync. Batches are written in the order the
// pipeline cut them (by Seq), and the batches written while one sync runs share the next one
// (group commit), so with two batches in flight one encodes and writes while the other waits
// for the disk.
//
// A failed sync fails every batch written since the last good one, once: the file is cut back
// to the last synced offset (the kernel may have dropped those pages, and what remains must not
// be appended twice), and the batches are written again, in order, when the pipeline retries
// them.
//
// After each sync the written pages are dropped from the page cache: an agent writes far more
// than it reads back, and letting gigabytes of output pile up in the cache costs several times
// the CPU of the write itself (measured: 2 GiB in 4 MiB writes took 2.4-5.6 CPU s plain, 0.44 s
// with sync + FADV_DONTNEED every 250 ms).
type Sink struct {
	name string
	w    io.Writer
	f    *os.File // nil for stdout, pipes and devices: nothing to sync
	// sync makes f durable up to an offset (syncAndEvict; tests inject failures).
	sync func(f *os.File, upTo int64) error

	mu   sync.Mutex
	turn *sync.Cond // signalled when nextSeq, synced or a failure changes
	buf  []byte
	enc  collector.Encoder

	nextSeq uint64 // the batch whose turn it is to write
	offset  int64  // end of what was written
	synced  int64  // end of what is durable
	syncing bool
	// unsynced lists the batches written after synced, in order; a failed sync fails them all.
	unsynced []writtenBatch
	failed   map[uint64]error // batches a failed sync took back, until their Send sees it
	broken   error            // set when the file could not be cut back: nothing is appended
	closed   bool
}

type writtenBatch struct {
	seq uint64
	end int64
}

// New opens the sink of cfg (type file or stdout).
func New(cfg collector.SinkConfig) (*Sink, error) {
	s := &Sink{name: cfg.Name, sync: syncAndEvict, nextSeq: 1, failed: make(map[uint64]error)}
	s.turn = sync.NewCond(&s.mu)
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
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sink %s: open %s: %w", cfg.Name, cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	s.w = f
	if !st.Mode().IsRegular() {
		return s, nil // a pipe or /dev/null: nothing to trim, sync or evict
	}
	if err := trimTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("sink %s: %s: %w", cfg.Name, cfg.Path, err)
	}
	if s.offset, err = f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	s.synced = s.offset
	s.f = f
	return s, nil
}

// trimTornLine cuts a last line that has no newline: a write cut short by a crash. Its record
// was never acknowledged, so it is sent again whole; the fragment would only be garbage.
func trimTornLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := st.Size()
	buf := make([]byte, 64<<10)
	for off := end; off > 0; {
		n := int64(len(buf))
		if off < n {
			n = off
		}
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return fmt.Errorf("read tail: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := off + int64(i) + 1
			if keep == end {
				return nil
			}
			return f.Truncate(keep)
		}
	}
	if end == 0 {
		return nil
	}
	return f.Truncate(0) // one torn line and nothing else
}

func (s *Sink) Name() string { return s.name }

// Limits: two batches in flight (one writing while the other waits for its sync); batches of
// up to 8 MiB amortize the sync.
func (s *Sink) Limits() collector.Limits {
	return collector.Limits{MaxRecords: 32768, MaxBytes: 8 << 20, MaxInFlight: 2, MaxDelay: 100 * time.Millisecond}
}

// Send writes the batch when its turn comes (by Seq) and returns once it is durable.
func (s *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.turn.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	for !s.closed && b.Seq > s.nextSeq && ctx.Err() == nil {
		s.turn.Wait()
	}
	switch {
	case s.closed:
		return collector.Permanent(fmt.Errorf("sink %s: %w", s.name, collector.ErrClosed))
	case ctx.Err() != nil:
		return fmt.Errorf("sink %s: batch %d: %w", s.name, b.Seq, ctx.Err())
	case s.broken != nil:
		return fmt.Errorf("sink %s: %w", s.name, s.broken)
	}
	if err := s.write(b); err != nil {
		return err
	}
	if b.Seq == s.nextSeq {
		s.nextSeq++
	}
	s.turn.Broadcast()
	if s.f == nil {
		return nil
	}
	end := s.offset
	s.unsynced = append(s.unsynced, writtenBatch{seq: b.Seq, end: end})
	for {
		if err, ok := s.failed[b.Seq]; ok {
			delete(s.failed, b.Seq)
			return fmt.Errorf("sink %s: batch %d: %w", s.name, b.Seq, err)
		}
		if s.synced >= end {
			return nil
		}
		if !s.syncing {
			s.syncOnce()
			continue
		}
		if s.closed || ctx.Err() != nil {
			// The sync under way decides; the pipeline resends the batch if it stays unacked.
			return fmt.Errorf("sink %s: batch %d: not yet durable: %w", s.name, b.Seq, cmp.Or(ctx.Err(), collector.ErrClosed))
		}
		s.turn.Wait()
	}
}

// write encodes and writes b. Caller holds mu. A failed write cuts the file back to where the
// batch started, so its retry does not follow a fragment.
func (s *Sink) write(b *collector.SinkBatch) error {
	// Written in chunks that stay in the CPU cache between being encoded and being copied by
	// the kernel: a whole batch of envelopes (megabytes) would go through memory twice.
	start := s.offset
	buf := s.buf[:0]
	for _, r := range b.Records {
		buf = s.enc.AppendJSON(buf, r)
		buf = append(buf, '\n')
		if len(buf) >= writeChunk {
			if err := s.writeChunk(buf, start, b.Seq); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	s.buf = buf
	if err := s.writeChunk(buf, start, b.Seq); err != nil {
		return err
	}
	if len(s.buf) > 16<<20 {
		s.buf = nil // don't pin the memory of one huge batch
	}
	return nil
}

func (s *Sink) writeChunk(buf []byte, start int64, seq uint64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := s.w.Write(buf)
	s.offset += int64(n)
	if err == nil {
		return nil
	}
	if s.f != nil {
		if terr := s.f.Truncate(start); terr == nil {
			s.offset = start
		}
	}
	return fmt.Errorf("sink %s: write batch %d: %w", s.name, seq, err)
}

// syncOnce runs one sync for everything written so far, without holding mu while the disk
// works; batches written meanwhile wait for the next one. Caller holds mu.
func (s *Sink) syncOnce() {
	s.syncing = true
	upTo := s.offset
	n := len(s.unsynced)
	s.mu.Unlock()
	err := s.sync(s.f, upTo)
	s.mu.Lock()
	s.syncing = false
	defer s.turn.Broadcast()
	if err == nil {
		s.synced = upTo
		s.unsynced = append(s.unsynced[:0], s.unsynced[n:]...)
		return
	}
	// Everything after the last good sync is suspect: take it all back, cut the file there, and
	// let the batches be written again in their order.
	err = fmt.Errorf("sync: %w", err)
	for _, w := range s.unsynced {
		s.failed[w.seq] = err
	}
	if len(s.unsynced) > 0 {
		s.nextSeq = s.unsynced[0].seq
	}
	s.unsynced = s.unsynced[:0]
	if terr := s.f.Truncate(s.synced); terr == nil {
		s.offset = s.synced
	} else {
		// The file cannot even be cut: its tail is unknown. Nothing more can be appended
		// safely; Close and restart (trimTornLine) is the way out.
		s.broken = fmt.Errorf("cut back to %d after a failed sync: %w (restart the agent)", s.synced, terr)
	}
}

// writeChunk is how much encoded output Send gathers before writing it.
const writeChunk = 128 << 10

// syncAndEvict makes f durable and drops its first upTo bytes from the page cache.
func syncAndEvict(f *os.File, upTo int64) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	// Advice only: an error changes nothing about what was written.
	_ = unix.Fadvise(int(f.Fd()), 0, upTo, unix.FADV_DONTNEED)
	return nil
}

func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.w
	if w == nil {
		return nil // already closed
	}
	for s.syncing {
		s.turn.Wait()
	}
	s.closed = true
	s.turn.Broadcast()
	s.w = nil
	if s.f == nil {
		if c, ok := w.(io.Closer); ok && w != io.Writer(os.Stdout) {
			return c.Close()
		}
		return nil
	}
	err := s.sync(s.f, s.offset)
	if cErr := s.f.Close(); err == nil {
		err = cErr
	}
	if err != nil {
		return fmt.Errorf("sink %s: close: %w", s.name, err)
	}
	return nil
}
