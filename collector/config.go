package collector

import "time"

// Config is the whole tailgate.yaml (the DESIGN.md contract). Load fills defaults and validates.
type Config struct {
	NodeName        string           `yaml:"node_name"`
	DataDir         string           `yaml:"data_dir"`
	ShutdownTimeout Duration         `yaml:"shutdown_timeout"`
	Metrics         MetricsConfig    `yaml:"metrics"`
	Buffer          BufferConfig     `yaml:"buffer"`
	Kubernetes      KubernetesConfig `yaml:"kubernetes"`
	Inputs          []InputConfig    `yaml:"inputs"`
	Routes          []RouteConfig    `yaml:"routes"`
	Sinks           []SinkConfig     `yaml:"sinks"`
}

type MetricsConfig struct {
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof/ on the metrics address; off unless asked for (it exposes
	// heap and goroutine dumps and CPU profiles to whoever reaches the port).
	Pprof bool `yaml:"pprof"`
	// MaxSeries bounds the per-pod samples the node exposes; past it new series are refused
	// and counted (tailgate_exporter_series_refused_total). 0 = no limit.
	MaxSeries    int                `yaml:"max_series"`
	PodResources PodResourcesConfig `yaml:"pod_resources"`
}

// PodResourcesConfig is what the exporter scans for per-pod resource metrics.
type PodResourcesConfig struct {
	LogDir     string   `yaml:"log_dir"`     // the kubelet's pod log directory; "" = no disk metrics
	Interval   Duration `yaml:"interval"`    // between scans
	Cgroup     bool     `yaml:"cgroup"`      // cgroup v2 CPU and memory per pod (cAdvisor has them)
	CgroupRoot string   `yaml:"cgroup_root"` // the host's /sys/fs/cgroup as mounted in the agent
}

type BufferConfig struct {
	MaxBytes     Size     `yaml:"max_bytes"`
	SegmentBytes Size     `yaml:"segment_bytes"`
	Sync         SyncMode `yaml:"sync"`
	WhenFull     string   `yaml:"when_full"` // block | drop_oldest
}

type KubernetesConfig struct {
	Enabled    bool   `yaml:"enabled"`
	Kubeconfig string `yaml:"kubeconfig"`
	// Labels and Annotations are the pod label and annotation keys records carry (globs;
	// "*" is every key). Labels default to all; annotations to none.
	Labels      []string `yaml:"labels"`
	Annotations []string `yaml:"annotations"`
	// WaitForPod bounds how long a new log file's records wait for its pod to reach the
	// watch's cache before they go out with the log path's fields.
	WaitForPod Duration `yaml:"wait_for_pod"`
}

// InputConfig holds the keys of every input type; Validate rejects keys that do not belong to
// the input's type.
type InputConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // tail | forward

	// tail
	Paths        []string `yaml:"paths"`
	Exclude      []string `yaml:"exclude"`
	Format       string   `yaml:"format"`    // auto | cri | docker
	ReadFrom     string   `yaml:"read_from"` // head | tail
	MaxLineBytes Size     `yaml:"max_line_bytes"`
	ParseJSON    bool     `yaml:"parse_json"`     // tailed JSON messages also fill "fields"
	PollInterval Duration `yaml:"poll_interval"`  // polling fallback and rotation checks
	MaxOpenFiles int      `yaml:"max_open_files"` // bound on open descriptors
	// Ignore files whose last write is older than this at discovery (0 = never).
	IgnoreOlder Duration `yaml:"ignore_older"`
	// RateLimit bounds what one container's log may ship; pods override it by annotation.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// Multiline joins stack traces and other multi-line records per container stream.
	Multiline MultilineConfig `yaml:"multiline"`
	// DetectLevel fills fields.level from a plain-text line's level prefix (ERROR, [warn],
	// level=error, glog's E1206).
	DetectLevel bool `yaml:"detect_level"`

	// tail and forward
	Filters []FilterConfig `yaml:"filters"` // drop or keep records, in order
	Redact  []RedactConfig `yaml:"redact"`  // rewrite secrets in messages

	// forward
	Listen         string    `yaml:"listen"`
	Socket         string    `yaml:"socket"`
	SocketMode     string    `yaml:"socket_mode"`  // octal, e.g. "0660"
	SocketGroup    string    `yaml:"socket_group"` // group name or gid that owns the socket
	SharedKey      string    `yaml:"shared_key"`
	TLS            TLSConfig `yaml:"tls"`
	MaxChunkBytes  Size      `yaml:"max_chunk_bytes"`
	MaxConnections int       `yaml:"max_connections"`
	IdleTimeout    Duration  `yaml:"idle_timeout"`
	// Abuse limits: the time a connection has for its TLS and shared-key handshake and for
	// each frame once its first byte arrived, the connections one peer address may hold, and
	// the bytes all connections may hold in frames larger than 256KiB.
	HandshakeTimeout      Duration `yaml:"handshake_timeout"`
	FrameTimeout          Duration `yaml:"frame_timeout"`
	MaxConnectionsPerPeer int      `yaml:"max_connections_per_peer"`
	MaxBufferedBytes      Size     `yaml:"max_buffered_bytes"`
}

// RateLimitConfig is a per-container token bucket. Zero rates mean no limit. Over the limit,
// the container's files are read later (backpressure on those files only) while their unread
// bytes stay within MaxLag; past it, the excess is read and dropped, counted.
type RateLimitConfig struct {
	Lines  int      `yaml:"lines"`   // lines (records) per second
	Bytes  Size     `yaml:"bytes"`   // message bytes per second
	Burst  Duration `yaml:"burst"`   // how much unused rate may accumulate (default 1s)
	MaxLag Size     `yaml:"max_lag"` // unread bytes a limited file may fall behind before dropping (default 64MiB)
}

// MultilineConfig is the tail input's multiline stage (collector/multiline.Config).
type MultilineConfig struct {
	Detect     []string `yaml:"detect"`   // java, node, dotnet, python, go, ruby, php, dart, all
	Start      string   `yaml:"start"`    // custom rule: a line matching it begins a record
	Continue   string   `yaml:"continue"` // custom rule: a line matching it continues one
	MaxLines   int      `yaml:"max_lines"`
	MaxBytes   Size     `yaml:"max_bytes"`
	FlushAfter Duration `yaml:"flush_after"`
}

// FilterConfig drops records that match (action drop) or that do not match (action keep).
// Every field set must match; namespace and container are globs, message a regular expression.
type FilterConfig struct {
	Action    string `yaml:"action"` // drop | keep
	Namespace string `yaml:"namespace"`
	Container string `yaml:"container"`
	Message   string `yaml:"message"`
	// Reason labels the drops in tailgate_pod_log_dropped_total (default "filtered").
	Reason string `yaml:"reason"`
}

// RedactConfig replaces every match of Pattern in a message with Replacement ($1 expands).
type RedactConfig struct {
	Pattern     string `yaml:"pattern"`
	Replacement string `yaml:"replacement"`
	// Reason labels the rule's matches in tailgate_input_redactions_total (default "redact").
	Reason string `yaml:"reason"`
}

type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RouteConfig sends records that match to the named sinks; first match wins. An empty
// list (sinks: []) drops what matches, counted; a missing one is an error.
type RouteConfig struct {
	Match RouteMatch `yaml:"match"`
	Sinks []string   `yaml:"sinks"`
}

// RouteMatch fields are globs (path.Match syntax); empty matches anything.
type RouteMatch struct {
	Input     string     `yaml:"input"`
	Namespace string     `yaml:"namespace"`
	Pod       string     `yaml:"pod"`
	Container string     `yaml:"container"`
	Workload  string     `yaml:"workload"` // the Deployment, CronJob, StatefulSet... (from the watch)
	Stream    string     `yaml:"stream"`   // stdout | stderr | app
	Labels    LabelMatch `yaml:"labels"`
}

// LabelMatch is a route's condition on pod labels: a map of key -> value glob
// ({app: cart, tier: "web*"}), or a string in kubectl -l selector syntax
// ("app=cart,tier in (web,api),!canary").
type LabelMatch struct {
	Globs    map[string]string
	Selector string
}

// Empty reports whether the route says nothing about labels.
func (l LabelMatch) Empty() bool { return len(l.Globs) == 0 && l.Selector == "" }

// SinkConfig holds the keys of every sink type.
type SinkConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // file | stdout | pubsub | cloud_logging | cloudwatch

	Path     string `yaml:"path"`     // file
	Endpoint string `yaml:"endpoint"` // any remote sink: emulator or fake
	Insecure bool   `yaml:"insecure"`
	Project  string `yaml:"project"`
	Topic    string `yaml:"topic"`
	LogID    string `yaml:"log_id"`
	Region   string `yaml:"region"`

	LogGroup  string `yaml:"log_group"`
	LogStream string `yaml:"log_stream"`

	// cloudwatch
	MessageFormat string            `yaml:"message_format"`  // line | envelope
	MaxEventBytes Size              `yaml:"max_event_bytes"` // message UTF-8 bytes + 26; default 1MiB
	RetentionDays int               `yaml:"retention_days"`  // on groups the sink creates
	LogGroupTags  map[string]string `yaml:"log_group_tags"`  // on groups the sink creates

	// pubsub
	OrderingKey     string   `yaml:"ordering_key"`      // template, e.g. "{namespace}/{pod}"
	MaxMessageBytes Size     `yaml:"max_message_bytes"` // default and max ~10 MB
	Oversize        string   `yaml:"oversize"`          // split | truncate | dead_letter
	PublishTimeout  Duration `yaml:"publish_timeout"`
	Compression     bool     `yaml:"compression"`

	// cloud_logging (also project, log_id, oversize: split | truncate | dead_letter)
	Location             string   `yaml:"location"`         // k8s_container location; default: metadata server
	ClusterName          string   `yaml:"cluster_name"`     // default: metadata server
	StdoutSeverity       string   `yaml:"stdout_severity"`  // default INFO
	StderrSeverity       string   `yaml:"stderr_severity"`  // default ERROR
	FutureTimestamp      string   `yaml:"future_timestamp"` // clamp | dead_letter
	MaxEntryBytes        Size     `yaml:"max_entry_bytes"`
	MaxEntriesPerRequest int      `yaml:"max_entries_per_request"`
	RequestTimeout       Duration `yaml:"request_timeout"`
	PermissionRetry      Duration `yaml:"permission_retry"`

	MaxInFlight int      `yaml:"max_in_flight"`
	BatchDelay  Duration `yaml:"batch_delay"`
}

// Duration is a time.Duration that reads "200ms" from YAML.
type Duration time.Duration

// Size is a byte count that reads "64MiB" from YAML.
type Size int64

// SyncMode is the buffer's group-commit interval; 0 means "always".
type SyncMode time.Duration
