//go:build linux

package kube

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/internal/kubetest"
)

func realPod(ns, name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}},
	}
}

// TestRealAPIServer runs the watch against a real kube-apiserver and etcd: the server applies
// the node field selector (the fake clientset ignores it), label changes and deletes arrive,
// and the watch comes back by itself after the apiserver restarts.
func TestRealAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	m := NewMetrics(nil)
	client, err := NewClient(srv.Kubeconfig, m)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := admin.CoreV1().Pods("shop")
	uids := map[string]string{}
	for _, p := range []*corev1.Pod{
		realPod("shop", "a1", "node-a", map[string]string{"app": "a1"}),
		realPod("shop", "a2", "node-a", map[string]string{"app": "a2"}),
		realPod("shop", "b1", "node-b", map[string]string{"app": "b1"}),
		realPod("shop", "b2", "node-b", map[string]string{"app": "b2"}),
	} {
		got, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[p.Name] = string(got.UID)
	}

	w, err := NewWatcher(client, CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if !w.WaitSynced(sctx) {
		t.Fatal("not synced")
	}

	// Only this node's pods reach the cache.
	if n := w.Len(); n != 2 {
		t.Errorf("%d pods in the cache, want node-a's 2", n)
	}
	bind := func(name string) *Binding {
		return w.Bind(&collector.Kube{Namespace: "shop", Pod: name, PodUID: uids[name], Container: "app"})
	}
	a1 := bind("a1")
	defer a1.Close()
	b1 := bind("b1")
	defer b1.Close()
	if !a1.Resolved() || b1.Resolved() {
		t.Fatalf("a1 resolved %v (want true), b1 resolved %v (want false: another node's pod)", a1.Resolved(), b1.Resolved())
	}
	src := a1.NewSource(1, "pods")
	if k := src.Kube(); k.Image != "registry.example/app:1.0" || k.Labels["app"] != "a1" || k.Node != "node-a" {
		t.Errorf("a1 metadata %+v", k)
	}

	relabel := func(name, key, value string) {
		t.Helper()
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Labels[key] = value
		if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Another node's change never arrives; this node's does (after it, in order).
	relabel("b1", "version", "v2")
	relabel("a1", "version", "v2")
	eventually(t, "a1 relabelled", func() bool { return src.Kube().Labels["version"] == "v2" })
	if b1.Resolved() || w.Len() != 2 {
		t.Errorf("a node-b pod reached the cache (b1 resolved %v, %d pods)", b1.Resolved(), w.Len())
	}

	// A deleted pod arrives as a delete, and its metadata stays while a source is bound.
	zero := int64(0)
	if err := pods.Delete(ctx, "a1", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a1 delete event", func() bool { return testutil.ToFloat64(m.Events.WithLabelValues("delete")) == 1 })
	w.Sweep()
	if src.Kube().Labels["version"] != "v2" {
		t.Error("metadata of a deleted pod still read was dropped")
	}

	// The apiserver restarts: the watch fails, is counted, and comes back with backoff.
	listsBefore := testutil.ToFloat64(m.Requests.WithLabelValues("list"))
	srv.StopAPIServer()
	eventually(t, "the watch to notice the apiserver is gone", func() bool { return !w.Reachable() })
	if testutil.ToFloat64(m.APIErrors) < 1 {
		t.Error("API errors not counted")
	}
	srv.StartAPIServer()
	a2 := bind("a2")
	defer a2.Close()
	src2 := a2.NewSource(2, "pods")
	relabel("a2", "version", "after-restart")
	eventuallyWithin(t, 90*time.Second, "a change made after the restart", func() bool {
		return src2.Kube().Labels["version"] == "after-restart"
	})
	if _, err := pods.Create(ctx, realPod("shop", "a3", "node-a", map[string]string{"app": "a3"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a pod created after the restart", func() bool { return w.Len() == 3 })
	if !w.Reachable() || testutil.ToFloat64(m.Reachable) != 1 {
		t.Error("not reachable again after the restart")
	}
	lists := testutil.ToFloat64(m.Requests.WithLabelValues("list")) - listsBefore
	gets := testutil.ToFloat64(m.Requests.WithLabelValues("get"))
	t.Logf("API requests: list %v (after restart %v), watch %v, get %v, API errors %v",
		testutil.ToFloat64(m.Requests.WithLabelValues("list")), lists,
		testutil.ToFloat64(m.Requests.WithLabelValues("watch")), gets, testutil.ToFloat64(m.APIErrors))
	if gets != 0 {
		t.Errorf("%v per-object GET requests: the watch must never ask per pod", gets)
	}
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
