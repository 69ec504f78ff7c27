package exporter

import (
	"log/slog"
	"sync"
	"time"
)

// warnLimiter logs at most one line per key per interval, with the count it held back: a
// failing scrape writer or an unreadable cgroup tree costs one line a minute, not one per
// event. Keys are a few fixed strings.
type warnLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func newWarnLimiter(log *slog.Logger, interval time.Duration) *warnLimiter {
	return &warnLimiter{log: log, interval: interval, last: make(map[string]time.Time), held: make(map[string]int)}
}

func (w *warnLimiter) warn(key, msg string, args ...any) {
	now := time.Now()
	w.mu.Lock()
	if now.Sub(w.last[key]) < w.interval {
		w.held[key]++
		w.mu.Unlock()
		return
	}
	w.last[key] = now
	held := w.held[key]
	w.held[key] = 0
	w.mu.Unlock()
	w.log.Warn(msg, append(args, "suppressed", held)...)
}
