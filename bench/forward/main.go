// Command forward is the forward-input load test: it starts the tailgate binary with a forward
// input, a disk buffer with group commit and a file sink, drives it with concurrent senders
// that wait for acks, and reports records/s, MiB/s, the agent's CPU seconds per GiB and peak
// RSS, and the ack latency; it then checks that the output holds every acknowledged record.
//
//	go build -o /tmp/tailgate ./cmd/tailgate
//	go run ./bench/forward -bin /tmp/tailgate -clients 8 -records 2000000 -size 200
//
// Modes: sync (default) and async use the real fluent-logger-golang client with RequestAck;
// that client sends one record per Message-mode frame and waits for its ack before the next
// write, in both modes. packed sends PackedForward chunks with acks, several in flight per
// connection, as Fluent Bit and fluentd do: it measures the agent rather than the client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tailgate-dev/tailgate/bench/internal/procstat"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/forward:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "/tmp/tailgate", "tailgate binary (go build -o /tmp/tailgate ./cmd/tailgate)")
	clients := flag.Int("clients", 8, "concurrent senders, one connection each")
	records := flag.Int64("records", 2_000_000, "records to send in all (fewer if -duration ends first)")
	size := flag.Int("size", 200, "bytes per record (its msgpack map)")
	syncEvery := flag.String("sync", "200ms", "the agent's buffer sync interval")
	duration := flag.Duration("duration", 20*time.Second, "stop sending after this long")
	mode := flag.String("mode", "sync", "sync | async (fluent-logger-golang with RequestAck) | packed (PackedForward chunks with acks)")
	chunk := flag.Int("chunk", 1000, "packed: records per chunk")
	inflight := flag.Int("inflight", 4, "packed: unacknowledged chunks per connection")
	cpuprofile := flag.String("cpuprofile", "", "save a CPU profile of the agent to this file")
	profileFor := flag.Duration("profile-duration", 10*time.Second, "length of the CPU profile")
	keep := flag.Bool("keep", false, "keep the temp dir (config, buffer, out.jsonl, agent.log)")
	flag.Parse()
	if *clients <= 0 || *records <= 0 || *size <= 0 || *chunk <= 0 || *inflight <= 0 {
		return errors.New("-clients, -records, -size, -chunk and -inflight must be positive")
	}
	var send func(load) result
	switch *mode {
	case "sync":
		send = runSync
	case "async":
		send = runAsync
	case "packed":
		send = func(l load) result { return runPacked(l, *chunk, *inflight) }
	default:
		return fmt.Errorf("-mode %q: want sync, async or packed", *mode)
	}

	dir, err := os.MkdirTemp("", "tailgate-bench-forward-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("dir:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	a, err := startAgent(*bin, dir, *syncEvery)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			a.kill()
		}
	}()
	cpu0, err := procstat.CPUSeconds(a.pid())
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	profErr := make(chan error, 1)
	if *cpuprofile != "" {
		go func() { profErr <- a.profile(ctx, *profileFor, *cpuprofile) }()
	}

	start := time.Now()
	deadline := start.Add(*duration)
	results := make([]result, *clients)
	var wg sync.WaitGroup
	for c := range *clients {
		n := *records / int64(*clients)
		if int64(c) < *records%int64(*clients) {
			n++
		}
		wg.Go(func() {
			results[c] = send(load{client: c, records: n, size: *size, deadline: deadline, addr: a.addr})
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var acked int64
	var lat []time.Duration
	var errs []error
	for _, r := range results {
		acked += r.acked
		lat = append(lat, r.latencies...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Every acknowledged record must reach the sink; none was sent without its ack here.
	lines, err := a.waitLines(acked, 60*time.Second)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		if err := <-profErr; err != nil {
			return err
		}
	}
	cpu1, err := procstat.CPUSeconds(a.pid())
	if err != nil {
		return err
	}
	rss, err := procstat.PeakRSSMiB(a.pid())
	if err != nil {
		return err
	}
	stopped = true
	if err := a.stop(); err != nil {
		return err
	}
	if lines != acked {
		return fmt.Errorf("out.jsonl has %d records, %d were acknowledged", lines, acked)
	}

	recBytes := float64(acked) * float64(newRecord(0, *size).size())
	secs := elapsed.Seconds()
	slices.Sort(lat)
	fmt.Printf("mode=%s clients=%d size=%dB sync=%s sent+acked=%d in %.2fs (out.jsonl=%d)\n",
		*mode, *clients, newRecord(0, *size).size(), *syncEvery, acked, secs, lines)
	fmt.Printf("records/s=%.0f MiB/s=%.2f agent_cpu_s=%.2f cpu_s_per_GiB=%.1f peak_rss_MiB=%.1f\n",
		float64(acked)/secs, recBytes/secs/(1<<20), cpu1-cpu0, (cpu1-cpu0)/(recBytes/(1<<30)), rss)
	unit := "record"
	if *mode == "packed" {
		unit = fmt.Sprintf("chunk of %d", *chunk)
	}
	fmt.Printf("ack latency per %s: n=%d p50=%s p99=%s max=%s\n", unit, len(lat),
		pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1))
	return nil
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(100 * time.Microsecond)
}
