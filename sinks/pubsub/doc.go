// Package pubsub is the Google Cloud Pub/Sub sink: one message per record, whose data is the
// DESIGN.md envelope JSON and whose attributes (namespace, pod, container, stream, source, id)
// let subscribers filter without parsing it.
//
// The sink publishes through the official client (cloud.google.com/go/pubsub/v2) and returns
// from Send only when every message of the batch has a PublishResult: nil when all were
// acknowledged, a *collector.RecordErrors when some failed permanently and the rest were
// acknowledged, a collector.Permanent error when all failed permanently, and a plain
// (retryable) error otherwise. It never keeps a batch's records after Send returns: message
// data is encoded into memory the message owns, because the client holds it until published.
//
// A record whose message cannot fit the Pub/Sub message limit is truncated (FlagTruncated and a
// "truncated" attribute) or reported as a permanent record error, as configured; it is never
// retried forever.
package pubsub
