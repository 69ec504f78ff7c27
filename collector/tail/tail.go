package tail

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// Defaults for zero config values.
const (
	DefaultMaxLineBytes = 256 << 10
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxOpenFiles = 1024
	// DefaultRotateWait is how long a rotated or deleted file is still read after it reached its
	// end: the runtime may write a last burst before it reopens the new file.
	DefaultRotateWait = 5 * time.Second
)

// Input tails container log files. It implements collector.Input.
type Input struct {
	name      string
	node      string
	paths     []string
	exclude   []string
	format    format
	readTail  bool
	maxLine   int
	parseJSON bool
	// multiline are the configured rules (nil: no joining); chooseML may pick others per
	// container (SetMultilineChooser).
	multiline   *multiline.Rules
	chooseML    MultilineChooser
	detectLevel bool
	poll        time.Duration
	rescan      time.Duration
	maxOpen     int
	ignoreOld   time.Duration
	nReaders    int

	rotateWait   time.Duration
	shutdownWait time.Duration
	readBuf      int // read buffer size override (tests); 0 = sized from maxLine
	flushRecords int // records per emitted batch at most (tests make it 1 to crash between any two)

	metrics *collector.Metrics
	meta    *kube.Cache // nil: metadata from log paths only
	limit   rateLimit   // per container; zero rates: none
	log     *slog.Logger
	warn    *collector.WarnLimiter

	progress Progress // per-file size and read offset, for per-container lag (progress.go)

	mu      sync.Mutex
	known   map[string]bool   // stream paths being served
	claimed map[fileID]bool   // files being read, so two paths to one file read it once
	lags    map[*reader]int64 // unread bytes per reader, summed into tailgate_tail_lag_bytes
	open    atomic.Int64
}

// New checks cfg and builds a tail input. node is the node name put in every record's metadata.
func New(cfg collector.InputConfig, node string, m *collector.Metrics, log *slog.Logger) (*Input, error) {
	if log == nil {
		log = slog.Default()
	}
	in := &Input{
		name:         cfg.Name,
		node:         node,
		paths:        cfg.Paths,
		exclude:      cfg.Exclude,
		maxLine:      int(cfg.MaxLineBytes),
		parseJSON:    cfg.ParseJSON,
		detectLevel:  cfg.DetectLevel,
		poll:         time.Duration(cfg.PollInterval),
		maxOpen:      cfg.MaxOpenFiles,
		ignoreOld:    time.Duration(cfg.IgnoreOlder),
		nReaders:     2,
		rotateWait:   DefaultRotateWait,
		flushRecords: flushRecords,
		shutdownWait: 5 * time.Second,
		metrics:      m,
		log:          log,
		known:        make(map[string]bool),
		claimed:      make(map[fileID]bool),
		lags:         make(map[*reader]int64),
	}
	in.warn = collector.NewWarnLimiter(in.log, time.Minute)
	if cfg.RateLimit.Lines < 0 || cfg.RateLimit.Bytes < 0 {
		return nil, fmt.Errorf("input %s: rate_limit: lines and bytes must not be negative", cfg.Name)
	}
	in.limit = newRateLimit(cfg.RateLimit)
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("input %s: paths: at least one glob is required", cfg.Name)
	}
	for _, p := range append(append([]string(nil), cfg.Paths...), cfg.Exclude...) {
		if err := checkGlob(p); err != nil {
			return nil, fmt.Errorf("input %s: %w", cfg.Name, err)
		}
	}
	switch cfg.Format {
	case "", "auto":
	case "cri":
		in.format = formatCRI
	case "docker":
		in.format = formatDocker
	default:
		return nil, fmt.Errorf("input %s: format: %q is not auto, cri or docker", cfg.Name, cfg.Format)
	}
	switch cfg.ReadFrom {
	case "", "head":
	case "tail":
		in.readTail = true
	default:
		return nil, fmt.Errorf("input %s: read_from: %q is not head or tail", cfg.Name, cfg.ReadFrom)
	}
	if in.maxLine < 0 || in.poll < 0 || in.maxOpen < 0 || in.ignoreOld < 0 {
		return nil, fmt.Errorf("input %s: max_line_bytes, poll_interval, max_open_files and ignore_older must not be negative", cfg.Name)
	}
	if in.maxLine == 0 {
		in.maxLine = DefaultMaxLineBytes
	}
	if in.poll == 0 {
		in.poll = DefaultPollInterval
	}
	if in.maxOpen == 0 {
		in.maxOpen = DefaultMaxOpenFiles
	}
	in.nReaders = min(in.nReaders, in.maxOpen)
	rules, err := multiline.Compile(cfg.Multiline.Rules())
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", cfg.Name, err)
	}
	in.multiline = rules
	in.rescan = 4 * in.poll
	return in, nil
}

// SetMetadata makes streams take their pod's metadata from the watch's cache (bounded wait
// for a pod not there yet, updates published to every file's source, tailgate.io/exclude).
// Call before Run.
func (in *Input) SetMetadata(c *kube.Cache) { in.meta = c }

// MultilineChooser picks the multiline rules of a container's log stream when the input first
// serves it (and again after a restart). configured is the input's own (nil when its config
// joins nothing); returning nil turns joining off for the stream. k is the identity taken
// from the log path (namespace, pod, pod UID when known, container). It is called from the
// reader goroutines, so it must be safe for concurrent use, and should return the same
// *multiline.Rules for the same setting (compile once, cache) and not block.
type MultilineChooser func(k *collector.Kube, configured *multiline.Rules) *multiline.Rules

// SetMultilineChooser installs a per-container choice of multiline rules (a pod annotation,
// say). Call it before Run.
func (in *Input) SetMultilineChooser(c MultilineChooser) { in.chooseML = c }

// multilineFor returns the rules for a new stream.
func (in *Input) multilineFor(k *collector.Kube) *multiline.Rules {
	if in.chooseML != nil {
		return in.chooseML(k, in.multiline)
	}
	return in.multiline
}

// readBufSize is the per-reader buffer: a physical line longer than this is cut, so it holds
// a max_line_bytes message even when docker escaping doubles it.
func (in *Input) readBufSize() int {
	if in.readBuf > 0 {
		return in.readBuf
	}
	return max(minReadBufSize, 2*in.maxLine+4096)
}

// Name is the configured input name.
func (in *Input) Name() string { return in.name }

// Run tails until ctx ends, then emits the complete records already read and returns nil.
// Positions travel in the emitted batches; on start, out.State() says where to resume.
func (in *Input) Run(ctx context.Context, out collector.Emitter) error {
	saved, bad := decodeState(out.State())
	readers := make([]*reader, in.nReaders)
	for i := range readers {
		readers[i] = newReader(in)
	}
	readers[0].gone = append(readers[0].gone, bad...)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(readers))
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.run(ctx, out); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	d := &discovery{in: in, readers: readers, saved: saved, firstStart: len(saved) == 0 && len(bad) == 0}
	d.run(ctx)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("input %s: %w", in.name, err)
	}
	return nil
}

// decodeState groups the saved files by the path of their stream; undecodable keys are
// returned for deletion.
func decodeState(state map[string][]byte) (map[string][]savedFile, []string) {
	saved := make(map[string][]savedFile)
	var bad []string
	for k, v := range state {
		sv, err := decodeSaved(v)
		if err != nil || stateKey(sv.id) != k {
			bad = append(bad, k)
			continue
		}
		saved[sv.logical] = append(saved[sv.logical], sv)
	}
	return saved, bad
}

func (in *Input) readerFor(readers []*reader, path string) *reader {
	h := fnv.New32a()
	h.Write([]byte(path))
	return readers[h.Sum32()%uint32(len(readers))]
}

// register marks path as served; false if it already is.
func (in *Input) register(path string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.known[path] {
		return false
	}
	in.known[path] = true
	return true
}

func (in *Input) isKnown(path string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.known[path]
}

func (in *Input) forget(path string) {
	in.mu.Lock()
	delete(in.known, path)
	in.mu.Unlock()
}

func (in *Input) claim(id fileID) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.claimed[id] {
		return false
	}
	in.claimed[id] = true
	return true
}

func (in *Input) unclaim(id fileID) {
	in.mu.Lock()
	delete(in.claimed, id)
	in.mu.Unlock()
}

func (in *Input) addOpen(n int64) {
	v := in.open.Add(n)
	if in.metrics != nil {
		in.metrics.TailOpenFiles.WithLabelValues(in.name).Set(float64(v))
	}
}

func (in *Input) setLag(r *reader, lag int64) {
	in.mu.Lock()
	in.lags[r] = lag
	var sum int64
	for _, l := range in.lags {
		sum += l
	}
	in.mu.Unlock()
	if in.metrics != nil {
		in.metrics.TailLagBytes.WithLabelValues(in.name).Set(float64(sum))
	}
}
