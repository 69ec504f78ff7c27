package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/buffer"
)

// deadLetter keeps the records a sink rejected permanently, in a buffer of their own under
// data_dir/deadletter/<sink>, each frame with the reason, the error and the time. The store has
// one reader, "replay": `tailgate deadletter replay` reads through it and what it delivered is
// deleted once its cursor passes. It is bounded (deadLetterMaxBytes): when full its oldest
// segment is dropped, and every dropped record is counted (tailgate_deadletter_dropped_total)
// and logged.
//
// The agent holds the store open only while it writes (and deadLetterIdle after), so that a
// replay can take its lock; while a replay holds it, a write waits (that sink's batches wait
// with it; nothing is lost, and the batch stays in the main buffer if the agent stops).
type deadLetter struct {
	dir  string
	sink string
	log  *slog.Logger
	warn *WarnLimiter

	records *prometheus.CounterVec // tailgate_deadletter_records_total{sink,reason}, curried
	bytes   prometheus.Gauge
	dropped prometheus.Counter

	maxBytes, segmentBytes int64

	mu          sync.Mutex
	buf         *buffer.Buffer
	lastDropped int64
	idle        *time.Timer
	enc         frameEncoder
}

const (
	// deadLetterMaxBytes bounds a sink's dead-letter store; the oldest records go first.
	deadLetterMaxBytes = 256 << 20
	deadLetterSegment  = 16 << 20
	// deadLetterIdle is how long the agent keeps the store open after its last write.
	deadLetterIdle = 5 * time.Second
	// deadLetterReader is the store's one reader: replay.
	deadLetterReader = "replay"
)

// Dead-letter frame state keys.
const (
	dlReason = "reason"
	dlError  = "error"
	dlTime   = "time"
)

// deadLetterDir is where a sink's dead letters live.
func deadLetterDir(dataDir, sink string) string {
	return filepath.Join(dataDir, "deadletter", sink)
}

func newDeadLetter(dataDir, sink string, log *slog.Logger, m *Metrics) *deadLetter {
	d := &deadLetter{
		dir:     deadLetterDir(dataDir, sink),
		sink:    sink,
		log:     log.With("sink", sink),
		records: m.DeadLetterRecords.MustCurryWith(prometheus.Labels{"sink": sink}),
		bytes:   m.DeadLetterBytes.WithLabelValues(sink),
		dropped: m.DeadLetterDropped.WithLabelValues(sink),

		maxBytes: deadLetterMaxBytes, segmentBytes: deadLetterSegment,
	}
	d.warn = NewWarnLimiter(d.log, time.Minute)
	d.bytes.Set(float64(dirBytes(filepath.Join(d.dir, "segments"))))
	return d
}

// write stores recs as dead letters for err (its ErrorReason is the reason). It returns once
// they are durable, or with an error if they could not be stored: then they are not counted
// and the caller must keep them (the batch stays unacknowledged).
func (d *deadLetter) write(ctx context.Context, recs []*Record, cause error) error {
	reason := ErrorReason(cause)
	state := []StateEntry{
		{Key: dlReason, Value: []byte(reason)},
		{Key: dlError, Value: []byte(cause.Error())},
		{Key: dlTime, Value: strconv.AppendInt(nil, time.Now().UnixNano(), 10)},
	}
	if err := d.writeState(ctx, recs, state); err != nil {
		return err
	}
	d.records.WithLabelValues(reason).Add(float64(len(recs)))
	return nil
}

// writeState appends recs with the given frame state, opening the store if needed.
func (d *deadLetter) writeState(ctx context.Context, recs []*Record, state []StateEntry) error {
	if len(recs) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.openLocked(ctx, true); err != nil {
		return err
	}
	batch := Batch{Records: make([]Record, len(recs)), State: state}
	for i, r := range recs {
		batch.Records[i] = *r
	}
	d.enc.masks = nil
	payload := d.enc.encodeBatch("dead_letter", nil, &batch)
	t, err := d.buf.Append(ctx, payload, len(recs))
	if err == nil {
		err = d.buf.WaitDurable(ctx, t)
	}
	d.updateStatsLocked()
	if err != nil {
		return fmt.Errorf("dead-letter store %s: write %d records: %w", d.dir, len(recs), err)
	}
	return nil
}

// openLocked opens the store unless open. With idleClose the agent's handle is closed after
// deadLetterIdle without writes. A store held by another process (a replay) is waited for.
func (d *deadLetter) openLocked(ctx context.Context, idleClose bool) error {
	if d.buf == nil {
		for {
			b, err := buffer.Open(d.dir, buffer.Options{MaxBytes: d.maxBytes, SegmentBytes: d.segmentBytes,
				Sync: 0, WhenFull: buffer.DropOldest, Logger: d.log})
			if err == nil {
				if _, err = b.Reader(deadLetterReader); err != nil {
					b.Close()
				}
			}
			if err == nil {
				d.buf, d.lastDropped = b, 0
				break
			}
			if !errors.Is(err, buffer.ErrLocked) {
				return fmt.Errorf("open dead-letter store: %w", err)
			}
			d.warn.Warn("dlq-locked", "dead-letter store is in use (a replay?); waiting for it", "dir", d.dir)
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return fmt.Errorf("open dead-letter store %s: %w", d.dir, ctx.Err())
			}
		}
	}
	if idleClose {
		if d.idle == nil {
			d.idle = time.AfterFunc(deadLetterIdle, d.closeIdle)
		} else {
			d.idle.Reset(deadLetterIdle)
		}
	}
	return nil
}

func (d *deadLetter) closeIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.closeLocked(); err != nil {
		d.log.Error("close dead-letter store", "err", err)
	}
}

// updateStatsLocked refreshes the bytes gauge and counts records the store dropped when full.
func (d *deadLetter) updateStatsLocked() {
	if d.buf == nil {
		return
	}
	st := d.buf.Stats()
	d.bytes.Set(float64(st.Bytes))
	for _, r := range st.Readers {
		if r.Name == deadLetterReader && r.DroppedRecords > d.lastDropped {
			n := r.DroppedRecords - d.lastDropped
			d.lastDropped = r.DroppedRecords
			d.dropped.Add(float64(n))
			d.warn.Warn("dlq-dropped", "dead-letter store full: oldest dead letters dropped",
				"records", n, "max_bytes", d.maxBytes, "dir", d.dir)
		}
	}
}

func (d *deadLetter) closeLocked() error {
	if d.idle != nil {
		d.idle.Stop()
	}
	if d.buf == nil {
		return nil
	}
	d.updateStatsLocked()
	err := d.buf.Close()
	d.buf = nil
	if err != nil {
		return fmt.Errorf("close dead-letter store: %w", err)
	}
	return nil
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closeLocked()
}

// dirBytes sums the sizes of the files in dir (0 if it does not exist).
func dirBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
