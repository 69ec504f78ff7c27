// Package ratelog is tailgate's one rate limiter for repeated warnings: a flood of bad
// records, frames, files or connections costs one log line per kind per interval, with the
// count of what was held back, never one line per event.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter logs at most one warning per key per interval, with the number of warnings
// suppressed since the last line ("suppressed"). Safe for concurrent use.
type Limiter struct {
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

// New returns a limiter logging to log at most once per interval per key.
func New(log *slog.Logger, interval time.Duration) *Limiter {
	return &Limiter{log: log, interval: interval, keys: make(map[string]*warnState)}
}

// Warn logs msg at level Warn with args unless key was logged less than an interval ago.
func (w *Limiter) Warn(key, msg string, args ...any) {
	w.Log(slog.LevelWarn, key, msg, args...)
}

// Log is Warn at another level (an Error that repeats, say).
func (w *Limiter) Log(level slog.Level, key, msg string, args ...any) {
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
	w.log.Log(context.Background(), level, msg, args...)
}
