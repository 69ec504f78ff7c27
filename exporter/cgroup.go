package exporter

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// Pod cgroup family names (a DESIGN.md contract).
const (
	PodCPUName              = "tailgate_pod_cpu_seconds_total"
	PodCPUThrottledName     = "tailgate_pod_cpu_throttled_seconds_total"
	PodMemoryWorkingSetName = "tailgate_pod_memory_working_set_bytes"
	PodOOMKillsName         = "tailgate_pod_memory_oom_kills_total"
)

var podLabels = []string{"namespace", "pod"}

// cgroupSeries is one pod's cgroup.
type cgroupSeries struct {
	seriesHead[*cgroupSeries]
	cpuUsec       atomic.Uint64
	throttledUsec atomic.Uint64
	workingSet    atomic.Uint64
	oomKills      atomic.Uint64
}

func (s *cgroupSeries) reset() {
	s.cpuUsec.Store(0)
	s.throttledUsec.Store(0)
	s.workingSet.Store(0)
	s.oomKills.Store(0)
}

// podCgroups reads cgroup v2 CPU and memory of this node's pods. It is off by default: the
// kubelet's cAdvisor already exports both, and tailgate must not duplicate them where it runs.
type podCgroups struct {
	t *table[cgroupSeries, *cgroupSeries]

	// Owned by the scanning goroutine.
	held scanned[string, cgroupSeries, *cgroupSeries] // by pod uid
	buf  []byte
}

func usecToSeconds(us uint64) float64 { return float64(us) / 1e6 }

func newPodCgroups(b *budget) *podCgroups {
	c := &podCgroups{buf: make([]byte, 0, 4096),
		t: newTable(podLabels, b,
			floatCounterFamily(PodCPUName, "CPU time used by the pod's containers (cgroup v2 cpu.stat usage_usec).",
				func(s *cgroupSeries) float64 { return usecToSeconds(s.cpuUsec.Load()) }),
			floatCounterFamily(PodCPUThrottledName, "Time the pod's cgroup was throttled by its CPU limit (cgroup v2 cpu.stat throttled_usec).",
				func(s *cgroupSeries) float64 { return usecToSeconds(s.throttledUsec.Load()) }),
			gaugeFamily(PodMemoryWorkingSetName, "Memory of the pod's cgroup minus its inactive file cache (memory.current - inactive_file, as cAdvisor computes the working set).",
				func(s *cgroupSeries) float64 { return float64(s.workingSet.Load()) }),
			counterFamily(PodOOMKillsName, "Processes of the pod killed by the OOM killer (cgroup v2 memory.events oom_kill).",
				func(s *cgroupSeries) uint64 { return s.oomKills.Load() }),
		)}
	c.held = newScanned[string](c.t)
	return c
}

// findPodCgroups returns the pod cgroup directories under root by pod uid, for the kubelet's
// systemd driver (kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice,
// dashes of the uid written as underscores) and cgroupfs driver (kubepods/burstable/pod<uid>),
// guaranteed pods one level up, under a --cgroup-root prefix or not (kubelet.slice/...). It
// descends only into directories whose name says kubepods or kubelet and, below a kubepods
// one, the QoS class directories; at most 4 levels deep, never into a pod's own cgroup.
func findPodCgroups(root string) (map[string]string, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return nil, fmt.Errorf("cgroup root %s is not a cgroup v2 hierarchy: %w", root, err)
	}
	out := make(map[string]string)
	var walk func(dir string, depth int, inKubepods bool)
	walk = func(dir string, depth int, inKubepods bool) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			name := e.Name()
			if uid, ok := podCgroupUID(name); ok {
				out[uid] = filepath.Join(dir, name)
				continue
			}
			kube := strings.Contains(name, "kubepods")
			if depth < 4 && (kube || strings.Contains(name, "kubelet") || (inKubepods && (name == "burstable" || name == "besteffort"))) {
				walk(filepath.Join(dir, name), depth+1, inKubepods || kube)
			}
		}
	}
	walk(root, 1, false)
	return out, nil
}

// podCgroupUID recognizes a pod cgroup's name and returns the pod uid in its API form.
func podCgroupUID(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".slice")
	i := strings.LastIndex(name, "pod")
	if i < 0 || (i > 0 && name[i-1] != '-') {
		return "", false
	}
	uid := strings.ReplaceAll(name[i+3:], "_", "-")
	if len(uid) != 36 || strings.Count(uid, "-") != 4 {
		return "", false
	}
	for _, c := range uid {
		if c != '-' && (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return uid, true
}

// scan reads the cgroup of every pod it can name (uids from the log directory scan and the
// watch), creating and releasing series as pods come and go.
func (c *podCgroups) scan(root string, names map[string]podName) error {
	dirs, err := findPodCgroups(root)
	if err != nil {
		return err
	}
	c.held.begin()
	var firstErr error
	for uid, dir := range dirs {
		n, ok := names[uid]
		if !ok {
			continue // not a pod this node's logs or watch know (yet)
		}
		st, err := c.read(dir)
		if err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		s := c.held.get(uid, n.namespace, n.pod)
		if s == nil {
			continue // refused by the budget
		}
		s.cpuUsec.Store(st.cpuUsec)
		s.throttledUsec.Store(st.throttledUsec)
		s.workingSet.Store(st.workingSet)
		s.oomKills.Store(st.oomKills)
	}
	c.held.end()
	return firstErr
}

type cgroupStat struct {
	cpuUsec, throttledUsec, workingSet, oomKills uint64
}

// read reads one pod cgroup's files. A missing controller file (cpu or memory not enabled for
// the subtree) leaves its values at 0; only a missing cpu.stat, which cgroup v2 always has, is
// an error.
func (c *podCgroups) read(dir string) (cgroupStat, error) {
	var st cgroupStat
	b, err := c.readFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return st, err
	}
	st.cpuUsec, _ = flatKey(b, "usage_usec")
	st.throttledUsec, _ = flatKey(b, "throttled_usec")
	if b, err = c.readFile(filepath.Join(dir, "memory.current")); err == nil {
		usage, perr := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if perr == nil {
			st.workingSet = usage
			if b, err = c.readFile(filepath.Join(dir, "memory.stat")); err == nil {
				inactive, _ := flatKey(b, "inactive_file")
				st.workingSet = usage - min(usage, inactive)
			}
		}
	}
	if b, err = c.readFile(filepath.Join(dir, "memory.events")); err == nil {
		st.oomKills, _ = flatKey(b, "oom_kill")
	}
	return st, nil
}

// readFile reads a small cgroup file into the reused buffer (cgroup files report size 0).
func (c *podCgroups) readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			if len(c.buf) >= 1<<20 {
				return nil, fmt.Errorf("%s: larger than 1 MiB", path)
			}
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := f.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err == io.EOF {
			return c.buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// flatKey returns the value of key in a cgroup flat-keyed file ("key value\n" lines).
func flatKey(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
