package kube

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tailgate-dev/tailgate/collector"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiCalls lists the verbs the fake clientset saw, as "verb resource".
func apiCalls(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}
	return out
}

func startWatcher(t *testing.T, cs *fake.Clientset) *Watcher {
	t.Helper()
	w, err := NewWatcher(cs, CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, WaitForPod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if !w.WaitSynced(sctx) {
		t.Fatal("informer did not sync")
	}
	return w
}

func TestWatcherFollowsPodsWithOneListAndWatch(t *testing.T) {
	cs := fake.NewClientset(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", node: "node-a", containers: []string{"app"},
		labels: map[string]string{"app": "cart"}, rv: "1"}))
	w := startWatcher(t, cs)
	ctx := context.Background()

	b := w.Bind(&collector.Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app", Node: "node-a"})
	if !b.Resolved() {
		t.Fatal("pod from the initial list not in the cache")
	}
	srcs := make([]*collector.Source, 50)
	for i := range srcs {
		srcs[i] = b.NewSource(uint64(i), "pods")
	}
	// Added while tailed.
	late := w.Bind(&collector.Kube{Namespace: "shop", Pod: "web-1", PodUID: "u2", Container: "nginx"})
	lateSrc := late.NewSource(100, "pods")
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, makePod(podSpec{ns: "shop", name: "web-1", uid: "u2", node: "node-a",
		containers: []string{"nginx"}, labels: map[string]string{"app": "web"}, owner: "DaemonSet/web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new pod to reach the waiting source", func() bool { return lateSrc.Kube().Labels["app"] == "web" })
	if k := lateSrc.Kube(); k.Workload != "web" || k.WorkloadKind != "DaemonSet" || k.Image != "registry.example/nginx:1.0" {
		t.Errorf("late pod metadata %+v", k)
	}
	// Relabelled while tailed.
	p, err := cs.CoreV1().Pods("shop").Get(ctx, "cart-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"app": "cart", "version": "v2"}
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the relabel", func() bool { return srcs[49].Kube().Labels["version"] == "v2" })
	for _, s := range srcs {
		if s.Kube() != srcs[0].Kube() {
			t.Fatal("sources of one container do not share the metadata pointer")
		}
	}
	// Deleted while tailed: kept.
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "cart-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the delete event", func() bool {
		return testutil.ToFloat64(w.m.Events.WithLabelValues("delete")) == 1
	})
	w.Sweep()
	if srcs[0].Kube().Labels["version"] != "v2" || w.Len() != 2 {
		t.Errorf("deleted pod's metadata lost while its sources are bound: %+v, %d pods", srcs[0].Kube(), w.Len())
	}
	// The whole run cost one list and one watch (the test's own create/get/update/delete
	// calls are the only others), however many sources and bindings.
	var informerCalls []string
	for _, c := range cs.Actions() {
		if c.GetVerb() == "list" || c.GetVerb() == "watch" {
			informerCalls = append(informerCalls, c.GetVerb())
			if lw, ok := c.(k8stesting.ListAction); ok && c.GetVerb() == "list" {
				if sel := lw.GetListRestrictions().Fields.String(); sel != "spec.nodeName=node-a" {
					t.Errorf("list field selector %q", sel)
				}
			}
		}
	}
	if len(informerCalls) != 2 {
		t.Errorf("informer API calls %v, want one list and one watch; all calls: %v", informerCalls, apiCalls(cs))
	}
}

func TestAttachPeerByIP(t *testing.T) {
	c := newTestCache(&clock{t: t0})
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app"}, ip: "127.0.0.1", rv: "1", labels: map[string]string{"app": "cart"}}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	src := collector.NewSource(1, "apps", nil)
	detach := c.AttachPeer(context.Background(), nc, src)
	k := src.Kube()
	if k == nil || k.Pod != "cart-1" || k.Container != "app" || k.Labels["app"] != "cart" {
		t.Fatalf("peer metadata %+v", k)
	}
	c.Upsert(makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app"}, ip: "127.0.0.1", rv: "2", labels: map[string]string{"app": "cart2"}}))
	if src.Kube().Labels["app"] != "cart2" {
		t.Error("connection's metadata not updated")
	}
	detach()
	if n := testutil.ToFloat64(c.m.Peers.WithLabelValues("ip")); n != 1 {
		t.Errorf("peers by ip %v", n)
	}
	// An IP no pod of this node has: node fields only.
	c2 := newTestCache(&clock{t: t0})
	src2 := collector.NewSource(2, "apps", nil)
	c2.AttachPeer(context.Background(), nc, src2)() // loopback: no pod will have it, no wait
	if k := src2.Kube(); k == nil || k.Node != "node-a" || k.Pod != "" {
		t.Errorf("unknown peer metadata %+v", k)
	}
}

// TestAttachPeerByCredentials connects over a real unix socket: SO_PEERCRED gives this
// process' pid, whose cgroup file is read from a /proc laid out as on a Kubernetes node.
func TestAttachPeerByCredentials(t *testing.T) {
	proc := fakeProcOfSelf(t, "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-"+peerCID+".scope")
	c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, ProcRoot: proc})
	p := makePod(podSpec{ns: "shop", name: "cart-1", uid: peerUID, containers: []string{"app", "sidecar"}, rv: "1", labels: map[string]string{"app": "cart"}})
	p.Status.ContainerStatuses = append(p.Status.ContainerStatuses,
		corev1ContainerStatus("app", "containerd://"+peerCID), corev1ContainerStatus("sidecar", "containerd://"+peerCID[:60]+"ffff"))
	c.Upsert(p)

	nc := unixConnToSelf(t)
	pid, err := peerPID(nc.(*net.UnixConn))
	if err != nil || pid != os.Getpid() {
		t.Fatalf("SO_PEERCRED pid %d, %v; want %d", pid, err, os.Getpid())
	}
	src := collector.NewSource(1, "apps", nil)
	defer c.AttachPeer(context.Background(), nc, src)()
	if k := src.Kube(); k == nil || k.PodUID != peerUID || k.Container != "app" {
		t.Fatalf("peer metadata %+v", k)
	}
	if n := testutil.ToFloat64(c.m.Peers.WithLabelValues("peercred")); n != 1 {
		t.Errorf("peers by peercred %v", n)
	}
}

func TestParseCgroupLine(t *testing.T) {
	const uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	const cid = "4f9c0d3e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"
	f := func(line, wantUID, wantCID string) {
		t.Helper()
		u, c := parseCgroupLine([]byte(line))
		if u != wantUID || c != wantCID {
			t.Errorf("%q: got %q %q, want %q %q", line, u, c, wantUID, wantCID)
		}
	}
	// cgroup v2, systemd driver (GKE, EKS AL2023), containerd and CRI-O.
	f("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-"+cid+".scope", uid, cid)
	f("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/crio-"+cid+".scope", uid, cid)
	// Guaranteed pods sit directly under kubepods.slice.
	f("0::/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-"+cid+".scope", uid, cid)
	// cgroup v1, cgroupfs driver.
	f("11:memory:/kubepods/burstable/pod"+uid+"/"+cid, uid, cid)
	f("4:cpu,cpuacct:/kubepods/pod"+uid+"/"+cid, uid, cid)
	// Seen from inside a private cgroup namespace.
	f("0::/../../kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-"+cid+".scope", uid, cid)
	// The pod's own cgroup (pause process) has no container ID.
	f("0::/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice", uid, "")
	// Not a pod.
	f("0::/system.slice/containerd.service", "", "")
	f("0::/user.slice/user-1000.slice/session-3.scope", "", "")
	f("0::/kubepods.slice/kubepods-podnotauid.slice", "", "")
	f("", "", "")
}

func FuzzParseCgroupLine(f *testing.F) {
	f.Add([]byte("0::/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-4f9c0d3e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d.scope"))
	f.Add([]byte("11:memory:/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		u, c := parseCgroupLine(line)
		if u != "" && len(u) != 36 {
			t.Fatalf("uid %q", u)
		}
		if c != "" && len(c) != 64 {
			t.Fatalf("container id %q", c)
		}
	})
}

// remoteConn is a connection whose peer address is what a pod on the pod network would have:
// the test's own connections all come from loopback.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// TestAttachPeerWaitsForNewPod: an application connects before the watch has told us its pod's
// IP. The connection waits (bounded) and gets the pod's metadata when it arrives; past the wait
// it starts with the node's alone and is bound when the pod comes later; a closed connection
// leaves nothing waiting.
func TestAttachPeerWaitsForNewPod(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	accept := func(ip string) net.Conn {
		t.Helper()
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return remoteConn{nc, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	}
	cart := func(rv string) *corev1.Pod {
		return makePod(podSpec{ns: "shop", name: "cart-1", uid: "u1", containers: []string{"app"}, ip: "10.4.0.7", rv: rv, labels: map[string]string{"app": "cart"}})
	}

	t.Run("arrives within the wait", func(t *testing.T) {
		c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, WaitForPod: 20 * time.Second})
		src := collector.NewSource(1, "apps", nil)
		go func() {
			time.Sleep(50 * time.Millisecond)
			c.Upsert(cart("1"))
		}()
		// Woken by the pod, not by the 20s bound: that would count not_found below.
		detach := c.AttachPeer(context.Background(), accept("10.4.0.7"), src)
		if k := src.Kube(); k == nil || k.Pod != "cart-1" || k.Container != "app" || k.Labels["app"] != "cart" {
			t.Fatalf("peer metadata after the pod arrived: %+v", k)
		}
		if n := testutil.ToFloat64(c.m.Peers.WithLabelValues("ip")); n != 1 {
			t.Errorf("peers by ip %v, want 1", n)
		}
		detach()
	})

	t.Run("arrives after the wait", func(t *testing.T) {
		c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, WaitForPod: 30 * time.Millisecond})
		src := collector.NewSource(1, "apps", nil)
		detach := c.AttachPeer(context.Background(), accept("10.4.0.7"), src)
		if k := src.Kube(); k == nil || k.Node != "node-a" || k.Pod != "" {
			t.Fatalf("metadata before the pod is known: %+v, want the node's alone", k)
		}
		if n := testutil.ToFloat64(c.m.Peers.WithLabelValues("not_found")); n != 1 {
			t.Errorf("peers not found %v, want 1", n)
		}
		c.Upsert(cart("1"))
		if k := src.Kube(); k == nil || k.Pod != "cart-1" || k.Container != "app" {
			t.Fatalf("a pod arriving after the wait did not bind the connection: %+v", k)
		}
		c.Upsert(cart("2")) // and it is kept current
		detach()
		if len(c.pending) != 0 {
			t.Errorf("pending after detach: %v", c.pending)
		}
	})

	t.Run("closed while waiting", func(t *testing.T) {
		c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, WaitForPod: 20 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		src := collector.NewSource(1, "apps", nil)
		c.AttachPeer(ctx, accept("10.4.0.9"), src)() // the input stops: no 20s wait
		if len(c.pending) != 0 {
			t.Errorf("pending after detach: %v", c.pending)
		}
		c.Upsert(makePod(podSpec{ns: "shop", name: "late", uid: "u9", containers: []string{"app"}, ip: "10.4.0.9", rv: "1"}))
		if k := src.Kube(); k.Pod != "" {
			t.Errorf("a detached connection was bound: %+v", k)
		}
	})
}

// TestAttachPeerByCredentialsWaits: a unix-socket peer whose pod (named by its cgroup) is not
// in the cache yet waits for it and gets its container by ID.
func TestAttachPeerByCredentialsWaits(t *testing.T) {
	proc := fakeProcOfSelf(t, "0::/kubepods/burstable/pod"+peerUID+"/"+peerCID)
	c := NewCache(CacheOptions{Node: "node-a", Filter: Filter{Labels: []string{"*"}}, ProcRoot: proc, WaitForPod: 20 * time.Second})
	nc := unixConnToSelf(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		p := makePod(podSpec{ns: "shop", name: "cart-1", uid: peerUID, containers: []string{"sidecar", "app"}, rv: "1"})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses,
			corev1ContainerStatus("sidecar", "containerd://"+peerCID[:60]+"ffff"), corev1ContainerStatus("app", "containerd://"+peerCID))
		c.Upsert(p)
	}()
	src := collector.NewSource(1, "apps", nil)
	defer c.AttachPeer(context.Background(), nc, src)()
	if k := src.Kube(); k == nil || k.PodUID != peerUID || k.Container != "app" {
		t.Fatalf("peer metadata %+v", k)
	}
	if n := testutil.ToFloat64(c.m.Peers.WithLabelValues("peercred")); n != 1 {
		t.Errorf("peers by peercred %v", n)
	}
}

// The pod and container a peer's cgroup names in the SO_PEERCRED tests.
const (
	peerUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	peerCID = "4f9c0d3e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"
)

// fakeProcOfSelf lays out a /proc whose entry for this process has cgroup line cg, as on a
// Kubernetes node, and returns its root.
func fakeProcOfSelf(t *testing.T, cg string) string {
	t.Helper()
	proc := filepath.Join(t.TempDir(), "proc")
	pidDir := filepath.Join(proc, itoa(int64(os.Getpid())))
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte(cg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return proc
}

// unixConnToSelf returns the server side of a unix-socket connection this process made to
// itself: SO_PEERCRED on it gives this process' pid.
func unixConnToSelf(t *testing.T) net.Conn {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "f.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cl, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}
