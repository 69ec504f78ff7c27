package cloudlogging

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailgate-dev/tailgate/collector"
)

// Sink writes records to Cloud Logging. It implements collector.Sink and collector.Keyer;
// Send may be called concurrently.
type Sink struct {
	name    string
	project string
	log     *slog.Logger
	set     *settings
	limits  collector.Limits
	headers headerCache

	client *logging.Client
	closed atomic.Bool

	scratch sync.Pool // *sendScratch
	clock   func() time.Time
	metrics *Metrics
	warn    *collector.WarnLimiter
}

var (
	_ collector.Sink  = (*Sink)(nil)
	_ collector.Keyer = (*Sink)(nil)
)

// New returns a sink for cfg (name, project, endpoint, insecure, max_in_flight, batch_delay)
// and opts. Without location or cluster name (or project) it asks the GCE metadata server, and
// fails with an error naming the missing keys when that gives none. It does not contact Cloud
// Logging: a refused project shows up in Send (a clear error, a metric, slow retries).
//
// insecure: true dials endpoint in plaintext without credentials (fakes); otherwise the client
// uses Application Default Credentials (Workload Identity on GKE).
func New(ctx context.Context, cfg collector.SinkConfig, opts Options, log *slog.Logger) (*Sink, error) {
	set, err := opts.settings()
	if err != nil {
		return nil, fmt.Errorf("cloud_logging sink %q: %w", cfg.Name, err)
	}
	if cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("cloud_logging sink %q: max_in_flight: negative %d", cfg.Name, cfg.MaxInFlight)
	}
	project, location, cluster, err := clusterIdentity(ctx, cfg.Project, set.Location, set.ClusterName, set.MetadataTimeout)
	if err != nil {
		return nil, fmt.Errorf("cloud_logging sink %q: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.Default().With("sink", cfg.Name)
	}
	set.entry.project = project

	clientOpts := []option.ClientOption{option.WithTelemetryDisabled()}
	if cfg.Endpoint != "" {
		clientOpts = append(clientOpts, option.WithEndpoint(cfg.Endpoint))
		if cfg.Insecure {
			clientOpts = append(clientOpts,
				option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
	}
	client, err := logging.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("cloud_logging sink %q: client: %w", cfg.Name, err)
	}
	// The pipeline owns retries (with its backoff, metrics and dead-letter path): the client
	// makes one attempt per call.
	client.CallOptions.WriteLogEntries = []gax.CallOption{gax.WithTimeout(set.RequestTimeout)}

	inFlight := cfg.MaxInFlight
	if inFlight == 0 {
		inFlight = DefaultMaxInFlight
	}
	delay := time.Duration(cfg.BatchDelay)
	if delay <= 0 {
		delay = DefaultBatchDelay
	}
	metrics, err := newMetrics(opts.Registerer, cfg.Name)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("cloud_logging sink %s: metrics: %w", cfg.Name, err)
	}
	s := &Sink{
		name:    cfg.Name,
		project: project,
		log:     log,
		set:     set,
		client:  client,
		metrics: metrics,
		clock:   time.Now,
		headers: headerCache{project: project, location: location, cluster: cluster, node: set.NodeName},
	}
	s.warn = collector.NewWarnLimiter(log, time.Minute)
	s.limits = collector.Limits{
		MaxRecords:     set.MaxEntriesPerRequest,
		MaxBytes:       requestTarget - 512<<10,
		MaxInFlight:    inFlight,
		MaxDelay:       delay,
		RecordCost:     recordCost,
		MaxRecordBytes: set.MaxEntryBytes,
		RecordBytes:    s.recordBytes,
		Oversize:       set.oversize,
	}
	s.scratch.New = func() any { return &sendScratch{enc: entryEncoder{cfg: &s.set.entry}} }
	log.Info("cloud logging sink", "project", project, "location", location, "cluster", cluster,
		"endpoint", cfg.Endpoint, "log_id", set.LogID)
	return s, nil
}

// Validate checks opts as New does, without the network, so `tailgate check` fails where
// `tailgate run` would.
func Validate(opts Options) error {
	_, err := opts.settings()
	return err
}

// SetNodeName names the node for records without pod metadata (the k8s_node resource and
// the node label). Call it before the first Send.
func (s *Sink) SetNodeName(node string) {
	s.headers.node = node
}

func (s *Sink) Name() string { return s.name }

func (s *Sink) Limits() collector.Limits { return s.limits }

// Metrics returns the sink's own metrics (registered with Options.Registerer, if any).
func (s *Sink) Metrics() *Metrics { return s.metrics }

// ForgetMetrics deletes the sink's series from the shared families: call it once the sink is
// closed and no longer configured (a sink built again under its name shares them instead).
func (s *Sink) ForgetMetrics() { s.metrics.forget() }

// AppendKey appends r's destination: its LOG_ID and the resource's namespace, pod and
// container. Records of one key share a request's log name, resource and labels.
func (s *Sink) AppendKey(dst []byte, r *collector.Record) []byte {
	dst = s.set.logID.appendLogID(dst, r)
	k := kubeOf(r)
	dst = append(dst, 0)
	dst = append(dst, k.Namespace...)
	dst = append(dst, 0)
	dst = append(dst, k.Pod...)
	dst = append(dst, 0)
	return append(dst, k.Container...)
}

// recordCost is a record's share of a request: its payload and an entry's fixed fields. JSON
// payloads grow a little as Struct; Send closes requests by their real size.
func recordCost(r *collector.Record) int {
	n := len(r.Message) + 160
	if len(r.Fields) != len(r.Message) {
		n += len(r.Fields)
	}
	return n
}

// recordBytes bounds r's entry as the API measures it, request-level fields (log name,
// resource, pod labels) included since the API copies them into the entry. Most records are
// far under the limit, and a bound of six bytes of protobuf per byte of JSON (the worst case:
// an array of one-digit numbers) tells so at once; only a record that might be over it is
// measured by building its entry.
func (s *Sink) recordBytes(r *collector.Record) int {
	h := s.headers.get(kubeOf(r))
	fixed := len(h.bytes) + 600 + 200 // header, log name, entry fields
	n := len(r.Message) + len(r.Fields)
	if bound := fixed + 6*n; bound <= s.limits.MaxRecordBytes {
		return bound
	}
	if len(r.Fields) == 0 && !looksLikeObject(r.Message) {
		if validUTF8(r.Message) {
			return fixed + len(r.Message)
		}
		return fixed + 3*len(r.Message)
	}
	sc := s.scratch.Get().(*sendScratch)
	sc.enc.now = s.clock().UnixNano()
	sc.enc.labelRoom = maxLabels
	b, _ := sc.enc.appendEntry(sc.req[:0], r)
	n = len(b)
	sc.req = b[:0]
	s.scratch.Put(sc)
	return fixed + n
}

// Close closes the client's connection.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("cloud_logging sink %q: close: %w", s.name, err)
	}
	return nil
}
