package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/forward"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/collector/multiline"
	"github.com/tailgate-dev/tailgate/collector/tail"
	"github.com/tailgate-dev/tailgate/exporter"
)

// newPodWatch builds the node's pod watch when kubernetes.enabled. Outside a cluster with no
// kubeconfig it returns nil and says so: records then carry their log paths' fields, which is
// refused when a route needs pod labels.
func newPodWatch(cfg *collector.Config, reg prometheus.Registerer, obs kube.PodObserver, log *slog.Logger) (*kube.Watcher, error) {
	k := cfg.Kubernetes
	if !k.Enabled {
		return nil, nil
	}
	m := kube.NewMetrics(reg)
	client, err := kube.NewClient(k.Kubeconfig, m)
	if errors.Is(err, rest.ErrNotInCluster) && k.Kubeconfig == "" {
		if r := labelRoute(cfg); r >= 0 {
			return nil, fmt.Errorf("routes[%d] matches pod labels, but kubernetes.enabled has no API to watch: "+
				"not running in a pod and kubernetes.kubeconfig is empty", r)
		}
		log.Warn("kubernetes.enabled, but not running in a pod and kubernetes.kubeconfig is empty: " +
			"records carry the fields of their log paths only (set kubernetes.enabled: false to silence this)")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return kube.NewWatcher(client, kube.CacheOptions{
		Node:       cfg.NodeName,
		Filter:     kube.Filter{Labels: k.Labels, Annotations: k.Annotations},
		WaitForPod: k.WaitForPod.D(),
		Metrics:    m,
		Log:        log.With("component", "kube"),
		Observer:   obs,
	})
}

// podSeries ties the exporter's per-pod series to the watch: tailgate_pod_info for every pod,
// and a pod's series removed once it is deleted and its last values were scraped.
type podSeries struct{ pods *exporter.Pods }

func (p podSeries) PodSeen(e kube.PodEvent) {
	p.pods.PodSeen(exporter.PodInfo{Namespace: e.Namespace, Name: e.Name, UID: e.UID,
		WorkloadKind: e.WorkloadKind, Workload: e.Workload, Phase: e.Phase})
}

func (p podSeries) PodDeleted(namespace, name, uid string) { p.pods.PodDeleted(namespace, name, uid) }

// labelRoute is the index of the first route that needs pod metadata from the watch, or -1.
func labelRoute(cfg *collector.Config) int {
	for i, r := range cfg.Routes {
		if r.Match.NeedsWatch() {
			return i
		}
	}
	return -1
}

// bindMetadata gives an input the watch's metadata (and, for a tail input, the pods'
// multiline annotation).
func bindMetadata(in collector.Input, ic collector.InputConfig, w *kube.Watcher, log *slog.Logger) {
	if w == nil {
		return
	}
	switch in := in.(type) {
	case *tail.Input:
		in.SetMetadata(w.Cache)
		in.SetMultilineChooser(multilineChooser(w, ic.Multiline, log))
	case *forward.Input:
		in.SetPeerMetadata(w.Cache)
	}
}

// checkKubernetes is what tailgate check verifies of kubernetes.enabled: that the API answers
// and lets this identity list this node's pods. Outside a cluster without a kubeconfig it
// only notes that run will fall back to path fields.
func checkKubernetes(ctx context.Context, cfg *collector.Config, out io.Writer) error {
	k := cfg.Kubernetes
	if !k.Enabled {
		return nil
	}
	client, err := kube.NewClient(k.Kubeconfig, nil)
	if errors.Is(err, rest.ErrNotInCluster) && k.Kubeconfig == "" {
		fmt.Fprintln(out, "note: kubernetes.enabled, but not running in a pod and kubernetes.kubeconfig is empty: the API was not checked")
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return kube.Ping(ctx, client, cfg.NodeName)
}

// annotationMultiline is the pod annotation that picks its containers' multiline detection:
// languages as in multiline.detect ("java,python", "all"), or "off".
const annotationMultiline = "multiline"

// multilineChooser lets a pod's tailgate.io/multiline annotation override the input's
// multiline.detect for its containers, keeping the input's other multiline settings. The
// choice is made when a container's log stream starts, from the pod as the watch has it then;
// an unknown language keeps the input's rules (logged once).
func multilineChooser(w *kube.Watcher, base collector.MultilineConfig, log *slog.Logger) tail.MultilineChooser {
	var cache sync.Map // annotation value -> *multiline.Rules (nil: off)
	return func(k *collector.Kube, configured *multiline.Rules) *multiline.Rules {
		v, ok := w.PodSetting(k, annotationMultiline)
		if !ok {
			return configured
		}
		if r, ok := cache.Load(v); ok {
			return r.(*multiline.Rules)
		}
		var rules *multiline.Rules
		if strings.TrimSpace(v) != "off" {
			cfg := base.Rules()
			cfg.Detect = strings.Split(v, ",")
			cfg.Start, cfg.Continue = "", ""
			r, err := multiline.Compile(cfg)
			if err != nil {
				log.Warn("bad tailgate.io/multiline annotation: the input's multiline settings apply", "value", v,
					"namespace", k.Namespace, "pod", k.Pod, "err", err)
				r = configured
			}
			rules = r
		}
		cache.Store(v, rules)
		return rules
	}
}
