package kube

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tailgate-dev/tailgate/collector"
)

// fatPod is a pod as the API server sends it for a typical Deployment: managed fields, the
// last-applied annotation, env, volumes, probes and a full status (~6 KB as JSON).
func fatPod(i, gen int) *corev1.Pod {
	yes := true
	name := fmt.Sprintf("svc%03d-7d9f5c6b8-g%d", i, gen)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("ns%02d", i%20), Name: name, UID: types.UID(fmt.Sprintf("%08d-0000-0000-0000-%012d", i, gen)),
			ResourceVersion: "1",
			Labels: map[string]string{"app": fmt.Sprintf("svc%03d", i), "pod-template-hash": "7d9f5c6b8",
				"app.kubernetes.io/name": fmt.Sprintf("svc%03d", i), "app.kubernetes.io/part-of": "shop", "tier": "backend",
				"version": "v1.2.3", "team": "payments", "env": "prod"},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat(`{"apiVersion":"apps/v1","kind":"Deployment"}`, 40),
				"prometheus.io/scrape":                             "true", "prometheus.io/port": "9090", "team": "payments",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("svc%03d-7d9f5c6b8", i), Controller: &yes}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: "Update", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat(`{"f:metadata":{}}`, 60))}},
				{Manager: "kubelet", Operation: "Update", FieldsType: "FieldsV1", Subresource: "status", FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat(`{"f:status":{}}`, 60))}},
			},
		},
		Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: "default"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
	}
	for _, c := range []string{"app", "istio-proxy"} {
		ct := corev1.Container{Name: c, Image: "registry.example/" + c + ":1.2.3",
			Args:           []string{"--port=8080", "--log-level=info"},
			Env:            []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "C", Value: strings.Repeat("x", 100)}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "token", MountPath: "/var/run/secrets"}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 10}}
		p.Spec.Containers = append(p.Spec.Containers, ct)
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, Ready: true,
			ContainerID: fmt.Sprintf("containerd://%064x", i*10+gen), Image: ct.Image, ImageID: "sha256:" + strings.Repeat("ab", 32)})
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "token"}}
	return p
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// informerCalls counts the list and watch calls the fake clientset served.
func informerCalls(cs *fake.Clientset) (lists, watches int) {
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "list":
			lists++
		case "watch":
			watches++
		}
	}
	return
}

// BenchmarkNodeChurn: 1,000 pods on one node (two containers each, every container bound as
// a tailed stream is), then each iteration is one minute of churn: 100 pods replaced
// (deleted, their streams closed, a new pod created and bound). Reported: the heap the watch
// holds per pod (informer store + index + metadata), and the API requests the whole run cost.
func BenchmarkNodeChurn(b *testing.B) {
	const pods, perMinute = 1000, 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset()
	for i := range pods {
		if _, err := cs.CoreV1().Pods(fatPod(i, 0).Namespace).Create(ctx, fatPod(i, 0), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	before := heapInUse()
	w, err := NewWatcher(cs, CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}, Annotations: []string{"team"}}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !w.WaitSynced(ctx) {
		b.Fatal("not synced")
	}
	afterSync := heapInUse()
	gen := make([]int, pods)
	binds := make([][]*Binding, pods)
	bindPod := func(i int) {
		p := fatPod(i, gen[i])
		binds[i] = binds[i][:0]
		for _, c := range []string{"app", "istio-proxy"} {
			bd := w.Bind(&collector.Kube{Namespace: p.Namespace, Pod: p.Name, PodUID: string(p.UID), Container: c, Node: "node-a"})
			bd.NewSource(uint64(i), "pods")
			binds[i] = append(binds[i], bd)
		}
	}
	for i := range pods {
		bindPod(i)
	}
	afterBind := heapInUse()
	perPod := float64(afterBind-before) / pods
	b.Logf("heap per pod: after sync %.0f B, bindings and sources %.0f B", float64(afterSync-before)/pods, float64(afterBind-afterSync)/pods)
	// What an informer without the transform would keep: the pods as decoded.
	raw := make([]*corev1.Pod, pods)
	rawBefore := heapInUse()
	for i := range raw {
		raw[i] = fatPod(i, 0).DeepCopy()
	}
	rawPerPod := float64(heapInUse()-rawBefore) / pods
	runtime.KeepAlive(raw)
	raw = nil

	b.ResetTimer()
	next := 0
	for b.Loop() {
		for range perMinute {
			i := next % pods
			next++
			old := fatPod(i, gen[i])
			zero := int64(0)
			if err := cs.CoreV1().Pods(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				b.Fatal(err)
			}
			for _, bd := range binds[i] { // its files drained: the streams close
				bd.Close()
			}
			gen[i]++
			if _, err := cs.CoreV1().Pods(old.Namespace).Create(ctx, fatPod(i, gen[i]), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		// The minute passes: the last replacement has arrived, deleted pods past their grace
		// are forgotten.
		last := fatPod((next-1)%pods, gen[(next-1)%pods])
		for {
			probe := w.Bind(&collector.Kube{Namespace: last.Namespace, Pod: last.Name, PodUID: string(last.UID), Container: "app"})
			probe.Close()
			if probe.Resolved() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		w.grace = 0
		w.now = func() time.Time { return time.Now().Add(time.Hour) }
		w.Sweep()
		w.now = time.Now
		for k := next - perMinute; k < next; k++ {
			bindPod(k % pods)
		}
	}
	b.StopTimer()
	b.ReportMetric(perPod, "heap-B/pod")
	b.ReportMetric(rawPerPod, "untransformed-B/pod")
	lists, watches := informerCalls(cs)
	b.ReportMetric(float64(lists+watches), "api-list+watch")
	b.ReportMetric(float64(w.Len()), "pods-held")
	if lists != 1 || watches != 1 {
		b.Errorf("informer made %d lists and %d watches, want 1 and 1", lists, watches)
	}
}

// BenchmarkLookupPerRecord is what a record pays for its metadata: loading the source's
// current metadata pointer (the envelope and the router read it the same way).
func BenchmarkLookupPerRecord(b *testing.B) {
	c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}})
	c.Upsert(fatPod(1, 0))
	p := fatPod(1, 0)
	bd := c.Bind(&collector.Kube{Namespace: p.Namespace, Pod: p.Name, PodUID: string(p.UID), Container: "app"})
	src := bd.NewSource(1, "pods")
	recs := make([]collector.Record, 4096)
	for i := range recs {
		recs[i].Source = src
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		for i := range recs {
			if k := recs[i].Source.Kube(); k != nil {
				n += len(k.Workload)
			}
		}
		if bd.Excluded() || !bd.Ready() { // what the tail reader asks once per stream turn
			b.Fatal("unexpected")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	if n == 0 {
		b.Fatal("no metadata")
	}
}
