package collector

import (
	"log/slog"
	"sync"
	"time"
)

// WarnLimiter logs at most one warning per key per interval, with the number of warnings
// suppressed since the last line: a flood of bad records, frames or files costs one log line
// a minute per kind, never one per event. Safe for concurrent use.
type WarnLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	keys map[string]*warnState
}

type warnState struct {
	last       time.Time
	suppressed int
}

// maxWarnKeys bounds the keys remembered; past it they are forgotten at once.
const maxWarnKeys = 10000

// NewWarnLimiter returns a limiter logging to log at most once per interval per key.
func NewWarnLimiter(log *slog.Logger, interval time.Duration) *WarnLimiter {
	return &WarnLimiter{log: log, interval: interval, keys: make(map[string]*warnState)}
}

// Warn logs msg with args unless key was logged less than an interval ago.
func (w *WarnLimiter) Warn(key, msg string, args ...any) {
	now := time.Now()
	w.mu.Lock()
	s := w.keys[key]
	if s == nil {
		if len(w.keys) >= maxWarnKeys {
			clear(w.keys)
		}
		s = &warnState{}
		w.keys[key] = s
	} else if now.Sub(s.last) < w.interval {
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
