// Package cloudwatch is the Amazon CloudWatch Logs sink: each record becomes one log event of
// a log stream, sent with PutLogEvents through the official client
// (github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs) and its default credential chain
// (IRSA web identity, instance role, environment, shared config).
//
// What an event is. The event's timestamp is the record's time in milliseconds. Its message is
// chosen by message_format: "line" (the default) sends the record's message as it was logged,
// which is what CloudWatch Logs Insights users query (a JSON line is discovered field by field,
// and the pod and container are in the stream name); it is what aws-for-fluent-bit users get
// with `log_key log`, and what the EKS guide's examples switched to. A forward record without
// a message sends its fields object. "envelope" sends the DESIGN.md JSON envelope, metadata
// included, for groups shared by many pods.
//
// Where it goes. log_group and log_stream are templates over the record ({namespace}, {pod},
// {container}, {node}, {tag}, {stream}, {labels.KEY}, ...; name.go). The sink is a
// collector.Keyer: the pipeline cuts batches per (group, stream), so Limits are the limits of
// one PutLogEvents request. Groups and streams are created on first use.
//
// Limits. Every limit of the PutLogEvents API is kept on the client side, whatever the batch
// handed to Send holds (request.go): at most 10,000 events and 1,048,576 bytes counted as each
// message's UTF-8 bytes plus 26, one stream, events in time order, at most 24 hours between
// the first and the last event. The per-event limit (1 MiB including the 26 bytes, a setting)
// is enforced by the pipeline through Limits.MaxRecordBytes with the sink's RecordBytes, which
// counts what CloudWatch counts. Invalid UTF-8 is sent as U+FFFD (and counted as its 3 bytes):
// it never fails a request. Events more than 2 hours in the future or older than 14 days are
// not sent; they, and those the service rejects (rejectedLogEventsInfo: too new, too old,
// older than the group's retention), are reported as failed records with a reason
// (too_new, too_old, expired) and go to the dead-letter store, while the rest of the batch is
// acknowledged.
//
// Errors are classified once (classify.go). Throttling, service unavailable, 5xx, network
// errors and timeouts are retried by the pipeline's backoff: the SDK's own retryer is off, so
// no request is retried on two layers. When a batch needed several requests, only the
// records of the requests that were not accepted are retried (RecordErrors.Retry), so an
// accepted event is never sent twice by the sink. A missing group or stream is created and the
// request sent again. An InvalidParameterException is split in halves down to the event that
// causes it, which alone is dead-lettered. Access denied and bad credentials are retried
// slowly (RetryAfter): nothing is dropped while the buffer holds, and a fixed permission is
// picked up without a restart.
//
// Send never reorders or keeps the batch: it sorts a slice of indexes, and every request body
// is encoded into memory of its own that is reused once the request has returned.
package cloudwatch
