package bigquery

import (
	"log/slog"
	"sync"
	"time"
)

// warnEvery rate-limits one kind of warning to a line per interval, with the number of events
// since the last line, so a flood of bad records costs one log line a minute.
type warnEvery struct {
	log      *slog.Logger
	msg      string
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	pending int
}

func (w *warnEvery) event(attrs ...any) {
	w.mu.Lock()
	w.pending++
	now := time.Now()
	if !w.last.IsZero() && now.Sub(w.last) < w.interval {
		w.mu.Unlock()
		return
	}
	n := w.pending
	w.pending = 0
	w.last = now
	w.mu.Unlock()
	w.log.Warn(w.msg, append(attrs, "count", n)...)
}
