package exporter

import "sync"

// PodInfoName is the per-pod info family (a DESIGN.md contract).
const PodInfoName = "tailgate_pod_info"

// PodInfo is what the Kubernetes watch knows of a pod.
type PodInfo struct {
	Namespace, Name, UID string
	// WorkloadKind and Workload name the owner resolved by the watch (the Deployment behind a
	// ReplicaSet, the CronJob behind a Job); empty for a pod without one.
	WorkloadKind, Workload string
	// Phase is the pod's status.phase: Pending, Running, Succeeded, Failed or Unknown.
	Phase string
}

var podInfoLabels = []string{"namespace", "pod", "workload_kind", "workload", "phase"}

type infoSeries struct {
	seriesHead[*infoSeries]
}

func (s *infoSeries) reset() {}

// podInfo holds one tailgate_pod_info series per pod the watch knows: value 1, the workload
// and phase as labels. Recording rules join it on (namespace, pod) to get per-workload rates,
// so the workload is not repeated in the label text of every per-pod series.
type podInfo struct {
	t *table[infoSeries, *infoSeries]

	mu   sync.Mutex
	held map[podName]heldInfo
}

type heldInfo struct {
	s *infoSeries
	PodInfo
}

func newPodInfo(b *budget) *podInfo {
	return &podInfo{held: make(map[podName]heldInfo), t: newTable(podInfoLabels, b,
		newFamily(PodInfoName, "Pods of this node as the Kubernetes watch sees them (value 1): workload and phase, to join on namespace and pod.",
			typeGauge, func(dst []byte, name string, s *infoSeries) []byte {
				return appendUintSample(dst, name, s.labels, "", 1)
			}),
	)}
}

// seen publishes the pod's info. When its workload or phase changed, the old series is
// removed at once rather than after two scrape intervals: an info series has no last value to
// see, and two of them for one pod would make the joins ambiguous.
func (pi *podInfo) seen(p PodInfo) {
	k := podName{p.Namespace, p.Name}
	pi.mu.Lock()
	defer pi.mu.Unlock()
	old, ok := pi.held[k]
	if ok && old.PodInfo == p {
		return
	}
	s := pi.t.acquire(p.Namespace, p.Name, p.WorkloadKind, p.Workload, p.Phase)
	switch {
	case ok && old.s == s: // same labels (a new uid): keep one reference
		pi.t.release(s)
	case ok:
		pi.t.remove(old.s)
	}
	if s == nil {
		delete(pi.held, k)
		return
	}
	pi.held[k] = heldInfo{s: s, PodInfo: p}
}

// deleted releases the pod's info series (removed two scrape intervals later) unless uid
// names an older pod than the one held.
func (pi *podInfo) deleted(namespace, pod, uid string) {
	k := podName{namespace, pod}
	pi.mu.Lock()
	defer pi.mu.Unlock()
	old, ok := pi.held[k]
	if !ok || (uid != "" && old.UID != "" && old.UID != uid) {
		return
	}
	delete(pi.held, k)
	pi.t.release(old.s)
}
