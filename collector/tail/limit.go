package tail

import (
	"math"
	"strconv"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// Defaults of the per-container rate limit.
const (
	DefaultRateBurst  = time.Second
	DefaultRateMaxLag = 64 << 20
)

// Pod annotations that override the input's rate limit for one pod's containers: a number of
// lines or a size per second ("200", "512KiB"); "0" lifts that limit.
const (
	AnnotationRateLines = "rate-limit-lines" // tailgate.io/rate-limit-lines
	AnnotationRateBytes = "rate-limit-bytes" // tailgate.io/rate-limit-bytes
)

// rateLimit is an input's per-container limit, as configured.
type rateLimit struct {
	lines, bytes float64 // per second; 0: no limit
	burst        time.Duration
	maxLag       int64
}

func newRateLimit(c collector.RateLimitConfig) rateLimit {
	rl := rateLimit{lines: float64(c.Lines), bytes: float64(c.Bytes), burst: c.Burst.D(), maxLag: int64(c.MaxLag)}
	if rl.burst <= 0 {
		rl.burst = DefaultRateBurst
	}
	if rl.maxLag <= 0 {
		rl.maxLag = DefaultRateMaxLag
	}
	return rl
}

// limiter is one container's token buckets (lines and bytes), refilled lazily from the clock
// of its reader. Tokens may go negative: a turn that overshot is paid back by waiting.
type limiter struct {
	rateLimit
	lineTokens, byteTokens float64
	last                   time.Time
	settings               *map[string]string // the pod settings it was built from
}

func (l *limiter) refill(now time.Time) {
	dt := now.Sub(l.last).Seconds()
	l.last = now
	if dt <= 0 {
		return
	}
	b := l.burst.Seconds()
	if l.lines > 0 {
		l.lineTokens = math.Min(l.lineTokens+dt*l.lines, l.lines*b)
	}
	if l.bytes > 0 {
		l.byteTokens = math.Min(l.byteTokens+dt*l.bytes, l.bytes*b)
	}
}

// allowed reports whether the container may ship now.
func (l *limiter) allowed() bool {
	return (l.lines == 0 || l.lineTokens >= 1) && (l.bytes == 0 || l.byteTokens >= 1)
}

// budget is what the container may ship in this turn.
func (l *limiter) budget() (lines, bytes int) {
	lines, bytes = math.MaxInt, math.MaxInt
	if l.lines > 0 {
		lines = int(l.lineTokens)
	}
	if l.bytes > 0 {
		bytes = int(l.byteTokens)
	}
	return lines, bytes
}

func (l *limiter) take(lines, bytes int) {
	l.lineTokens -= float64(lines)
	l.byteTokens -= float64(bytes)
}

// limiterFor returns the stream's limiter (nil: no limit), rebuilt when the pod's
// tailgate.io settings changed.
func (r *reader) limiterFor(s *stream) *limiter {
	var settings *map[string]string
	if s.bind != nil {
		settings = s.bind.Settings()
	}
	if s.limitBuilt && s.limitFrom == settings {
		return s.limit
	}
	s.limitBuilt, s.limitFrom = true, settings
	rl := r.in.limit
	if settings != nil {
		if v := s.bind.Setting(AnnotationRateLines); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				rl.lines = float64(n)
			} else {
				r.in.warn.Warn("annotation:"+s.path, "bad tailgate.io/"+AnnotationRateLines+" annotation, using the input's limit", "path", s.path, "value", v)
			}
		}
		if v := s.bind.Setting(AnnotationRateBytes); v != "" {
			if n, err := collector.ParseSize(v); err == nil {
				rl.bytes = float64(n)
			} else {
				r.in.warn.Warn("annotation:"+s.path, "bad tailgate.io/"+AnnotationRateBytes+" annotation, using the input's limit", "path", s.path, "value", v)
			}
		}
	}
	if rl.lines == 0 && rl.bytes == 0 {
		s.limit = nil
		return nil
	}
	old := s.limit
	s.limit = &limiter{rateLimit: rl, last: r.now, settings: settings}
	s.limit.lineTokens, s.limit.byteTokens = rl.lines*rl.burst.Seconds(), rl.bytes*rl.burst.Seconds()
	if old != nil { // a changed limit keeps the debt or credit it had, within the new burst
		s.limit.lineTokens = math.Min(old.lineTokens, s.limit.lineTokens)
		s.limit.byteTokens = math.Min(old.byteTokens, s.limit.byteTokens)
		s.limit.last = old.last
	}
	return s.limit
}

// lag is the stream's unread bytes, as of the last poll.
func (s *stream) lag() int64 {
	var n int64
	for _, f := range s.files {
		n += max(0, f.size-f.readOff)
	}
	return n
}
