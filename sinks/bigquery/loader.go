package bigquery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"

	"github.com/tailgate-dev/tailgate/collector"
)

// Loader limits and defaults.
const (
	// MaxAppendBytes is the Storage Write API's AppendRows request limit (10 MB); batches
	// stay under DefaultMaxBatchBytes to leave room for the request's own fields.
	MaxAppendBytes          = 10_000_000
	DefaultMaxBatchBytes    = 8 << 20
	DefaultMaxBatchRows     = 1000
	DefaultBatchDelay       = 50 * time.Millisecond
	DefaultMaxInFlight      = 4
	DefaultMaxOutstanding   = 20_000
	DefaultMaxOutstandingMB = 128
	DefaultShutdownTimeout  = 10 * time.Second
)

// LoaderOptions configure a Loader. Project, Subscription, Dataset and Table are required.
type LoaderOptions struct {
	Project      string
	Subscription string // a pull subscription on the records topic
	Dataset      string
	Table        string
	// DeadLetterTopic receives malformed messages and rejected rows, with the attribute
	// tailgate_dead_letter_reason. Empty: they are nacked, and the subscription's own
	// dead-letter policy moves them after its max delivery attempts.
	DeadLetterTopic string

	MaxBatchRows  int           // rows per AppendRows, default DefaultMaxBatchRows
	MaxBatchBytes int           // encoded bytes per AppendRows, default DefaultMaxBatchBytes
	BatchDelay    time.Duration // how long a partial batch waits, default DefaultBatchDelay
	MaxInFlight   int           // AppendRows calls awaiting their answer, default DefaultMaxInFlight
	// MaxOutstandingMessages and MaxOutstandingBytes bound the messages held un-acked (the
	// loader's memory): Pub/Sub flow control stops delivering past them.
	MaxOutstandingMessages int
	MaxOutstandingBytes    int
	// ShutdownTimeout bounds how long Run waits, after ctx ends, for appends in flight.
	ShutdownTimeout time.Duration

	PubSubOptions  []option.ClientOption // e.g. an emulator endpoint; PUBSUB_EMULATOR_HOST is honoured
	StorageOptions []option.ClientOption // e.g. a plaintext Storage Write endpoint

	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Log        *slog.Logger
}

func (o LoaderOptions) withDefaults() (LoaderOptions, error) {
	for _, f := range []struct{ name, v string }{
		{"project", o.Project}, {"subscription", o.Subscription}, {"dataset", o.Dataset}, {"table", o.Table},
	} {
		if f.v == "" {
			return o, fmt.Errorf("bigquery loader: %s is required", f.name)
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBatchRows, DefaultMaxBatchRows)
	def(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	def(&o.MaxInFlight, DefaultMaxInFlight)
	def(&o.MaxOutstandingMessages, DefaultMaxOutstanding)
	def(&o.MaxOutstandingBytes, DefaultMaxOutstandingMB<<20)
	if o.MaxBatchBytes > MaxAppendBytes-64<<10 {
		return o, fmt.Errorf("bigquery loader: batch bytes %d over the AppendRows limit", o.MaxBatchBytes)
	}
	if o.BatchDelay <= 0 {
		o.BatchDelay = DefaultBatchDelay
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o, nil
}

// Loader moves envelopes from a Pub/Sub subscription into the table through the Storage
// Write API default stream. A message is acked only after the append carrying its row
// succeeded, or after it was published to the dead-letter topic; otherwise it is nacked.
type Loader struct {
	o      LoaderOptions
	log    *slog.Logger
	m      *loaderMetrics
	schema *rowSchema

	ps  *pubsub.Client
	sub *pubsub.Subscriber
	dl  *pubsub.Publisher // nil without a dead-letter topic
	mw  *managedwriter.Client

	sem  chan struct{} // one token per append in flight
	wg   sync.WaitGroup
	pool sync.Pool // *batch
	warn *collector.WarnLimiter
}

// NewLoader builds the clients; it does not contact the services until Run.
// ackExtension bounds each lease extension of a held message; see NewLoader.
const ackExtension = 15 * time.Second

func NewLoader(ctx context.Context, opts LoaderOptions) (*Loader, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	schema, err := newRowSchema()
	if err != nil {
		return nil, fmt.Errorf("bigquery loader: %w", err)
	}
	m, err := newLoaderMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("bigquery loader: metrics: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, o.Project, o.PubSubOptions...)
	if err != nil {
		return nil, fmt.Errorf("bigquery loader: pubsub client: %w", err)
	}
	// The writer client keeps its context for its connections, which must outlive a
	// cancelled Run long enough to finish the appends in flight; Close ends them.
	mw, err := managedwriter.NewClient(context.WithoutCancel(ctx), o.Project, o.StorageOptions...)
	if err != nil {
		ps.Close()
		return nil, fmt.Errorf("bigquery loader: storage write client: %w", err)
	}
	l := &Loader{
		o: o, log: o.Log, m: m, schema: schema, ps: ps, mw: mw,
		sub: ps.Subscriber(o.Subscription),
		sem: make(chan struct{}, o.MaxInFlight),
	}
	l.sub.ReceiveSettings.MaxOutstandingMessages = o.MaxOutstandingMessages
	l.sub.ReceiveSettings.MaxOutstandingBytes = o.MaxOutstandingBytes
	// Leases are extended by at most this much at a time: an append takes well under a
	// second, and a loader that dies holding messages gives them back within this bound
	// instead of the client's default minute.
	l.sub.ReceiveSettings.MaxDurationPerAckExtension = ackExtension
	// ShutdownOptions stay nil: that is the client's graceful shutdown, where Receive
	// returns only after every message was acked or nacked, so the acks of the appends
	// finished during shutdown reach Pub/Sub. ShutdownTimeout bounds it (see Run).
	if o.DeadLetterTopic != "" {
		l.dl = ps.Publisher(o.DeadLetterTopic)
	}
	l.warn = collector.NewWarnLimiter(l.log, time.Minute)
	return l, nil
}

// Close releases the clients. Call it after Run returned.
func (l *Loader) Close() error {
	if l.dl != nil {
		l.dl.Stop()
	}
	return errors.Join(l.mw.Close(), l.ps.Close())
}

// Run loads until ctx ends or the subscription fails. When ctx ends it stops pulling, nacks
// what has not been sent, waits (up to ShutdownTimeout) for the appends in flight and acks
// their messages, and returns nil.
func (l *Loader) Run(ctx context.Context) error {
	// Appends and dead-letter publishes outlive ctx: they are finished, not abandoned,
	// until ShutdownTimeout after ctx ended; then they are given up and their messages
	// nacked (BigQuery may still have the rows: at-least-once).
	bg, giveUp := context.WithCancel(context.WithoutCancel(ctx))
	defer giveUp()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(l.o.ShutdownTimeout, giveUp)
		context.AfterFunc(bg, func() { t.Stop() })
	})
	defer stopTimer()
	ms, err := l.openStream(ctx)
	if err != nil {
		return err
	}
	defer ms.Close()

	items := l.handOff()
	recvDone := make(chan struct{})
	batcherDone := make(chan struct{})
	b := &batcher{l: l, ms: ms, bg: bg, enc: newRowEncoder(l.schema)}
	go func() {
		defer close(batcherDone)
		b.run(ctx, items, recvDone)
	}()

	err = l.sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		l.m.held.Inc()
		select {
		case items <- m:
		case <-ctx.Done():
			l.nack(m, 1)
		}
	})
	close(recvDone)
	<-batcherDone

	l.wg.Wait() // bounded by giveUp
	if err != nil {
		return fmt.Errorf("bigquery loader: receive from %s: %w", l.o.Subscription, err)
	}
	return nil
}

// handOff is the channel from the Pub/Sub callbacks to the batcher. It is buffered so that
// the client's per-message callback goroutines need not wait for the batcher one at a time.
func (l *Loader) handOff() chan *pubsub.Message {
	return make(chan *pubsub.Message, min(l.o.MaxBatchRows, 1024))
}

// openStream opens the table's default stream; it outlives ctx, as the appends do.
func (l *Loader) openStream(ctx context.Context) (*managedwriter.ManagedStream, error) {
	ms, err := l.mw.NewManagedStream(context.WithoutCancel(ctx),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(l.o.Project, l.o.Dataset, l.o.Table)),
		managedwriter.WithSchemaDescriptor(l.schema.descriptor),
		managedwriter.EnableWriteRetries(true))
	if err != nil {
		return nil, fmt.Errorf("bigquery loader: open default stream of %s.%s.%s: %w", l.o.Project, l.o.Dataset, l.o.Table, err)
	}
	return ms, nil
}

func (l *Loader) ack(m *pubsub.Message) {
	m.Ack()
	l.m.held.Dec()
}

func (l *Loader) nack(m *pubsub.Message, n int) {
	m.Nack()
	l.m.held.Dec()
	l.m.rows.WithLabelValues(resultNacked).Add(float64(n))
}

// reasonAttr carries why a message was dead-lettered. Attribute values are limited to
// 1024 bytes.
const reasonAttr = "tailgate_dead_letter_reason"

// deadLetter publishes m with its reason to the dead-letter topic and acks it once the topic
// has it; it nacks m when there is no topic or the publish fails. It does not block.
func (l *Loader) deadLetter(ctx context.Context, m *pubsub.Message, reason string) {
	if l.dl == nil {
		l.warn.Warn("dead", "messages dead-lettered", "reason", reason, "dead_letter_topic", "")
		l.nack(m, 1)
		return
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	attrs := make(map[string]string, len(m.Attributes)+3)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	attrs[reasonAttr] = reason
	attrs["tailgate_subscription"] = l.o.Subscription
	attrs["tailgate_message_id"] = m.ID
	res := l.dl.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if _, err := res.Get(ctx); err != nil {
			l.warn.Warn("nack", "appends failed; messages nacked for redelivery", "error", fmt.Sprintf("dead-letter publish: %v", err))
			l.nack(m, 1)
			return
		}
		l.warn.Warn("dead", "messages dead-lettered", "reason", reason)
		l.m.rows.WithLabelValues(resultDeadLetter).Inc()
		l.ack(m)
	}()
}
