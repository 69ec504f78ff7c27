package pubsub

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPermanent(t *testing.T) {
	f := func(err error, want bool) {
		t.Helper()
		if got := permanent(err); got != want {
			t.Errorf("permanent(%v) = %v, want %v", err, got, want)
		}
	}
	f(nil, false)
	f(status.Error(codes.NotFound, "topic"), true)
	f(status.Error(codes.PermissionDenied, "iam"), true)
	f(status.Error(codes.InvalidArgument, "bad"), true)
	f(status.Error(codes.FailedPrecondition, "kms"), true)
	f(fmt.Errorf("wrapped: %w", status.Error(codes.NotFound, "topic")), true)
	f(status.Error(codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8"), true)
	f(status.Error(codes.Internal, "server hiccup"), false)
	f(status.Error(codes.Unavailable, "down"), false)
	f(status.Error(codes.Unauthenticated, "token"), false)
	f(status.Error(codes.ResourceExhausted, "quota"), false)
	f(status.Error(codes.DeadlineExceeded, "slow"), false)
	f(status.Error(codes.Aborted, "aborted"), false)
	f(context.Canceled, false)
	f(context.DeadlineExceeded, false)
	f(pubsub.ErrOversizedMessage, true)
	f(pubsub.ErrPublishingPaused{OrderingKey: "k"}, false)
	f(pubsub.ErrPublisherStopped, false)
	f(errors.New("connection reset"), false)
}
