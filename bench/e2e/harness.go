package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tailgate-dev/tailgate/bench/internal/procstat"
)

type options struct {
	Bin     string
	Data    string
	Runs    int
	Timeout time.Duration
	Results string
	WorkDir string
	Keep    bool
	NoWarm  bool
	Label   string
	Sinks   int // file sinks, splitting the namespaces by routes (1: one sink takes all)

	Env  []string      // extra environment for the binary (tests)
	Poll time.Duration // /metrics poll interval; 100ms when zero
}

// result is one run, as written to the results file.
type result struct {
	Label           string  `json:"label"`
	Run             int     `json:"run"`
	WallSeconds     float64 `json:"wall_s"`
	MiBPerSecond    float64 `json:"mib_s"`
	LinesPerSecond  float64 `json:"lines_s"`
	CPUSeconds      float64 `json:"cpu_s"`
	CPUSecondsGiB   float64 `json:"cpu_s_per_gib"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	RecordsSent     float64 `json:"records_sent_metric"`
	RecordsOut      int64   `json:"records_out"`
	RecordsManifest int64   `json:"records_manifest"`
	BadLines        int64   `json:"bad_lines"`
	BadMessages     int64   `json:"bad_messages"`
	ExitCode        int     `json:"exit_code"`
	OK              bool    `json:"ok"`
	Error           string  `json:"error,omitempty"`
	Bytes           int64   `json:"bytes"`
	Lines           int64   `json:"lines"`
	Time            string  `json:"time"`
}

// bench runs o.Runs runs. A run that fails its check is a result with OK false; an error
// means the harness itself could not go on (bad manifest, binary missing, interrupted).
func bench(ctx context.Context, o options, logw io.Writer) ([]result, error) {
	m, err := readManifest(o.Data)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(o.Bin)
	if err != nil {
		return nil, fmt.Errorf("bin %s: %w", o.Bin, err)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("bin: %w", err)
	}
	data, err := filepath.Abs(o.Data)
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", o.Data, err)
	}
	if !o.NoWarm {
		if err := warm(m); err != nil {
			return nil, err
		}
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "tailgate-e2e-"); err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		if !o.Keep {
			defer os.RemoveAll(work)
		}
	}
	var results []result
	for i := 1; i <= o.Runs; i++ {
		dir := filepath.Join(work, fmt.Sprintf("run-%d", i))
		r, err := runOnce(ctx, o, bin, data, m, dir)
		r.Label, r.Run, r.Time = o.Label, i, time.Now().UTC().Format(time.RFC3339)
		if err != nil {
			r.Error = err.Error()
		}
		fmt.Fprintf(logw, "run %d: wall %.2fs cpu %.2fs rss %.0fMiB records %d/%d ok=%v %s\n",
			i, r.WallSeconds, r.CPUSeconds, r.PeakRSSMiB, r.RecordsOut, r.RecordsManifest, r.OK, r.Error)
		results = append(results, r)
		if !o.Keep {
			os.RemoveAll(dir)
		}
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

// runOnce is one run in a fresh dir: start, wait for every record, sample, stop, check.
func runOnce(ctx context.Context, o options, bin, data string, m *manifest, dir string) (result, error) {
	r := result{RecordsManifest: m.TotalRecords, Bytes: m.TotalBytes, Lines: m.TotalLines, ExitCode: -1}
	dataDir, outDir := filepath.Join(dir, "data"), filepath.Join(dir, "out")
	for _, d := range []string{dataDir, outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, fmt.Errorf("run dir: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	cfg := filepath.Join(dir, "tailgate.yaml")
	outs := []string{filepath.Join(outDir, "out.jsonl")}
	for i := 2; i <= o.Sinks; i++ {
		outs = append(outs, filepath.Join(outDir, fmt.Sprintf("out-%d.jsonl", i)))
	}
	if err := writeConfig(cfg, dataDir, data, outs, addr); err != nil {
		return r, err
	}
	logf, err := os.Create(filepath.Join(dir, "tailgate.log"))
	if err != nil {
		return r, fmt.Errorf("run log: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	cmd.Env = append(os.Environ(), o.Env...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second): // shutdown_timeout 10s, and some slack
			_ = cmd.Process.Kill()
			<-exited
		}
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	defer stop()

	sent, err := waitSent(ctx, o, "http://"+addr+"/metrics", float64(m.TotalRecords), exited)
	r.RecordsSent = sent
	if err != nil {
		if errors.Is(err, errExited) {
			stopped = true
			r.ExitCode = cmd.ProcessState.ExitCode()
		}
		return r, fmt.Errorf("%w (see %s)", err, logf.Name())
	}
	r.WallSeconds = time.Since(start).Seconds()
	cpu, err := procstat.CPUSeconds(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	rss, err := procstat.PeakRSSMiB(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.CPUSeconds, r.PeakRSSMiB = cpu, rss
	gib := float64(m.TotalBytes) / (1 << 30)
	r.MiBPerSecond = float64(m.TotalBytes) / (1 << 20) / r.WallSeconds
	r.LinesPerSecond = float64(m.TotalLines) / r.WallSeconds
	r.CPUSecondsGiB = cpu / gib
	stop()

	var c outputCheck
	for _, out := range outs {
		ci, err := checkOutput(out, m.Payload == "json")
		c.Records, c.BadLines, c.BadMessages = c.Records+ci.Records, c.BadLines+ci.BadLines, c.BadMessages+ci.BadMessages
		if c.FirstError == "" {
			c.FirstError = ci.FirstError
		}
		if err != nil {
			return r, err
		}
	}
	r.RecordsOut, r.BadLines, r.BadMessages = c.Records, c.BadLines, c.BadMessages
	switch {
	case r.ExitCode != 0:
		return r, fmt.Errorf("exit code %d after SIGTERM (see %s)", r.ExitCode, logf.Name())
	case c.Records != m.TotalRecords:
		return r, fmt.Errorf("records out %d, manifest %d", c.Records, m.TotalRecords)
	case c.FirstError != "":
		return r, fmt.Errorf("%d bad lines, %d bad messages; first: %s", c.BadLines, c.BadMessages, c.FirstError)
	}
	r.OK = true
	return r, nil
}

var errExited = errors.New("tailgate exited before delivering every record")

// waitSent polls the sent counter until it reaches want, the process exits, or the run
// times out. Connection errors are expected while the process starts.
func waitSent(ctx context.Context, o options, url string, want float64, exited <-chan error) (float64, error) {
	poll := o.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var sent float64
	var lastErr error
	for {
		select {
		case err := <-exited:
			return sent, fmt.Errorf("%w: %v", errExited, err)
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return sent, fmt.Errorf("timed out after %s: sent %.0f of %.0f records (last scrape error: %v)", o.Timeout, sent, want, lastErr)
			}
			return sent, ctx.Err()
		case <-tick.C:
		}
		v, err := sentRecords(ctx, client, url)
		if err != nil {
			lastErr = err
			continue
		}
		if sent = v; sent >= want {
			return sent, nil
		}
	}
}
