package exporter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// Log disk family names (a DESIGN.md contract).
const (
	PodLogDiskBytesName = "tailgate_pod_log_disk_bytes"
	PodLogDiskFilesName = "tailgate_pod_log_disk_files"
	PodRestartsName     = "tailgate_pod_container_restarts"
)

// diskSeries is one container's directory under /var/log/pods.
type diskSeries struct {
	seriesHead[*diskSeries]
	bytes    atomic.Int64
	files    atomic.Int64
	restarts atomic.Int64
}

func (s *diskSeries) reset() {
	s.bytes.Store(0)
	s.files.Store(0)
	s.restarts.Store(0)
}

// podDisk is the log disk usage of this node's containers, from a scan of the kubelet's pod
// log directory: /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log plus the
// rotated files beside it (<restart>.log.<timestamp>, compressed or not).
type podDisk struct {
	t    *table[diskSeries, *diskSeries]
	held scanned[string, diskSeries, *diskSeries] // by container dir; the scanning goroutine's
}

func newPodDisk(b *budget) *podDisk {
	d := &podDisk{t: newTable(podContainerLabels, b,
		intGaugeFamily(PodLogDiskBytesName, "Bytes of the container's log files on the node's disk, rotated and compressed ones included.",
			func(s *diskSeries) int64 { return s.bytes.Load() }),
		intGaugeFamily(PodLogDiskFilesName, "Log files of the container on the node's disk, rotated and compressed ones included.",
			func(s *diskSeries) int64 { return s.files.Load() }),
		intGaugeFamily(PodRestartsName, "Restarts of the container, from the kubelet's log file numbering (<restarts>.log).",
			func(s *diskSeries) int64 { return s.restarts.Load() }),
	)}
	d.held = newScanned[string](d.t)
	return d
}

// podDir is one pod directory found by a scan.
type podDir struct {
	namespace, pod, uid string
}

// parsePodDir splits `<namespace>_<pod>_<uid>`: namespace and pod names cannot hold '_'.
func parsePodDir(name string) (podDir, bool) {
	parts := strings.Split(name, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return podDir{}, false
	}
	return podDir{parts[0], parts[1], parts[2]}, true
}

// scan measures every container directory under root, creates the series of new ones and
// releases those of directories that are gone. It returns the pods found, by uid, for the
// cgroup scan. A directory that vanishes while it is read is skipped, not an error.
func (d *podDisk) scan(root string) (map[string]podName, error) {
	pods, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		pods = nil // not a Kubernetes node (a demo, a test): nothing to measure
	} else if err != nil {
		return nil, fmt.Errorf("pod log dir %s: %w", root, err)
	}
	uids := make(map[string]podName, len(pods))
	d.held.begin()
	for _, pe := range pods {
		pd, ok := parsePodDir(pe.Name())
		if !ok || !pe.IsDir() {
			continue
		}
		uids[pd.uid] = podName{pd.namespace, pd.pod}
		podPath := filepath.Join(root, pe.Name())
		containers, err := os.ReadDir(podPath)
		if err != nil {
			continue
		}
		for _, ce := range containers {
			if !ce.IsDir() {
				continue
			}
			dir := filepath.Join(podPath, ce.Name())
			bytes, files, restarts, ok := measureContainerDir(dir)
			if !ok {
				continue
			}
			s := d.held.get(dir, pd.namespace, pd.pod, ce.Name())
			if s == nil {
				continue // refused by the budget
			}
			s.bytes.Store(bytes)
			s.files.Store(files)
			s.restarts.Store(restarts)
		}
	}
	d.held.end()
	return uids, nil
}

// measureContainerDir sums the regular files of one container's log directory; restarts is
// the highest N of its N.log files (the kubelet names a container's log by its restart count
// and keeps the previous one). ok is false if the directory cannot be read.
func measureContainerDir(dir string) (bytes, files, restarts int64, ok bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0, false
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		bytes += info.Size()
		files++
		num, _, _ := strings.Cut(e.Name(), ".")
		if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > restarts {
			restarts = n
		}
	}
	return bytes, files, restarts, true
}
