package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/tailgate-dev/tailgate/collector"
)

// Sink sends records to CloudWatch Logs. It implements collector.Sink and collector.Keyer;
// Send may be called concurrently.
type Sink struct {
	s           *settings
	client      *cloudwatchlogs.Client
	log         *slog.Logger
	warn        *collector.WarnLimiter
	m           *metrics
	now         func() time.Time
	deniedRetry time.Duration
	builders    sync.Pool // *builder
	closed      atomic.Bool
}

var (
	_ collector.Sink  = (*Sink)(nil)
	_ collector.Keyer = (*Sink)(nil)
)

// New returns a sink for cfg (name, region, log_group, log_stream, endpoint, insecure,
// message_format, max_event_bytes, oversize, retention_days, log_group_tags,
// request_timeout, max_in_flight, batch_delay). It does not contact the service: missing
// groups are created by the first Send, and an unreachable service or missing permissions
// show up as retried Sends, so the agent starts and buffers while CloudWatch is away.
func New(ctx context.Context, cfg collector.SinkConfig, opts Options) (*Sink, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("cloudwatch sink %q: %w", cfg.Name, err)
	}
	client, err := newClient(ctx, s, opts)
	if err != nil {
		return nil, fmt.Errorf("cloudwatch sink %q: %w", cfg.Name, err)
	}
	m, err := newMetrics(opts.Registerer, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("cloudwatch sink %q: metrics: %w", cfg.Name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default().With("sink", cfg.Name)
	}
	k := &Sink{
		s: s, client: client, log: log, m: m,
		warn:        collector.NewWarnLimiter(log, time.Minute),
		now:         opts.Now,
		deniedRetry: opts.DeniedRetry,
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.deniedRetry <= 0 {
		k.deniedRetry = DefaultDeniedRetry
	}
	k.builders.New = func() any { return &builder{envelope: s.envelope, maxEventBytes: s.maxEventBytes} }
	return k, nil
}

// Validate makes New's checks that need no network (templates, formats, limits), for
// `tailgate check`.
func Validate(cfg collector.SinkConfig) error {
	if _, err := newSettings(cfg); err != nil {
		return fmt.Errorf("cloudwatch sink %q: %w", cfg.Name, err)
	}
	return nil
}

// Name implements collector.Sink.
func (k *Sink) Name() string { return k.s.name }

// ForgetMetrics deletes the sink's series from the shared families: call it once the sink is
// closed and no longer configured (a sink built again under its name shares them instead).
func (k *Sink) ForgetMetrics() { k.m.forget() }

// Limits implements collector.Sink: the limits of one PutLogEvents request.
func (k *Sink) Limits() collector.Limits {
	return collector.Limits{
		MaxRecords:     MaxRequestEvents,
		MaxBytes:       MaxRequestBytes,
		MaxInFlight:    k.s.maxInFlight,
		MaxDelay:       k.s.batchDelay,
		OrderedKeys:    true, // a stream's requests in order: a throttled batch is not overtaken
		RecordCost:     k.recordCost,
		MaxRecordBytes: k.s.maxEventBytes - EventOverhead,
		RecordBytes:    k.recordBytes,
		Oversize:       k.s.oversize,
	}
}

// AppendKey implements collector.Keyer: the record's log group and log stream.
func (k *Sink) AppendKey(dst []byte, r *collector.Record) []byte {
	return appendKey(dst, k.s.group, k.s.stream, r)
}

// recordBytes is the size CloudWatch counts for r's message (without the 26 bytes): exact for
// lines; for envelopes exact once the record is near the limit, an upper bound below it.
func (k *Sink) recordBytes(r *collector.Record) int {
	if !k.s.envelope {
		size, _ := utf8Size(lineMessage(r))
		return size
	}
	// Every escape is at most 6 bytes per byte, and the rest of the envelope is the tag (as
	// escaped), the fields, the source's kubernetes object and ~150 bytes of names and values.
	bound := 6*(len(r.Message)+len(r.Tag)) + len(r.Fields) + 512
	if r.Source != nil {
		if kube := r.Source.Kube(); kube != nil {
			bound += kubeBound(kube)
		}
	}
	if bound <= k.s.maxEventBytes-EventOverhead {
		return bound
	}
	var enc collector.Encoder
	buf := enc.AppendJSON(nil, r)
	size, _ := utf8Size(buf)
	return size
}

func kubeBound(k *collector.Kube) int {
	n := 256 + 6*(len(k.Namespace)+len(k.Pod)+len(k.PodUID)+len(k.Container)+len(k.Node)+
		len(k.Workload)+len(k.WorkloadKind)+len(k.Image))
	for key, v := range k.Labels {
		n += 6*(len(key)+len(v)) + 6
	}
	for key, v := range k.Annotations {
		n += 6*(len(key)+len(v)) + 6
	}
	return n
}

// recordCost is r's share of a request's 1,048,576 bytes: exact for lines, an estimate for
// envelopes (Send cuts requests by the exact size whatever the batch holds).
func (k *Sink) recordCost(r *collector.Record) int {
	if !k.s.envelope {
		size, _ := utf8Size(lineMessage(r))
		return size + EventOverhead
	}
	return collector.EnvelopeCost(r) + EventOverhead
}

// lineMessage is the message of r in the line format: the line, or a forward record's fields.
func lineMessage(r *collector.Record) []byte {
	if len(r.Message) > 0 {
		return r.Message
	}
	return r.Fields
}

// Send implements collector.Sink. A batch of one destination (b.Key set, as the pipeline cuts
// them for a Keyer) is sent as one or more requests in time order; a batch without a key is
// split per destination first, and the destinations are sent in parallel (at most 4 at once),
// each in order. Send returns nil when every event was accepted, a *collector.RecordErrors
// when some records were rejected (Failed, with a reason) or not accepted yet (Retry), and a
// plain retryable error when nothing was delivered.
func (k *Sink) Send(ctx context.Context, b *collector.SinkBatch) error {
	if k.closed.Load() {
		return collector.ErrClosed
	}
	if len(b.Records) == 0 {
		return nil
	}
	var res outcome
	if b.Key != "" {
		k.sendPart(ctx, b.Key, b.Records, nil, &res)
	} else {
		k.sendUnkeyed(ctx, b.Records, &res)
	}
	return res.err(len(b.Records))
}

// sendUnkeyed splits recs by destination and sends the parts in parallel.
func (k *Sink) sendUnkeyed(ctx context.Context, recs []*collector.Record, res *outcome) {
	parts := make(map[string][]int)
	var keys []string
	var kb []byte
	for i, r := range recs {
		kb = k.AppendKey(kb[:0], r)
		m, ok := parts[string(kb)]
		if !ok {
			keys = append(keys, string(kb))
		}
		parts[string(kb)] = append(m, i)
	}
	if len(keys) == 1 {
		k.sendPart(ctx, keys[0], recs, nil, res)
		return
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, streamParallelism)
	)
	for _, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var part outcome
			k.sendPart(ctx, key, recs, parts[key], &part)
			mu.Lock()
			res.merge(&part)
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// outcome collects what happened to the records of a batch that were not delivered.
type outcome struct {
	failed []collector.RecordError
	retry  []collector.RecordError
	cause  error         // the error that stopped a destination's requests
	after  time.Duration // the wait that error asks for (access denied), or 0
}

func (o *outcome) merge(p *outcome) {
	o.failed = append(o.failed, p.failed...)
	o.retry = append(o.retry, p.retry...)
	if p.cause != nil && (o.cause == nil || p.after > o.after) {
		o.cause, o.after = p.cause, p.after
	}
}

// err is the error Send returns for a batch of n records.
func (o *outcome) err(n int) error {
	var err error
	switch {
	case len(o.failed) == 0 && len(o.retry) == 0:
		return nil
	case len(o.failed) == 0 && len(o.retry) == n:
		// Nothing was delivered: the whole batch is retried.
		err = o.cause
		if err == nil {
			err = errors.New("no event accepted")
		}
	default:
		err = &collector.RecordErrors{Failed: o.failed, Retry: o.retry}
	}
	if o.after > 0 && len(o.retry) > 0 {
		// The pipeline takes the wait of a partial failure from the records to retry.
		for i := range o.retry {
			o.retry[i].Err = collector.RetryAfter(o.cause, o.after)
		}
		err = collector.RetryAfter(err, o.after)
	}
	return err
}

// sendPart sends recs[members] (all of recs when members is nil), which share key.
func (k *Sink) sendPart(ctx context.Context, key string, recs []*collector.Record, members []int, res *outcome) {
	index := func(m int) int {
		if members == nil {
			return m
		}
		return members[m]
	}
	group, stream, ok := splitKey(key)
	if !ok || group == "" || stream == "" {
		// A key this sink did not make: render the first record's instead.
		kb := k.AppendKey(nil, recs[index(0)])
		group, stream, _ = splitKey(string(kb))
	}
	bld := k.builders.Get().(*builder)
	defer k.builders.Put(bld)
	bld.plan(recs, members, k.now())

	for _, sk := range bld.skips {
		k.m.rejected(sk.reason, 1)
		if sk.reason == reasonEmpty {
			continue // nothing to store, nothing to replay
		}
		e := &bld.events[sk.member]
		res.failed = append(res.failed, collector.RecordError{
			Index: index(sk.member),
			Err: collector.WithReason(sk.reason, fmt.Errorf("log group %s stream %s: event at %s (%d bytes) %s",
				group, stream, time.UnixMilli(e.ms).UTC().Format(time.RFC3339), e.size, describe(sk.reason))),
		})
	}
	p := &putter{k: k, ctx: ctx, group: group, stream: stream, bld: bld, index: index, res: res}
	for i, sp := range bld.reqs {
		if !p.put(sp) {
			// Keep the destination's order: the requests after a failed one wait for it.
			for _, rest := range bld.reqs[i+1:] {
				p.retryAll(rest)
			}
			break
		}
	}
}

func describe(reason string) string {
	switch reason {
	case reasonTooOld:
		return "is older than 14 days (or the log group's retention)"
	case reasonTooNew:
		return "is more than 2 hours in the future"
	case reasonExpired:
		return "is older than the log group's retention"
	case reasonOversize:
		return "is over the event size limit"
	case reasonInvalid:
		return "was refused (InvalidParameterException)"
	}
	return reason
}

// Close implements collector.Sink.
func (k *Sink) Close(ctx context.Context) error {
	k.closed.Store(true)
	return nil
}
