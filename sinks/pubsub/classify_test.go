package pubsub

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClassify(t *testing.T) {
	f := func(err error, wantPermanent bool, wantReason string) {
		t.Helper()
		if got, reason := classify(err); got != wantPermanent || reason != wantReason {
			t.Errorf("classify(%v) = %v %q, want %v %q", err, got, reason, wantPermanent, wantReason)
		}
	}
	f(nil, false, "")
	f(status.Error(codes.NotFound, "topic"), true, "not_found")
	f(status.Error(codes.PermissionDenied, "iam"), true, "permission_denied")
	f(status.Error(codes.InvalidArgument, "bad"), true, "invalid_argument")
	f(status.Error(codes.FailedPrecondition, "kms"), true, "failed_precondition")
	f(fmt.Errorf("wrapped: %w", status.Error(codes.NotFound, "topic")), true, "not_found")
	f(status.Error(codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8"), true, "invalid_utf8")
	f(status.Error(codes.Internal, "server hiccup"), false, "")
	f(status.Error(codes.Unavailable, "down"), false, "")
	f(status.Error(codes.Unauthenticated, "token"), false, "")
	f(status.Error(codes.ResourceExhausted, "quota"), false, "")
	f(status.Error(codes.DeadlineExceeded, "slow"), false, "")
	f(status.Error(codes.Aborted, "aborted"), false, "")
	f(context.Canceled, false, "")
	f(context.DeadlineExceeded, false, "")
	f(errors.New("connection reset"), false, "")
	f(&notSentError{key: "k", cause: status.Error(codes.Unavailable, "down")}, false, "")
}
