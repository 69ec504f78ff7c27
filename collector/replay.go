package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailgate-dev/tailgate/buffer"
)

// DeadLetterFilter chooses dead letters for a listing or a replay.
type DeadLetterFilter struct {
	Since  time.Time // dead-lettered at or after Since; zero takes all
	Reason string    // only this reason; "" takes all
}

func (f DeadLetterFilter) match(d DeadLetterGroup) bool {
	return (f.Reason == "" || d.Reason == f.Reason) && (f.Since.IsZero() || !d.Time.Before(f.Since))
}

// DeadLetterGroup is one write to a dead-letter store: records rejected together, for one reason.
type DeadLetterGroup struct {
	Time    time.Time
	Reason  string
	Error   string
	Records []Record // borrowed: valid during the callback only
}

func groupOf(state []stateItem) DeadLetterGroup {
	var g DeadLetterGroup
	for _, s := range state {
		switch s.Key {
		case dlReason:
			g.Reason = string(s.Value)
		case dlError:
			g.Error = string(s.Value)
		case dlTime:
			if ns, err := strconv.ParseInt(string(s.Value), 10, 64); err == nil {
				g.Time = time.Unix(0, ns)
			}
		}
	}
	return g
}

// DeadLetterSinks lists the sinks that have a dead-letter store under dataDir.
func DeadLetterSinks(dataDir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, "deadletter"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// ListDeadLetters calls fn for every group of sink's dead letters that filter takes, oldest
// first, without changing the store. It waits (until ctx ends) while an agent is writing to
// the store.
func ListDeadLetters(ctx context.Context, dataDir, sink string, filter DeadLetterFilter, fn func(DeadLetterGroup) error) error {
	dir := deadLetterDir(dataDir, sink)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("sink %s has no dead letters under %s: %w", sink, dataDir, err)
	}
	d := newDeadLetter(dataDir, sink, slog.New(slog.DiscardHandler), NewMetrics(nil))
	if err := d.open(ctx); err != nil {
		return err
	}
	defer d.close()
	rd, err := d.buf.Reader(deadLetterReader)
	if err != nil {
		return err
	}
	stop := d.buf.Stats().Durable
	if pos, _ := readerAt(d.buf, deadLetterReader); !pos.Less(stop) {
		return nil
	}
	var dec frameDecoder
	var f decodedFrame
	for {
		fr, err := nextBefore(ctx, rd, stop)
		if err != nil || fr == nil {
			return err
		}
		if err := dec.decode(fr.Data, &f); err != nil {
			return fmt.Errorf("dead-letter frame at %v: %w", fr.Pos, err)
		}
		g := groupOf(f.State)
		if filter.match(g) {
			g.Records = f.Records
			if err := fn(g); err != nil {
				return err
			}
		}
		if !fr.End.Less(stop) {
			return nil
		}
	}
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	Matched   int64 // records the filter took
	Delivered int64
	Failed    int64 // failed permanently again: stored again with the new error
	Kept      int64 // not taken by the filter: stored again as they were
	Pending   int64 // neither delivered nor failed when the replay stopped: still stored
}

// ReplayDeadLetters sends sink's dead letters that filter takes through sink again, with the
// pipeline's batching, size limits and retries. Delivered records leave the store (the
// store's replay cursor passes them); records that fail permanently again, and records the
// filter does not take, are stored again at the end; what is still pending when ctx ends
// stays where it was. progress, if set, is called about once a second. The store is held for
// the whole replay: an agent that dead-letters meanwhile waits for it.
func ReplayDeadLetters(ctx context.Context, dataDir string, sink Sink, filter DeadLetterFilter, log *slog.Logger, progress func(ReplayStats)) (ReplayStats, error) {
	var st ReplayStats
	dir := deadLetterDir(dataDir, sink.Name())
	if _, err := os.Stat(dir); err != nil {
		return st, fmt.Errorf("sink %s has no dead letters under %s: %w", sink.Name(), dataDir, err)
	}
	m := NewMetrics(nil)
	d := newDeadLetter(dataDir, sink.Name(), log, m)
	if err := d.open(ctx); err != nil {
		return st, err
	}
	defer d.close()
	rd, err := d.buf.Reader(deadLetterReader)
	if err != nil {
		return st, err
	}
	stop := d.buf.Stats().Durable
	r := newRunner(sink, rd, m, log, d)
	r.dec = frameDecoder{} // dead-letter frames are not routed: take every record
	r.readPos, _ = readerAt(d.buf, deadLetterReader)
	var keepErr error
	r.take = func(state []stateItem, recs []Record) bool {
		g := groupOf(state)
		if filter.match(g) {
			st.Matched += int64(len(recs))
			return true
		}
		st.Kept += int64(len(recs))
		ptrs := make([]*Record, len(recs))
		for i := range recs {
			ptrs[i] = &recs[i]
		}
		entries := make([]StateEntry, len(state))
		for i, s := range state {
			entries[i] = StateEntry{Key: s.Key, Value: s.Value}
		}
		if err := d.writeState(ctx, ptrs, entries); err != nil && keepErr == nil {
			keepErr = err
		}
		return false
	}
	snapshot := func() ReplayStats {
		s := st
		s.Delivered = int64(counterValue(r.sent))
		s.Failed = int64(counterValue(r.dead))
		s.Pending = max(0, s.Matched-s.Delivered-s.Failed)
		return s
	}
	done := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					progress(snapshot())
				case <-done:
					return
				}
			}
		}()
	}
	drain := make(chan struct{})
	close(drain)
	r.runUntil(ctx, drain, &stop)
	close(done)
	if keepErr != nil {
		return snapshot(), fmt.Errorf("store back dead letters the filter left: %w", keepErr)
	}
	return snapshot(), ctx.Err()
}

// open opens the store for a listing or a replay, waiting while an agent holds it.
func (d *deadLetter) open(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.openLocked(ctx, false)
}

// readerAt returns the acknowledged position of the named reader.
func readerAt(b *buffer.Buffer, name string) (buffer.Position, bool) {
	for _, r := range b.Stats().Readers {
		if r.Name == name {
			return r.Acked, true
		}
	}
	return buffer.Position{}, false
}

// nextBefore returns the reader's next frame, or nil once there is none before stop.
func nextBefore(ctx context.Context, rd *buffer.Reader, stop buffer.Position) (*buffer.Frame, error) {
	// Every frame before stop is durable already: a short wait only covers reading it.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	f, err := rd.Next(cctx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		return nil, err
	}
	if !f.Pos.Less(stop) {
		return nil, nil
	}
	return &f, nil
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
