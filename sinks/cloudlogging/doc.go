// Package cloudlogging is the Google Cloud Logging sink (type cloud_logging): container logs
// written as GKE's own logging agent writes them, so saved queries, log-based metrics and
// Error Reporting keep working, without loss.
//
// # Entries
//
// Each record becomes one LogEntry, written with WriteLogEntries through the official client
// (cloud.google.com/go/logging/apiv2), partial_success set:
//   - logName projects/{project}/logs/{LOG_ID}: by default GKE's naming, "stdout" or "stderr"
//     (the forward tag, or the input's name, for forward records); log_id takes a template of
//     {stream} {container} {namespace} {pod} {node} {workload} {tag} {input}. Characters a
//     LOG_ID may not hold become '_'; '/' is URL-encoded.
//   - resource k8s_container {project_id, location, cluster_name, namespace_name, pod_name,
//     container_name}; k8s_node {project_id, location, cluster_name, node_name} for records
//     without a pod. location and cluster_name come from the config or the GCE metadata
//     server (cluster-location, cluster-name); the sink does not start without them.
//   - labels, as on GKE's own entries: compute.googleapis.com/resource_name (the node),
//     logging.gke.io/top_level_controller_type and _name (the pod's workload, e.g. Deployment
//     cart), the pod's labels as k8s-pod/<key> with the key's dots as underscores
//     (k8s-pod/app_kubernetes_io/name); then the payload's logging.googleapis.com/labels. At
//     most 64, keys cut to 512 bytes and values to 64 KiB at UTF-8 boundaries; payload labels
//     past 64 stay in the jsonPayload.
//   - jsonPayload when the message is a JSON object (or for a forward record's map), else
//     textPayload holding the message byte for byte (CRI partial lines arrive joined).
//     Invalid UTF-8 becomes U+FFFD (the API refuses it); JSON nested deeper than 24 levels
//     keeps the deeper part as JSON text.
//   - insertId is the record's id and timestamp the record's time, so a retry or a replay
//     after a crash is de-duplicated by Cloud Logging (same insertId and timestamp).
//   - A record the pipeline split at the entry limit carries split {uid, index, totalSplits}
//     (totalSplits absent on a part replayed from the dead-letter store, whose count is not
//     kept); its parts are text (a JSON object cut in pieces is no longer one), each
//     textPayload a piece of the line.
//
// # Structured-logging fields honoured (top level of a JSON payload)
//
// As in https://cloud.google.com/logging/docs/structured-logging and the GKE agent; a field
// is taken out of the payload only when its value has the expected type, else it stays:
//   - severity (and logging.googleapis.com/severity): the LogSeverity names, any case, and
//     the agent's translations (WARN, ERR, FATAL, CRIT, EMERG, TRACE, FINE, SEVERE, INFORMATION,
//     single letters D I N W E C A F), or a number (0-800, rounded down to a multiple of 100);
//     an unrecognised value stays in the payload.
//   - level (not a Google field, kept in the payload): the same words, and numbers under 100 on
//     the pino/bunyan scale (30 info, 40 warn, 50 error, 60 fatal). A level in a record's
//     fields (set from a plain-text line's level prefix) counts the same.
//   - Without either: stderr -> ERROR, stdout -> INFO (stdout_severity, stderr_severity).
//   - time (RFC 3339), timestamp (RFC 3339, or {"seconds","nanos"}), timestampSeconds with
//     timestampNanos -> timestamp.
//   - message stays in the payload (the Logs Explorer shows it as the summary).
//   - logging.googleapis.com/insertId -> insertId.
//   - logging.googleapis.com/labels (string members) -> labels.
//   - logging.googleapis.com/trace -> trace (a bare 32-hex id becomes
//     projects/{project}/traces/{id}); logging.googleapis.com/spanId -> spanId;
//     logging.googleapis.com/trace_sampled (or traceSampled) -> traceSampled.
//   - httpRequest -> httpRequest (requestMethod, requestUrl, requestSize, status,
//     responseSize, userAgent, remoteIp, serverIp, referer, latency "1.5s", cacheLookup,
//     cacheHit, cacheValidatedWithOriginServer, cacheFillBytes, protocol).
//   - logging.googleapis.com/operation -> operation (id, producer, first, last).
//   - logging.googleapis.com/sourceLocation -> sourceLocation (file, line, function).
//
// Members of those objects that are not of the expected name and type stay in the payload.
//
// # Limits and errors
//
// The pipeline keeps each entry within max_entry_bytes (RecordBytes measures it as the API
// does, request-level fields included), by the oversize policy. A request holds at most
// max_entries_per_request entries and stays under 10 MB. A timestamp more than a day ahead is
// clamped to the record's own time (or now) or dead-lettered (future_timestamp). Per-entry
// errors of a partial success become RecordErrors; UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, INTERNAL are retried by the pipeline (no sooner than a RetryInfo detail
// asks); a request refused as a whole with INVALID_ARGUMENT (the API names no entry when none
// was written) is dead-lettered with that reason; PERMISSION_DENIED, NOT_FOUND and
// UNAUTHENTICATED keep the batch and retry it every permission_retry, with a warning and the
// tailgate_cloud_logging_refused gauge set.
//
// Entries are encoded straight from the records into protobuf wire bytes (no loggingpb or
// structpb objects per record) and handed to the client as the request's bytes.
package cloudlogging
