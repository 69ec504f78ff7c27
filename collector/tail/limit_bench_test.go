package tail

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// slowEmitter stands for a downstream that takes time per record (buffer, sinks): what a
// noisy pod competes for. It notes when every quiet record has gone out.
type slowEmitter struct {
	fakeEmitter
	perRecord time.Duration
	quiet     int
	wantQuiet int
	done      chan struct{}
	once      sync.Once
}

func (e *slowEmitter) Emit(ctx context.Context, b *collector.Batch) (collector.Durable, error) {
	time.Sleep(time.Duration(len(b.Records)) * e.perRecord)
	e.mu.Lock()
	for _, r := range b.Records {
		if string(r.Message[:5]) == "quiet" {
			e.quiet++
		}
	}
	if e.quiet >= e.wantQuiet {
		e.once.Do(func() { close(e.done) })
	}
	e.mu.Unlock()
	return durableNow{}, nil
}

// BenchmarkNoisyNeighbour measures how long 20 quiet pods' records take to go out while one
// pod writes 50x their volume, through a downstream costing 2 µs per record: without a
// noisy pod, with one and no limit, and with one under rate_limit (lines: 1000/s, burst: 100ms).
// ns/op is the time until the last quiet record was emitted.
func BenchmarkNoisyNeighbour(b *testing.B) {
	const quietPods, quietLines = 20, 100
	pad := strings.Repeat("x", 150)
	for _, tc := range []struct {
		name  string
		noisy bool
		limit collector.RateLimitConfig
	}{
		{"quiet-only", false, collector.RateLimitConfig{}},
		{"noisy-unlimited", true, collector.RateLimitConfig{}},
		{"noisy-limited", true, collector.RateLimitConfig{Lines: 1000, Burst: collector.Duration(100 * time.Millisecond)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				tr := newKubeTree(b)
				if tc.noisy {
					tr.add(b, "shop", "noisy", "app", criLines("noisy "+pad, 0, 50*quietLines*quietPods/20))
				}
				for i := range quietPods {
					tr.add(b, "shop", fmt.Sprintf("quiet%02d", i), "app", criLines("quiet "+pad, 0, quietLines))
				}
				in, err := New(collector.InputConfig{Name: "pods", Paths: []string{tr.dir + "/pods/*/*/*.log"},
					PollInterval: collector.Duration(10 * time.Millisecond), RateLimit: tc.limit}, "n", nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				em := &slowEmitter{fakeEmitter: *newFakeEmitter(nil), perRecord: 2 * time.Microsecond,
					wantQuiet: quietPods * quietLines, done: make(chan struct{})}
				ctx, cancel := context.WithCancel(context.Background())
				runDone := make(chan error, 1)
				b.StartTimer()
				go func() { runDone <- in.Run(ctx, em) }()
				select {
				case <-em.done:
				case <-time.After(60 * time.Second):
					b.Fatal("quiet records did not all arrive")
				}
				b.StopTimer()
				cancel()
				<-runDone
				b.StartTimer()
			}
		})
	}
}
