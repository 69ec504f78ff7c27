package kube

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Annotations read by tailgate itself, kept by the transform whatever the allow-list says.
const (
	// AnnotationExclude set to "true" on a pod stops tailgate from shipping its logs.
	AnnotationExclude = "tailgate.io/exclude"
	// annotationPrefix marks every tailgate.io/ annotation (per-pod settings).
	annotationPrefix  = "tailgate.io/"
	labelTemplateHash = "pod-template-hash"
)

// Filter says which labels and annotations reach records. Patterns are path.Match globs on the
// key ("app", "app.kubernetes.io/*"); "*" alone matches every key, even ones with a '/'.
type Filter struct {
	Labels      []string
	Annotations []string
}

func matchAny(patterns []string, key string) bool {
	for _, p := range patterns {
		if p == "*" || p == key {
			return true
		}
		if ok, _ := path.Match(p, key); ok {
			return true
		}
	}
	return false
}

// slimPod is what the informer stores of a pod: only the fields the index uses. A *corev1.Pod
// stripped of its other fields still costs ~6 KB of mostly empty structs; this costs a few
// hundred bytes. It is a runtime.Object and, through ObjectMeta, a metav1.Object, so the
// informer's store keys it as it keys pods.
type slimPod struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	NodeName    string
	HostNetwork bool
	Phase       string // status.phase, for the exporter's tailgate_pod_info
	IPs         []string
	Containers  []slimContainer // regular, init and ephemeral
	IDs         []slimContainer // Name and, in Image, the runtime's container ID
}

type slimContainer struct{ Name, Image string }

func (p *slimPod) DeepCopyObject() runtime.Object {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.IPs = slices.Clone(p.IPs)
	c.Containers = slices.Clone(p.Containers)
	c.IDs = slices.Clone(p.IDs)
	return &c
}

// transform strips a pod to a slimPod before the informer stores it: a pod object is
// 5-20 KB (managedFields, spec, status). Labels and annotations are filtered here, so the
// allow-list also bounds memory. It is idempotent, as client-go requires: a slimPod passes.
func (f *Filter) transform(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return f.slim(pod), nil
	}
	return obj, nil // a slimPod, DeletedFinalStateUnknown: the handler unwraps them
}

func (f *Filter) slim(pod *corev1.Pod) *slimPod {
	out := &slimPod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			DeletionTimestamp: pod.DeletionTimestamp,
			Labels:            f.labels(pod.Labels),
			Annotations:       f.annotations(pod.Annotations),
		},
		NodeName:    pod.Spec.NodeName,
		HostNetwork: pod.Spec.HostNetwork,
		Phase:       string(pod.Status.Phase),
	}
	for _, r := range pod.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			out.OwnerReferences = []metav1.OwnerReference{{Kind: r.Kind, Name: r.Name}}
			break
		}
	}
	if pod.Status.PodIP != "" {
		out.IPs = append(out.IPs, pod.Status.PodIP)
	}
	for _, ip := range pod.Status.PodIPs {
		if ip.IP != "" && !slices.Contains(out.IPs, ip.IP) {
			out.IPs = append(out.IPs, ip.IP)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		out.Containers = append(out.Containers, slimContainer{c.Name, c.Image})
	}
	for _, c := range pod.Spec.Containers {
		out.Containers = append(out.Containers, slimContainer{c.Name, c.Image})
	}
	for _, c := range pod.Spec.EphemeralContainers {
		out.Containers = append(out.Containers, slimContainer{c.Name, c.Image})
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.ContainerID != "" {
				out.IDs = append(out.IDs, slimContainer{cs.Name, cs.ContainerID})
			}
		}
	}
	return out
}

func (f *Filter) labels(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if k == labelTemplateHash || matchAny(f.Labels, k) {
			if out == nil {
				out = make(map[string]string, len(in))
			}
			out[k] = v
		}
	}
	return out
}

func (f *Filter) annotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, annotationPrefix) || matchAny(f.Annotations, k) {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v
		}
	}
	return out
}

// Workload kinds beyond the owner kinds passed through (StatefulSet, DaemonSet, Job, ...).
const (
	KindDeployment = "Deployment"
	KindCronJob    = "CronJob"
)

// workload resolves the pod's controller to the workload a person deployed, from the pod
// alone. A ReplicaSet named <deployment>-<pod-template-hash> (the hash is also the pod's
// pod-template-hash label, set by the Deployment controller) belongs to that Deployment: this
// is exact, unlike stripping a suffix from the pod name, which turns StatefulSet "sts-test"
// pod "sts-test-1" into Deployment "sts". A Job named <cronjob>-<N>, N the scheduled time in
// minutes since the epoch as the CronJob controller names them, belongs to that CronJob. Any
// other controller is its own workload; a pod without one has none.
func workload(pod *slimPod, now time.Time) (name, kind string) {
	if len(pod.OwnerReferences) == 0 {
		return "", ""
	}
	ref := pod.OwnerReferences[0]
	switch ref.Kind {
	case "ReplicaSet":
		if h := pod.Labels[labelTemplateHash]; h != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok && d != "" {
				return d, KindDeployment
			}
		}
	case "Job":
		if cj, ok := cronJobOf(ref.Name, now); ok {
			return cj, KindCronJob
		}
	}
	return ref.Name, ref.Kind
}

// cronJobOf reports the CronJob of a Job named <cronjob>-<minutes>, where minutes is a
// scheduled time between 2015 (CronJobs did not exist before) and a day after now, so a Job
// named "migrate-2" is not taken for CronJob "migrate".
func cronJobOf(job string, now time.Time) (string, bool) {
	dash := strings.LastIndexByte(job, '-')
	if dash <= 0 || dash == len(job)-1 {
		return "", false
	}
	min, err := strconv.ParseInt(job[dash+1:], 10, 64)
	if err != nil || job[dash+1] == '0' {
		return "", false
	}
	const from = 1420070400 / 60 // 2015-01-01
	if min < from || min > now.Add(24*time.Hour).Unix()/60 {
		return "", false
	}
	return job[:dash], true
}
