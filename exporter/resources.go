package exporter

import (
	"context"
	"maps"
	"time"
)

// ResourceOptions say what the resource scans read.
type ResourceOptions struct {
	// LogDir is the kubelet's pod log directory (/var/log/pods); "" turns the disk scan off.
	LogDir string
	// Cgroup turns on cgroup v2 CPU and memory per pod, read under CgroupRoot (the host's
	// /sys/fs/cgroup, mounted into the agent's container). Off by default: cAdvisor exports them.
	Cgroup     bool
	CgroupRoot string
	// Interval between scans; 0 means DefaultResourceInterval.
	Interval time.Duration
}

// Defaults of ResourceOptions.
const (
	DefaultResourceInterval = 15 * time.Second
	DefaultCgroupRoot       = "/sys/fs/cgroup"
)

// RunResources scans every Interval until ctx ends, then releases the series it held. Scan
// errors are logged at most once a minute each and the scans go on.
func (p *Pods) RunResources(ctx context.Context, o ResourceOptions) {
	if o.Interval <= 0 {
		o.Interval = DefaultResourceInterval
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = DefaultCgroupRoot
	}
	defer func() {
		p.disk.held.releaseAll()
		p.cgroup.held.releaseAll()
	}()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		p.ScanResources(o)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ScanResources runs one scan of the pod log directory and, if asked, of the pod cgroups. It
// is called by one goroutine at a time.
func (p *Pods) ScanResources(o ResourceOptions) {
	names := make(map[string]podName)
	if o.LogDir != "" {
		uids, err := p.disk.scan(o.LogDir)
		if err != nil {
			p.warn.Warn("disk", "pod log disk scan failed", "err", err)
		}
		maps.Copy(names, uids)
	}
	if !o.Cgroup {
		return
	}
	p.mu.Lock()
	maps.Copy(names, p.uids)
	p.mu.Unlock()
	root := o.CgroupRoot
	if root == "" {
		root = DefaultCgroupRoot
	}
	if err := p.cgroup.scan(root, names); err != nil {
		p.warn.Warn("cgroup", "pod cgroup scan failed", "err", err)
	}
}

// scanned is the series a periodic scan holds, by what it found (a container directory, a pod
// uid): each scan marks what it sees, and what it no longer sees is released.
type scanned[K comparable, S any, P series[S, P]] struct {
	t    *table[S, P]
	held map[K]P
	seen map[K]bool
}

func newScanned[K comparable, S any, P series[S, P]](t *table[S, P]) scanned[K, S, P] {
	return scanned[K, S, P]{t: t, held: make(map[K]P), seen: make(map[K]bool)}
}

func (sc *scanned[K, S, P]) begin() { clear(sc.seen) }

// get marks k seen and returns its series, acquiring it the first time; nil while the budget
// refuses it (asked again next scan).
func (sc *scanned[K, S, P]) get(k K, values ...string) P {
	sc.seen[k] = true
	if s, ok := sc.held[k]; ok {
		return s
	}
	s := sc.t.acquire(values...)
	if s != nil {
		sc.held[k] = s
	}
	return s
}

// end releases what this scan did not see.
func (sc *scanned[K, S, P]) end() {
	for k, s := range sc.held {
		if !sc.seen[k] {
			sc.t.release(s)
			delete(sc.held, k)
		}
	}
}

// releaseAll releases everything (the scans stopped).
func (sc *scanned[K, S, P]) releaseAll() {
	sc.begin()
	sc.end()
}
