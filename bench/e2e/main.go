// Command e2e times a tailgate binary end to end over a tree written by bench/gen: for each
// run it starts `BIN run --config CFG` on a fresh data_dir with the tree's containers/*.log as
// a tail input read from head and one file sink, polls /metrics until the sink has sent as
// many records as the manifest holds, samples the process' CPU time and peak RSS at that
// moment, stops it with SIGTERM and checks the output file record by record.
//
//	go run ./bench/e2e -bin ./tailgate -data DIR -runs 3
//
// A markdown table (each run and the median) goes to stdout, one JSON object per run to
// -results.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.Bin, "bin", "./tailgate", "tailgate binary")
	flag.StringVar(&o.Data, "data", "", "tree written by bench/gen (has manifest.json)")
	flag.IntVar(&o.Runs, "runs", 3, "number of runs")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "limit for one run to deliver every record")
	flag.StringVar(&o.Results, "results", "e2e-results.jsonl", "file the per-run JSON lines are appended to")
	flag.StringVar(&o.WorkDir, "workdir", "", "where run directories go (default: a new temp dir)")
	flag.BoolVar(&o.Keep, "keep", false, "keep run directories (config, data_dir, out.jsonl, tailgate.log)")
	flag.BoolVar(&o.NoWarm, "no-warm", false, "do not pre-read the tree into the page cache")
	flag.StringVar(&o.Label, "label", "tailgate", "name of this peer in the table and results")
	flag.IntVar(&o.Sinks, "sinks", 1, "file sinks (1-3); with more than one, routes split the namespaces among them")
	flag.Parse()
	if o.Sinks < 1 || o.Sinks > 3 {
		fmt.Fprintln(os.Stderr, "-sinks: 1, 2 or 3")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		slog.Error("e2e failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	results, err := bench(ctx, o, os.Stderr)
	if len(results) > 0 {
		if werr := appendResults(o.Results, results); werr != nil && err == nil {
			err = werr
		}
		fmt.Print(markdown(o.Label, results))
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.OK {
			return fmt.Errorf("run %d: %s", r.Run, r.Error)
		}
	}
	return nil
}
