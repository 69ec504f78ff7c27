package cloudlogging

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tailgate-dev/tailgate/collector"
)

// Cloud Logging limits (https://cloud.google.com/logging/quotas).
const (
	// MaxRequestBytes is the API's WriteLogEntries request limit (10 MB).
	MaxRequestBytes = 10 << 20
	// requestTarget is where the sink closes a request: the limit less a margin for the
	// gRPC framing and for an API that counts a little differently than the wire.
	requestTarget = MaxRequestBytes - 512<<10
	// MaxEntryBytes is the API's log entry limit, 256 KB. The API measures it on its own
	// representation ("approximate ... internal data sizes"), so the default limit the sink
	// hands the pipeline is 256,000 bytes of wire LogEntry, request-level fields included.
	MaxEntryBytes = 256 << 10
	// DefaultMaxEntryBytes is the default max_entry_bytes.
	DefaultMaxEntryBytes = 256_000
)

// Defaults.
const (
	DefaultMaxEntriesPerRequest = 1000
	DefaultMaxInFlight          = 4
	DefaultBatchDelay           = 500 * time.Millisecond
	DefaultRequestTimeout       = 60 * time.Second
	DefaultPermissionRetry      = time.Minute
	DefaultMetadataTimeout      = 5 * time.Second
)

// Future-timestamp policies: what happens to an entry whose timestamp is more than a day
// ahead, which the API refuses.
const (
	FutureClamp      = "clamp"       // use the record's own time (or now, if that is ahead too)
	FutureDeadLetter = "dead_letter" // dead-letter the entry, reason "future_timestamp"
)

// Options are the Cloud Logging settings beyond the common collector.SinkConfig keys. The zero
// value means the defaults; the config key of each is in its comment.
type Options struct {
	// LogID is the LOG_ID template (log_id), with collector.ParseTemplate's placeholders
	// ({container}, {namespace}, {tag}, {labels.KEY|fallback}, ...); "" is GKE's naming
	// (stdout / stderr).
	LogID string
	// Location and ClusterName fill the k8s_container resource (location, cluster_name);
	// when empty they come from the GCE metadata server's cluster-location and cluster-name
	// instance attributes, and the sink does not start without them.
	Location    string
	ClusterName string
	// NodeName is the node's name, for records without pod metadata (the k8s_node resource).
	NodeName string
	// StdoutSeverity and StderrSeverity are the severities of container lines whose payload
	// sets none (stdout_severity, stderr_severity; default INFO and ERROR, as GKE).
	StdoutSeverity string
	StderrSeverity string
	// FutureTimestamp is FutureClamp (default) or FutureDeadLetter (future_timestamp).
	FutureTimestamp string
	// Oversize is the pipeline's policy for an entry over MaxEntryBytes: split (default),
	// truncate or dead_letter (oversize).
	Oversize string
	// MaxEntryBytes is the largest entry sent (max_entry_bytes), default 256,000, at most
	// 256 KiB.
	MaxEntryBytes int
	// MaxEntriesPerRequest bounds one request's entries (max_entries_per_request), default 1000.
	MaxEntriesPerRequest int
	// RequestTimeout bounds one WriteLogEntries call (request_timeout), default 60s.
	RequestTimeout time.Duration
	// PermissionRetry is how long the pipeline waits before retrying a batch the API refused
	// for PERMISSION_DENIED, NOT_FOUND or UNAUTHENTICATED (permission_retry), default 1m.
	PermissionRetry time.Duration
	// Registerer gets the sink's metrics, shared with the other cloud_logging sinks there
	// (nil: none registered; they still count).
	Registerer prometheus.Registerer
	// MetadataTimeout bounds the metadata server lookups at start; default 5s.
	MetadataTimeout time.Duration
}

// settings are Options read and checked.
type settings struct {
	Options
	entry    entryConfig
	oversize collector.Oversize
	logID    *logIDTemplate
}

func (o Options) settings() (*settings, error) {
	s := &settings{Options: o}
	var err error
	if s.logID, err = parseLogIDTemplate(o.LogID); err != nil {
		return nil, err
	}
	if s.Options.StdoutSeverity == "" {
		s.Options.StdoutSeverity = "INFO"
	}
	if s.Options.StderrSeverity == "" {
		s.Options.StderrSeverity = "ERROR"
	}
	if s.entry.stdoutSeverity, err = ParseSeverity(s.Options.StdoutSeverity); err != nil {
		return nil, fmt.Errorf("stdout_severity: %w", err)
	}
	if s.entry.stderrSeverity, err = ParseSeverity(s.Options.StderrSeverity); err != nil {
		return nil, fmt.Errorf("stderr_severity: %w", err)
	}
	switch o.FutureTimestamp {
	case "", FutureClamp:
		s.entry.futureClamp = true
	case FutureDeadLetter:
	default:
		return nil, fmt.Errorf("future_timestamp: %q is not %s or %s", o.FutureTimestamp, FutureClamp, FutureDeadLetter)
	}
	if s.oversize, err = collector.ParseOversize(o.Oversize); err != nil {
		return nil, err
	}
	switch {
	case o.MaxEntryBytes == 0:
		s.MaxEntryBytes = DefaultMaxEntryBytes
	case o.MaxEntryBytes < 4096 || o.MaxEntryBytes > MaxEntryBytes:
		return nil, fmt.Errorf("max_entry_bytes: %d not in [4096, %d]", o.MaxEntryBytes, MaxEntryBytes)
	}
	switch {
	case o.MaxEntriesPerRequest == 0:
		s.MaxEntriesPerRequest = DefaultMaxEntriesPerRequest
	case o.MaxEntriesPerRequest < 1 || o.MaxEntriesPerRequest > 10000:
		return nil, fmt.Errorf("max_entries_per_request: %d not in [1, 10000]", o.MaxEntriesPerRequest)
	}
	if o.RequestTimeout < 0 || o.PermissionRetry < 0 || o.MetadataTimeout < 0 {
		return nil, fmt.Errorf("request_timeout, permission_retry, metadata_timeout: negative duration")
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = DefaultRequestTimeout
	}
	if s.PermissionRetry == 0 {
		s.PermissionRetry = DefaultPermissionRetry
	}
	if s.MetadataTimeout == 0 {
		s.MetadataTimeout = DefaultMetadataTimeout
	}
	return s, nil
}
