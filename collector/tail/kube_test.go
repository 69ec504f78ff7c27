package tail

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
)

func testPod(ns, name, ctr string, labels map[string]string) *corev1.Pod {
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: name + "-5f6d7c8b9", Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: ctr, Image: "img/" + ctr + ":1"}}},
	}
}

// TestTailWithPodWatch tails two pods' logs while their pods are added, relabelled and
// deleted through a client-go fake clientset and a real informer: each record carries the
// metadata its pod had when the record was read, and the whole run costs one list and one
// watch, whatever the number of files and records.
func TestTailWithPodWatch(t *testing.T) {
	cs := fake.NewClientset(testPod("shop", "cart", "app", map[string]string{"app": "cart", "version": "v1", "pod-template-hash": "5f6d7c8b9"}))
	w, err := kube.NewWatcher(cs, kube.CacheOptions{Node: "node-a", Filter: kube.Filter{Labels: []string{"app", "version"}},
		WaitForPod: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); w.Run(ctx) }()
	defer func() { cancel(); <-watchDone }()
	if !w.WaitSynced(ctx) {
		t.Fatal("not synced")
	}

	tr := newKubeTree(t)
	cart := tr.add(t, "shop", "cart", "app", criLines("cart", 0, 10))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	in.SetMetadata(w.Cache)
	em := newFakeEmitter(nil)
	stop := start(t, in, em)

	byMsg := func() map[string]gotRecord {
		out := map[string]gotRecord{}
		for _, r := range em.snapshot() {
			out[r.Message] = r
		}
		return out
	}
	check := func(msg, pod, version string) {
		t.Helper()
		r, ok := byMsg()[msg]
		if !ok {
			t.Fatalf("no record %q", msg)
		}
		k := r.Kube
		if k.Pod != pod || k.Labels["version"] != version || k.Node != "node-a" {
			t.Errorf("%q: pod %q version %q node %q, want %q %q", msg, k.Pod, k.Labels["version"], k.Node, pod, version)
		}
	}
	em.waitRecords(t, 10)
	check("cart 0", "cart", "v1")
	r := byMsg()["cart 9"]
	if k := r.Kube; k.Workload != "cart" || k.WorkloadKind != "Deployment" || k.Image != "img/app:1" || k.PodUID != "uid-cart" {
		t.Errorf("cart metadata %+v", k)
	}
	if _, ok := r.Kube.Labels["pod-template-hash"]; ok {
		t.Error("a label outside the allow-list reached the record")
	}

	// Relabelled while tailed: records read after the update carry v2, earlier ones keep v1.
	p, _ := cs.CoreV1().Pods("shop").Get(ctx, "cart", metav1.GetOptions{})
	p.Labels["version"] = "v2"
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	src := r.Source
	waitFor(t, "relabel published", func() bool { return src.Kube().Labels["version"] == "v2" })
	appendFile(t, cart, criLines("cart", 10, 20))
	em.waitRecords(t, 20)
	check("cart 5", "cart", "v1")
	check("cart 15", "cart", "v2")

	// A file whose pod the watch has not seen yet waits for it (boundedly), then carries it.
	tr.add(t, "shop", "web", "nginx", criLines("web", 0, 5))
	time.Sleep(300 * time.Millisecond) // more than a poll: the file is found and held back
	if n := len(em.snapshot()); n != 20 {
		t.Fatalf("records of a pod not in the cache were emitted before the wait: %d", n)
	}
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, testPod("shop", "web", "nginx", map[string]string{"app": "web", "version": "w1"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	em.waitRecords(t, 25)
	check("web 0", "web", "w1")

	// Deleted while tailed: the metadata stays until the files are drained.
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "cart", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delete seen", func() bool {
		for _, a := range cs.Actions() {
			if a.GetVerb() == "delete" {
				return true
			}
		}
		return false
	})
	time.Sleep(50 * time.Millisecond)
	w.Sweep()
	appendFile(t, cart, criLines("cart", 20, 30))
	em.waitRecords(t, 35)
	check("cart 29", "cart", "v2")

	// Excluded by annotation: read and dropped, counted.
	p2, _ := cs.CoreV1().Pods("shop").Get(ctx, "web", metav1.GetOptions{})
	p2.Annotations = map[string]string{kube.AnnotationExclude: "true"}
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, p2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	probe := w.Bind(&collector.Kube{Namespace: "shop", Pod: "web", PodUID: "uid-web", Container: "nginx"})
	defer probe.Close()
	waitFor(t, "exclude published", probe.Excluded)
	w.Len() // the update is published to every binding under one lock: it is over once we get it
	webPath := filepath.Join(tr.dir, "pods", "shop_web_uid-web", "nginx", "0.log")
	appendFile(t, webPath, criLines("web", 5, 12))
	appendFile(t, cart, criLines("cart", 30, 31))
	em.waitRecords(t, 36)
	waitFor(t, "excluded records counted", func() bool { return em.droppedFor("excluded") == 7 })
	for _, r := range em.snapshot() {
		if r.Message == "web 5" {
			t.Fatal("a record of an excluded pod was emitted")
		}
	}

	// One list and one watch; the test's own get/update/create/delete calls are the rest.
	var lw []string
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); v == "list" || v == "watch" {
			lw = append(lw, v)
		}
	}
	if len(lw) != 2 {
		t.Errorf("informer calls %v, want one list and one watch", lw)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestTailWaitIsBounded: a pod that never reaches the cache holds its file back for the
// wait only, then the records carry the path's fields.
func TestTailWaitIsBounded(t *testing.T) {
	c := kube.NewCache(kube.CacheOptions{Node: "node-a", WaitForPod: 300 * time.Millisecond})
	tr := newKubeTree(t)
	tr.add(t, "shop", "ghost", "app", criLines("ghost", 0, 3))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}})
	in.SetMetadata(c)
	em := newFakeEmitter(nil)
	began := time.Now()
	stop := start(t, in, em)
	rs := em.waitRecords(t, 3)
	if el := time.Since(began); el < 300*time.Millisecond {
		t.Errorf("records emitted %v after start, before the wait", el)
	}
	if k := rs[0].Kube; k.Pod != "ghost" || k.Namespace != "shop" || k.PodUID != "uid-ghost" || k.Container != "app" {
		t.Errorf("path fields %+v", k)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
