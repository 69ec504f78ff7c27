package pubsub

import (
	"context"
	"errors"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// permanent reports whether a publish error is one that resending the same message cannot fix.
// This is the one place errors are classified.
//
//   - NotFound (topic deleted or misspelt), PermissionDenied (IAM), InvalidArgument (a message
//     the service refuses) and FailedPrecondition (e.g. the topic's KMS key is disabled, or a
//     schema the message breaks) need an operator: the records go to the dead-letter segment,
//     where they can be replayed once it is fixed, instead of blocking the sink forever.
//   - Everything else, including Unauthenticated (credentials refresh), ResourceExhausted
//     (quota), Unavailable, deadlines, a paused ordering key and a stopped client, is retried.
func permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, pubsub.ErrOversizedMessage) {
		return true
	}
	var paused pubsub.ErrPublishingPaused
	if errors.As(err, &paused) || errors.Is(err, pubsub.ErrPublisherStopped) {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument, codes.FailedPrecondition:
		return true
	case codes.Internal:
		// The client's own marshalling refusing a string field: the same bytes fail again.
		return strings.Contains(st.Message(), "invalid UTF-8")
	}
	return false
}
