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

type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RouteConfig sends records that match to the named sinks; first match wins.
type RouteConfig struct {
	Match RouteMatch `yaml:"match"`
	Sinks []string   `yaml:"sinks"`
}

// RouteMatch fields are globs (path.Match syntax); empty matches anything.
type RouteMatch struct {
	Input     string            `yaml:"input"`
	Namespace string            `yaml:"namespace"`
	Pod       string            `yaml:"pod"`
	Container string            `yaml:"container"`
	Labels    map[string]string `yaml:"labels"`
}

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

	// pubsub
	OrderingKey     string   `yaml:"ordering_key"`      // template, e.g. "{namespace}/{pod}"
	MaxMessageBytes Size     `yaml:"max_message_bytes"` // default and max ~10 MB
	Oversize        string   `yaml:"oversize"`          // truncate | dead_letter
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
