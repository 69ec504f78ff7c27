package exporter

import (
	"io"
	"sync/atomic"
)

// Per-pod log family names (a DESIGN.md contract).
const (
	PodLogLinesName   = "tailgate_pod_log_lines_total"
	PodLogBytesName   = "tailgate_pod_log_bytes_total"
	PodLogDroppedName = "tailgate_pod_log_dropped_total"
)

// DropReasonOther collects the drops of reasons beyond the first maxDropReasons-1 seen by a
// series, so that a caller passing unbounded reasons cannot grow a series without bound.
const DropReasonOther = "other"

// maxDropReasons is ten: the pipeline's own reasons (route, garbage, overlong, excluded,
// rate_limit, filtered) each keep a series of their own in a stream that meets them all, with
// room for several filter rules' reasons; the set is allocated only for a stream that drops.
const maxDropReasons = 10

var podLogLabels = []string{"namespace", "pod", "container", "stream"}

// LogSeries counts one container stream's log lines. Add and AddDropped are safe for
// concurrent use and lock-free; a nil *LogSeries counts nothing.
type LogSeries struct {
	seriesHead[*LogSeries]
	lines   atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Pointer[dropSet] // nil until the first drop: most streams never drop
}

type dropSet [maxDropReasons]atomic.Pointer[dropCount]

type dropCount struct {
	reason string
	label  string // `,reason="..."`, rendered once
	n      atomic.Uint64
}

// Add counts lines read and their bytes.
func (s *LogSeries) Add(lines, bytes uint64) {
	if s == nil {
		return
	}
	s.lines.Add(lines)
	s.bytes.Add(bytes)
}

// AddDropped counts n records dropped for reason. The first time a series sees a reason it
// allocates that reason's counter; after maxDropReasons-1 distinct reasons the rest are
// counted as DropReasonOther.
func (s *LogSeries) AddDropped(reason string, n uint64) {
	if s == nil {
		return
	}
	for i := range maxDropReasons - 1 {
		if c := s.dropSlot(i, reason); c != nil {
			c.n.Add(n)
			return
		}
	}
	s.dropSlot(maxDropReasons-1, DropReasonOther).n.Add(n)
}

func (s *LogSeries) reset() {
	s.lines.Store(0)
	s.bytes.Store(0)
	s.dropped.Store(nil)
}

// dropSlot returns slot i's counter if it is reason's, claiming the slot if it is empty; nil
// if another reason holds it.
func (s *LogSeries) dropSlot(i int, reason string) *dropCount {
	set := s.dropped.Load()
	if set == nil {
		s.dropped.CompareAndSwap(nil, new(dropSet))
		set = s.dropped.Load()
	}
	c := set[i].Load()
	if c == nil {
		label := []byte(`,reason="`)
		label = appendLabelValue(label, reason)
		label = append(label, '"')
		fresh := &dropCount{reason: reason, label: string(label)}
		if set[i].CompareAndSwap(nil, fresh) {
			return fresh
		}
		c = set[i].Load()
	}
	if c.reason == reason {
		return c
	}
	return nil
}

// PodLogs holds the per-pod log families: tailgate_pod_log_lines_total,
// tailgate_pod_log_bytes_total (labels namespace, pod, container, stream) and
// tailgate_pod_log_dropped_total (the same plus reason).
type PodLogs struct {
	t *table[LogSeries, *LogSeries]
}

// NewPodLogs returns an empty set of per-pod log series with no series budget.
func NewPodLogs() *PodLogs { return newPodLogs(nil) }

func newPodLogs(b *budget) *PodLogs {
	return &PodLogs{t: newTable(podLogLabels, b,
		counterFamily(PodLogLinesName, "Log lines read per container stream.",
			func(s *LogSeries) uint64 { return s.lines.Load() }),
		counterFamily(PodLogBytesName, "Log bytes read per container stream.",
			func(s *LogSeries) uint64 { return s.bytes.Load() }),
		newFamily(PodLogDroppedName, "Log records dropped per container stream, by reason.", typeCounter,
			appendDropped),
	).withWeight(2)} // lines and bytes; drops add at most maxDropReasons per stream that dropped
}

func appendDropped(dst []byte, name string, s *LogSeries) []byte {
	set := s.dropped.Load()
	if set == nil {
		return dst
	}
	for i := range set {
		if c := set[i].Load(); c != nil {
			dst = appendUintSample(dst, name, s.labels, c.label, c.n.Load())
		}
	}
	return dst
}

// Acquire returns the series for the label set, creating it (its label text rendered once) or
// taking one more reference on the existing one. Pair every Acquire with a Release. It returns
// nil, which counts nothing, when a new series would exceed the series budget. Safe for
// concurrent use.
func (p *PodLogs) Acquire(namespace, pod, container, stream string) *LogSeries {
	return p.t.acquire(namespace, pod, container, stream)
}

// Release drops a reference taken by Acquire; the series must not be used after. When the last
// one is gone, and the pod is not held by the watch (Pods.PodSeen), the series is removed by the
// first scrape at least two scrape intervals later, which writes its final values; counts added
// after the last Release may be lost. A nil series is ignored.
func (p *PodLogs) Release(s *LogSeries) {
	if s == nil {
		return
	}
	p.t.release(s)
}

// Len reports the number of series held, released ones awaiting their last scrape included.
func (p *PodLogs) Len() int { return p.t.len() }

// WriteTo streams the three families in the text exposition format (HELP/TYPE once per family,
// families without samples omitted) into w through a reused buffer. Safe for concurrent use
// with everything else, including other scrapes.
func (p *PodLogs) WriteTo(w io.Writer) (int64, error) { return p.t.WriteTo(w) }
