package cloudlogging

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tailgate-dev/tailgate/collector"
)

// sendScratch is one Send's reusable memory.
type sendScratch struct {
	enc  entryEncoder
	req  []byte // the request being built
	key  []byte // its destination key
	next []byte // the next record's key
	idx  []int  // the index in the batch of each entry of the request
	rest []int  // indexes of records not sent because the destination failed
}

// Send writes the batch as one WriteLogEntries request per run of records with the same log
// name and resource (one run per batch, when the pipeline cuts batches by key), each within
// the request limits. The request carries the log name, resource and labels once; its entries
// are encoded straight from the records (entry.go) and handed to the client as the request's
// wire bytes, so the protobuf library copies them instead of walking objects.
//
// partial_success is set: the API writes the valid entries of a request and names the others,
// which become RecordErrors (Failed with the API's reason, or Retry when their status is
// retryable). PERMISSION_DENIED, NOT_FOUND and UNAUTHENTICATED keep the whole batch and ask
// the pipeline to retry it after the permission_retry delay.
func (s *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	if s.closed.Load() {
		return collector.ErrClosed
	}
	sc := s.scratch.Get().(*sendScratch)
	defer s.scratch.Put(sc)
	sc.enc.now = s.clock().UnixNano()
	sc.enc.adj = adjustments{}
	sc.rest = sc.rest[:0]
	defer func() { s.metrics.add(&sc.enc.adj) }()

	var errs collector.RecordErrors
	var stop error // a request error that stops the batch
	recs := b.Records
	for i := 0; i < len(recs); {
		r := recs[i]
		kube := kubeOf(r)
		sc.key = s.AppendKey(sc.key[:0], r)
		h := s.headers.get(kube)
		sc.req = appendLogNameField(sc.req[:0], s.project, s.set.logID.appendLogID(sc.next[:0], r))
		sc.req = append(sc.req, h.bytes...)
		sc.idx = sc.idx[:0]
		j := i
		for ; j < len(recs) && len(sc.idx) < s.set.MaxEntriesPerRequest; j++ {
			r := recs[j]
			if j > i {
				if kubeOf(r) != kube {
					break
				}
				sc.next = s.AppendKey(sc.next[:0], r)
				if !bytes.Equal(sc.next, sc.key) {
					break
				}
			}
			mark := len(sc.req)
			var start int
			sc.req, start = beginMessage(sc.req, reqEntries)
			sc.enc.labelRoom = maxLabels - h.labels
			var st entryStatus
			sc.req, st = sc.enc.appendEntry(sc.req, r)
			sc.req = endMessage(sc.req, start)
			size := len(sc.req) - mark
			switch {
			case st == entryFuture:
				sc.req = sc.req[:mark]
				errs.Failed = append(errs.Failed, collector.RecordError{Index: j, Err: collector.WithReason("future_timestamp",
					fmt.Errorf("cloud logging: entry timestamp more than a day ahead (future_timestamp: dead_letter)"))})
				continue
			case size > MaxEntryBytes:
				// The pipeline keeps records within max_entry_bytes; this one got past it.
				sc.req = sc.req[:mark]
				errs.Failed = append(errs.Failed, collector.RecordError{Index: j, Err: collector.WithReason("oversize",
					fmt.Errorf("cloud logging: entry of %d bytes is over the API's %d", size, MaxEntryBytes))})
				continue
			case len(sc.req) > requestTarget && len(sc.idx) > 0:
				sc.req = sc.req[:mark]
			default:
				sc.idx = append(sc.idx, j)
				continue
			}
			break
		}
		if len(sc.idx) > 0 {
			if err := s.write(ctx, sc, &errs); err != nil {
				stop = err
				for k := j; k < len(recs); k++ {
					sc.rest = append(sc.rest, k)
				}
				break
			}
		}
		i = j
	}
	if stop == nil {
		s.metrics.Refused.Set(0)
		if len(errs.Failed) == 0 && len(errs.Retry) == 0 {
			return nil
		}
		return sorted(&errs)
	}
	// The destination failed: records of this request and every later one are retried.
	if len(errs.Failed) == 0 && len(errs.Retry) == 0 && len(sc.rest) == len(recs) {
		return stop
	}
	for _, k := range sc.rest {
		errs.Retry = append(errs.Retry, collector.RecordError{Index: k, Err: stop})
	}
	return sorted(&errs)
}

// sorted orders e's indexes (the API's per-entry errors come in map order).
func sorted(e *collector.RecordErrors) *collector.RecordErrors {
	byIndex := func(a, b collector.RecordError) int { return cmp.Compare(a.Index, b.Index) }
	slices.SortFunc(e.Failed, byIndex)
	slices.SortFunc(e.Retry, byIndex)
	return e
}

// appendLogNameField writes the request's log_name field.
func appendLogNameField(b []byte, project string, logID []byte) []byte {
	b, s := beginMessage(b, reqLogName)
	b = appendLogName(b, project, logID)
	return endMessage(b, s)
}

// write sends the request in sc. Per-entry outcomes go into errs; a returned error is one that
// leaves every entry of the request undelivered and stops the batch (sc.rest gets the
// request's records).
func (s *Sink) write(ctx context.Context, sc *sendScratch, errs *collector.RecordErrors) error {
	req := &loggingpb.WriteLogEntriesRequest{}
	req.ProtoReflect().SetUnknown(protoreflect.RawFields(sc.req))
	_, err := s.client.WriteLogEntries(ctx, req)
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	code := st.Code()
	if ctx.Err() != nil {
		code = codes.Canceled
	}
	s.metrics.requestError(code)

	if pe := partialErrors(st); pe != nil && ctx.Err() == nil {
		if s.partial(sc, pe, errs) {
			return nil
		}
	}
	werr := fmt.Errorf("cloud logging: write %d entries to %s: %w", len(sc.idx), logNameOf(sc.req), err)
	switch {
	case ctx.Err() != nil || retryable(code):
		sc.rest = append(sc.rest, sc.idx...)
		if d := retryInfo(st); d > 0 {
			return collector.RetryAfter(werr, min(d, s.set.PermissionRetry))
		}
		return werr
	case refused(code):
		s.metrics.Refused.Set(1)
		s.warn.Warn("refused:"+code.String(), "cloud logging refuses the sink's writes; records are kept and retried every "+
			s.set.PermissionRetry.String()+" (grant roles/logging.logWriter to the node's service account or Workload Identity, and check the project)",
			"code", code.String(), "error", err)
		sc.rest = append(sc.rest, sc.idx...)
		return collector.RetryAfter(werr, s.set.PermissionRetry)
	}
	// Refused as a whole (no entry written, none named): the request's entries are
	// dead-lettered with the code as reason, to be replayed once the cause is fixed.
	s.warn.Warn("failed:"+code.String(), "cloud logging refused a request; its entries go to the dead-letter store",
		"code", code.String(), "error", err)
	reason := reasonOf(code)
	for _, k := range sc.idx {
		errs.Failed = append(errs.Failed, collector.RecordError{Index: k, Err: collector.WithReason(reason, werr)})
	}
	return nil
}

// partial maps the API's per-entry errors back to batch indexes. It reports false when the
// detail does not match the request (an index out of range), so the request is retried.
func (s *Sink) partial(sc *sendScratch, pe *loggingpb.WriteLogEntriesPartialErrors, errs *collector.RecordErrors) bool {
	for k := range pe.GetLogEntryErrors() {
		if k < 0 || int(k) >= len(sc.idx) {
			return false
		}
	}
	for k, st := range pe.GetLogEntryErrors() {
		code := codes.Code(st.GetCode())
		err := fmt.Errorf("cloud logging: entry %d: %s: %s", k, code, st.GetMessage())
		re := collector.RecordError{Index: sc.idx[k]}
		switch {
		case retryable(code) || refused(code):
			re.Err = err
			errs.Retry = append(errs.Retry, re)
		default:
			re.Err = collector.WithReason(reasonOf(code), err)
			errs.Failed = append(errs.Failed, re)
		}
	}
	return true
}

// retryInfo returns the delay a google.rpc.RetryInfo detail of st asks for (quota errors
// carry one), or 0.
func retryInfo(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// partialErrors returns the WriteLogEntriesPartialErrors detail of st, or nil.
func partialErrors(st *status.Status) *loggingpb.WriteLogEntriesPartialErrors {
	for _, d := range st.Details() {
		if pe, ok := d.(*loggingpb.WriteLogEntriesPartialErrors); ok {
			return pe
		}
	}
	return nil
}

// logNameOf returns the log_name field at the start of a request built by Send.
func logNameOf(req []byte) string {
	if len(req) < 2 || req[0] != reqLogName<<3|2 {
		return "?"
	}
	n, i := int(req[1]), 2
	if n >= 0x80 && len(req) > 2 {
		n, i = n&0x7f|int(req[2])<<7, 3
	}
	if i+n > len(req) {
		return "?"
	}
	return string(req[i : i+n])
}

// retryable reports whether a call that failed with c may succeed as it is later.
func retryable(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal,
		codes.Aborted, codes.Unknown, codes.Canceled:
		return true
	}
	return false
}

// refused reports whether c means the project refuses the sink (IAM, a missing project or
// log bucket, credentials): a person must act, so the batch is kept and retried slowly.
func refused(c codes.Code) bool {
	return c == codes.PermissionDenied || c == codes.NotFound || c == codes.Unauthenticated
}

// reasonOf is the dead-letter reason for a code: its snake_case name, a fixed small set.
func reasonOf(c codes.Code) string {
	switch c {
	case codes.InvalidArgument:
		return "invalid_argument"
	case codes.FailedPrecondition:
		return "failed_precondition"
	case codes.OutOfRange:
		return "out_of_range"
	case codes.AlreadyExists:
		return "already_exists"
	case codes.Unimplemented:
		return "unimplemented"
	case codes.DataLoss:
		return "data_loss"
	}
	return "permanent"
}
