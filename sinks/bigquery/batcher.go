package bigquery

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/pubsub/v2"
)

// batch is one AppendRows call: the messages and their encoded rows, kept in one buffer
// that is reused once the call is answered.
type batch struct {
	msgs []*pubsub.Message
	ends []int // row i is buf[ends[i-1]:ends[i]]
	buf  []byte
	rows [][]byte
}

func (b *batch) reset() {
	clear(b.msgs)
	b.msgs, b.ends, b.buf, b.rows = b.msgs[:0], b.ends[:0], b.buf[:0], b.rows[:0]
}

func (b *batch) row(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

// batcher owns the batch being filled; one goroutine runs it.
type batcher struct {
	l   *Loader
	ms  *managedwriter.ManagedStream
	bg  context.Context // outlives Run's ctx: appends are finished, not abandoned
	enc *rowEncoder
	cur *batch
}

func (b *batcher) run(ctx context.Context, items <-chan *pubsub.Message, recvDone <-chan struct{}) {
	l := b.l
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case m := <-items:
			b.add(m)
			if b.cur != nil && len(b.cur.msgs) == 1 {
				timer.Reset(l.o.BatchDelay)
			}
		case <-timer.C:
			b.flush()
		case <-ctx.Done():
			timer.Stop()
			// Not sent yet: hand back to Pub/Sub. Then nack what the callbacks still
			// deliver until Receive has returned.
			if b.cur != nil {
				for _, m := range b.cur.msgs {
					l.nack(m, 1)
				}
				b.cur = nil
			}
			for {
				select {
				case m := <-items:
					l.nack(m, 1)
				case <-recvDone:
					drain(items, func(m *pubsub.Message) { l.nack(m, 1) })
					return
				}
			}
		case <-recvDone: // Receive failed on its own: send what was handed over
			drain(items, b.add)
			b.flush()
			return
		}
	}
}

// drain calls fn for each message left in items, without waiting for more.
func drain(items <-chan *pubsub.Message, fn func(*pubsub.Message)) {
	for {
		select {
		case m := <-items:
			fn(m)
		default:
			return
		}
	}
}

// add encodes m into the current batch, flushing first when m's row would overflow it.
// A message that can never be a row goes to the dead-letter topic.
func (b *batcher) add(m *pubsub.Message) {
	l := b.l
	if b.cur == nil {
		b.cur = b.newBatch()
	}
	cur := b.cur
	start := len(cur.buf)
	buf, err := b.enc.appendRow(cur.buf, m.Data)
	if err != nil {
		l.deadLetter(b.bg, m, err.Error())
		return
	}
	size := len(buf) - start
	if size > l.o.MaxBatchBytes {
		cur.buf = buf[:start]
		l.deadLetter(b.bg, m, fmt.Sprintf("row of %d bytes is over the AppendRows batch limit of %d", size, l.o.MaxBatchBytes))
		return
	}
	if len(cur.msgs) > 0 && len(buf) > l.o.MaxBatchBytes {
		// Move the row to a fresh batch and send the full one.
		next := b.newBatch()
		next.buf = append(next.buf, buf[start:]...)
		cur.buf = buf[:start]
		b.flush()
		b.cur, cur, buf = next, next, next.buf
	}
	cur.buf = buf
	cur.ends = append(cur.ends, len(buf))
	cur.msgs = append(cur.msgs, m)
	if len(cur.msgs) >= l.o.MaxBatchRows {
		b.flush()
	}
}

func (b *batcher) newBatch() *batch {
	if v, ok := b.l.pool.Get().(*batch); ok {
		return v
	}
	return &batch{}
}

// flush sends the current batch, waiting for a free in-flight slot first (this is where
// the loader pushes back on Pub/Sub when BigQuery is slow).
func (b *batcher) flush() {
	cur := b.cur
	b.cur = nil
	if cur == nil || len(cur.msgs) == 0 {
		if cur != nil {
			b.l.pool.Put(cur)
		}
		return
	}
	for i := range cur.ends {
		cur.rows = append(cur.rows, cur.row(i))
	}
	l := b.l
	l.sem <- struct{}{}
	l.m.inFlight.Inc()
	l.wg.Add(1)
	go func() {
		defer func() {
			l.m.inFlight.Dec()
			<-l.sem
			cur.reset()
			l.pool.Put(cur)
			l.wg.Done()
		}()
		b.send(cur)
	}()
}

// send appends the batch and settles every message in it: ack after success, dead-letter
// for rows BigQuery rejected (the others are appended again once), nack otherwise.
func (b *batcher) send(cur *batch) {
	l := b.l
	resp, err := b.appendRows(cur.rows)
	if err == nil {
		for _, m := range cur.msgs {
			l.ack(m)
		}
		l.m.rows.WithLabelValues(resultAppended).Add(float64(len(cur.msgs)))
		return
	}
	rowErrs := resp.GetRowErrors()
	if len(rowErrs) == 0 {
		l.warn.Warn("nack", "appends failed; messages nacked for redelivery", "error", err.Error(), "rows", len(cur.msgs))
		for _, m := range cur.msgs {
			l.nack(m, 1)
		}
		return
	}
	// The request failed as a whole because of some rows: those go to the dead-letter
	// topic with BigQuery's reason, the rest are sent again.
	bad := make(map[int]string, len(rowErrs))
	for _, re := range rowErrs {
		if i := int(re.GetIndex()); i >= 0 && i < len(cur.msgs) {
			bad[i] = fmt.Sprintf("row rejected by BigQuery (%s): %s", re.GetCode(), re.GetMessage())
		}
	}
	var good []*pubsub.Message
	var rows [][]byte
	for i, m := range cur.msgs {
		if reason, ok := bad[i]; ok {
			l.deadLetter(b.bg, m, reason)
			continue
		}
		good = append(good, m)
		rows = append(rows, cur.rows[i])
	}
	if len(good) == 0 {
		return
	}
	if _, err := b.appendRows(rows); err != nil {
		l.warn.Warn("nack", "appends failed; messages nacked for redelivery", "error", err.Error(), "rows", len(good))
		for _, m := range good {
			l.nack(m, 1)
		}
		return
	}
	for _, m := range good {
		l.ack(m)
	}
	l.m.rows.WithLabelValues(resultAppended).Add(float64(len(good)))
}

// appendRows makes one AppendRows call and waits for its answer (the client retries
// retryable stream errors itself). The response comes back with the error when BigQuery
// reported row errors.
func (b *batcher) appendRows(rows [][]byte) (*storagepb.AppendRowsResponse, error) {
	start := time.Now()
	res, err := b.ms.AppendRows(b.bg, rows)
	if err != nil {
		return nil, fmt.Errorf("append %d rows: %w", len(rows), err)
	}
	resp, err := res.FullResponse(b.bg)
	b.l.m.appendDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return resp, fmt.Errorf("append %d rows: %w", len(rows), err)
	}
	return resp, nil
}
