package pubsub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// The direct path publishes a batch as PublishRequests of its own through the client's
// generated Publisher client (Client.TopicAdminClient, the same connection, credentials and
// codec), instead of handing every message to the client's Publisher. The pipeline has
// already batched, bounded what is in flight and owns the retries; the Publisher would only
// re-bundle the batch message by message, with a result, a size computed by reflection and a
// scheduler entry for each, which cost more than everything else the sink does. Ordering keys
// still go through the Publisher: it serialises each key and pauses it after an error.

// directBatch is the scratch of one direct Send, reused by the next once its requests have
// returned (gRPC has then serialised every message, so nothing refers to it any more).
type directBatch struct {
	msgs  []pb.PubsubMessage
	attrs []map[string]string
	data  arena
	ids   []byte
	// published holds, for each message sent, the index of its record in the batch.
	published []int
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

// sendDirect is Send without ordering keys; see the comment at the top of this file.
func (s *Sink) sendDirect(ctx context.Context, b *collector.SinkBatch) error {
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
	var skipped []collector.RecordError
	for i, r := range b.Records {
		m := d.message(i)
		id := ids[32*i : 32*i+32]
		attrBytes := fillAttributes(m.Attributes, r, id)
		data, truncated, ok := d.data.encode(r, dataBudget(s.opts.MaxMessageBytes, attrBytes, ""))
		if !ok || truncated && s.opts.Oversize == OversizeDeadLetter {
			skipped = append(skipped, collector.RecordError{Index: i, Err: errOversize})
			s.deadLetters.Add(1)
			s.warn.Warn("dead", "records over the Pub/Sub message limit dead-lettered", "batch", b.Seq, "id", id)
			continue
		}
		if truncated {
			m.Attributes[attrTruncated] = "true"
			s.truncated.Add(1)
			s.warn.Warn("truncated", "records truncated to the Pub/Sub message limit", "batch", b.Seq, "id", id)
		}
		m.Data = data
		d.published = append(d.published, i)
	}
	s.splitRequests(d)
	s.publishAll(ctx, d)
	return s.directResult(b, d, skipped)
}

// splitRequests cuts the published messages into requests of at most CountThreshold messages
// and ByteThreshold bytes (a message bigger than that goes alone: it still fits the service's
// request limit, which MaxMessageBytes keeps below).
func (s *Sink) splitRequests(d *directBatch) {
	size, count := 0, 0
	for j, i := range d.published {
		n := messageSize(&d.msgs[i])
		n += protowire.SizeTag(2) + protowire.SizeVarint(uint64(n))
		if count == 0 || count == s.opts.CountThreshold || size+n > s.opts.ByteThreshold {
			d.newRequest(j)
			size, count = 0, 0
		}
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

// publishAll sends the batch's requests, concurrently when there are several, and records
// each one's outcome.
func (s *Sink) publishAll(ctx context.Context, d *directBatch) {
	if len(d.reqs) == 1 {
		d.reqs[0].err = s.publish(ctx, &d.reqs[0].req)
		return
	}
	var wg sync.WaitGroup
	for _, r := range d.reqs {
		wg.Go(func() { r.err = s.publish(ctx, &r.req) })
	}
	wg.Wait()
}

// publish sends one request. The generated client retries transient codes itself within
// PublishTimeout, as the Publisher would; what is left is the pipeline's to retry.
func (s *Sink) publish(ctx context.Context, req *pb.PublishRequest) error {
	opts := []gax.CallOption{gax.WithTimeout(s.opts.PublishTimeout)}
	if s.opts.Compression {
		opts = append(opts, gax.WithGRPCOptions(grpc.UseCompressor(gzip.Name)))
	}
	resp, err := s.client.TopicAdminClient.Publish(ctx, req, opts...)
	if err != nil {
		return err
	}
	if got, want := len(resp.GetMessageIds()), len(req.Messages); got != want {
		return fmt.Errorf("server acknowledged %d of %d messages", got, want)
	}
	return nil
}

// directResult turns the requests' outcomes into Send's answer, as await does for the
// Publisher path: any retryable failure makes the whole batch retryable.
func (s *Sink) directResult(b *collector.SinkBatch, d *directBatch, skipped []collector.RecordError) error {
	failed := skipped
	var retry error
	retryCount := 0
	for _, r := range d.reqs {
		if r.err == nil {
			continue
		}
		if !permanent(r.err) {
			if retry == nil {
				retry = r.err
			}
			retryCount += len(r.req.Messages)
			continue
		}
		for j := range r.req.Messages {
			failed = append(failed, collector.RecordError{Index: d.published[r.first+j], Err: r.err})
		}
	}
	slices.SortFunc(failed, func(a, b collector.RecordError) int { return a.Index - b.Index })
	return s.outcome(b, retry, retryCount, failed)
}

// topicPath is the topic's full resource name; cfg.Topic may be an id or already a path.
func topicPath(project, topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}
