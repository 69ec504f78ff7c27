// Package pubsub is the Google Cloud Pub/Sub sink: one message per record, whose data is the
// DESIGN.md envelope JSON and whose attributes (namespace, pod, container, stream, source, id,
// and truncated or part when the record was cut) let subscribers filter without parsing it.
//
// The sink publishes each batch the pipeline cuts as PublishRequests of its own through the
// official client's generated Publisher client (cloud.google.com/go/pubsub/v2, send.go). With
// an ordering_key the sink is a collector.Keyer: the pipeline cuts batches per key and keeps
// one in flight per key, and Send publishes a key's requests in turn, so Pub/Sub's ordering
// guarantee holds without the client's Publisher.
//
// The pipeline owns the limits: it enforces max_message_bytes with the sink's RecordBytes
// (size.go: an upper bound for ordinary records, measured exactly only near the limit) and the
// configured oversize policy. Send answers per message: what was acknowledged is done, what
// the service refused for good is dead-lettered under a reason (not_found, permission_denied,
// invalid_argument, failed_precondition, ...) for `tailgate deadletter replay`, and only what
// was not acknowledged is retried. It never keeps a batch's records after Send returns.
package pubsub
