package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// sweepEvery is how often deleted pods past their grace period are forgotten.
const sweepEvery = 30 * time.Second

// Watcher runs the node's pod informer and feeds its Cache. The informer lists and watches
// pods with fieldSelector spec.nodeName=<node>, so the API server sends this node's pods only;
// resync is off (nothing is re-delivered on a timer); objects are stripped by the transform
// before they are stored; a failed watch is re-established by client-go's reflector with
// exponential backoff (800 ms doubling to 30 s, reset after 2 min of health).
type Watcher struct {
	*Cache
	informer cache.SharedIndexInformer
}

// NewWatcher builds the watcher of node's pods; Run starts it.
func NewWatcher(client kubernetes.Interface, o CacheOptions) (*Watcher, error) {
	if o.Node == "" {
		return nil, errors.New("kubernetes: node_name is empty: set NODE_NAME from the downward API (spec.nodeName)")
	}
	c := NewCache(o)
	sel := fields.OneTermEqualSelector("spec.nodeName", o.Node).String()
	inf := informers.NewFilteredPodInformer(client, metav1.NamespaceAll, 0, cache.Indexers{},
		func(lo *metav1.ListOptions) { lo.FieldSelector = sel })
	if err := inf.SetTransform(c.filter.transform); err != nil {
		return nil, fmt.Errorf("kubernetes: pod informer transform: %w", err)
	}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		c.m.failed(err)
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod informer: %w", err)
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*slimPod); ok {
				c.m.Events.WithLabelValues("add").Inc()
				c.markReachable()
				c.upsert(p)
			}
		},
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*slimPod); ok {
				c.m.Events.WithLabelValues("update").Inc()
				c.markReachable()
				c.upsert(p)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			switch p := obj.(type) {
			case *slimPod:
				c.m.Events.WithLabelValues("delete").Inc()
				c.delete(p.UID)
			case *corev1.Pod:
				c.m.Events.WithLabelValues("delete").Inc()
				c.delete(p.UID)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: pod informer handler: %w", err)
	}
	return &Watcher{Cache: c, informer: inf}, nil
}

func (c *Cache) markReachable() { c.m.setReachable(true) }

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
			w.synced.Store(true)
			w.markReachable()
			w.log.Info("kubernetes pod watch synced", "node", w.node, "pods", w.Len())
		}
	}()
	go func() {
		sweep := time.NewTicker(sweepEvery)
		defer sweep.Stop()
		check := time.NewTicker(time.Second)
		defer check.Stop()
		up := true
		for {
			select {
			case <-ctx.Done():
				return
			case <-sweep.C:
				w.Sweep()
			case <-check.C:
				up = w.logReachability(up)
			}
		}
	}()
	w.informer.RunWithContext(ctx)
}

// logReachability logs a change of the API's reachability (at most once a minute while it
// stays down); up is what was logged last.
func (w *Watcher) logReachability(up bool) bool {
	now := w.m.reachable.Load()
	if !now {
		var err error
		if p := w.m.lastErr.Load(); p != nil {
			err = *p
		}
		w.warn.Warn("api-unreachable", "kubernetes API unreachable: the watch retries with backoff; log streams of pods "+
			"not in the cache fall back to their path fields meanwhile", "node", w.node, "err", err)
	} else if !up {
		w.log.Info("kubernetes API reachable again", "node", w.node, "pods", w.Len())
	}
	return now
}

// WaitSynced waits until the first list is in the cache, or ctx ends.
func (w *Watcher) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced)
}

// Synced reports whether the first list reached the cache.
func (c *Cache) Synced() bool { return c.synced.Load() }

// Reachable reports whether the API answered the last request (client-go retries a refused
// watch quietly with backoff, so the transport, not the watch error handler, is what sees an
// apiserver go away).
func (c *Cache) Reachable() bool { return c.m.reachable.Load() }

// RESTConfig returns the client config: the kubeconfig file when set, else in-cluster.
// Pods are read as protobuf, which decodes with a fraction of JSON's garbage; every request
// is counted in m by verb.
func RESTConfig(kubeconfig string, m *Metrics) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "tailgate"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	if m != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &countingTransport{rt: rt, m: m} })
	}
	return cfg, nil
}

// NewClient returns a clientset for RESTConfig(kubeconfig, m).
func NewClient(kubeconfig string, m *Metrics) (kubernetes.Interface, error) {
	cfg, err := RESTConfig(kubeconfig, m)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

// countingTransport counts API requests by verb.
type countingTransport struct {
	rt http.RoundTripper
	m  *Metrics
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.m.Requests.WithLabelValues(verbOf(req)).Inc()
	resp, err := t.rt.RoundTrip(req)
	switch {
	case err != nil:
		if req.Context().Err() == nil {
			t.m.failed(err)
		}
	case resp.StatusCode >= 500:
		t.m.failed(fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status))
	default:
		t.m.setReachable(true)
	}
	return resp, err
}

func verbOf(req *http.Request) string {
	if req.Method != http.MethodGet {
		return "other"
	}
	q := req.URL.Query()
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		return "watch"
	}
	if strings.HasSuffix(req.URL.Path, "/pods") {
		return "list"
	}
	return "get"
}

// Ping checks that the API answers and lets this identity list this node's pods (what the
// watch needs), for tailgate check.
func Ping(ctx context.Context, client kubernetes.Interface, node string) error {
	sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
	_, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: sel, Limit: 1})
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: list pods on node %s: %w (the agent's identity needs get, list and watch on pods "+
			"cluster-wide, as the ClusterRole in deploy/kubernetes/base/rbac.yaml grants)", node, err)
	case err != nil:
		return fmt.Errorf("kubernetes: list pods on node %s: %w", node, err)
	}
	return nil
}
