package exporter

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/internal/ratelog"
)

// Self-metric names of the per-pod families (a DESIGN.md contract).
const (
	SeriesName        = "tailgate_exporter_series"
	SeriesLimitName   = "tailgate_exporter_series_limit"
	SeriesRefusedName = "tailgate_exporter_series_refused_total"
)

// DefaultMaxSeries is the per-node budget of per-pod samples when Options.MaxSeries is 0:
// 250 pods of 4 containers at ~100 samples each, far above what a node's pods make in practice
// (about 15 samples per logging container), and small enough that a runaway stays cheap.
const DefaultMaxSeries = 100_000

// Options configure Pods.
type Options struct {
	// MaxSeries bounds the per-pod samples this node exposes (metrics.max_series): a new series
	// beyond it is not created and the refusal is counted. 0 means DefaultMaxSeries, < 0 none.
	MaxSeries int
	// Logger receives rate-limited warnings of the resource scans; nil means slog.Default().
	Logger *slog.Logger
}

// Pods is every per-pod family of one node, sharing one series budget and one pod lifecycle:
// log throughput (Logs), tail progress (FileProgress, FileClosed, from the tail input), log
// disk usage and cgroup CPU/memory (Scan), and the exporter's own series count. It is an
// io.WriterTo for Handler.
type Pods struct {
	budget budget
	logs   *PodLogs
	tail   *podTail
	disk   *podDisk
	cgroup *podCgroups
	info   *podInfo
	log    *slog.Logger
	warn   *ratelog.Limiter

	mu   sync.Mutex
	uids map[string]podName // from the watch: the cgroup scan names pods by uid

	selfMu  sync.Mutex
	selfBuf []byte // the self metrics' text, reused by every scrape
}

type podName struct{ namespace, pod string }

// NewPods returns empty per-pod families.
func NewPods(o Options) *Pods {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &Pods{log: o.Logger, uids: make(map[string]podName)}
	switch {
	case o.MaxSeries == 0:
		p.budget.limit = DefaultMaxSeries
	case o.MaxSeries > 0:
		p.budget.limit = int64(o.MaxSeries)
	}
	p.warn = ratelog.New(o.Logger, time.Minute)
	p.logs = newPodLogs(&p.budget)
	p.tail = newPodTail(&p.budget)
	p.disk = newPodDisk(&p.budget)
	p.cgroup = newPodCgroups(&p.budget)
	p.info = newPodInfo(&p.budget)
	return p
}

// Logs is the per-stream log throughput families.
func (p *Pods) Logs() *PodLogs { return p.logs }

// PodSeen tells the exporter that the pod exists (the Kubernetes watch saw it added or
// updated) and publishes its tailgate_pod_info series. While the pod exists its series stay,
// even when no file references them, so a counter does not vanish and reappear reset between
// two containers of a pod. Without the watch the lifecycle is derived from the log paths: a
// series goes when its files are gone.
func (p *Pods) PodSeen(pod PodInfo) {
	if pod.UID != "" {
		p.mu.Lock()
		p.uids[pod.UID] = podName{pod.Namespace, pod.Name}
		p.mu.Unlock()
	}
	// The disk and cgroup series follow their directories, which outlive the pod's processes
	// and go only after it: the watch adds nothing there.
	p.logs.t.podSeen(pod.Namespace, pod.Name, pod.UID)
	p.tail.t.podSeen(pod.Namespace, pod.Name, pod.UID)
	p.info.seen(pod)
}

// PodDeleted tells the exporter that the pod is gone (the watch saw it deleted). Its series go
// once nothing references them (its files were drained) and at least two scrape intervals
// passed, so the last increments are scraped. A uid other than the last one seen for the name
// (a newer pod took the name) is ignored; an empty uid matches any.
func (p *Pods) PodDeleted(namespace, pod, uid string) {
	if uid != "" {
		p.mu.Lock()
		if n, ok := p.uids[uid]; ok && n == (podName{namespace, pod}) {
			delete(p.uids, uid)
		}
		p.mu.Unlock()
	}
	p.logs.t.podDeleted(namespace, pod, uid)
	p.tail.t.podDeleted(namespace, pod, uid)
	p.info.deleted(namespace, pod, uid)
}

// FileProgress reports one tailed file of a container: its size and how far the tail read it.
// The tail input calls it once per poll for every file it tails (collector/tail Progress). dev
// and ino identify the file; a size below the last one reported is a truncation.
func (p *Pods) FileProgress(dev, ino uint64, namespace, pod, container string, size, read int64) {
	p.tail.progress(fileKey{dev, ino}, namespace, pod, container, size, read)
}

// FileClosed reports that the tail closed the file for good.
func (p *Pods) FileClosed(dev, ino uint64) { p.tail.closed(fileKey{dev, ino}) }

// Families returns the name of every family WriteTo can write.
func (p *Pods) Families() []string {
	var out []string
	for _, fs := range [][]string{p.logs.t.names(), p.tail.t.names(), p.disk.t.names(), p.cgroup.t.names(), p.info.t.names()} {
		out = append(out, fs...)
	}
	return append(out, SeriesName, SeriesLimitName, SeriesRefusedName)
}

// Len reports the per-pod series held in all families.
func (p *Pods) Len() int {
	return p.logs.t.len() + p.tail.t.len() + p.disk.t.len() + p.cgroup.t.len() + p.info.t.len()
}

// WriteTo streams every per-pod family, then the exporter's series count, limit and refusals.
func (p *Pods) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, x := range []io.WriterTo{p.logs.t, p.tail.t, p.disk.t, p.cgroup.t, p.info.t} {
		n, err := x.WriteTo(w)
		total += n
		if err != nil {
			return total, err
		}
	}
	p.selfMu.Lock()
	defer p.selfMu.Unlock()
	out := append(p.selfBuf[:0], selfHeader...)
	out = strconv.AppendInt(out, p.budget.used.Load(), 10)
	out = append(out, selfLimit...)
	out = strconv.AppendInt(out, p.budget.limit, 10)
	out = append(out, selfRefused...)
	out = strconv.AppendUint(out, p.budget.refused.Load(), 10)
	out = append(out, '\n')
	p.selfBuf = out
	n, err := w.Write(out)
	return total + int64(n), err
}

const (
	selfHeader = "# HELP " + SeriesName + " Per-pod samples exposed (the tailgate_pod_* families), counted against metrics.max_series.\n" +
		"# TYPE " + SeriesName + " gauge\n" + SeriesName + " "
	selfLimit = "\n# HELP " + SeriesLimitName + " The per-node budget of per-pod samples (metrics.max_series); 0 is no limit.\n" +
		"# TYPE " + SeriesLimitName + " gauge\n" + SeriesLimitName + " "
	selfRefused = "\n# HELP " + SeriesRefusedName + " Per-pod series not created because the budget was reached.\n" +
		"# TYPE " + SeriesRefusedName + " counter\n" + SeriesRefusedName + " "
)
