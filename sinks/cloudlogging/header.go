package cloudlogging

import (
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// WriteLogEntriesRequest field numbers (google/logging/v2/logging.proto).
const (
	reqLogName        = 1
	reqResource       = 2
	reqLabels         = 3
	reqEntries        = 4
	reqPartialSuccess = 5
)

// A request's log name, monitored resource and labels are shared by all its entries: the API
// copies them into each entry, so they are written once per request, not once per entry.

// nodeLabel is the entry label GKE's agent puts on container logs: the node's name.
const nodeLabel = "compute.googleapis.com/resource_name"

// podLabelPrefix prefixes pod labels as entry labels, as GKE does (which also writes the
// dots of a label key as underscores: app.kubernetes.io/name -> k8s-pod/app_kubernetes_io/name).
const podLabelPrefix = "k8s-pod/"

// The labels GKE puts on a container's entries for the workload that owns its pod (the
// Deployment behind a ReplicaSet, the CronJob behind a Job).
const (
	controllerTypeLabel = "logging.gke.io/top_level_controller_type"
	controllerNameLabel = "logging.gke.io/top_level_controller_name"
)

// resourceHeader is the pre-encoded resource and labels fields of a request for one Kube.
type resourceHeader struct {
	bytes  []byte // fields 2 (resource) and 3 (labels), and 5 (partial_success)
	labels int    // labels it sets: each entry may add maxLabels - labels of its own
	cut    int    // pod labels left out past the 64-label limit, or truncated
}

// headerCache keeps a resourceHeader per Kube (a Kube is immutable: new metadata is a new
// pointer). It is bounded: past maxCachedHeaders it starts over.
type headerCache struct {
	project, location, cluster, node string

	mu sync.Mutex
	m  map[*collector.Kube]*resourceHeader
}

const maxCachedHeaders = 4096

func (c *headerCache) get(k *collector.Kube) *resourceHeader {
	c.mu.Lock()
	h := c.m[k]
	c.mu.Unlock()
	if h != nil {
		return h
	}
	h = c.build(k)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedHeaders {
		c.m = make(map[*collector.Kube]*resourceHeader)
	}
	c.m[k] = h
	c.mu.Unlock()
	return h
}

// build encodes the resource of k: k8s_container for a container's records (as GKE's agent
// writes them), k8s_node for records that have no pod (forward records from the node).
func (c *headerCache) build(k *collector.Kube) *resourceHeader {
	h := &resourceHeader{}
	b, s := beginMessage(nil, reqResource)
	node := k.Node
	if node == "" {
		node = c.node
	}
	if k.Namespace != "" && k.Pod != "" && k.Container != "" {
		b = appendStringFieldS(b, 1, "k8s_container")
		// Map entries in key order, so equal resources encode equally.
		b = appendLabel(b, 2, "cluster_name", c.cluster)
		b = appendLabel(b, 2, "container_name", k.Container)
		b = appendLabel(b, 2, "location", c.location)
		b = appendLabel(b, 2, "namespace_name", k.Namespace)
		b = appendLabel(b, 2, "pod_name", k.Pod)
		b = appendLabel(b, 2, "project_id", c.project)
	} else {
		b = appendStringFieldS(b, 1, "k8s_node")
		b = appendLabel(b, 2, "cluster_name", c.cluster)
		b = appendLabel(b, 2, "location", c.location)
		b = appendLabel(b, 2, "node_name", node)
		b = appendLabel(b, 2, "project_id", c.project)
	}
	b = endMessage(b, s)

	// GKE's own labels first, so the 64-label limit cuts pod labels, not these.
	if node != "" && k.Pod != "" {
		b = appendLabel(b, reqLabels, nodeLabel, node)
		h.labels++
	}
	if k.Workload != "" && k.WorkloadKind != "" {
		b = appendLabel(b, reqLabels, controllerNameLabel, truncateUTF8(k.Workload, maxLabelValueBytes))
		b = appendLabel(b, reqLabels, controllerTypeLabel, truncateUTF8(k.WorkloadKind, maxLabelValueBytes))
		h.labels += 2
	}
	keys := make([]string, 0, len(k.Labels))
	for key := range k.Labels {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for i, key := range keys {
		if h.labels >= maxLabels {
			h.cut += len(keys) - i
			break
		}
		lk := truncateUTF8(podLabelPrefix+strings.ReplaceAll(key, ".", "_"), maxLabelKeyBytes)
		lv := truncateUTF8(k.Labels[key], maxLabelValueBytes)
		if len(lk) < len(podLabelPrefix)+len(key) || len(lv) < len(k.Labels[key]) {
			h.cut++
		}
		b = appendLabel(b, reqLabels, lk, lv)
		h.labels++
	}
	b = protowire.AppendTag(b, reqPartialSuccess, protowire.VarintType)
	b = append(b, 1)
	h.bytes = b
	return h
}
