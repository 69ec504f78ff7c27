package kube

import (
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tailgate-dev/tailgate/collector"
)

// Defaults for CacheOptions.
const (
	// DefaultWaitForPod bounds how long a new log file waits for its pod to reach the cache:
	// the kubelet creates the file before the watch event for the pod may have arrived.
	DefaultWaitForPod = 2 * time.Second
	// DefaultDeletedGrace keeps a deleted pod that nothing reads any more, for a forward
	// client that connects or a file found just after the delete event.
	DefaultDeletedGrace = time.Minute
)

// CacheOptions configure a Cache.
type CacheOptions struct {
	Node         string
	Filter       Filter
	WaitForPod   time.Duration // 0: DefaultWaitForPod
	DeletedGrace time.Duration // 0: DefaultDeletedGrace
	Metrics      *Metrics      // nil: not counted
	Log          *slog.Logger
	Now          func() time.Time // tests
	// ProcRoot is where /proc is mounted, for forward unix-socket peers (default /proc).
	ProcRoot string
	// Observer, if set, is told of every pod version the watch sees and of each deletion, after
	// the cache has them (the exporter ties its per-pod series' lifetime to it).
	Observer PodObserver
}

// PodObserver follows this node's pods as the watch sees them.
type PodObserver interface {
	PodSeen(PodEvent)
	PodDeleted(namespace, name, uid string)
}

// PodEvent is one pod version: its identity, the workload that owns it and its phase.
type PodEvent struct {
	Namespace, Name, UID   string
	WorkloadKind, Workload string
	Phase                  string
}

// Cache is the index of this node's pods and the bindings of log sources to them. It is fed
// pod objects (by the informer, or by tests) and never talks to the API itself.
type Cache struct {
	node   string
	filter Filter
	wait   time.Duration
	grace  time.Duration
	m      *Metrics
	log    *slog.Logger
	warn   *collector.WarnLimiter
	now    func() time.Time
	// procRoot is where the peers' /proc/<pid>/cgroup are read.
	procRoot string
	observer PodObserver

	// synced is set once the first list reached the cache.
	synced atomic.Bool

	mu      sync.Mutex
	byUID   map[string]*podEntry
	byName  map[string]*podEntry // namespace/name -> the newest pod of that name
	byIP    map[string]*podEntry
	byCID   map[string]*podEntry // container ID (without the runtime:// prefix)
	pending map[string]map[*Binding]struct{}
}

// podEntry is one pod as the index keeps it, with the metadata of each container built once
// per pod version.
type podEntry struct {
	uid, namespace, name string
	ips                  []string
	cids                 map[string]string // container ID -> container name
	pod                  *collector.Kube   // pod level (forward peers): Container ""
	containers           map[string]*collector.Kube
	images               map[string]string
	specContainers       []string
	settings             map[string]string // tailgate.io/ annotations
	exclude              bool
	deleted              bool
	deletedAt            time.Time
	bindings             map[*Binding]struct{}
}

// NewCache returns an empty cache.
func NewCache(o CacheOptions) *Cache {
	c := &Cache{
		observer: o.Observer,
		node:     o.Node, filter: o.Filter, wait: o.WaitForPod, grace: o.DeletedGrace, m: o.Metrics,
		log: o.Log, now: o.Now, procRoot: o.ProcRoot,
		byUID: map[string]*podEntry{}, byName: map[string]*podEntry{}, byIP: map[string]*podEntry{},
		byCID: map[string]*podEntry{}, pending: map[string]map[*Binding]struct{}{},
	}
	if c.wait <= 0 {
		c.wait = DefaultWaitForPod
	}
	if c.grace <= 0 {
		c.grace = DefaultDeletedGrace
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.procRoot == "" {
		c.procRoot = "/proc"
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.m == nil {
		c.m = NewMetrics(nil)
	}
	c.warn = collector.NewWarnLimiter(c.log, time.Minute)
	return c
}

// Node is the node name put in every record's metadata.
func (c *Cache) Node() string { return c.node }

// Upsert adds or updates a pod (already transformed, or not) and republishes the metadata of
// every source bound to it when it changed.
func (c *Cache) Upsert(pod *corev1.Pod) {
	if pod != nil {
		c.upsert(c.filter.slim(pod))
	}
}

func (c *Cache) upsert(pod *slimPod) {
	if pod == nil || pod.UID == "" {
		return
	}
	now := c.now()
	c.mu.Lock()
	uid := string(pod.UID)
	e := c.byUID[uid]
	if e == nil {
		e = &podEntry{uid: uid, bindings: map[*Binding]struct{}{}}
		c.byUID[uid] = e
		c.m.Pods.Set(float64(len(c.byUID)))
	}
	e.deleted = false
	c.build(e, pod, now)
	c.index(e, pod)
	c.resolvePending(e, e.namespace+"/"+e.name)
	c.resolvePending(e, uid)
	for _, ip := range e.ips {
		c.resolvePending(e, peerIPKey(ip))
	}
	c.publish(e)
	ev := PodEvent{Namespace: pod.Namespace, Name: pod.Name, UID: uid, Phase: pod.Phase}
	if e.pod != nil {
		ev.WorkloadKind, ev.Workload = e.pod.WorkloadKind, e.pod.Workload
	}
	c.mu.Unlock()
	if c.observer != nil {
		c.observer.PodSeen(ev) // outside mu: the observer has locks of its own
	}
}

// Delete marks a pod deleted. Its metadata stays while a source is bound to it, then for
// the grace period.
func (c *Cache) Delete(pod *corev1.Pod) {
	if pod != nil {
		c.delete(pod.UID)
	}
}

func (c *Cache) delete(uid types.UID) {
	c.mu.Lock()
	e := c.byUID[string(uid)]
	if e == nil || e.deleted {
		c.mu.Unlock()
		return
	}
	if c.observer != nil {
		defer c.observer.PodDeleted(e.namespace, e.name, e.uid) // runs after the unlock below
	}
	defer c.mu.Unlock()
	e.deleted = true
	e.deletedAt = c.now()
	for _, ip := range e.ips {
		if c.byIP[ip] == e {
			delete(c.byIP, ip) // the IP may be given to a new pod at once
		}
	}
	e.ips = nil
}

// Sweep forgets deleted pods that no source reads and whose grace period is over. The
// informer's owner calls it periodically.
func (c *Cache) Sweep() int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for uid, e := range c.byUID {
		if !e.deleted || len(e.bindings) > 0 || now.Sub(e.deletedAt) < c.grace {
			continue
		}
		delete(c.byUID, uid)
		if k := e.namespace + "/" + e.name; c.byName[k] == e {
			delete(c.byName, k)
		}
		for cid := range e.cids {
			if c.byCID[cid] == e {
				delete(c.byCID, cid)
			}
		}
		n++
	}
	c.m.Pods.Set(float64(len(c.byUID)))
	return n
}

// Len is the number of pods held, deleted ones included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byUID)
}

// build renders the pod's metadata: one collector.Kube per container, sharing the label and
// annotation maps. A version equal to the previous one keeps the previous pointers, so sources
// are not republished for a status change that touches no field records carry.
func (c *Cache) build(e *podEntry, pod *slimPod, now time.Time) {
	e.namespace, e.name = pod.Namespace, pod.Name
	labels := map[string]string{}
	for k, v := range pod.Labels {
		if matchAny(c.filter.Labels, k) {
			labels[k] = v
		}
	}
	annotations := map[string]string{}
	settings := map[string]string{}
	for k, v := range pod.Annotations {
		if matchAny(c.filter.Annotations, k) {
			annotations[k] = v
		}
		if strings.HasPrefix(k, annotationPrefix) {
			settings[k] = v
		}
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	wl, kind := workload(pod, now)
	base := collector.Kube{
		Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Node: c.node,
		Labels: labels, Workload: wl, WorkloadKind: kind, Annotations: annotations,
	}
	if old := e.pod; old != nil && sameMaps(old.Labels, labels) && sameMaps(old.Annotations, annotations) {
		base.Labels, base.Annotations = old.Labels, old.Annotations // share the old maps
	}
	images := map[string]string{}
	for _, ct := range pod.Containers {
		images[ct.Name] = ct.Image
	}
	e.images = images
	e.specContainers = e.specContainers[:0]
	for _, ct := range pod.Containers {
		e.specContainers = append(e.specContainers, ct.Name)
	}
	if e.pod == nil || !sameKube(e.pod, &base) {
		p := base
		e.pod = &p
		e.containers = nil // rebuilt lazily from e.pod
	}
	if e.containers == nil {
		e.containers = map[string]*collector.Kube{}
	}
	for name, image := range images {
		if k := e.containers[name]; k == nil || k.Image != image {
			e.containers[name] = containerKube(e.pod, name, image)
		}
	}
	e.settings = settings
	e.exclude = settings[AnnotationExclude] == "true"
}

func containerKube(pod *collector.Kube, name, image string) *collector.Kube {
	k := *pod
	k.Container, k.Image = name, image
	return &k
}

// kubeFor returns the metadata of container name (pod level for ""), building it for a
// container the spec does not list (a log path may name one the pod no longer has).
func (e *podEntry) kubeFor(name string) *collector.Kube {
	if name == "" {
		return e.pod
	}
	if k := e.containers[name]; k != nil {
		return k
	}
	k := containerKube(e.pod, name, e.images[name])
	e.containers[name] = k
	return k
}

func sameKube(a, b *collector.Kube) bool {
	return a.Namespace == b.Namespace && a.Pod == b.Pod && a.PodUID == b.PodUID && a.Container == b.Container &&
		a.Node == b.Node && a.Workload == b.Workload && a.WorkloadKind == b.WorkloadKind && a.Image == b.Image &&
		sameMaps(a.Labels, b.Labels) && sameMaps(a.Annotations, b.Annotations)
}

func sameMaps(a, b map[string]string) bool { return maps.Equal(a, b) }

// index points the name, IP and container ID indexes at e.
func (c *Cache) index(e *podEntry, pod *slimPod) {
	c.byName[e.namespace+"/"+e.name] = e
	for _, ip := range e.ips {
		if c.byIP[ip] == e {
			delete(c.byIP, ip)
		}
	}
	e.ips = e.ips[:0]
	if !pod.HostNetwork { // a host-network pod shares the node's IP with every other one
		for _, ip := range pod.IPs {
			e.ips = append(e.ips, ip)
			c.byIP[ip] = e
		}
	}
	if e.cids == nil {
		e.cids = map[string]string{}
	}
	for _, cs := range pod.IDs {
		id := cs.Image
		if i := strings.Index(id, "://"); i >= 0 {
			id = id[i+3:]
		}
		if id != "" {
			e.cids[id] = cs.Name
			c.byCID[id] = e
		}
	}
}

// resolvePending binds the sources that were waiting for this pod under key.
func (c *Cache) resolvePending(e *podEntry, key string) {
	for b := range c.pending[key] {
		if b.uid != "" && b.uid != e.uid {
			continue
		}
		delete(c.pending[key], b)
		b.entry = e
		e.bindings[b] = struct{}{}
		b.resolved.Store(true)
		b.settled.Store(true)
		if b.peer {
			b.container = e.peerContainer(b.peerCID)
			close(b.found) // publish, next, gives it the pod's metadata
		}
	}
	if len(c.pending[key]) == 0 {
		delete(c.pending, key)
	}
}

// publish stores the entry's current metadata in every binding and its sources.
func (c *Cache) publish(e *podEntry) {
	for b := range e.bindings {
		b.set(e.kubeFor(b.container), e.exclude, e.settings)
	}
}

// Binding ties the sources of one container (the files of a log stream, a forward
// connection) to the pod's metadata: they get every new version as it arrives.
type Binding struct {
	c         *Cache
	path      *collector.Kube // what the log path said: used until the pod is known
	uid       string
	key       string // pending key: uid, or namespace/name
	container string
	deadline  time.Time
	// A forward peer's binding may wait for its pod (pendingPeer): its container is known only
	// then (by peerCID, or the pod's only one), and found is closed when it is.
	peer    bool
	peerCID string
	found   chan struct{}

	resolved atomic.Bool // the pod was found
	settled  atomic.Bool // found, or gave up waiting
	excluded atomic.Bool
	cur      atomic.Pointer[collector.Kube]
	settings atomic.Pointer[map[string]string]

	// under c.mu
	entry   *podEntry
	sources map[*collector.Source]struct{}
	closed  bool
}

// Bind returns the binding of the container a log path names (path: the fields read from the
// path, node included). It never waits: Ready says when the caller should start reading.
func (c *Cache) Bind(path *collector.Kube) *Binding {
	b := &Binding{c: c, path: path, uid: path.PodUID, container: path.Container, sources: map[*collector.Source]struct{}{}}
	b.cur.Store(path)
	b.key = path.PodUID
	if b.key == "" {
		b.key = path.Namespace + "/" + path.Pod
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *podEntry
	if path.PodUID != "" {
		e = c.byUID[path.PodUID]
	} else if path.Namespace != "" && path.Pod != "" {
		e = c.byName[b.key]
	}
	if e != nil {
		b.attach(e)
		return b
	}
	if path.Namespace == "" && path.Pod == "" && path.PodUID == "" {
		b.settled.Store(true) // nothing to look for: a file outside the kubelet's layout
		return b
	}
	b.deadline = c.now().Add(c.wait)
	if c.pending[b.key] == nil {
		c.pending[b.key] = map[*Binding]struct{}{}
	}
	c.pending[b.key][b] = struct{}{}
	return b
}

// PodSetting returns the tailgate.io/<name> annotation of the pod a log path names, if that
// pod is in the cache now (no wait).
func (c *Cache) PodSetting(path *collector.Kube, name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *podEntry
	if path.PodUID != "" {
		e = c.byUID[path.PodUID]
	} else {
		e = c.byName[path.Namespace+"/"+path.Pod]
	}
	if e == nil {
		return "", false
	}
	v, ok := e.settings[annotationPrefix+name]
	return v, ok
}

// BindPod returns a binding of container (pod level when "") of the pod with this UID, for a
// peer identified otherwise than by a path; nil when the pod is not in the cache.
func (c *Cache) bindEntry(e *podEntry, container string) *Binding {
	b := &Binding{c: c, path: &collector.Kube{Node: c.node}, uid: e.uid, container: container,
		sources: map[*collector.Source]struct{}{}}
	b.attach(e)
	return b
}

// attach binds b to e (under c.mu).
func (b *Binding) attach(e *podEntry) {
	b.entry = e
	e.bindings[b] = struct{}{}
	b.resolved.Store(true)
	b.settled.Store(true)
	b.set(e.kubeFor(b.container), e.exclude, e.settings)
}

// set publishes k to the binding and its sources (under c.mu).
func (b *Binding) set(k *collector.Kube, exclude bool, settings map[string]string) {
	b.excluded.Store(exclude)
	b.settings.Store(&settings)
	if b.cur.Load() == k {
		return
	}
	b.cur.Store(k)
	for s := range b.sources {
		s.SetKube(k)
	}
}

// Ready reports whether the pod was found or the bounded wait for it is over; a caller holds
// a new stream's records back until then. When the wait ends without the pod, the path
// fields stay, counted and logged (rate-limited) with the reason.
func (b *Binding) Ready() bool {
	if b.settled.Load() {
		return true
	}
	c := b.c
	if c.now().Before(b.deadline) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.settled.Load() {
		return true
	}
	b.settled.Store(true)
	reason := "not_found"
	if !c.m.reachable.Load() {
		reason = "api_unreachable"
	}
	c.m.Fallbacks.WithLabelValues(reason).Inc()
	c.warn.Warn("fallback:"+reason, "pod not in the metadata cache: records carry the fields of the log path",
		"namespace", b.path.Namespace, "pod", b.path.Pod, "pod_uid", b.path.PodUID, "container", b.path.Container, "reason", reason)
	return true
}

// Resolved reports whether the pod was found in the cache.
func (b *Binding) Resolved() bool { return b.resolved.Load() }

// Kube returns the current metadata: the pod's, or the path's until it is known.
func (b *Binding) Kube() *collector.Kube { return b.cur.Load() }

// Excluded reports whether the pod asks not to be shipped (tailgate.io/exclude: "true").
func (b *Binding) Excluded() bool { return b.excluded.Load() }

// Setting returns the pod's tailgate.io/<name> annotation, or "".
func (b *Binding) Setting(name string) string {
	if m := b.settings.Load(); m != nil {
		return (*m)[annotationPrefix+name]
	}
	return ""
}

// Settings returns the pod's tailgate.io annotations as last published; the pointer changes
// when they may have (a new pod version), so a caller can cache what it derives from them.
func (b *Binding) Settings() *map[string]string { return b.settings.Load() }

// NewSource returns a source carrying the binding's metadata, kept current until Detach.
func (b *Binding) NewSource(key uint64, input string) *collector.Source {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := collector.NewSource(key, input, b.cur.Load())
	if !b.closed {
		b.sources[s] = struct{}{}
	}
	return s
}

// Attach keeps s's metadata current with the binding until Detach.
func (b *Binding) Attach(s *collector.Source) {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.closed {
		return
	}
	b.sources[s] = struct{}{}
	if s.Kube() != b.cur.Load() {
		s.SetKube(b.cur.Load())
	}
}

// Detach stops updating s (its file was released).
func (b *Binding) Detach(s *collector.Source) {
	c := b.c
	c.mu.Lock()
	delete(b.sources, s)
	c.mu.Unlock()
}

// Close releases the binding: the stream is gone. A deleted pod with no binding left is
// forgotten after the grace period.
func (b *Binding) Close() {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	clear(b.sources)
	if b.entry != nil {
		delete(b.entry.bindings, b)
		b.entry = nil
	}
	if p := c.pending[b.key]; p != nil {
		delete(p, b)
		if len(p) == 0 {
			delete(c.pending, b.key)
		}
	}
}
