// Package kube owns the Kubernetes metadata of this node's log sources: one shared pod
// informer scoped to the node (fieldSelector spec.nodeName), resync off, a transform that keeps
// only the fields records use, and an index by pod UID, namespace/name, pod IP and container ID.
//
// Metadata is built once per container per pod version (collector.Kube) and published to every
// Source bound to that container with Source.SetKube: records never take a lock or build a map.
// A pod's metadata stays while any source still reads its files, even after the pod is deleted.
//
// It must never call the API per pod, per file or per record: the one list+watch is the whole
// cost to the API server, whatever the churn. Workloads are resolved from the pod alone (the
// ReplicaSet owner minus the pod-template-hash label gives the Deployment; a Job named
// <cronjob>-<scheduled minute> gives the CronJob), not from ReplicaSet or Job informers.
package kube
