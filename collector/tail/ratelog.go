package tail

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog writes at most one warning per key per interval, with the number of times it was
// suppressed, so a flood of bad files never turns into a flood of log lines.
type rateLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	seen     map[string]*rateEntry
}

type rateEntry struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, interval time.Duration) *rateLog {
	return &rateLog{log: log, interval: interval, seen: make(map[string]*rateEntry)}
}

func (r *rateLog) warn(key, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	e := r.seen[key]
	if e == nil {
		if len(r.seen) > 10000 {
			clear(r.seen)
		}
		e = &rateEntry{}
		r.seen[key] = e
	} else if now.Sub(e.last) < r.interval {
		e.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := e.suppressed
	e.last, e.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.log.Warn(msg, args...)
}
