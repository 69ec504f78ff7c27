package collector

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sink is a destination. The pipeline owns the interface: it reads the buffer for each sink,
// cuts batches within the sink's Limits (one destination key per batch when the sink is a
// Keyer), keeps up to MaxInFlight batches outstanding, enforces MaxRecordBytes, retries
// retryable errors with backoff, dead-letters permanent ones, and moves the sink's cursor over
// the contiguous prefix of acknowledged batches.
//
// Order: records of a batch come in buffer order, which keeps each source's read order (a
// file's lines, a forward connection's records); records of different sources interleave.
// Send may deliver them in any order the destination needs (CloudWatch wants time order
// within a request), but it must not reorder or modify b.Records itself: every index it
// reports in RecordErrors is a position in b.Records as handed to that call.
type Sink interface {
	Name() string
	Limits() Limits
	// Send delivers the batch and returns nil only when the destination has acknowledged every
	// record in it. Any other error is retryable (the whole batch is sent again after a
	// backoff) unless wrapped by Permanent (the whole batch is dead-lettered), or a
	// *RecordErrors, which says what happened to each record that was not delivered.
	// Send may be called concurrently (up to MaxInFlight) and must not keep the batch or its
	// records after it returns.
	Send(ctx context.Context, b *SinkBatch) error
	// Close flushes and releases the client. Send is not called after Close.
	Close(ctx context.Context) error
}

// Keyer is implemented by sinks whose requests each go to one destination: a CloudWatch log
// stream, a Cloud Logging log name and resource, a Pub/Sub ordering key. The pipeline groups
// records by key and hands Send batches of one key only, so MaxRecords, MaxBytes and
// MaxInFlight count requests, not fragments of a mixed batch.
type Keyer interface {
	// AppendKey appends the destination key of r to dst. It is called on the sink's reader
	// goroutine for every record routed to the sink, so it must be cheap and must depend only
	// on the record (its source's metadata, stream, tag, time) and the sink's config.
	AppendKey(dst []byte, r *Record) []byte
}

// Limits size the batches the pipeline hands a sink.
type Limits struct {
	MaxRecords  int           // records per batch (Pub/Sub: 1000; CloudWatch: 10000)
	MaxBytes    int           // batch cost per RecordCost (Pub/Sub: 10 MB; CloudWatch: 1 MiB)
	MaxInFlight int           // batches outstanding at once, all keys together
	MaxDelay    time.Duration // how long a partial batch (of one key) may wait for more records
	// RecordCost is one record's cost against MaxBytes; nil means EnvelopeCost.
	RecordCost func(*Record) int
	// MaxOpenKeys bounds the keys with a partial batch open at once (Keyer sinks); when a new
	// key would pass it, the oldest open batch is sent as it is. 0 means a default of 256.
	MaxOpenKeys int
	// MaxOpenBytes bounds the cost (RecordCost) of all partial batches open at once. A batch
	// with a non-empty key holds copies of its records (so the frames they were read from are
	// freed at once, however many keys take a few records of each); other batches point into
	// their frames. Either way it is what bounds memory with many keys. When it is passed, the
	// oldest open batch is sent as it is. 0 means max(8 MiB, 2 x MaxBytes).
	MaxOpenBytes int
	// OrderedKeys keeps at most one batch of a key in flight, and sends a key's batches in the
	// order they were cut (a CloudWatch stream's requests in order); different keys still go
	// in parallel, up to MaxInFlight. Without it, batches take their in-flight slots in Seq
	// order: Send calls may still begin in any order, but the batch with the lowest unfinished
	// Seq always holds a slot, so a sink may make later batches wait for it (the file sink
	// writes in Seq order).
	OrderedKeys bool

	// MaxRecordBytes is the largest record the destination takes, measured by RecordBytes.
	// The pipeline enforces it before batching, by Oversize, so Send never sees a record
	// over it. 0 means no limit.
	MaxRecordBytes int
	// RecordBytes measures a record as the destination counts it. It runs for every record
	// when MaxRecordBytes is set, so it must be cheap; an upper bound is fine (the pipeline only
	// cuts what it reports over the limit, and cuts until it reports within). nil means
	// len(Message) + len(Fields).
	RecordBytes func(*Record) int
	// Oversize is what happens to a record over MaxRecordBytes.
	Oversize Oversize
}

// Oversize is the policy for a record bigger than the destination takes.
type Oversize uint8

const (
	// OversizeSplit cuts the message into ordered parts, each within the limit, at UTF-8
	// boundaries. Part 0 keeps the record's ID; part i gets ID.Part(i). Parts lose Fields (a
	// JSON object cannot be cut) and carry FlagPart.
	OversizeSplit Oversize = iota
	// OversizeTruncate keeps the head of the message that fits, with FlagTruncated.
	OversizeTruncate
	// OversizeDeadLetter sends the record to the dead-letter store, reason "oversize".
	OversizeDeadLetter
)

// ParseOversize reads the config spelling of an Oversize policy.
func ParseOversize(s string) (Oversize, error) {
	switch s {
	case "", "split":
		return OversizeSplit, nil
	case "truncate":
		return OversizeTruncate, nil
	case "dead_letter":
		return OversizeDeadLetter, nil
	}
	return 0, fmt.Errorf("oversize %q is not one of split, truncate, dead_letter", s)
}

func (o Oversize) String() string {
	switch o {
	case OversizeSplit:
		return "split"
	case OversizeTruncate:
		return "truncate"
	case OversizeDeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("oversize(%d)", uint8(o))
}

// EnvelopeCost estimates the JSON envelope size of r.
func EnvelopeCost(r *Record) int {
	return len(r.Message) + len(r.Fields) + len(r.Tag) + 320
}

// SinkBatch is a batch handed to one sink. Records are borrowed for the duration of Send.
type SinkBatch struct {
	Records []*Record
	// Key is the destination key every record of the batch has (Keyer sinks), else "".
	Key string
	// Seq numbers batches per sink, for logs and fakes. A retry of part of a batch keeps it.
	Seq uint64
}

// permanentError marks an error that retrying cannot fix (bad request, permission, not found).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: the batch goes to the dead-letter store.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or what it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError asks for a longer wait than the pipeline's backoff.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retryable no sooner than after: a throttle that names its delay, or
// an error a person must fix (a permission, a missing topic), retried slowly so the fix is
// picked up without a restart and the destination is not hammered meanwhile.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: after}
}

// RetryDelay returns the wait err asked for with RetryAfter, or 0: what the pipeline waits
// at least before retrying (and what a sink's tests assert).
func RetryDelay(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}

// reasonError names why records were dead-lettered, for metrics and `deadletter list`.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// WithReason attaches a short, bounded reason ("too_old", "invalid_argument", "oversize",
// "permission_denied") to a permanent error; it becomes the reason label of the dead-letter
// metrics and is stored with the records. Sinks must use a small fixed set of reasons.
func WithReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &reasonError{reason: reason, err: err}
}

// ErrorReason returns the reason attached by WithReason, or "permanent".
func ErrorReason(err error) string {
	var re *reasonError
	if errors.As(err, &re) && re.reason != "" {
		return re.reason
	}
	return "permanent"
}

// RecordErrors reports what happened to a batch that was only partly delivered: the records
// at the indexes in Failed failed permanently (dead-lettered), the ones in Retry were not
// delivered but may be (throttled or failed sub-requests: the pipeline sends just those again
// after a backoff, at least the longest RetryAfter among their errors), and every other record
// of the batch was delivered. An index is a position
// in the SinkBatch.Records handed to that Send call.
type RecordErrors struct {
	Failed []RecordError
	Retry  []RecordError
}

// RecordError is one record's failure.
type RecordError struct {
	Index int
	Err   error
}

func (e *RecordErrors) Error() string {
	switch {
	case len(e.Failed) > 0 && len(e.Retry) > 0:
		return fmt.Sprintf("%d records failed permanently, first (index %d): %v; %d to retry, first (index %d): %v",
			len(e.Failed), e.Failed[0].Index, e.Failed[0].Err, len(e.Retry), e.Retry[0].Index, e.Retry[0].Err)
	case len(e.Failed) > 0:
		return fmt.Sprintf("%d records failed permanently, first (index %d): %v",
			len(e.Failed), e.Failed[0].Index, e.Failed[0].Err)
	case len(e.Retry) > 0:
		return fmt.Sprintf("%d records to retry, first (index %d): %v", len(e.Retry), e.Retry[0].Index, e.Retry[0].Err)
	}
	return "no record errors"
}

// ErrClosed is returned by sinks and the pipeline after Close.
var ErrClosed = errors.New("closed")
