package kube

import (
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// transform strips a pod to the fields the index uses, before the informer stores it: a pod
// object is 5-20 KB (managedFields, spec, status), what is kept is a few hundred bytes.
// Labels and annotations are filtered here, so the allow-list also bounds memory.
func (f *Filter) transform(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // DeletedFinalStateUnknown and friends: the handler unwraps them
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			DeletionTimestamp: pod.DeletionTimestamp,
			Labels:            f.labels(pod.Labels),
			Annotations:       f.annotations(pod.Annotations),
		},
		Spec: corev1.PodSpec{
			NodeName:    pod.Spec.NodeName,
			HostNetwork: pod.Spec.HostNetwork,
		},
		Status: corev1.PodStatus{PodIP: pod.Status.PodIP},
	}
	for _, r := range pod.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			out.OwnerReferences = []metav1.OwnerReference{{Kind: r.Kind, Name: r.Name, Controller: r.Controller}}
			break
		}
	}
	for _, ip := range pod.Status.PodIPs {
		out.Status.PodIPs = append(out.Status.PodIPs, corev1.PodIP{IP: ip.IP})
	}
	for _, c := range pod.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range pod.Spec.InitContainers {
		out.Spec.InitContainers = append(out.Spec.InitContainers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range pod.Spec.EphemeralContainers {
		out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers,
			corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Image: c.Image}})
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.ContainerID != "" {
				out.Status.ContainerStatuses = append(out.Status.ContainerStatuses, corev1.ContainerStatus{Name: cs.Name, ContainerID: cs.ContainerID})
			}
		}
	}
	return out, nil
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
func workload(pod *corev1.Pod, now time.Time) (name, kind string) {
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
