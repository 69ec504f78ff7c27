package collector

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sink is a destination. The pipeline owns the interface: it reads the buffer for each sink,
// cuts batches within the sink's Limits, keeps up to MaxInFlight batches outstanding, retries
// retryable errors with backoff, dead-letters permanent ones, and moves the sink's cursor over
// the contiguous prefix of acknowledged batches.
type Sink interface {
	Name() string
	Limits() Limits
	// Send delivers the batch and returns nil only when the destination has acknowledged every
	// record in it. An error is retryable unless wrapped by Permanent; a *RecordErrors error
	// says that only some records failed permanently and the rest were delivered.
	// Send may be called concurrently (up to MaxInFlight) and must not keep the batch or its
	// records after it returns.
	Send(ctx context.Context, b *SinkBatch) error
	// Close flushes and releases the client. Send is not called after Close.
	Close(ctx context.Context) error
}

// Limits size the batches the pipeline hands a sink.
type Limits struct {
	MaxRecords  int           // records per batch (Pub/Sub: 1000; CloudWatch: 10000)
	MaxBytes    int           // batch cost per RecordCost (Pub/Sub: 10 MB; CloudWatch: 1 MiB)
	MaxInFlight int           // batches outstanding at once
	MaxDelay    time.Duration // how long a partial batch may wait for more records
	// RecordCost estimates one record's cost against MaxBytes; nil means EnvelopeCost.
	RecordCost func(*Record) int
	// MaxRecordBytes is the largest record the destination takes; bigger ones are truncated
	// (FlagTruncated) by the sink or dead-lettered, never looped on. 0 means no limit.
	MaxRecordBytes int
}

// EnvelopeCost estimates the JSON envelope size of r.
func EnvelopeCost(r *Record) int {
	return len(r.Message) + len(r.Fields) + len(r.Tag) + 320
}

// SinkBatch is a batch handed to one sink. Records are borrowed for the duration of Send.
type SinkBatch struct {
	Records []*Record
	// Seq numbers batches per sink, for logs and fakes.
	Seq uint64
}

// permanentError marks an error that retrying cannot fix (bad request, permission, not found).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: the batch goes to the dead-letter segment.
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

// RecordErrors reports that the records at the given batch indexes failed permanently while
// every other record of the batch was delivered.
type RecordErrors struct {
	Failed []RecordError
}

// RecordError is one record's permanent failure.
type RecordError struct {
	Index int
	Err   error
}

func (e *RecordErrors) Error() string {
	if len(e.Failed) == 0 {
		return "no record errors"
	}
	return fmt.Sprintf("%d records failed permanently, first (index %d): %v",
		len(e.Failed), e.Failed[0].Index, e.Failed[0].Err)
}

// ErrClosed is returned by sinks and the pipeline after Close.
var ErrClosed = errors.New("closed")
