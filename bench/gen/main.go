// Command gen writes a Kubernetes node's log tree for benchmarking tailgate against a known
// total: DIR/pods/<ns>_<pod>_<uid>/<container>/0.log, absolute symlinks
// DIR/containers/<pod>_<ns>_<container>-<64hex>.log to them (as kubelet lays out
// /var/log/pods and /var/log/containers), and DIR/manifest.json with the exact totals a
// collector must reproduce. The same flags and seed always produce the same bytes.
//
//	go run ./bench/gen -root DIR -pods 50 -size 1GiB -format cri -seed 1
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"
)

func main() {
	var c config
	var size string
	flag.StringVar(&c.Root, "root", "", "output directory (gets pods/, containers/, manifest.json)")
	flag.IntVar(&c.Pods, "pods", 50, "number of pods (1-3 containers each)")
	flag.StringVar(&size, "size", "1GiB", "total bytes across all files (e.g. 100MiB, 1GiB)")
	flag.StringVar(&c.Format, "format", "cri", "cri | docker")
	flag.Int64Var(&c.Seed, "seed", 1, "random seed")
	flag.IntVar(&c.PayloadBytes, "payload-bytes", 250, "mean size of an application JSON line (varies ±30%)")
	flag.Float64Var(&c.LongFrac, "long-frac", 0.01, "share of records longer than -chunk bytes, split into partial lines")
	flag.IntVar(&c.Chunk, "chunk", 16<<10, "runtime split size of long records (containerd and dockerd: 16KiB)")
	flag.Float64Var(&c.StderrFrac, "stderr-frac", 0.15, "share of records on stderr")
	flag.Float64Var(&c.TraceFrac, "trace-frac", 0, "share of records that are plain-text stack traces on stderr (Java, Python, Go; one line per frame)")
	flag.Float64Var(&c.Skew, "skew", 0.8, "file i gets a share ~ 1/(i+1)^skew of the bytes (0 = equal)")
	flag.IntVar(&c.Workers, "workers", runtime.GOMAXPROCS(0), "files written in parallel")
	flag.Parse()

	if err := run(c, size); err != nil {
		slog.Error("gen failed", "err", err)
		os.Exit(1)
	}
}

func run(c config, size string) error {
	if c.Root == "" {
		return fmt.Errorf("-root is required")
	}
	n, err := parseSize(size)
	if err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	c.Size = n
	start := time.Now()
	m, err := generate(c)
	if err != nil {
		return err
	}
	fmt.Printf("format=%s files=%d bytes=%d (%.1f MiB) lines=%d records=%d partial_lines=%d traces=%d trace_lines=%d records_joined=%d in %.1fs\n",
		m.Format, m.TotalFiles, m.TotalBytes, float64(m.TotalBytes)/(1<<20), m.TotalLines, m.TotalRecords,
		m.TotalPartials, m.TotalTraces, m.TotalTraceLines, m.TotalRecordsJoined, time.Since(start).Seconds())
	return nil
}
