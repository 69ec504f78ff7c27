package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tailgate-dev/tailgate/collector"
)

// clock is a settable time for the cache's waits and grace periods.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type podSpec struct {
	ns, name, uid, node string
	labels, ann         map[string]string
	owner               string // "Kind/name"
	containers          []string
	ip                  string
	rv                  string
}

func makePod(s podSpec) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name, UID: types.UID(s.uid), Labels: s.labels,
			Annotations: s.ann, ResourceVersion: s.rv},
		Spec: corev1.PodSpec{NodeName: s.node},
	}
	if s.owner != "" {
		kind, name, _ := cut(s.owner, "/")
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, Controller: &yes}}
	}
	for _, c := range s.containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.example/" + c + ":1.0"})
	}
	if s.ip != "" {
		p.Status.PodIP = s.ip
		p.Status.PodIPs = []corev1.PodIP{{IP: s.ip}}
	}
	return p
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func newTestCache(clk *clock) *Cache {
	return NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}, Annotations: []string{"team"}},
		WaitForPod: 2 * time.Second, DeletedGrace: time.Minute, Now: clk.now})
}

func TestWorkload(t *testing.T) {
	now := t0
	f := func(owner string, labels map[string]string, wantName, wantKind string) {
		t.Helper()
		p := makePod(podSpec{ns: "shop", name: "x", uid: "u", owner: owner, labels: labels})
		name, kind := workload((&Filter{Labels: []string{"*"}}).slim(p), now)
		if name != wantName || kind != wantKind {
			t.Errorf("owner %q labels %v: got %q %q, want %q %q", owner, labels, name, kind, wantName, wantKind)
		}
	}
	hash := map[string]string{"pod-template-hash": "7d9f5c6b8"}
	f("ReplicaSet/cart-7d9f5c6b8", hash, "cart", KindDeployment)
	f("ReplicaSet/cart-api-7d9f5c6b8", hash, "cart-api", KindDeployment)
	// A ReplicaSet made by hand (no hash label, or a name without it) is its own workload.
	f("ReplicaSet/cart-7d9f5c6b8", nil, "cart-7d9f5c6b8", "ReplicaSet")
	f("ReplicaSet/legacy", hash, "legacy", "ReplicaSet")
	f("ReplicaSet/7d9f5c6b8", hash, "7d9f5c6b8", "ReplicaSet")
	// The pod-name regex bug of other agents: StatefulSet sts-test's pod is not Deployment "sts".
	f("StatefulSet/sts-test", nil, "sts-test", "StatefulSet")
	f("DaemonSet/node-exporter", nil, "node-exporter", "DaemonSet")
	// CronJob jobs are named <cronjob>-<scheduled minute since the epoch>.
	min := now.Add(-time.Hour).Unix() / 60
	f("Job/backup-"+itoa(min), nil, "backup", KindCronJob)
	f("Job/nightly-report-"+itoa(min), nil, "nightly-report", KindCronJob)
	f("Job/migrate-2", nil, "migrate-2", "Job")                       // a number that is no plausible minute
	f("Job/migrate-v3", nil, "migrate-v3", "Job")                     // not a number
	f("Job/x-"+itoa(min+7*24*60), nil, "x-"+itoa(min+7*24*60), "Job") // a week in the future
	f("Job/x-0"+itoa(min), nil, "x-0"+itoa(min), "Job")               // leading zero: not how the controller names
	f("", nil, "", "")
	f("Node/node-a", nil, "node-a", "Node") // a static pod's mirror
}

func itoa(n int64) string {
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestTransformKeepsOnlyUsedFields(t *testing.T) {
	f := &Filter{Labels: []string{"app", "app.kubernetes.io/*"}, Annotations: []string{"team"}}
	p := makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", node: "node-a", containers: []string{"app", "proxy"}, ip: "10.1.0.5",
		owner: "ReplicaSet/cart-abc", rv: "42",
		labels: map[string]string{"app": "cart", "app.kubernetes.io/name": "cart", "pod-template-hash": "abc", "churn": "1"},
		ann:    map[string]string{"team": "pay", "kubectl.kubernetes.io/last-applied-configuration": "{...}", "tailgate.io/exclude": "true"}})
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://abc", Image: "x"}}
	out, err := f.transform(p)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*slimPod)
	if again, _ := f.transform(got); again != got {
		t.Error("transform is not idempotent")
	}
	if got.ManagedFields != nil {
		t.Errorf("managed fields kept: %+v", got)
	}
	wantLabels := map[string]string{"app": "cart", "app.kubernetes.io/name": "cart", "pod-template-hash": "abc"}
	if !maps.Equal(got.Labels, wantLabels) {
		t.Errorf("labels %v, want %v (allow-list, plus the hash for the workload)", got.Labels, wantLabels)
	}
	wantAnn := map[string]string{"team": "pay", "tailgate.io/exclude": "true"}
	if !maps.Equal(got.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", got.Annotations, wantAnn)
	}
	if got.UID != "u1" || got.NodeName != "node-a" || len(got.IPs) != 1 || got.IPs[0] != "10.1.0.5" || len(got.Containers) != 2 ||
		got.Containers[1].Image != "registry.example/proxy:1.0" || got.OwnerReferences[0].Name != "cart-abc" ||
		got.IDs[0].Image != "containerd://abc" || got.ResourceVersion != "42" {
		t.Errorf("used fields lost: %+v", got)
	}
	cp := got.DeepCopyObject().(*slimPod)
	cp.Labels["app"] = "changed"
	cp.Containers[0].Name = "changed"
	if got.Labels["app"] != "cart" || got.Containers[0].Name != "app" {
		t.Error("DeepCopyObject shares memory")
	}
	if p.ManagedFields == nil {
		t.Error("transform changed its input")
	}
}

func TestBindWaitsThenResolves(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	path := &collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app", Node: "node-a"}
	b := c.Bind(path)
	if b.Ready() {
		t.Fatal("ready before the pod is known and before the wait is over")
	}
	src := b.NewSource(1, "pods")
	if src.Kube() != path {
		t.Fatalf("before the pod is known the source carries the path fields, got %+v", src.Kube())
	}
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", node: "node-a", containers: []string{"app"}, rv: "1",
		owner: "ReplicaSet/cart-abc", labels: map[string]string{"app": "cart", "pod-template-hash": "abc"},
		ann: map[string]string{"team": "pay", "other": "x"}}))
	if !b.Ready() || !b.Resolved() {
		t.Fatal("not ready once the pod arrived")
	}
	k := src.Kube()
	want := collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app", Node: "node-a",
		Workload: "cart", WorkloadKind: KindDeployment, Image: "registry.example/app:1.0"}
	if k.Namespace != want.Namespace || k.Pod != want.Pod || k.PodUID != want.PodUID || k.Container != want.Container ||
		k.Node != want.Node || k.Workload != want.Workload || k.WorkloadKind != want.WorkloadKind || k.Image != want.Image {
		t.Errorf("metadata %+v, want %+v", k, want)
	}
	if !maps.Equal(k.Labels, map[string]string{"app": "cart", "pod-template-hash": "abc"}) ||
		!maps.Equal(k.Annotations, map[string]string{"team": "pay"}) {
		t.Errorf("labels %v annotations %v", k.Labels, k.Annotations)
	}
	if n := testutil.ToFloat64(c.m.Fallbacks.WithLabelValues("not_found")); n != 0 {
		t.Errorf("fallbacks counted: %v", n)
	}
}

func TestBindGivesUpAfterWait(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	c.m.setReachable(true)
	b := c.Bind(&collector.Kube{Namespace: "shop", Pod: "gone", PodUID: "u9", Container: "app", Node: "node-a"})
	clk.add(time.Second)
	if b.Ready() {
		t.Fatal("ready within the wait")
	}
	clk.add(time.Second)
	if !b.Ready() || b.Resolved() {
		t.Fatal("still waiting after the bound")
	}
	if n := testutil.ToFloat64(c.m.Fallbacks.WithLabelValues("not_found")); n != 1 {
		t.Errorf("fallback not_found counted %v times, want 1", n)
	}
	b.Ready()
	if n := testutil.ToFloat64(c.m.Fallbacks.WithLabelValues("not_found")); n != 1 {
		t.Errorf("fallback counted again: %v", n)
	}
	// The API was down: the reason says so.
	c.m.setReachable(false)
	b2 := c.Bind(&collector.Kube{Namespace: "shop", Pod: "p2", PodUID: "u10", Container: "app"})
	clk.add(3 * time.Second)
	b2.Ready()
	if n := testutil.ToFloat64(c.m.Fallbacks.WithLabelValues("api_unreachable")); n != 1 {
		t.Errorf("fallback api_unreachable counted %v times, want 1", n)
	}
	// A pod that arrives late still reaches the bound sources.
	src := b2.NewSource(5, "pods")
	c.Upsert(makePod(podSpec{ns: "shop", name: "p2", uid: "u10", containers: []string{"app"}, labels: map[string]string{"app": "late"}, rv: "3"}))
	if src.Kube().Labels["app"] != "late" {
		t.Errorf("late pod not published: %+v", src.Kube())
	}
}

func TestRelabelPublishesNewVersionToEverySource(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app", "proxy"}, rv: "1", labels: map[string]string{"app": "cart"}}))
	app := c.Bind(&collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app"})
	proxy := c.Bind(&collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "proxy"})
	s1, s2, s3 := app.NewSource(1, "pods"), app.NewSource(2, "pods"), proxy.NewSource(3, "pods")
	if !app.Ready() || s1.Kube() != s2.Kube() {
		t.Fatal("sources of one container must share one metadata pointer")
	}
	if s3.Kube().Container != "proxy" || s3.Kube().Image != "registry.example/proxy:1.0" {
		t.Errorf("proxy metadata %+v", s3.Kube())
	}
	before := s1.Kube()
	// A status-only update (same fields) keeps the pointer: nothing is republished.
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app", "proxy"}, rv: "2", labels: map[string]string{"app": "cart"}, ip: "10.0.0.9"}))
	if s1.Kube() != before {
		t.Error("an update that changes no record field republished the metadata")
	}
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app", "proxy"}, rv: "3", labels: map[string]string{"app": "cart", "tier": "gold"}}))
	for _, s := range []*collector.Source{s1, s2, s3} {
		if s.Kube().Labels["tier"] != "gold" {
			t.Errorf("source %d not relabelled: %v", s.Key, s.Kube().Labels)
		}
	}
	if before.Labels["tier"] != "" {
		t.Error("the old metadata was changed in place: records already emitted would change")
	}
	// Detached sources keep what they had.
	app.Detach(s2)
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app", "proxy"}, rv: "4", labels: map[string]string{"app": "cart2"}}))
	if s1.Kube().Labels["app"] != "cart2" || s2.Kube().Labels["app"] != "cart" {
		t.Errorf("s1 %v s2 %v", s1.Kube().Labels, s2.Kube().Labels)
	}
}

func TestDeletedPodKeptWhileBound(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	pod := makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app"}, rv: "1", labels: map[string]string{"app": "cart"}, ip: "10.0.0.5"})
	c.Upsert(pod)
	b := c.Bind(&collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app"})
	src := b.NewSource(1, "pods")
	c.Delete(pod)
	clk.add(time.Hour)
	if n := c.Sweep(); n != 0 || c.Len() != 1 {
		t.Fatalf("a deleted pod whose files are still read was forgotten (swept %d)", n)
	}
	if src.Kube().Labels["app"] != "cart" {
		t.Error("metadata lost after delete")
	}
	// A new binding (a rotated file found after the delete) still finds it by UID.
	b2 := c.Bind(&collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app"})
	if !b2.Resolved() {
		t.Error("deleted pod not found for a new file of it")
	}
	b2.Close()
	b.Close()
	if n := c.Sweep(); n != 1 || c.Len() != 0 {
		t.Errorf("deleted, unbound pod past its grace not forgotten (swept %d, left %d)", n, c.Len())
	}
}

func TestDeletedPodGracePeriod(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	pod := makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app"}, rv: "1"})
	c.Upsert(pod)
	c.Delete(pod)
	clk.add(30 * time.Second)
	if c.Sweep() != 0 {
		t.Error("forgotten within the grace period")
	}
	clk.add(31 * time.Second)
	if c.Sweep() != 1 {
		t.Error("kept past the grace period")
	}
}

func TestNameReuseResolvesByUID(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	old := makePod(podSpec{ns: "db", name: "pg-0", uid: "old", containers: []string{"pg"}, rv: "1", labels: map[string]string{"gen": "1"}, owner: "StatefulSet/pg"})
	c.Upsert(old)
	bOld := c.Bind(&collector.Kube{Namespace: "db", Pod: "pg-0", PodUID: "old", Container: "pg"})
	c.Delete(old)
	c.Upsert(makePod(podSpec{ns: "db", name: "pg-0", uid: "new", containers: []string{"pg"}, rv: "2", labels: map[string]string{"gen": "2"}, owner: "StatefulSet/pg"}))
	bNew := c.Bind(&collector.Kube{Namespace: "db", Pod: "pg-0", PodUID: "new", Container: "pg"})
	bName := c.Bind(&collector.Kube{Namespace: "db", Pod: "pg-0", Container: "pg"}) // a path without UID
	if bOld.Kube().Labels["gen"] != "1" || bNew.Kube().Labels["gen"] != "2" || bName.Kube().Labels["gen"] != "2" {
		t.Errorf("old %v new %v by name %v", bOld.Kube().Labels, bNew.Kube().Labels, bName.Kube().Labels)
	}
	// A binding waiting on a UID is not taken by another pod of the same name.
	bWait := c.Bind(&collector.Kube{Namespace: "db", Pod: "pg-1", PodUID: "want", Container: "pg"})
	c.Upsert(makePod(podSpec{ns: "db", name: "pg-1", uid: "other", containers: []string{"pg"}, rv: "5"}))
	if bWait.Resolved() {
		t.Error("bound to a pod with another UID")
	}
}

func TestExcludeAnnotation(t *testing.T) {
	clk := &clock{t: t0}
	c := newTestCache(clk)
	c.Upsert(makePod(podSpec{ns: "shop", name: "noisy", uid: "u1", containers: []string{"app"}, rv: "1"}))
	b := c.Bind(&collector.Kube{Namespace: "shop", Pod: "noisy", PodUID: "u1", Container: "app"})
	if b.Excluded() {
		t.Fatal("excluded without the annotation")
	}
	c.Upsert(makePod(podSpec{ns: "shop", name: "noisy", uid: "u1", containers: []string{"app"}, rv: "2",
		ann: map[string]string{AnnotationExclude: "true", "tailgate.io/rate-limit-lines": "100"}}))
	if !b.Excluded() || b.Setting("rate-limit-lines") != "100" {
		t.Errorf("excluded %v setting %q", b.Excluded(), b.Setting("rate-limit-lines"))
	}
	if _, ok := b.Kube().Annotations[AnnotationExclude]; ok {
		t.Error("a tailgate.io annotation not in the allow-list reached the records")
	}
}

func TestFileOutsideKubeletLayoutIsReadyAtOnce(t *testing.T) {
	c := newTestCache(&clock{t: t0})
	b := c.Bind(&collector.Kube{Node: "node-a"})
	if !b.Ready() || b.Kube().Node != "node-a" {
		t.Error("a file with no pod in its path must not wait")
	}
}

func corev1ContainerStatus(name, id string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id}
}

type observed struct {
	mu     sync.Mutex
	events []string
}

func (o *observed) PodSeen(e PodEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf("seen %s/%s %s %s/%s %s", e.Namespace, e.Name, e.UID, e.WorkloadKind, e.Workload, e.Phase))
}

func (o *observed) PodDeleted(ns, name, uid string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf("deleted %s/%s %s", ns, name, uid))
}

// TestObserverFollowsPods: the observer (the exporter's per-pod series) hears of every pod
// version with its workload and phase, and of each deletion once.
func TestObserverFollowsPods(t *testing.T) {
	clk := &clock{t: t0}
	obs := &observed{}
	c := NewCache(CacheOptions{Node: "node-a", Now: clk.now, Observer: obs})
	p := makePod(podSpec{ns: "shop", name: "cart-7d9f5c6b8-x2x4z", uid: "u1", node: "node-a", owner: "ReplicaSet/cart-7d9f5c6b8",
		labels: map[string]string{"pod-template-hash": "7d9f5c6b8"}, containers: []string{"app"}})
	p.Status.Phase = corev1.PodPending
	c.Upsert(p)
	p.Status.Phase = corev1.PodRunning
	c.Upsert(p)
	c.Delete(p)
	c.Delete(p) // a second delete event (resync, tombstone) is not a second deletion
	want := []string{
		"seen shop/cart-7d9f5c6b8-x2x4z u1 Deployment/cart Pending",
		"seen shop/cart-7d9f5c6b8-x2x4z u1 Deployment/cart Running",
		"deleted shop/cart-7d9f5c6b8-x2x4z u1",
	}
	if !slices.Equal(obs.events, want) {
		t.Errorf("observer got\n%s\nwant\n%s", strings.Join(obs.events, "\n"), strings.Join(want, "\n"))
	}
}
