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
// segment is dropped, and every dropped record is counted by the reason it was dead-lettered
// for (tailgate_deadletter_dropped_total{sink,reason}), logged, and added to the store's
// dropped.json, so `buffer inspect` shows what was lost across restarts.
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
	dropped *prometheus.CounterVec // tailgate_deadletter_dropped_total{sink,reason}, curried

	maxBytes, segmentBytes int64

	mu   sync.Mutex
	buf  *buffer.Buffer
	idle *time.Timer
	enc  frameEncoder
	// lost counts, by reason, the records OnDrop saw dropped during the current Append (it
	// runs inside Append, under mu); writeState moves them to the metric and dropped.json.
	lost map[string]int64
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
		dropped: m.DeadLetterDropped.MustCurryWith(prometheus.Labels{"sink": sink}),

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
	if err := d.writeState(ctx, recs, deadLetterState(cause, time.Now())); err != nil {
		return err
	}
	d.records.WithLabelValues(ErrorReason(cause)).Add(float64(len(recs)))
	return nil
}

// deadLetterState is the frame state of records dead-lettered at `at` for cause.
func deadLetterState(cause error, at time.Time) []StateEntry {
	return []StateEntry{
		{Key: dlReason, Value: []byte(ErrorReason(cause))},
		{Key: dlError, Value: []byte(cause.Error())},
		{Key: dlTime, Value: strconv.AppendInt(nil, at.UnixNano(), 10)},
	}
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
				Sync: 0, WhenFull: buffer.DropOldest, Logger: d.log, OnDrop: d.onDrop})
			if err == nil {
				if _, err = b.Reader(deadLetterReader); err != nil {
					b.Close()
				}
			}
			if err == nil {
				d.buf = b
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

// onDrop counts by reason the dead letters the full store is about to delete. It runs inside
// Append, while writeState holds d.mu. A frame that cannot be decoded counts as "unknown".
func (d *deadLetter) onDrop(drop buffer.Drop) {
	if drop.Reader != deadLetterReader {
		return
	}
	if d.lost == nil {
		d.lost = map[string]int64{}
	}
	var dec frameDecoder
	var f decodedFrame
	seen := int64(0)
	err := drop.Each(func(payload []byte, count int) error {
		reason := "unknown"
		if dec.decode(payload, &f) == nil {
			reason = groupOf(f.State).Reason
		}
		d.lost[reason] += int64(count)
		seen += int64(count)
		return nil
	})
	if err != nil || seen < drop.Records {
		d.log.Warn("cannot read the reasons of dropped dead letters", "records", drop.Records-seen, "err", err)
		d.lost["unknown"] += drop.Records - seen
	}
}

// updateStatsLocked refreshes the bytes gauge and accounts for the dead letters the store
// dropped when full: the metric, a rate-limited warning and the store's dropped.json.
func (d *deadLetter) updateStatsLocked() {
	if d.buf == nil {
		return
	}
	d.bytes.Set(float64(d.buf.Stats().Bytes))
	if len(d.lost) == 0 {
		return
	}
	var n int64
	for reason, c := range d.lost {
		d.dropped.WithLabelValues(reason).Add(float64(c))
		n += c
	}
	if err := addDropped(d.dir, d.lost, time.Now()); err != nil {
		d.log.Error("cannot record dropped dead letters in the store", "err", err)
	}
	clear(d.lost)
	d.warn.Warn("dlq-dropped", "dead-letter store full: oldest dead letters dropped",
		"records", n, "max_bytes", d.maxBytes, "dir", d.dir)
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
