package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailgate-dev/tailgate/collector"
)

// Sink publishes records to one Pub/Sub topic. It implements collector.Sink; Send may be
// called concurrently.
type Sink struct {
	name   string
	log    *slog.Logger
	opts   Options
	limits collector.Limits
	keys   *keyTemplate // nil: no ordering

	client  *pubsub.Client
	topic   string            // full resource name, for the direct path
	pub     *pubsub.Publisher // nil without ordering: the direct path publishes instead
	scratch sync.Pool         // *directBatch
	closed  atomic.Bool

	truncated   atomic.Uint64
	deadLetters atomic.Uint64
	warn        *collector.WarnLimiter
}

var _ collector.Sink = (*Sink)(nil)

// New returns a sink for cfg with default Options.
func New(ctx context.Context, cfg collector.SinkConfig, log *slog.Logger) (*Sink, error) {
	return NewWithOptions(ctx, cfg, Options{}, log)
}

// Validate makes every check NewWithOptions makes before it builds a client (tailgate check).
func Validate(cfg collector.SinkConfig, opts Options) error {
	_, _, err := validate(cfg, opts)
	return err
}

func validate(cfg collector.SinkConfig, opts Options) (Options, *keyTemplate, error) {
	if cfg.Project == "" {
		return opts, nil, errors.New("project is required")
	}
	if cfg.Topic == "" {
		return opts, nil, errors.New("topic is required")
	}
	if cfg.MaxInFlight < 0 {
		return opts, nil, fmt.Errorf("max_in_flight: negative %d", cfg.MaxInFlight)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return opts, nil, err
	}
	keys, err := parseKeyTemplate(opts.OrderingKey)
	return opts, keys, err
}

// NewWithOptions returns a sink for cfg (name, project, topic, endpoint, insecure,
// max_in_flight, batch_delay) and opts. It does not contact the service: a missing topic
// shows up as permanent Send errors, and an unreachable service as retryable ones, so the
// agent starts (and buffers) while Pub/Sub is away.
//
// Without an endpoint the client honours PUBSUB_EMULATOR_HOST; an explicit endpoint wins over
// it. insecure: true dials the endpoint in plaintext without credentials (emulators, fakes).
// log should carry the sink's name (cmd/tailgate passes log.With("sink", name)).
func NewWithOptions(ctx context.Context, cfg collector.SinkConfig, opts Options, log *slog.Logger) (*Sink, error) {
	opts, keys, err := validate(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("pubsub sink %q: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.Default().With("sink", cfg.Name)
	}

	inFlight := cfg.MaxInFlight
	if inFlight == 0 {
		inFlight = DefaultMaxInFlight
	}
	delay := time.Duration(cfg.BatchDelay)
	if delay <= 0 {
		delay = DefaultBatchDelay
	}

	clientOpts := []option.ClientOption{
		option.WithTelemetryDisabled(),
		option.WithGRPCDialOption(grpc.WithDefaultCallOptions(grpc.ForceCodec(publishCodec{}))),
	}
	if cfg.Endpoint != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(cfg.Endpoint))
		if cfg.Insecure {
			clientOpts = append(clientOpts,
				option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
	}
	client, err := pubsub.NewClient(ctx, cfg.Project, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub sink %q: client for project %s: %w", cfg.Name, cfg.Project, err)
	}

	s := &Sink{
		name: cfg.Name,
		log:  log,
		opts: opts,
		keys: keys,
		limits: collector.Limits{
			MaxRecords:  MaxRequestMessages,
			MaxBytes:    BatchMaxBytes,
			MaxInFlight: inFlight,
			MaxDelay:    delay,
			RecordCost:  recordCost,
			// The attributes' worst case (hundreds of bytes) leaves this much for the envelope.
			MaxRecordBytes: opts.MaxMessageBytes - 4096,
		},
		client: client,
		topic:  topicPath(cfg.Project, cfg.Topic),
	}
	s.warn = collector.NewWarnLimiter(log, time.Minute)
	if keys == nil {
		return s, nil
	}

	s.pub = client.Publisher(cfg.Topic)
	// Flow control is a backstop under the pipeline's own bound (MaxInFlight batches): it
	// blocks Publish, never fails it, and admits one maximal message whatever its size.
	ps := &s.pub.PublishSettings
	ps.CountThreshold = opts.CountThreshold
	ps.ByteThreshold = opts.ByteThreshold
	ps.DelayThreshold = opts.DelayThreshold
	ps.Timeout = opts.PublishTimeout
	ps.EnableCompression = opts.Compression
	ps.CompressionBytesThreshold = 1024
	ps.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: 2 * inFlight * MaxRequestMessages,
		MaxOutstandingBytes:    2*inFlight*BatchMaxBytes + MaxRequestBytes,
		LimitExceededBehavior:  pubsub.FlowControlBlock,
	}
	s.pub.EnableMessageOrdering = true
	return s, nil
}

// recordCost estimates a record's message size: the envelope plus its attributes.
func recordCost(r *collector.Record) int {
	k := kubeOf(r)
	return collector.EnvelopeCost(r) + len(k.Namespace) + len(k.Pod) + len(k.Container) +
		len(sourceOf(r)) + 100
}

func (s *Sink) Name() string { return s.name }

func (s *Sink) Limits() collector.Limits { return s.limits }

// Truncated returns how many records were cut to fit a message since the sink started.
func (s *Sink) Truncated() uint64 { return s.truncated.Load() }

// Oversized returns how many records were reported as permanent RecordErrors because they
// could not fit a message (the dead_letter policy, or an envelope too big even when cut).
func (s *Sink) Oversized() uint64 { return s.deadLetters.Load() }

// Close flushes messages still held by the client (those of a Send whose context ended
// first) and closes the connection. It returns ctx's error if the flush outlives ctx.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	done := make(chan struct{})
	go func() {
		if s.pub != nil {
			s.pub.Stop()
		}
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("pubsub sink %q: close: flush: %w", s.name, ctx.Err())
	}
	if cerr := s.client.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("pubsub sink %q: close: %w", s.name, cerr)
	}
	return err
}
