package pubsub

import (
	"fmt"
	"time"
)

// Pub/Sub service limits (https://cloud.google.com/pubsub/quotas#resource_limits).
const (
	// MaxRequestBytes is the largest publish request; one message must fit in one request.
	MaxRequestBytes = 10_000_000
	// MaxRequestMessages is the most messages one publish request may carry.
	MaxRequestMessages = 1000
	// maxOrderingKeyBytes is the service's ordering key limit.
	maxOrderingKeyBytes = 1024
	// requestOverhead covers the request's topic field and the framing of one message in it,
	// which the client reserves when it bundles (topic names are at most ~300 bytes).
	requestOverhead = 512
)

// Oversize policies: what happens to a record whose envelope does not fit in one message.
const (
	OversizeTruncate   = "truncate"    // cut the message (then fields) so the envelope fits
	OversizeDeadLetter = "dead_letter" // report the record as a permanent RecordError
)

// Options are the Pub/Sub settings beyond collector.SinkConfig. The zero value is valid and
// means the defaults below; the config keys proposed for them are in the comments.
type Options struct {
	// OrderingKey is a template for the message ordering key, e.g. "{namespace}/{pod}", with
	// placeholders {namespace} {pod} {pod_uid} {container} {node} {source} {stream}. Empty
	// disables ordering. Key: ordering_key.
	OrderingKey string
	// MaxMessageBytes caps one message (data + attributes + ordering key as encoded); default
	// and maximum MaxRequestBytes minus the request overhead. Key: max_message_bytes.
	MaxMessageBytes int
	// Oversize is OversizeTruncate (default) or OversizeDeadLetter. Key: oversize.
	Oversize string
	// PublishTimeout bounds the client's own retries of one publish request; default 60s.
	// Key: publish_timeout.
	PublishTimeout time.Duration
	// Compression gzips publish requests larger than 1 KiB: logs compress 5-10x, at a CPU
	// cost. Key: compression.
	Compression bool

	// Request sizing, for tuning and tests; the defaults fit logs (the pipeline has already
	// batched, so requests go out at once). Without ordering keys a batch is cut into requests
	// of at most CountThreshold messages and ByteThreshold bytes; with them, these are the
	// client Publisher's bundling thresholds, and DelayThreshold its longest wait.
	CountThreshold int           // messages per request, default and max 1000
	ByteThreshold  int           // request bytes, default 9 MB
	DelayThreshold time.Duration // longest wait for a fuller request (ordering keys), default 5ms
}

// Defaults.
const (
	DefaultMaxInFlight    = 4
	DefaultBatchDelay     = 100 * time.Millisecond
	DefaultPublishTimeout = 60 * time.Second
	DefaultByteThreshold  = 9_000_000
	DefaultDelayThreshold = 5 * time.Millisecond
	// BatchMaxBytes sizes the pipeline's batches (by RecordCost) under the request limit.
	BatchMaxBytes = 9_000_000
)

// withDefaults fills zero fields and rejects bad values with the name of their config key.
func (o Options) withDefaults() (Options, error) {
	limit := MaxRequestBytes - requestOverhead
	switch {
	case o.MaxMessageBytes == 0:
		o.MaxMessageBytes = limit
	case o.MaxMessageBytes < 1024 || o.MaxMessageBytes > limit:
		return o, fmt.Errorf("max_message_bytes: %d not in [1024, %d]", o.MaxMessageBytes, limit)
	}
	switch o.Oversize {
	case "":
		o.Oversize = OversizeTruncate
	case OversizeTruncate, OversizeDeadLetter:
	default:
		return o, fmt.Errorf("oversize: %q is not %s or %s", o.Oversize, OversizeTruncate, OversizeDeadLetter)
	}
	if o.PublishTimeout < 0 {
		return o, fmt.Errorf("publish_timeout: negative %s", o.PublishTimeout)
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.CountThreshold <= 0 || o.CountThreshold > MaxRequestMessages {
		o.CountThreshold = MaxRequestMessages
	}
	if o.ByteThreshold <= 0 || o.ByteThreshold > limit {
		o.ByteThreshold = DefaultByteThreshold
	}
	if o.DelayThreshold <= 0 {
		o.DelayThreshold = DefaultDelayThreshold
	}
	return o, nil
}
