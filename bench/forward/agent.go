package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// agent is the tailgate binary under test: a forward input on TCP, a disk buffer with group
// commit, a file sink, metrics (and pprof) on a loopback port.
type agent struct {
	dir     string
	out     string
	addr    string // forward TCP address
	metrics string // metrics/pprof address
	cmd     *exec.Cmd
	logf    *os.File
}

func startAgent(bin, dir, sync string) (*agent, error) {
	fwd, err := freeAddr()
	if err != nil {
		return nil, err
	}
	met, err := freeAddr()
	if err != nil {
		return nil, err
	}
	a := &agent{dir: dir, out: filepath.Join(dir, "out.jsonl"), addr: fwd, metrics: met}
	cfg := fmt.Sprintf(`node_name: bench
data_dir: %s/data
shutdown_timeout: 30s
metrics: {listen: "%s", pprof: true}
buffer: {sync: %s, max_bytes: 4GiB}
kubernetes: {enabled: false}
inputs:
  - {name: apps, type: forward, listen: "%s"}
sinks:
  - {name: local, type: file, path: %s}
`, dir, met, sync, fwd, a.out)
	cfgPath := filepath.Join(dir, "tailgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	a.logf, err = os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(bin, "run", "--config", cfgPath)
	a.cmd.Stdout, a.cmd.Stderr = a.logf, a.logf
	if err := a.cmd.Start(); err != nil {
		a.logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fwd, time.Second)
		if err == nil {
			c.Close()
			return a, nil
		}
		if time.Now().After(deadline) {
			a.kill()
			return nil, fmt.Errorf("agent never listened on %s: %v (log %s)", fwd, err, a.logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (a *agent) pid() int { return a.cmd.Process.Pid }

// kill is for failures: SIGKILL and reap.
func (a *agent) kill() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	a.logf.Close()
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agent) stop() error {
	a.cmd.Process.Signal(syscall.SIGTERM)
	err := a.cmd.Wait()
	a.logf.Close()
	if err != nil {
		return fmt.Errorf("agent exit after SIGTERM: %w (log %s)", err, a.logf.Name())
	}
	return nil
}

// profile saves a CPU profile of the agent taken over the next d.
func (a *agent) profile(ctx context.Context, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.metrics, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile: %w", err)
	}
	return f.Close()
}

// lineCounter counts the complete lines of the sink's output, reading only what was appended
// since the last call.
type lineCounter struct {
	path  string
	off   int64
	lines int64
	buf   []byte
}

func (lc *lineCounter) count() (int64, error) {
	f, err := os.Open(lc.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if lc.buf == nil {
		lc.buf = make([]byte, 4<<20)
	}
	for {
		n, err := f.ReadAt(lc.buf, lc.off)
		chunk := lc.buf[:n]
		// Stop at the last newline: a partial line is still being written.
		i := bytes.LastIndexByte(chunk, '\n')
		if i < 0 {
			return lc.lines, nil
		}
		lc.lines += int64(bytes.Count(chunk[:i+1], []byte{'\n'}))
		lc.off += int64(i + 1)
		if err == io.EOF || n < len(lc.buf) {
			return lc.lines, nil
		}
		if err != nil {
			return lc.lines, err
		}
	}
}

// waitLines polls the output until it holds want lines (or more), or the timeout passes.
func (a *agent) waitLines(want int64, timeout time.Duration) (int64, error) {
	lc := &lineCounter{path: a.out}
	deadline := time.Now().Add(timeout)
	for {
		n, err := lc.count()
		if err != nil {
			return n, err
		}
		if n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("out.jsonl has %d records after %v, want %d", n, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
