package main

import (
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// TestMultilineAnnotation: a pod's tailgate.io/multiline picks its containers' multiline
// detection; "off" turns it off; no annotation or a bad one keeps the input's rules.
func TestMultilineAnnotation(t *testing.T) {
	w, err := kube.NewWatcher(fake.NewClientset(), kube.CacheOptions{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"java": "java", "off": "off", "bad": "cobol", "plain": ""} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name)}}
		if v != "" {
			p.Annotations = map[string]string{"tailgate.io/multiline": v}
		}
		w.Upsert(p)
	}
	base := collector.MultilineConfig{Detect: []string{"go"}}
	configured, err := multiline.Compile(base.Rules())
	if err != nil || configured == nil {
		t.Fatal(err)
	}
	choose := multilineChooser(w, base, slog.New(slog.DiscardHandler))
	k := func(pod string) *collector.Kube {
		return &collector.Kube{Namespace: "shop", Pod: pod, PodUID: "uid-" + pod, Container: "app"}
	}
	java := choose(k("java"), configured)
	if java == nil || java == configured || choose(k("java"), configured) != java {
		t.Errorf("java: %p (configured %p), not compiled once", java, configured)
	}
	if r := choose(k("off"), configured); r != nil {
		t.Error("off did not turn joining off")
	}
	if r := choose(k("bad"), configured); r != configured {
		t.Error("a bad annotation did not keep the input's rules")
	}
	if r := choose(k("plain"), configured); r != configured {
		t.Error("no annotation did not keep the input's rules")
	}
	if r := choose(k("unknown-pod"), configured); r != configured {
		t.Error("a pod not in the cache did not keep the input's rules")
	}
}
