package cloudwatch

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/collector"
)

// PutLogEvents limits (API reference, current version: sequence tokens ignored, 1 MB events).
const (
	MaxRequestEvents = 10_000    // events in one request
	MaxRequestBytes  = 1_048_576 // sum over events of UTF-8 message bytes + EventOverhead
	EventOverhead    = 26        // bytes counted per event besides its message
	// MaxEventBytes is the default and largest event size, message UTF-8 bytes + 26: the
	// documented 1 MB, read as the 1,048,576 the request limit counts in.
	MaxEventBytes = 1 << 20
	// MaxSpan is the longest time between the first and last event of one request (the
	// service allows 24 h; requests are cut strictly below it).
	MaxSpan = 24 * time.Hour
	// MaxAge and MaxFuture bound the events the service accepts; events outside them (with
	// clockSlack to spare in the service's favour) are not sent but dead-lettered.
	MaxAge    = 14 * 24 * time.Hour
	MaxFuture = 2 * time.Hour
)

// clockSlack widens the client-side time check so that only events the service would reject
// whatever the skew are held back; the ones near the edges are sent and the service decides.
const clockSlack = 5 * time.Minute

// Defaults.
const (
	DefaultMaxInFlight    = 8
	DefaultBatchDelay     = time.Second
	DefaultRequestTimeout = 30 * time.Second
	// DefaultDeniedRetry is how long to wait after access denied or bad credentials before
	// trying again: long enough not to hammer the service, short enough that a fixed IAM
	// policy is picked up soon.
	DefaultDeniedRetry = 30 * time.Second
	// streamParallelism bounds the (group, stream) parts of one unkeyed batch sent at once.
	streamParallelism = 4
)

// Message formats.
const (
	FormatLine     = "line"
	FormatEnvelope = "envelope"
)

// Options are the sink's settings beyond collector.SinkConfig's, for tests and the wiring.
type Options struct {
	// Credentials overrides the default chain (tests sign with static keys to check SigV4).
	// With cfg.Insecure the sink sends unsigned requests (anonymous credentials) instead.
	Credentials aws.CredentialsProvider
	// Registerer gets the sink's metrics (nil: none registered; they still count).
	Registerer prometheus.Registerer
	// Logger should carry the sink's name.
	Logger *slog.Logger
	// Now is the clock for the client-side time checks (tests); nil means time.Now.
	Now func() time.Time
	// DeniedRetry overrides DefaultDeniedRetry (tests).
	DeniedRetry time.Duration
}

// settings is the validated configuration of one sink.
type settings struct {
	name           string
	region         string
	endpoint       string
	insecure       bool
	group, stream  *nameTemplate
	envelope       bool
	maxEventBytes  int // including EventOverhead
	oversize       collector.Oversize
	retentionDays  int32
	tags           map[string]string
	requestTimeout time.Duration
	maxInFlight    int
	batchDelay     time.Duration
}

func newSettings(cfg collector.SinkConfig) (*settings, error) {
	s := &settings{
		name:           cfg.Name,
		region:         cfg.Region,
		endpoint:       cfg.Endpoint,
		insecure:       cfg.Insecure,
		maxEventBytes:  int(cfg.MaxEventBytes),
		retentionDays:  int32(cfg.RetentionDays),
		tags:           cfg.LogGroupTags,
		requestTimeout: cfg.RequestTimeout.D(),
		maxInFlight:    cfg.MaxInFlight,
		batchDelay:     cfg.BatchDelay.D(),
	}
	if s.region == "" {
		return nil, fmt.Errorf("region is required")
	}
	var err error
	if s.group, err = parseNameTemplate("log_group", cfg.LogGroup, true); err != nil {
		return nil, err
	}
	if s.stream, err = parseNameTemplate("log_stream", cfg.LogStream, false); err != nil {
		return nil, err
	}
	switch cfg.MessageFormat {
	case "", FormatLine:
	case FormatEnvelope:
		s.envelope = true
	default:
		return nil, fmt.Errorf("message_format %q is not one of line, envelope", cfg.MessageFormat)
	}
	if s.maxEventBytes == 0 {
		s.maxEventBytes = MaxEventBytes
	}
	if s.maxEventBytes < 1024 || s.maxEventBytes > MaxEventBytes {
		return nil, fmt.Errorf("max_event_bytes %d is not between 1KiB and 1MiB", s.maxEventBytes)
	}
	if s.oversize, err = collector.ParseOversize(cfg.Oversize); err != nil {
		return nil, err
	}
	if s.requestTimeout <= 0 {
		s.requestTimeout = DefaultRequestTimeout
	}
	if s.maxInFlight < 0 {
		return nil, fmt.Errorf("max_in_flight: negative %d", s.maxInFlight)
	}
	if s.maxInFlight == 0 {
		s.maxInFlight = DefaultMaxInFlight
	}
	if s.batchDelay <= 0 {
		s.batchDelay = DefaultBatchDelay
	}
	return s, nil
}
