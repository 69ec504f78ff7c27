package collector

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// DefaultConfig is the configuration every loaded file starts from.
func DefaultConfig() Config {
	return Config{
		DataDir:         "/var/lib/tailgate",
		ShutdownTimeout: Duration(10 * time.Second),
		Metrics: MetricsConfig{Listen: "0.0.0.0:2020", MaxSeries: 100_000, PodResources: PodResourcesConfig{
			LogDir: "/var/log/pods", Interval: Duration(15 * time.Second), CgroupRoot: "/sys/fs/cgroup"}},
		Buffer: BufferConfig{
			MaxBytes:     2 << 30,
			SegmentBytes: 64 << 20,
			Sync:         SyncMode(200 * time.Millisecond),
			WhenFull:     "block",
		},
		Kubernetes: KubernetesConfig{Enabled: true, Labels: []string{"*"}, WaitForPod: Duration(2 * time.Second)},
	}
}

// Input and sink defaults, applied to zero values after decoding.
const (
	DefaultMaxLineBytes   = 256 << 10
	DefaultPollInterval   = 250 * time.Millisecond
	DefaultMaxOpenFiles   = 1024
	DefaultMaxChunkBytes  = 32 << 20
	DefaultMaxConnections = 1024
	// DefaultIdleTimeout 0: a forward connection silent between frames is never closed on a
	// timer. fluent-logger-golang without acks (its default) writes its next record into a
	// connection the agent closed, TCP accepts the write, and the record is lost; Fluent Bit's
	// and fluentd's in_forward close no idle connection either. Idle connections cannot lock
	// others out (at max_connections the idle ones are closed first, those that never sent a
	// frame before all), and a peer that vanished is found by TCP keep-alive (Go's 15s probes).
	DefaultIdleTimeout = 0
	// Forward abuse limits. A handshake (TLS, then HELO/PING/PONG) takes milliseconds; Fluent
	// Bit's own connect timeout, TLS included, is 10s. A frame arrives in one write from every
	// known client (fluentd's send_timeout is 60s for a whole chunk over a WAN; here the peer is
	// on the node). Per peer: a node's hostNetwork pods and docker's fluentd log driver (one
	// connection per container) share one address.
	DefaultHandshakeTimeout      = 10 * time.Second
	DefaultFrameTimeout          = 30 * time.Second
	DefaultMaxConnectionsPerPeer = 256
	DefaultMaxBufferedBytes      = 256 << 20
)

// ApplyInputDefaults fills the zero values of an input's type-specific keys.
func ApplyInputDefaults(in *InputConfig) {
	switch in.Type {
	case "tail":
		if in.Format == "" {
			in.Format = "auto"
		}
		if in.ReadFrom == "" {
			in.ReadFrom = "head"
		}
		if in.MaxLineBytes == 0 {
			in.MaxLineBytes = DefaultMaxLineBytes
		}
		if in.PollInterval == 0 {
			in.PollInterval = Duration(DefaultPollInterval)
		}
		if in.MaxOpenFiles == 0 {
			in.MaxOpenFiles = DefaultMaxOpenFiles
		}
	case "forward":
		if in.MaxChunkBytes == 0 {
			in.MaxChunkBytes = DefaultMaxChunkBytes
		}
		if in.MaxConnections == 0 {
			in.MaxConnections = DefaultMaxConnections
		}
		if in.HandshakeTimeout == 0 {
			in.HandshakeTimeout = Duration(DefaultHandshakeTimeout)
		}
		if in.FrameTimeout == 0 {
			in.FrameTimeout = Duration(DefaultFrameTimeout)
		}
		if in.MaxConnectionsPerPeer == 0 {
			in.MaxConnectionsPerPeer = DefaultMaxConnectionsPerPeer
		}
		if in.MaxBufferedBytes == 0 {
			in.MaxBufferedBytes = DefaultMaxBufferedBytes
		}
	}
}

// ConfigError is one problem in a config file, at a line.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ConfigErrors is every problem found; Error prints one per line.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadOptions tune validation.
type LoadOptions struct {
	// CheckPaths also reports paths that do not exist or cannot be written (tailgate check).
	CheckPaths bool
	// Getenv expands ${VAR}; nil means os.Getenv.
	Getenv func(string) string
	// SinkTypes are the sink types the binary builds, each with the checks its constructor
	// makes before contacting anything (nil: none). A sink of another type is an error, so
	// `tailgate check` fails exactly where `tailgate run` would. nil skips the check
	// (library use, tests of the config alone).
	SinkTypes map[string]func(SinkConfig) error
}

// LoadConfig reads, expands, decodes, defaults and validates the file. Problems come back as
// ConfigErrors with file:line positions.
func LoadConfig(path string, opts LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data, opts)
}

// ParseConfig is LoadConfig on bytes; file names the source in errors.
func ParseConfig(file string, data []byte, opts LoadOptions) (*Config, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	expanded := expandEnv(data, getenv)
	cfg := DefaultConfig()
	if err := decodeYAML(expanded, &cfg); err != nil {
		return nil, ConfigErrors{yamlError(file, err)}
	}
	if cfg.NodeName == "" {
		cfg.NodeName = getenv("NODE_NAME") // the DaemonSet sets it from spec.nodeName
	}
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	for i := range cfg.Inputs {
		ApplyInputDefaults(&cfg.Inputs[i])
	}
	ast := parseAST(expanded)
	v := &validator{file: file, ast: ast, checkPaths: opts.CheckPaths, sinkTypes: opts.SinkTypes}
	v.config(&cfg)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return &cfg, nil
}

// decodeYAML is strict decoding that turns a panic of the YAML library into an error: some
// malformed documents (found by FuzzParseConfig) crash goccy/go-yaml's decoder, and a bad
// config must never crash the agent.
func decodeYAML(data []byte, cfg *Config) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed YAML (the parser failed: %v)", p)
		}
	}()
	return yaml.UnmarshalWithOptions(data, cfg, yaml.Strict())
}

// parseAST parses data for error positions; nil (no line numbers) if the library fails.
func parseAST(data []byte) (f *ast.File) {
	defer func() {
		if recover() != nil {
			f = nil
		}
	}()
	f, _ = parser.ParseBytes(data, 0)
	return f
}

// expandEnv replaces ${VAR} with its value (empty when unset). Other '$' are kept, and "$$"
// stands for a literal '$'.
func expandEnv(data []byte, getenv func(string) string) []byte {
	var out []byte
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '$' && i+1 < len(data) {
			if data[i+1] == '$' {
				out = append(out, '$')
				i++
				continue
			}
			if data[i+1] == '{' {
				if end := strings.IndexByte(string(data[i+2:]), '}'); end > 0 {
					out = append(out, getenv(string(data[i+2:i+2+end]))...)
					i += 2 + end
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func yamlError(file string, err error) ConfigError {
	line := 0
	msg := err.Error()
	var ve *valueError
	var te yaml.Error
	if errors.As(err, &ve) {
		line, msg = ve.line, ve.msg
	} else if errors.As(err, &te) {
		if tok := te.GetToken(); tok != nil && tok.Position != nil {
			line = tok.Position.Line
		}
		msg = te.GetMessage()
	}
	return ConfigError{File: file, Line: line, Msg: msg}
}

// validator collects every problem with the line of the key it concerns.
type validator struct {
	file       string
	ast        *ast.File
	checkPaths bool
	sinkTypes  map[string]func(SinkConfig) error
	errs       ConfigErrors
}

// errorf records a problem at the YAML path (e.g. "$.inputs[0].format"); when the key is
// absent, the nearest enclosing node that exists gives the line.
func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, ConfigError{File: v.file, Line: v.line(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) line(path string) (line int) {
	if v.ast == nil {
		return 0
	}
	defer func() {
		if recover() != nil {
			line = 0 // a position lookup the YAML library fails on: report without a line
		}
	}()
	for p := path; p != "$" && p != ""; p = parentPath(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		n, err := yp.FilterFile(v.ast)
		if err != nil || n == nil {
			continue
		}
		if tok := n.GetToken(); tok != nil && tok.Position != nil {
			return tok.Position.Line
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return "$"
	}
	return p[:i]
}

func (v *validator) config(c *Config) {
	if c.DataDir == "" {
		v.errorf("$.data_dir", "data_dir: must not be empty")
	} else if v.checkPaths {
		v.writableDir("$.data_dir", "data_dir", c.DataDir)
		v.bufferFits(c)
	}
	if c.ShutdownTimeout <= 0 {
		v.errorf("$.shutdown_timeout", "shutdown_timeout: must be positive")
	}
	v.kubernetes(&c.Kubernetes)
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			v.errorf("$.metrics.listen", "metrics.listen: %v", err)
		}
	} else if c.Metrics.Pprof {
		v.errorf("$.metrics.pprof", "metrics.pprof: needs metrics.listen")
	}
	if c.Metrics.MaxSeries < 0 {
		v.errorf("$.metrics.max_series", "metrics.max_series: must not be negative (0 is no limit)")
	}
	if pr := c.Metrics.PodResources; pr.Interval < Duration(time.Second) {
		v.errorf("$.metrics.pod_resources.interval", "metrics.pod_resources.interval: must be at least 1s")
	} else if pr.Cgroup && pr.CgroupRoot == "" {
		v.errorf("$.metrics.pod_resources.cgroup_root", "metrics.pod_resources.cgroup_root: must not be empty when cgroup is on")
	}
	b := c.Buffer
	if b.SegmentBytes < 1<<20 {
		v.errorf("$.buffer.segment_bytes", "buffer.segment_bytes: %d is below the minimum of 1MiB", b.SegmentBytes)
	}
	if b.MaxBytes < 2*b.SegmentBytes {
		v.errorf("$.buffer.max_bytes", "buffer.max_bytes: must be at least two segments (2 x %d bytes)", b.SegmentBytes)
	}
	if b.WhenFull != "block" && b.WhenFull != "drop_oldest" {
		v.errorf("$.buffer.when_full", "buffer.when_full: %q is not one of block, drop_oldest", b.WhenFull)
	}
	inputs := map[string]bool{}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		p := fmt.Sprintf("$.inputs[%d]", i)
		v.input(p, in)
		if in.Name != "" {
			if inputs[in.Name] {
				v.errorf(p+".name", "inputs[%d].name: %q is used twice", i, in.Name)
			}
			inputs[in.Name] = true
		}
	}
	if len(c.Inputs) == 0 {
		v.errorf("$.inputs", "inputs: at least one input is needed")
	}
	sinks := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		p := fmt.Sprintf("$.sinks[%d]", i)
		v.sink(p, s)
		if s.Name != "" {
			if sinks[s.Name] {
				v.errorf(p+".name", "sinks[%d].name: %q is used twice", i, s.Name)
			}
			sinks[s.Name] = true
		}
	}
	if len(c.Sinks) == 0 {
		v.errorf("$.sinks", "sinks: at least one sink is needed")
	}
	if len(c.Sinks) > maxSinks {
		v.errorf("$.sinks", "sinks: at most %d sinks are supported", maxSinks)
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("$.routes[%d]", i)
		if r.Sinks == nil {
			v.errorf(p, "routes[%d].sinks: missing (list the sinks, or sinks: [] to drop what matches)", i)
		}
		for j, s := range r.Sinks {
			if !sinks[s] {
				v.errorf(fmt.Sprintf("%s.sinks[%d]", p, j), "routes[%d].sinks: no sink is named %q", i, s)
			}
		}
		if r.Match.Input != "" && !strings.ContainsAny(r.Match.Input, "*?[") && !inputs[r.Match.Input] {
			v.errorf(p+".match.input", "routes[%d].match.input: no input is named %q", i, r.Match.Input)
		}
		for _, pat := range r.Match.patterns() {
			if _, err := filepath.Match(pat, ""); err != nil {
				v.errorf(p+".match", "routes[%d].match: bad pattern %q: %v", i, pat, err)
			}
		}
		// Without the watch no record has labels or a workload: the route would match
		// nothing, silently.
		if !r.Match.Labels.Empty() && !c.Kubernetes.Enabled {
			v.errorf(p+".match.labels", "routes[%d].match.labels: pod labels come from the Kubernetes watch, which kubernetes.enabled: false turns off", i)
		}
		if r.Match.Workload != "" && !c.Kubernetes.Enabled {
			v.errorf(p+".match.workload", "routes[%d].match.workload: workloads come from the Kubernetes watch, which kubernetes.enabled: false turns off", i)
		}
		if _, err := parseStream(r.Match.Stream); err != nil {
			v.errorf(p+".match.stream", "routes[%d].match: %v", i, err)
		}
	}
}

// keysByType lists the keys each input or sink type accepts besides name and type.
var keysByType = map[string][]string{
	"tail": {"paths", "exclude", "format", "read_from", "max_line_bytes", "parse_json", "poll_interval", "max_open_files", "ignore_older",
		"rate_limit", "multiline", "detect_level", "filters", "redact"},
	"forward": {"listen", "socket", "socket_mode", "socket_group", "shared_key", "tls", "max_chunk_bytes", "max_connections", "idle_timeout",
		"handshake_timeout", "frame_timeout", "max_connections_per_peer", "max_buffered_bytes", "filters", "redact"},
	"file":          {"path", "max_in_flight", "batch_delay"},
	"stdout":        {"max_in_flight", "batch_delay"},
	"pubsub":        {"project", "topic", "endpoint", "insecure", "max_in_flight", "batch_delay", "ordering_key", "max_message_bytes", "oversize", "publish_timeout", "compression"},
	"cloud_logging": {"project", "log_id", "endpoint", "insecure", "max_in_flight", "batch_delay", "location", "cluster_name", "stdout_severity", "stderr_severity", "future_timestamp", "oversize", "max_entry_bytes", "max_entries_per_request", "request_timeout", "permission_retry"},
	"cloudwatch": {"region", "log_group", "log_stream", "endpoint", "insecure", "max_in_flight", "batch_delay",
		"message_format", "max_event_bytes", "oversize", "retention_days", "log_group_tags", "request_timeout"},
}

// foreignKeys returns the yaml keys set (non-zero) in v that typ does not accept.
func foreignKeys(v any, typ string) []string {
	allowed := map[string]bool{"name": true, "type": true}
	for _, k := range keysByType[typ] {
		allowed[k] = true
	}
	rv := reflect.ValueOf(v).Elem()
	var out []string
	for i := 0; i < rv.NumField(); i++ {
		key := strings.Split(rv.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if !allowed[key] && !rv.Field(i).IsZero() {
			out = append(out, key)
		}
	}
	return out
}

func (v *validator) input(p string, in *InputConfig) {
	if in.Name == "" {
		v.errorf(p, "input: name is required")
	}
	label := "input " + strconv.Quote(in.Name)
	if _, ok := keysByType[in.Type]; !ok || (in.Type != "tail" && in.Type != "forward") {
		v.errorf(p+".type", "%s: type %q is not one of tail, forward", label, in.Type)
		return
	}
	for _, k := range foreignKeys(in, in.Type) {
		v.errorf(p+"."+k, "%s: key %s does not apply to type %s", label, k, in.Type)
	}
	v.filters(p, label, in)
	switch in.Type {
	case "tail":
		if len(in.Paths) == 0 {
			v.errorf(p, "%s: paths: at least one glob is needed", label)
		}
		for j, g := range append(append([]string{}, in.Paths...), in.Exclude...) {
			if _, err := filepath.Match(g, ""); err != nil {
				v.errorf(fmt.Sprintf("%s.paths[%d]", p, j), "%s: bad glob %q: %v", label, g, err)
			} else if v.checkPaths && j < len(in.Paths) {
				if dir := globBase(g); dir != "" {
					if _, err := os.Stat(dir); err != nil {
						v.errorf(fmt.Sprintf("%s.paths[%d]", p, j), "%s: directory of %q: %v", label, g, err)
					} else if err := accessible(dir, false); err != nil {
						v.errorf(fmt.Sprintf("%s.paths[%d]", p, j), "%s: directory of %q is not readable: %v", label, g, err)
					}
				}
			}
		}
		if in.Format != "auto" && in.Format != "cri" && in.Format != "docker" {
			v.errorf(p+".format", "%s: format %q is not one of auto, cri, docker", label, in.Format)
		}
		if in.ReadFrom != "head" && in.ReadFrom != "tail" {
			v.errorf(p+".read_from", "%s: read_from %q is not one of head, tail", label, in.ReadFrom)
		}
		if in.MaxLineBytes < 1024 {
			v.errorf(p+".max_line_bytes", "%s: max_line_bytes must be at least 1KiB", label)
		}
		if rl := in.RateLimit; rl.Lines < 0 || rl.Bytes < 0 {
			v.errorf(p+".rate_limit", "%s: rate_limit: lines and bytes must not be negative", label)
		}
		if in.MaxOpenFiles < 1 {
			v.errorf(p+".max_open_files", "%s: max_open_files must be positive", label)
		}
		if _, err := multiline.Compile(in.Multiline.Rules()); err != nil {
			v.errorf(p+".multiline", "%s: %v", label, err)
		}
	case "forward":
		if in.Listen == "" && in.Socket == "" {
			v.errorf(p, "%s: listen or socket is required", label)
		}
		if in.Listen != "" {
			if _, _, err := net.SplitHostPort(in.Listen); err != nil {
				v.errorf(p+".listen", "%s: listen: %v", label, err)
			}
		}
		if in.SocketMode != "" {
			if _, err := strconv.ParseUint(in.SocketMode, 8, 32); err != nil {
				v.errorf(p+".socket_mode", "%s: socket_mode %q is not an octal mode", label, in.SocketMode)
			}
		}
		if (in.TLS.CertFile == "") != (in.TLS.KeyFile == "") {
			v.errorf(p+".tls", "%s: tls needs both cert_file and key_file", label)
		}
		if in.MaxConnections < 0 || in.MaxConnectionsPerPeer < 0 {
			v.errorf(p+".max_connections", "%s: max_connections and max_connections_per_peer must not be negative", label)
		}
		if in.MaxBufferedBytes > 0 && in.MaxBufferedBytes < in.MaxChunkBytes {
			v.errorf(p+".max_buffered_bytes", "%s: max_buffered_bytes (%d) must hold one max_chunk_bytes frame (%d)", label, in.MaxBufferedBytes, in.MaxChunkBytes)
		}
		if v.checkPaths {
			for _, f := range []string{in.TLS.CertFile, in.TLS.KeyFile} {
				if f == "" {
					continue
				}
				if _, err := os.Stat(f); err != nil {
					v.errorf(p+".tls", "%s: %v", label, err)
				}
			}
			if in.Socket != "" {
				v.writableDir(p+".socket", label+": socket", filepath.Dir(in.Socket))
			}
		}
	}
}

// filters checks the filter and redact rules of an input.
func (v *validator) filters(p, label string, in *InputConfig) {
	for i, f := range in.Filters {
		fp := fmt.Sprintf("%s.filters[%d]", p, i)
		if f.Action != "drop" && f.Action != "keep" {
			v.errorf(fp+".action", "%s: filters[%d].action %q is not one of drop, keep", label, i, f.Action)
		}
		if f.Namespace == "" && f.Container == "" && f.Message == "" {
			v.errorf(fp, "%s: filters[%d]: set at least one of namespace, container, message", label, i)
		}
		for _, g := range []string{f.Namespace, f.Container} {
			if _, err := filepath.Match(g, ""); err != nil {
				v.errorf(fp, "%s: filters[%d]: bad glob %q: %v", label, i, g, err)
			}
		}
		if _, err := regexp.Compile(f.Message); err != nil {
			v.errorf(fp+".message", "%s: filters[%d].message: %v", label, i, err)
		}
	}
	for i, r := range in.Redact {
		rp := fmt.Sprintf("%s.redact[%d]", p, i)
		if r.Pattern == "" {
			v.errorf(rp, "%s: redact[%d].pattern is required", label, i)
		} else if re, err := regexp.Compile(r.Pattern); err != nil {
			v.errorf(rp+".pattern", "%s: redact[%d].pattern: %v", label, i, err)
		} else if re.MatchString("") {
			v.errorf(rp+".pattern", "%s: redact[%d].pattern matches the empty string", label, i)
		}
	}
}

func (v *validator) sink(p string, s *SinkConfig) {
	if s.Name == "" {
		v.errorf(p, "sink: name is required")
	}
	label := "sink " + strconv.Quote(s.Name)
	if _, ok := keysByType[s.Type]; !ok || s.Type == "tail" || s.Type == "forward" {
		v.errorf(p+".type", "%s: type %q is not one of file, stdout, pubsub, cloud_logging, cloudwatch", label, s.Type)
		return
	}
	for _, k := range foreignKeys(s, s.Type) {
		v.errorf(p+"."+k, "%s: key %s does not apply to type %s", label, k, s.Type)
	}
	required := map[string][]struct{ key, val string }{
		"file":          {{"path", s.Path}},
		"pubsub":        {{"project", s.Project}, {"topic", s.Topic}},
		"cloud_logging": {}, // project, location, cluster_name: else the metadata server
		"cloudwatch":    {{"region", s.Region}, {"log_group", s.LogGroup}, {"log_stream", s.LogStream}},
	}
	for _, r := range required[s.Type] {
		if r.val == "" {
			v.errorf(p, "%s: %s is required for type %s", label, r.key, s.Type)
		}
	}
	if _, err := ParseOversize(s.Oversize); err != nil {
		v.errorf(p+".oversize", "%s: %v", label, err)
	}
	if s.Type == "cloud_logging" {
		v.cloudLogging(p, label, s)
	}
	if s.Type == "cloudwatch" {
		v.cloudwatch(p, label, s)
	}
	if s.MaxInFlight < 0 {
		v.errorf(p+".max_in_flight", "%s: max_in_flight must not be negative", label)
	}
	if s.Type == "file" && s.Path != "" && v.checkPaths {
		v.writableDir(p+".path", label+": path", filepath.Dir(s.Path))
	}
	if v.sinkTypes != nil {
		check, built := v.sinkTypes[s.Type]
		switch {
		case !built:
			names := make([]string, 0, len(v.sinkTypes))
			for t := range v.sinkTypes {
				names = append(names, t)
			}
			slices.Sort(names)
			v.errorf(p+".type", "%s: type %s is not built into this binary (it has: %s)", label, s.Type, strings.Join(names, ", "))
		case check != nil:
			if err := check(*s); err != nil {
				v.errorf(p, "%s: %v", label, err)
			}
		}
	}
}

// globBase returns the longest directory of pattern without glob metacharacters: the part that
// must exist for the glob to ever match ("/var/log/pods/*/*/*.log" -> "/var/log/pods").
func globBase(pattern string) string {
	dir := filepath.Dir(pattern)
	for strings.ContainsAny(dir, "*?[\\") {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	return dir
}

// cloudwatchRetentionDays are the values PutRetentionPolicy accepts.
var cloudwatchRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// cloudwatch checks the keys only a cloudwatch sink has (the limits are the PutLogEvents API's).
func (v *validator) cloudwatch(p, label string, s *SinkConfig) {
	if s.MessageFormat != "" && s.MessageFormat != "line" && s.MessageFormat != "envelope" {
		v.errorf(p+".message_format", "%s: message_format %q is not one of line, envelope", label, s.MessageFormat)
	}
	if s.MaxEventBytes != 0 && (s.MaxEventBytes < 1024 || s.MaxEventBytes > 1<<20) {
		v.errorf(p+".max_event_bytes", "%s: max_event_bytes must be between 1KiB and 1MiB (the PutLogEvents event limit)", label)
	}
	if s.RetentionDays != 0 && !slices.Contains(cloudwatchRetentionDays, s.RetentionDays) {
		v.errorf(p+".retention_days", "%s: retention_days %d is not one CloudWatch Logs accepts (%v)", label, s.RetentionDays, cloudwatchRetentionDays)
	}
}

// cloudLogging checks the cloud_logging keys (project, location and cluster_name may be left to
// the GCE metadata server; log_id empty is GKE's stdout/stderr naming).
func (v *validator) cloudLogging(p, label string, s *SinkConfig) {
	if s.FutureTimestamp != "" && s.FutureTimestamp != "clamp" && s.FutureTimestamp != "dead_letter" {
		v.errorf(p+".future_timestamp", "%s: future_timestamp %q is not one of clamp, dead_letter", label, s.FutureTimestamp)
	}
	if s.MaxEntryBytes != 0 && (s.MaxEntryBytes < 4096 || s.MaxEntryBytes > 256<<10) {
		v.errorf(p+".max_entry_bytes", "%s: max_entry_bytes must be between 4KiB and 256KiB", label)
	}
	if s.MaxEntriesPerRequest < 0 || s.MaxEntriesPerRequest > 10000 {
		v.errorf(p+".max_entries_per_request", "%s: max_entries_per_request must be between 1 and 10000", label)
	}
}

// writableDir reports a directory that does not exist and cannot be created, or is not a
// directory. It creates nothing.
func (v *validator) writableDir(p, label, dir string) {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				v.errorf(p, "%s: %s is not a directory", label, d)
			} else if err := accessible(d, true); err != nil {
				v.errorf(p, "%s: %s is not writable: %v", label, d, err)
			}
			return
		}
		if errors.Is(err, syscall.ENOTDIR) {
			v.errorf(p, "%s: a parent of %s is not a directory", label, dir)
			return
		}
		if !os.IsNotExist(err) {
			v.errorf(p, "%s: %v", label, err)
			return
		}
		if d == filepath.Dir(d) {
			return
		}
	}
}

// bufferFits reports a buffer.max_bytes larger than the volume that will hold data_dir (its
// nearest existing directory): the buffer could never reach its bound, and the disk would
// fill first.
func (v *validator) bufferFits(c *Config) {
	d := c.DataDir
	for {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		d = filepath.Dir(d)
	}
	size, ok := volumeSize(d)
	if ok && int64(c.Buffer.MaxBytes) > size {
		v.errorf("$.buffer.max_bytes", "buffer.max_bytes: %d bytes do not fit the volume of %s (%d bytes)", int64(c.Buffer.MaxBytes), d, size)
	}
}

func (v *validator) kubernetes(k *KubernetesConfig) {
	for i, p := range k.Labels {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			v.errorf(fmt.Sprintf("$.kubernetes.labels[%d]", i), "kubernetes.labels: bad pattern %q", p)
		}
	}
	for i, p := range k.Annotations {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			v.errorf(fmt.Sprintf("$.kubernetes.annotations[%d]", i), "kubernetes.annotations: bad pattern %q", p)
		}
	}
	if k.WaitForPod < 0 || k.WaitForPod > Duration(time.Minute) {
		v.errorf("$.kubernetes.wait_for_pod", "kubernetes.wait_for_pod: %s is not between 0 and 1m", time.Duration(k.WaitForPod))
	}
	if v.checkPaths && k.Kubeconfig != "" {
		if _, err := os.Stat(k.Kubeconfig); err != nil {
			v.errorf("$.kubernetes.kubeconfig", "kubernetes.kubeconfig: %v", err)
		}
	}
}
