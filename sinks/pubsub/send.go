package pubsub

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailgate-dev/tailgate/collector"
)

// errOversize is a record's permanent error under the dead_letter oversize policy.
var errOversize = errors.New("record does not fit in one Pub/Sub message")

// Send publishes one message per record and waits for every PublishResult. It returns nil
// only when all were acknowledged; see the package comment for the error cases. A batch that
// comes back retryable is resent whole by the pipeline: the records that had already been
// acknowledged are published again, which their stable ids make harmless downstream.
func (s *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	if s.closed.Load() {
		return fmt.Errorf("pubsub sink %q: batch %d: %w", s.name, b.Seq, collector.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	if s.pub == nil {
		return s.sendDirect(ctx, b)
	}
	bm := newBatchMessages(b.Records)
	var (
		data    arena
		skipped []collector.RecordError // records not published, by index
	)
	for i, r := range b.Records {
		m := &bm.msgs[i]
		attrs, attrBytes := attributes(r, bm.id(i))
		if s.keys != nil {
			m.OrderingKey = s.keys.key(r)
		}
		budget := dataBudget(s.opts.MaxMessageBytes, attrBytes, m.OrderingKey)
		d, truncated, ok := data.encode(r, budget)
		if !ok || truncated && s.opts.Oversize == OversizeDeadLetter {
			skipped = append(skipped, collector.RecordError{Index: i, Err: errOversize})
			s.deadLetters.Add(1)
			s.warn.Warn("dead", "records over the Pub/Sub message limit dead-lettered", "batch", b.Seq, "id", bm.id(i))
			continue
		}
		if truncated {
			attrs[attrTruncated] = "true"
			s.truncated.Add(1)
			s.warn.Warn("truncated", "records truncated to the Pub/Sub message limit", "batch", b.Seq, "id", bm.id(i))
		}
		m.Data = d
		m.Attributes = attrs
		bm.results[i] = s.pub.Publish(ctx, m)
	}
	return s.await(ctx, b, bm, skipped)
}

// await collects the batch's results and turns them into Send's answer.
func (s *Sink) await(ctx context.Context, b *collector.SinkBatch, bm *batchMessages, skipped []collector.RecordError) error {
	var (
		failed     []collector.RecordError
		retry      error
		retryCount int
		pausedKeys []string
	)
	for i, res := range bm.results {
		if res == nil {
			failed = append(failed, skipped[0])
			skipped = skipped[1:]
			continue
		}
		select {
		case <-res.Ready():
		case <-ctx.Done():
			// The client still holds the rest and publishes it; the pipeline resends the batch.
			return fmt.Errorf("pubsub sink %q: batch %d: waiting for %d of %d acks: %w",
				s.name, b.Seq, len(bm.results)-i, len(bm.results), ctx.Err())
		}
		_, err := res.Get(ctx)
		if err == nil {
			continue
		}
		if key := bm.msgs[i].OrderingKey; key != "" && !contains(pausedKeys, key) {
			pausedKeys = append(pausedKeys, key)
		}
		if permanent(err) {
			failed = append(failed, collector.RecordError{Index: i, Err: err})
			continue
		}
		if retry == nil {
			retry = err
		}
		retryCount++
	}
	// The client pauses a key after an error so later messages cannot overtake the failed
	// one; the pipeline resends the failed ones, so let the key flow again.
	for _, key := range pausedKeys {
		s.pub.ResumePublish(key)
	}

	return s.outcome(b, retry, retryCount, failed)
}

// outcome is Send's answer for a batch whose messages were not all acknowledged: retry (the
// first retryable error, of retryCount messages) wins; then all refused is a permanent batch
// error, and some refused are RecordErrors (failed sorted by index).
func (s *Sink) outcome(b *collector.SinkBatch, retry error, retryCount int, failed []collector.RecordError) error {
	n := len(b.Records)
	switch {
	case retry != nil:
		return fmt.Errorf("pubsub sink %q: batch %d: %d of %d messages not acknowledged (%d failed permanently): %w",
			s.name, b.Seq, retryCount+len(failed), n, len(failed), retry)
	case len(failed) == n:
		return collector.Permanent(fmt.Errorf("pubsub sink %q: batch %d: all %d messages refused: %w",
			s.name, b.Seq, n, failed[0].Err))
	case len(failed) > 0:
		return &collector.RecordErrors{Failed: failed}
	}
	return nil
}

func contains(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}
