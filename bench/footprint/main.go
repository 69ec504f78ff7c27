// Command footprint measures what the DaemonSet's resources must cover: the agent's CPU and
// memory idle and under steady live log rates, as on a node (files appended while tailed, not a
// catch-up from the head). It starts `BIN run` with the deploy base config's shape (tail of
// containers/*.log symlinks, forward on a unix socket, a disk buffer, the stdout sink sent to
// /dev/null so a remote sink's cost is not counted), waits for /readyz, then for each phase
// appends ~250-byte CRI lines to -files container logs at the phase's rate and samples
// /proc/PID: CPU millicores over the phase and RSS at its end.
//
//	go build -o /tmp/tailgate ./cmd/tailgate
//	go run ./bench/footprint -bin /tmp/tailgate -rates 0,1MiB,5MiB,20MiB -phase 30s
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tailgate-dev/tailgate/bench/internal/procstat"
	"github.com/tailgate-dev/tailgate/collector"
)

func main() {
	bin := flag.String("bin", "./tailgate", "tailgate binary")
	rates := flag.String("rates", "0,1MiB,5MiB,20MiB", "comma-separated bytes per second of logs, one phase each (0 = idle)")
	phase := flag.Duration("phase", 30*time.Second, "length of each phase")
	files := flag.Int("files", 50, "container log files written in parallel")
	port := flag.Int("port", 2099, "metrics port")
	flag.Parse()
	if err := run(*bin, *rates, *phase, *files, *port); err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
}

func run(bin, rateList string, phase time.Duration, nFiles, port int) error {
	dir, err := os.MkdirTemp("", "tailgate-footprint-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logs := make([]*bufio.Writer, nFiles)
	for i := range logs {
		pod := fmt.Sprintf("app-%d", i)
		podDir := filepath.Join(dir, "pods", "shop_"+pod+"_uid"+strconv.Itoa(i), "app")
		if err := os.MkdirAll(podDir, 0o755); err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
		f, err := os.Create(filepath.Join(podDir, "0.log"))
		if err != nil {
			return err
		}
		defer f.Close()
		logs[i] = bufio.NewWriterSize(f, 64<<10)
		id := strings.Repeat(fmt.Sprintf("%x", i%16), 64)
		if err := os.Symlink(filepath.Join(podDir, "0.log"), filepath.Join(dir, "containers", pod+"_shop_app-"+id+".log")); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`node_name: bench
data_dir: %[1]s/data
shutdown_timeout: 10s
metrics: {listen: "127.0.0.1:%[2]d"}
buffer: {max_bytes: 2GiB, segment_bytes: 64MiB, sync: 200ms, when_full: block}
inputs:
  - {name: pods, type: tail, paths: ["%[1]s/containers/*.log"]}
  - {name: apps, type: forward, socket: "%[1]s/forward.sock"}
sinks:
  - {name: out, type: stdout}
`, dir, port)
	cfgPath := filepath.Join(dir, "tailgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	if _, err := collector.ParseConfig(cfgPath, []byte(cfg), collector.LoadOptions{}); err != nil {
		return err
	}
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout = devnull
	cmd.Stderr = devnull
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent not ready after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	fmt.Printf("| phase (logs/s over %d files) | CPU millicores | RSS at end MiB | peak RSS MiB |\n|---|---|---|---|\n", nFiles)
	line := 0
	for _, rs := range strings.Split(rateList, ",") {
		rate, err := collector.ParseSize(strings.TrimSpace(rs))
		if err != nil {
			return err
		}
		cpu0, err := procstat.CPUSeconds(pid)
		if err != nil {
			return err
		}
		start := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		var written int64
		for time.Since(start) < phase {
			<-tick.C
			due := int64(float64(rate) * time.Since(start).Seconds())
			for written < due {
				w := logs[line%nFiles]
				n, _ := fmt.Fprintf(w, "%s stdout F {\"level\":\"info\",\"logger\":\"http\",\"msg\":\"request completed\",\"method\":\"GET\",\"route\":\"/api/v1/orders\",\"status\":200,\"duration_ms\":%d,\"request_id\":\"%016x\",\"user\":\"u-%d\",\"bytes\":%d}\n",
					time.Now().UTC().Format(time.RFC3339Nano), line%997, line, line%5000, 512+line%4096)
				written += int64(n)
				line++
			}
			for _, w := range logs {
				w.Flush()
			}
		}
		tick.Stop()
		cpu1, err := procstat.CPUSeconds(pid)
		if err != nil {
			return err
		}
		rss, hwm, err := rssMiB(pid)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %.0f | %.1f | %.1f |\n", strings.TrimSpace(rs), 1000*(cpu1-cpu0)/time.Since(start).Seconds(), rss, hwm)
	}
	return nil
}

// rssMiB is VmRSS (now) and VmHWM (peak) of pid.
func rssMiB(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		for key, dst := range map[string]*float64{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if v, ok := strings.CutPrefix(l, key); ok {
				kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				if err != nil {
					return 0, 0, err
				}
				*dst = kb / 1024
			}
		}
	}
	return rss, hwm, nil
}
