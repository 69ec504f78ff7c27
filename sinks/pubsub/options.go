package pubsub

import (
	"fmt"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
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

// Options are the Pub/Sub settings beyond collector.SinkConfig. The zero value is valid and
// means the defaults below; the config keys proposed for them are in the comments.
type Options struct {
	// OrderingKey is a template for the message ordering key, e.g. "{namespace}/{pod}", with
	// collector.ParseTemplate's placeholders but {tag}: {namespace} {pod} {pod_uid}
	// {container} {node} {workload} {source} {stream} {labels.KEY}, each with an optional
	// |fallback. Empty disables ordering. Key: ordering_key.
	OrderingKey string
	// MaxMessageBytes caps one message (data + attributes + ordering key as encoded); default
	// and maximum MaxRequestBytes minus the request overhead. The pipeline enforces it
	// (collector.Limits.MaxRecordBytes). Key: max_message_bytes.
	MaxMessageBytes int
	// Oversize is what the pipeline does with a record over MaxMessageBytes: "truncate" (the
	// default here), "split" or "dead_letter" (collector.ParseOversize). Key: oversize.
	Oversize string
	// PublishTimeout bounds the client's own retries of one publish request; default 60s.
	// Key: publish_timeout.
	PublishTimeout time.Duration
	// Compression gzips publish requests: logs compress 5-10x, at a CPU cost. Key:
	// compression.
	Compression bool

	// Request sizing, for tuning and tests; the defaults fit logs (the pipeline has already
	// batched, so requests go out at once): a batch is cut into requests of at most
	// CountThreshold messages and ByteThreshold bytes.
	CountThreshold int // messages per request, default and max 1000
	ByteThreshold  int // request bytes, default 9 MB

	oversize collector.Oversize // Oversize, parsed
}

// Defaults.
const (
	DefaultMaxInFlight    = 4
	DefaultBatchDelay     = 100 * time.Millisecond
	DefaultPublishTimeout = 60 * time.Second
	DefaultByteThreshold  = 9_000_000
	// DefaultOversize keeps one message per record: the envelope has no field that ties the
	// parts of a split record together, so in a BigQuery table they are unrelated rows.
	DefaultOversize = collector.OversizeTruncate
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
	o.oversize = DefaultOversize
	if o.Oversize != "" {
		p, err := collector.ParseOversize(o.Oversize)
		if err != nil {
			return o, err
		}
		o.oversize = p
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
	return o, nil
}
