package exporter

import (
	"sync"
	"sync/atomic"
	"time"
)

// Tail progress family names (a DESIGN.md contract).
const (
	PodLogWrittenName = "tailgate_pod_log_written_bytes_total"
	PodLogReadName    = "tailgate_pod_log_read_bytes_total"
	PodLogLagName     = "tailgate_pod_log_lag_bytes"
)

var podContainerLabels = []string{"namespace", "pod", "container"}

// tailSeries is one container's log files as the tail sees them.
type tailSeries struct {
	seriesHead[*tailSeries]
	written atomic.Uint64
	read    atomic.Uint64
	lag     atomic.Int64
}

func (s *tailSeries) reset() {
	s.written.Store(0)
	s.read.Store(0)
	s.lag.Store(0)
}

type fileKey struct{ dev, ino uint64 }

// tailFile is what was last reported for one file.
type tailFile struct {
	s          *tailSeries // nil while refused by the budget
	retryAt    int64
	size, read int64
}

// podTail turns the tail input's per-file sizes and read offsets into per-container series:
// bytes the runtime wrote, bytes the tail read, and the difference now.
type podTail struct {
	t *table[tailSeries, *tailSeries]

	mu    sync.Mutex
	files map[fileKey]*tailFile
	now   func() time.Time
}

// refusedRetry is how long a file whose series the budget refused waits before asking again.
const refusedRetry = 10 * time.Second

func newPodTail(b *budget) *podTail {
	return &podTail{files: make(map[fileKey]*tailFile), now: time.Now, t: newTable(podContainerLabels, b,
		counterFamily(PodLogWrittenName, "Bytes the container runtime wrote to the container's log files, as the tail saw them grow (rotated files included).",
			func(s *tailSeries) uint64 { return s.written.Load() }),
		counterFamily(PodLogReadName, "Bytes of the container's log files the tail read (line framing included, unlike tailgate_pod_log_bytes_total).",
			func(s *tailSeries) uint64 { return s.read.Load() }),
		intGaugeFamily(PodLogLagName, "Bytes written to the container's open log files and not read yet.",
			func(s *tailSeries) int64 { return max(0, s.lag.Load()) }),
	)}
}

// progress folds one report of a file in. The first report of a file counts its whole size as
// written and its offset as read: a file found at start makes the series start there (rate()
// ignores a series' first value), and a file created by a rotation adds what it already holds.
func (pt *podTail) progress(k fileKey, namespace, pod, container string, size, read int64) {
	size, read = max(0, size), max(0, read)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	f := pt.files[k]
	if f == nil {
		f = &tailFile{}
		pt.files[k] = f
	}
	if f.s == nil {
		now := pt.now().UnixNano()
		if now < f.retryAt {
			f.size, f.read = size, read
			return
		}
		if f.s = pt.t.acquire(namespace, pod, container); f.s == nil {
			f.retryAt = now + int64(refusedRetry)
			f.size, f.read = size, read
			return
		}
		f.size, f.read = 0, 0
	}
	wrote := size - f.size
	if size < f.size { // truncated (copytruncate): what is there now was written since
		wrote = size
	}
	consumed := read - f.read
	if read < f.read { // a new generation after the truncation is read from 0
		consumed = read
	}
	f.s.written.Add(uint64(wrote))
	f.s.read.Add(uint64(consumed))
	f.s.lag.Add((size - read) - (f.size - f.read))
	f.size, f.read = size, read
}

// closed forgets a file: its unread bytes (deleted before they were read) leave the lag.
func (pt *podTail) closed(k fileKey) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	f := pt.files[k]
	if f == nil {
		return
	}
	delete(pt.files, k)
	if f.s != nil {
		f.s.lag.Add(-(f.size - f.read))
		pt.t.release(f.s)
	}
}
