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

// Sink publishes records to one Pub/Sub topic. It implements collector.Sink and
// collector.Keyer; Send may be called concurrently.
type Sink struct {
	name   string
	warn   *collector.WarnLimiter
	opts   Options
	limits collector.Limits
	keys   *keyTemplate // nil: no ordering
	sizes  sizeCache

	client  *pubsub.Client
	topic   string    // full resource name
	scratch sync.Pool // *directBatch
	closed  atomic.Bool
}

var (
	_ collector.Sink  = (*Sink)(nil)
	_ collector.Keyer = (*Sink)(nil)
)

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
		option.WithGRPCDialOption(grpc.WithDefaultCallOptions(grpc.ForceCodecV2(publishCodec{}))),
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
		name:   cfg.Name,
		warn:   collector.NewWarnLimiter(log, time.Minute),
		opts:   opts,
		keys:   keys,
		client: client,
		topic:  topicPath(cfg.Project, cfg.Topic),
	}
	s.limits = collector.Limits{
		MaxRecords:  MaxRequestMessages,
		MaxBytes:    BatchMaxBytes,
		MaxInFlight: inFlight,
		MaxDelay:    delay,
		RecordCost:  recordCost,
		// With an ordering key the pipeline cuts batches per key and keeps one batch of a key
		// in flight; Send publishes it as one request (or several in turn), which is what the
		// client's Publisher does for a key, without its cost per message.
		OrderedKeys:    keys != nil,
		MaxRecordBytes: opts.MaxMessageBytes,
		RecordBytes:    s.recordBytes,
		Oversize:       opts.oversize,
	}
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

// AppendKey appends r's ordering key (collector.Keyer). Without an ordering_key template every
// record has the empty key, so the pipeline batches as for a sink without keys.
func (s *Sink) AppendKey(dst []byte, r *collector.Record) []byte {
	if s.keys == nil {
		return dst
	}
	return append(dst, s.keys.key(r)...)
}

// Close closes the client's connection. Nothing is held past Send, so there is nothing to
// flush.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("pubsub sink %q: close: %w", s.name, err)
	}
	return nil
}
