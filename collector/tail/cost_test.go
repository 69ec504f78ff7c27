package tail

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// BenchmarkMultilineCost tails a tree written by bench/gen (TAILGATE_BENCH_TREE=DIR) to the
// end, alternately without and with multiline joining (every built-in detector), and reports
// the process CPU time of each pass and the median ratio of paired passes (with / without).
// CPU time, not wall time, and pairs: the machine is shared. The input is where all of the
// stage's work happens, so its ratio bounds the whole pipeline's.
//
//	go run ./bench/gen -root /tmp/tree -pods 50 -size 256MiB -long-frac 0.0005 [-trace-frac 0.05]
//	TAILGATE_BENCH_TREE=/tmp/tree go test -run '^$' -bench MultilineCost -benchtime 5x ./collector/tail/
func BenchmarkMultilineCost(b *testing.B) {
	dir := os.Getenv("TAILGATE_BENCH_TREE")
	if dir == "" {
		b.Skip("set TAILGATE_BENCH_TREE to a tree written by bench/gen (see the comment)")
	}
	var m struct {
		TotalBytes         int64 `json:"total_bytes"`
		TotalRecords       int64 `json:"total_records"`
		TotalRecordsJoined int64 `json:"total_records_joined"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	if m.TotalRecordsJoined == 0 {
		m.TotalRecordsJoined = m.TotalRecords
	}
	pass := func(ml bool) float64 {
		cfg := collector.InputConfig{Name: "pods", Paths: []string{filepath.Join(dir, "containers", "*.log")},
			PollInterval: collector.Duration(10 * time.Millisecond)}
		want := m.TotalRecords
		if ml {
			cfg.Multiline.Detect = []string{"all"}
			want = m.TotalRecordsJoined
		}
		in, err := New(cfg, "n", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		before := cpuSeconds()
		go func() { done <- in.Run(ctx, nopEmitter{&got}) }()
		for got.Load() < want {
			time.Sleep(time.Millisecond)
		}
		cpu := cpuSeconds() - before
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return cpu
	}
	var ratios, offs, ons []float64
	for i := 0; b.Loop(); i++ {
		var off, on float64
		if i%2 == 0 {
			off, on = pass(false), pass(true)
		} else {
			on, off = pass(true), pass(false)
		}
		offs, ons, ratios = append(offs, off), append(ons, on), append(ratios, on/off)
	}
	gib := float64(m.TotalBytes) / (1 << 30)
	b.ReportMetric(median(offs)/gib, "cpu-s/GiB-off")
	b.ReportMetric(median(ons)/gib, "cpu-s/GiB-on")
	b.ReportMetric(median(ratios), "ratio-on/off")
	b.Logf("paired ratios on/off: %.3f", ratios)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
