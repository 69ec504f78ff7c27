package collector

import (
	"log/slog"
	"time"

	"github.com/tailgate-dev/tailgate/internal/ratelog"
)

// WarnLimiter is the project's one repeated-warning limiter (internal/ratelog), named here for
// the inputs and sinks that already hold one.
type WarnLimiter = ratelog.Limiter

// NewWarnLimiter returns a limiter logging to log at most once per interval per key.
func NewWarnLimiter(log *slog.Logger, interval time.Duration) *WarnLimiter {
	return ratelog.New(log, interval)
}
