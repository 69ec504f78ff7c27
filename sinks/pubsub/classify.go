package pubsub

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Dead-letter reasons (the reason label of tailgate_deadletter_* and `deadletter list`): one
// per way the service refuses a message for good.
const (
	reasonNotFound           = "not_found"
	reasonPermissionDenied   = "permission_denied"
	reasonInvalidArgument    = "invalid_argument"
	reasonFailedPrecondition = "failed_precondition"
	reasonInvalidUTF8        = "invalid_utf8"
	reasonOversize           = "oversize" // the pipeline's reason for a record over the limit
)

// classify says whether a publish error is one that resending the same message cannot fix,
// and under which dead-letter reason. This is the one place errors are classified.
//
//   - NotFound (topic deleted or misspelt), PermissionDenied (IAM), InvalidArgument (a message
//     the service refuses) and FailedPrecondition (e.g. the topic's KMS key is disabled, or a
//     schema the message breaks) need an operator: the records go to the dead-letter store,
//     where `tailgate deadletter replay` re-sends them once it is fixed, instead of blocking
//     the sink forever.
//   - Everything else, including Unauthenticated (credentials refresh), ResourceExhausted
//     (quota), Unavailable, deadlines and a stopped client, is retried.
func classify(err error) (permanent bool, reason string) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, ""
	}
	st, ok := status.FromError(err)
	if !ok {
		return false, ""
	}
	switch st.Code() {
	case codes.NotFound:
		return true, reasonNotFound
	case codes.PermissionDenied:
		return true, reasonPermissionDenied
	case codes.InvalidArgument:
		return true, reasonInvalidArgument
	case codes.FailedPrecondition:
		return true, reasonFailedPrecondition
	case codes.Internal:
		// gRPC's marshalling refusing a string field: the same bytes fail again.
		if strings.Contains(st.Message(), "invalid UTF-8") {
			return true, reasonInvalidUTF8
		}
	}
	return false, ""
}

// permanent reports whether err cannot be fixed by resending; see classify.
func permanent(err error) bool {
	p, _ := classify(err)
	return p
}

// serverRetryDelay returns the delay the service asked for in a google.rpc.RetryInfo detail
// (sent with some RESOURCE_EXHAUSTED and UNAVAILABLE answers), or 0.
func serverRetryDelay(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			if d := ri.GetRetryDelay().AsDuration(); d > 0 {
				return min(d, maxServerRetryDelay)
			}
		}
	}
	return 0
}

// maxServerRetryDelay caps a server's RetryInfo, so a bogus delay cannot stall a sink.
const maxServerRetryDelay = 5 * time.Minute
