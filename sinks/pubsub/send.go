package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// Send publishes a batch as PublishRequests of its own through the client's generated
// Publisher client (Client.TopicAdminClient: the same connection, credentials and codec),
// instead of handing every message to the client's Publisher. The pipeline has already
// batched, bounded what is in flight, cut batches per ordering key and owns the retries; the
// Publisher would only re-bundle the batch message by message, with a result, a size computed
// by reflection and a scheduler entry for each, which cost more than everything else the sink
// does.
//
// Ordering keys keep Pub/Sub's guarantee as the Publisher keeps it: the pipeline hands Send
// the records of one key (b.Key) and keeps one batch of a key in flight (OrderedKeys), and
// Send publishes a key's requests one after another, sending none after one that failed and
// may be retried, so no message overtakes an earlier one of its key. The client's Publisher
// does the same (one bundle in flight per key, the key paused after an error).
//
// Send returns nil when every message was acknowledged; else a plain (retryable) error when
// none was and all may be retried, a collector.Permanent error when all were refused for one
// reason, and a *collector.RecordErrors otherwise: Failed for the messages the service
// refused for good, Retry for those not acknowledged (a failed request, or one not sent after
// it on an ordering key). It never keeps the batch's records after it returns.
func (s *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	if s.closed.Load() {
		return fmt.Errorf("pubsub sink %q: batch %d: %w", s.name, b.Seq, collector.ErrClosed)
	}
	if len(b.Records) == 0 {
		return nil
	}
	d, _ := s.scratch.Get().(*directBatch)
	if d == nil {
		d = &directBatch{}
	}
	defer s.scratch.Put(d)
	d.reset(len(b.Records))

	for _, r := range b.Records {
		d.ids = r.ID.AppendHex(d.ids)
	}
	ids := string(d.ids)
	for i, r := range b.Records {
		s.fillMessage(d.message(i), r, ids[32*i:32*i+32], b.Key, &d.data)
	}
	s.splitRequests(d)
	ordered := s.keys != nil && b.Key != ""
	s.publishAll(ctx, d, ordered)
	return s.result(b, d)
}

// directBatch is the scratch of one Send, reused by the next once its requests have returned
// (gRPC has then serialised every message, so nothing refers to it any more).
type directBatch struct {
	msgs  []pb.PubsubMessage
	attrs []map[string]string
	data  arena
	ids   []byte
	// published holds, for each message sent, the index of its record in the batch;
	// oversize, the indexes of messages over max_message_bytes, which are not sent.
	published []int
	oversize  []int
	reqs      []*publishRequest
}

// publishRequest is one request of a batch: a slice of the batch's messages.
type publishRequest struct {
	req   pb.PublishRequest
	first int // index into directBatch.published of its first message
	err   error
}

func (d *directBatch) reset(n int) {
	if cap(d.msgs) < n {
		d.msgs = make([]pb.PubsubMessage, n)
		d.attrs = append(d.attrs, make([]map[string]string, n-len(d.attrs))...)
	}
	d.msgs = d.msgs[:n]
	d.data.reset()
	d.ids = d.ids[:0]
	d.published = d.published[:0]
	d.oversize = d.oversize[:0]
	d.reqs = d.reqs[:0]
}

// newRequest starts a request at published message first, reusing an earlier batch's.
func (d *directBatch) newRequest(first int) {
	if len(d.reqs) == cap(d.reqs) {
		d.reqs = append(d.reqs, &publishRequest{})
	} else {
		d.reqs = d.reqs[:len(d.reqs)+1]
		if d.reqs[len(d.reqs)-1] == nil {
			d.reqs[len(d.reqs)-1] = &publishRequest{}
		}
	}
	d.reqs[len(d.reqs)-1].first = first
}

// message returns message i, emptied, with an empty attribute map of its own.
func (d *directBatch) message(i int) *pb.PubsubMessage {
	m := &d.msgs[i]
	m.Data, m.OrderingKey = nil, ""
	if d.attrs[i] == nil {
		d.attrs[i] = make(map[string]string, 8)
	}
	clear(d.attrs[i])
	m.Attributes = d.attrs[i]
	return m
}

// splitRequests cuts the batch's messages into requests of at most CountThreshold messages
// and ByteThreshold bytes, in order (a message bigger than that goes alone: it still fits the
// service's request limit, which MaxMessageBytes keeps below). A message over
// MaxMessageBytes, which the pipeline's limit should have stopped, is set aside.
func (s *Sink) splitRequests(d *directBatch) {
	size, count := 0, 0
	for i := range d.msgs {
		n := messageSize(&d.msgs[i])
		if n > s.opts.MaxMessageBytes {
			d.oversize = append(d.oversize, i)
			continue
		}
		n += protowire.SizeTag(2) + protowire.SizeVarint(uint64(n))
		if count == 0 || count == s.opts.CountThreshold || size+n > s.opts.ByteThreshold {
			d.newRequest(len(d.published))
			size, count = 0, 0
		}
		d.published = append(d.published, i)
		size += n
		count++
	}
	for k, r := range d.reqs {
		end := len(d.published)
		if k+1 < len(d.reqs) {
			end = d.reqs[k+1].first
		}
		r.req.Topic = s.topic
		r.req.Messages = r.req.Messages[:0]
		for _, i := range d.published[r.first:end] {
			r.req.Messages = append(r.req.Messages, &d.msgs[i])
		}
		r.err = nil
	}
}

// publishAll sends the batch's requests and records each one's outcome: concurrently, or for
// an ordering key one after another, stopping at the first that failed and may be retried
// (the rest are marked not sent). After a request the service refused for good the next ones
// go on: its messages are dead-lettered, as the Publisher's caller would after ResumePublish.
func (s *Sink) publishAll(ctx context.Context, d *directBatch, ordered bool) {
	switch {
	case len(d.reqs) == 1:
		d.reqs[0].err = s.publish(ctx, &d.reqs[0].req)
	case ordered:
		for k, r := range d.reqs {
			r.err = s.publish(ctx, &r.req)
			if r.err != nil && !permanent(r.err) {
				for _, rest := range d.reqs[k+1:] {
					rest.err = &notSentError{key: r.req.Messages[0].OrderingKey, cause: r.err}
				}
				return
			}
		}
	default:
		var wg sync.WaitGroup
		for _, r := range d.reqs {
			wg.Go(func() { r.err = s.publish(ctx, &r.req) })
		}
		wg.Wait()
	}
}

// notSentError is the error of a request held back after an earlier one of its ordering key
// failed.
type notSentError struct {
	key   string
	cause error
}

func (e *notSentError) Error() string {
	return fmt.Sprintf("not sent: an earlier request of ordering key %q failed: %v", e.key, e.cause)
}

// publish sends one request. The generated client retries transient codes itself within
// PublishTimeout, as the Publisher would; what is left is the pipeline's to retry. (The
// timeout is set on ctx: gax ignores its own when ctx already has a deadline.) When the
// timeout ends the client's retries, the error says what the last attempt failed with, and
// carries its RetryInfo for the pipeline.
func (s *Sink) publish(ctx context.Context, req *pb.PublishRequest) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
	defer cancel()
	r := &publishRetryer{next: s.retryer()}
	opts := []gax.CallOption{gax.WithRetry(func() gax.Retryer { return r })}
	if s.opts.Compression {
		opts = append(opts, gax.WithGRPCOptions(grpc.UseCompressor(gzip.Name)))
	}
	resp, err := s.client.TopicAdminClient.Publish(ctx, req, opts...)
	if err != nil {
		if r.last != nil && ctx.Err() != nil && !errors.Is(err, r.last) {
			err = &retriedError{err: err, last: r.last}
		}
		return err
	}
	if got, want := len(resp.GetMessageIds()), len(req.Messages); got != want {
		return fmt.Errorf("server acknowledged %d of %d messages", got, want)
	}
	return nil
}

// retryer returns the client's own retry policy for Publish (codes and backoff).
func (s *Sink) retryer() gax.Retryer {
	var cs gax.CallSettings
	for _, o := range s.client.TopicAdminClient.CallOptions.Publish {
		o.Resolve(&cs)
	}
	if cs.Retry == nil {
		return nil
	}
	return cs.Retry()
}

// publishRetryer is the client's retry policy, remembering the last error it saw, not
// retrying what cannot succeed (a string field gRPC refuses to marshal, as the client's
// Publisher does), and waiting at least as long as a RetryInfo detail asks.
type publishRetryer struct {
	next gax.Retryer // nil: no retries
	last error
}

func (r *publishRetryer) Retry(err error) (time.Duration, bool) {
	r.last = err
	if r.next == nil || permanent(err) {
		return 0, false
	}
	d, ok := r.next.Retry(err)
	return max(d, serverRetryDelay(err)), ok
}

// retriedError is a publish that ran out of time while the client was retrying: err (the
// deadline) with the error of the last attempt, which names the cause and carries its
// RetryInfo.
type retriedError struct {
	err, last error
}

func (e *retriedError) Error() string {
	return fmt.Sprintf("%v (retrying after: %v)", e.err, e.last)
}

func (e *retriedError) Unwrap() []error { return []error{e.err, e.last} }

// result turns the requests' outcomes into Send's answer (see Send). Record errors are listed
// in batch order, so the pipeline resends what it retries in the order it was read.
func (s *Sink) result(b *collector.SinkBatch, d *directBatch) error {
	var failed, retry []collector.RecordError
	for _, i := range d.oversize {
		n := messageSize(&d.msgs[i])
		err := collector.WithReason(reasonOversize, fmt.Errorf(
			"pubsub sink %q: batch %d: message of %d bytes over max_message_bytes %d; not sent",
			s.name, b.Seq, n, s.opts.MaxMessageBytes))
		s.warn.Warn("oversize", "message over max_message_bytes reached Send; dead-lettered", "batch", b.Seq, "bytes", n)
		failed = append(failed, collector.RecordError{Index: i, Err: err})
	}
	for k, r := range d.reqs {
		if r.err == nil {
			continue
		}
		err := fmt.Errorf("pubsub sink %q: batch %d: publish request %d of %d (%d messages): %w",
			s.name, b.Seq, k+1, len(d.reqs), len(r.req.Messages), r.err)
		perm, reason := classify(r.err)
		switch {
		case perm:
			err = collector.WithReason(reason, err)
		case serverRetryDelay(r.err) > 0:
			err = collector.RetryAfter(err, serverRetryDelay(r.err))
		}
		for j := range r.req.Messages {
			e := collector.RecordError{Index: d.published[r.first+j], Err: err}
			if perm {
				failed = append(failed, e)
			} else {
				retry = append(retry, e)
			}
		}
	}
	n := len(b.Records)
	switch {
	case len(failed) == 0 && len(retry) == 0:
		return nil
	case len(retry) == n:
		return retry[0].Err
	case len(failed) == n && oneReason(failed):
		return collector.Permanent(failed[0].Err)
	}
	if len(d.oversize) > 0 {
		slices.SortFunc(failed, func(a, b collector.RecordError) int { return a.Index - b.Index })
	}
	return &collector.RecordErrors{Failed: failed, Retry: retry}
}

func oneReason(errs []collector.RecordError) bool {
	reason := collector.ErrorReason(errs[0].Err)
	for _, e := range errs[1:] {
		if collector.ErrorReason(e.Err) != reason {
			return false
		}
	}
	return true
}

// topicPath is the topic's full resource name; cfg.Topic may be an id or already a path.
func topicPath(project, topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}
