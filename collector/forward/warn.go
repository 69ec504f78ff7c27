package forward

import (
	"log/slog"
	"sync"
	"time"
)

// warnLimiter logs at most one warning per key per interval, with the number suppressed in
// between: a peer sending garbage in a loop must not flood the log.
type warnLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	keys map[string]*warnState
}

type warnState struct {
	last       time.Time
	suppressed int
}

func newWarnLimiter(log *slog.Logger, interval time.Duration) *warnLimiter {
	return &warnLimiter{log: log, interval: interval, keys: make(map[string]*warnState)}
}

func (w *warnLimiter) warn(key, msg string, args ...any) {
	now := time.Now()
	w.mu.Lock()
	s := w.keys[key]
	if s == nil {
		s = &warnState{}
		w.keys[key] = s
	}
	if !s.last.IsZero() && now.Sub(s.last) < w.interval {
		s.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := s.suppressed
	s.last, s.suppressed = now, 0
	w.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	w.log.Warn(msg, args...)
}
