// Package pubsub is the Google Cloud Pub/Sub sink: one message per record, whose data is the
// DESIGN.md envelope JSON and whose attributes (namespace, pod, container, stream, source, id)
// let subscribers filter without parsing it.
//
// The sink publishes through the official client (cloud.google.com/go/pubsub/v2): a batch
// becomes PublishRequests sent through the client's generated Publisher client (direct.go), or,
// with an ordering key, messages handed to the client's Publisher, which keeps each key in
// order. Send returns only when every message of the batch is answered: nil when all were
// acknowledged, a *collector.RecordErrors when some failed permanently and the rest were
// acknowledged, a collector.Permanent error when all failed permanently, and a plain
// (retryable) error otherwise. It never keeps a batch's records after Send returns: message
// data is encoded into memory the message owns, because the Publisher holds it until
// published (the direct path reuses that memory once its requests have returned).
//
// A record whose message cannot fit the Pub/Sub message limit is truncated (FlagTruncated and a
// "truncated" attribute) or reported as a permanent record error, as configured; it is never
// retried forever.
package pubsub
