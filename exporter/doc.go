// Package exporter owns tailgate's Prometheus exposition: the HTTP handler for /metrics and the
// per-pod families, whose series can number in the hundreds of thousands.
//
// # Per-pod families (names are a DESIGN.md contract)
//
// Log throughput, per container stream (Pods.Logs, counted by the pipeline for every input):
//
//	tailgate_pod_log_lines_total{namespace,pod,container,stream}         counter  records read
//	tailgate_pod_log_bytes_total{namespace,pod,container,stream}         counter  message bytes read
//	tailgate_pod_log_dropped_total{namespace,pod,container,stream,reason} counter records dropped
//
// stream is stdout, stderr (tail) or app (forward). A series is born with the first record (or
// drop) of its stream: a pod that only writes stdout has no stderr series, and a tailed
// container never has an app one. reason takes at most 10 values per stream, the 10th being
// "other" (the pipeline's own reasons are route, garbage, overlong, excluded, rate_limit and
// filtered, or a filter rule's own reason). Records delivered changed (truncated, invalid_utf8,
// multiline_cut) are not drops: they count in tailgate_input_errors_total{input,reason} only.
//
// Tail progress, per container (the tail input's Progress hook, once per poll per file):
//
//	tailgate_pod_log_written_bytes_total{namespace,pod,container} counter  bytes the runtime wrote
//	tailgate_pod_log_read_bytes_total{namespace,pod,container}    counter  bytes the tail read
//	tailgate_pod_log_lag_bytes{namespace,pod,container}           gauge    written, not yet read
//
// These count file bytes (CRI or docker framing included), so written and read compare:
// rate(written) - rate(read) > 0 for long is a tail falling behind on that container. A file's
// first report counts what it already holds. Rotated files count until they are drained.
//
// Log disk usage, per container (a scan of /var/log/pods every 15 s, metrics.pod_resources):
//
//	tailgate_pod_log_disk_bytes{namespace,pod,container}   gauge  bytes of its log files, rotated and compressed included
//	tailgate_pod_log_disk_files{namespace,pod,container}   gauge  its log files
//	tailgate_pod_container_restarts{namespace,pod,container} gauge restarts, from the kubelet's <restarts>.log naming
//
// cgroup v2 CPU and memory, per pod, only with metrics.pod_resources.cgroup: true (the kubelet's
// cAdvisor exports them already; this is for clusters that do not scrape it). Pod cgroups are
// found under kubepods.slice (systemd driver) or kubepods/ (cgroupfs driver), QoS classes
// included; pods are named by uid from the /var/log/pods directory names and the watch:
//
//	tailgate_pod_cpu_seconds_total{namespace,pod}           counter  cpu.stat usage_usec
//	tailgate_pod_cpu_throttled_seconds_total{namespace,pod} counter  cpu.stat throttled_usec
//	tailgate_pod_memory_working_set_bytes{namespace,pod}    gauge    memory.current - inactive_file
//	tailgate_pod_memory_oom_kills_total{namespace,pod}      counter  memory.events oom_kill
//
// Pod info, per pod the Kubernetes watch knows (Pods.PodSeen):
//
//	tailgate_pod_info{namespace,pod,workload_kind,workload,phase}  gauge  1
//
// The exporter's own:
//
//	tailgate_exporter_series                gauge    per-pod samples exposed, against the budget
//	tailgate_exporter_series_limit          gauge    metrics.max_series (0: none)
//	tailgate_exporter_series_refused_total  counter  per-pod series not created: budget reached
//
// Labels carry identity only (namespace, pod, container, stream, a reason from a fixed set),
// never log content. The workload is deliberately not a label of the other families: it is a
// function of the pod, so as a label it adds no series, only ~40 bytes to the label text of
// every one (exposition size, render and gzip time grow with it); a series is born with its
// first line, often before the watch knows the pod, so the label would arrive late and split
// the series (a counter reset); and tailgate_pod_info, joined once per evaluation by the
// recording rules in deploy/prometheus, gives the per-workload rates the way kube-state-metrics'
// kube_pod_owner does.
//
// # How
//
// These families do not use client_golang: a series' label text is rendered once, when the
// series is born; its values live in atomics that the hot path bumps without locks or
// allocation; a scrape streams every series through a reused buffer, so its cost is O(series)
// with no per-series allocation; and the structs of removed series, their label buffers and
// pod groups are recycled, so pod churn allocates nothing in steady state.
//
// # Lifecycle
//
// A series lives while something references it (a tailed file, a forward connection, a
// directory the scans found) or, for the log and tail families, while the Kubernetes watch says
// its pod exists (PodSeen, PodDeleted; without the watch the lifecycle follows the files alone;
// disk and cgroup series follow their directories, which go only after the pod). Then it is doomed, and
// removed by the first scrape that starts at least two scrape intervals later, which writes it
// a last time: every scraper saw its final values. The interval is learned from the scrapes
// themselves (the second longest of the last eight gaps, so an HA pair is covered and an
// outage is not); an agent nobody scrapes drops doomed series after 10 minutes. A per-node
// budget (metrics.max_series, in samples) refuses new series past it and counts the refusals:
// the logs still flow, only their per-pod counts are missing.
//
// The package never registers anything globally and never blocks the hot path on a scrape.
package exporter
