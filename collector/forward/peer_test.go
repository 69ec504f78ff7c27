package forward

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
)

// TestPeerPodMetadata: a TCP peer whose IP is a pod IP of this node, and a unix-socket peer
// whose SO_PEERCRED pid's cgroup names a pod, get that pod's metadata; with neither, the
// node's alone.
func TestPeerPodMetadata(t *testing.T) {
	const uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	proc := t.TempDir()
	pidDir := filepath.Join(proc, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-" +
		"4f9c0d3e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d.scope\n"
	if err := os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte(cg), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		podIP   string
		socket  bool
		wantPod string
	}{
		{name: "tcp pod ip", podIP: "127.0.0.1", wantPod: "web-1"},
		{name: "tcp unknown ip", podIP: "10.9.9.9", wantPod: ""},
		{name: "unix peercred", podIP: "10.9.9.9", socket: true, wantPod: "web-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := kube.NewCache(kube.CacheOptions{Node: "node-a", Filter: kube.Filter{Labels: []string{"*"}}, ProcRoot: proc})
			c.Upsert(&corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: uid, Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "img:1"}}},
				Status:     corev1.PodStatus{PodIP: tc.podIP},
			})
			cfg := collector.InputConfig{Name: "apps", Listen: "127.0.0.1:0"}
			if tc.socket {
				cfg = collector.InputConfig{Name: "apps", Socket: socketPath(t)}
			}
			in, err := New(cfg, collector.NewMetrics(nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			in.SetPeerMetadata(c)
			out := newFakeEmitter()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx, out) }()
			defer func() { cancel(); <-done }()
			fc := fluent.Config{MaxRetry: 3, RetryWait: 10, Timeout: 10 * time.Second}
			if tc.socket {
				fc.FluentNetwork, fc.FluentSocketPath = "unix", cfg.Socket
				waitListening(t, func() bool {
					c, err := net.Dial("unix", cfg.Socket)
					if err == nil {
						c.Close()
					}
					return err == nil
				})
			} else {
				waitListening(t, func() bool { return in.Addr() != nil })
				host, port, _ := net.SplitHostPort(in.Addr().String())
				fc.FluentHost = host
				fc.FluentPort, _ = strconv.Atoi(port)
			}
			f, err := fluent.New(fc)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Post("app.web", map[string]any{"message": "hi"}); err != nil {
				t.Fatal(err)
			}
			f.Close()
			env := parseEnvelope(t, out.waitRecords(t, 1)[0])
			k := env.Kubernetes
			if k["node"] != "node-a" {
				t.Errorf("kubernetes %v: node missing", k)
			}
			if got, _ := k["pod"].(string); got != tc.wantPod {
				t.Errorf("kubernetes %v: pod %q, want %q", k, got, tc.wantPod)
			}
			if tc.wantPod != "" && (k["container"] != "app" || k["image"] != "img:1") {
				t.Errorf("kubernetes %v: container/image", k)
			}
		})
	}
}

func waitListening(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("input did not start listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
