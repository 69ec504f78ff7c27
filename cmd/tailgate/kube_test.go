//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/internal/kubetest"
)

// TestAgentWithRealAPIServer runs the whole agent with kubernetes.kubeconfig pointing at a
// real kube-apiserver: tailed records carry the pod's labels, workload and image, a label
// route sends them to their sink, and check reaches the API.
func TestAgentWithRealAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	pod, err := admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f5c6b8-x2x4z", Labels: map[string]string{"app": "cart", "pod-template-hash": "7d9f5c6b8"},
			Annotations:     map[string]string{"team": "payments"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7d9f5c6b8", UID: "00000000-0000-0000-0000-000000000001", Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "registry.example/cart:2.1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	podDir := filepath.Join(dir, "pods", fmt.Sprintf("shop_%s_%s", pod.Name, pod.UID), "app")
	os.MkdirAll(podDir, 0o755)
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, "2026-11-25T10:00:00.%09dZ stdout F line %d\n", i, i)
	}
	os.WriteFile(filepath.Join(podDir, "0.log"), []byte(lines.String()), 0o644)
	os.Symlink(filepath.Join(podDir, "0.log"), filepath.Join(dir, "containers", pod.Name+"_shop_app-"+strings.Repeat("a", 64)+".log"))

	cfgPath := filepath.Join(dir, "tailgate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`node_name: node-a
data_dir: %s/data
metrics: {listen: ""}
kubernetes: {kubeconfig: %s, labels: [app], annotations: [team]}
inputs:
  - {name: pods, type: tail, paths: ["%s/containers/*.log"], poll_interval: 20ms}
routes:
  - {match: {labels: {app: cart}}, sinks: [cart]}
sinks:
  - {name: cart, type: file, path: %s/cart.jsonl}
  - {name: other, type: file, path: %s/other.jsonl}
`, dir, srv.Kubeconfig, dir, dir, dir)), 0o644)
	if code, out, errOut := runCLI(t, "check", "--config", cfgPath); code != 0 {
		t.Fatalf("check: %d\n%s\n%s", code, out, errOut)
	}
	cfg, err := collector.LoadConfig(cfgPath, collector.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAgent(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	type env struct {
		Message    string `json:"message"`
		Kubernetes struct {
			Pod, Workload, Image, Node string
			WorkloadKind               string `json:"workload_kind"`
			Labels, Annotations        map[string]string
		} `json:"kubernetes"`
	}
	var got []env
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records in cart.jsonl after 60s", len(got))
		}
		time.Sleep(50 * time.Millisecond)
		f, err := os.Open(filepath.Join(dir, "cart.jsonl"))
		if err != nil {
			continue
		}
		got = got[:0]
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e env
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			got = append(got, e)
		}
		f.Close()
	}
	k := got[0].Kubernetes
	if k.Workload != "cart" || k.WorkloadKind != "Deployment" || k.Image != "registry.example/cart:2.1" || k.Node != "node-a" ||
		k.Labels["app"] != "cart" || len(k.Labels) != 1 || k.Annotations["team"] != "payments" {
		t.Errorf("record metadata %+v", k)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "other.jsonl")); len(b) > 0 {
		t.Errorf("a record matched by the label route went to the other sink: %s", b)
	}
	// The watch drives the exporter: one tailgate_pod_info per pod, with its workload.
	var exp bytes.Buffer
	if _, err := a.pods.WriteTo(&exp); err != nil {
		t.Fatal(err)
	}
	want := `tailgate_pod_info{namespace="shop",pod="cart-7d9f5c6b8-x2x4z",workload_kind="Deployment",workload="cart",phase="Pending"} 1`
	if !strings.Contains(exp.String(), want) {
		t.Errorf("exporter output lacks %s:\n%s", want, exp.String())
	}
}
