//go:build !race

package emulatortest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/internal/freeport"
)

// buildTailgate builds cmd/tailgate from the repository root into dir, so this module needs
// none of the agent's dependencies, and returns the binary's path.
func buildTailgate(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tailgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tailgate")
	cmd.Dir = "../../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tailgate: %v\n%s", err, out)
	}
	return bin
}

// proc is one tailgate subprocess (the agent or the loader) that a test SIGKILLs and restarts.
// Every run appends to the same log file; ready lists the TCP addresses it must accept
// connections on before it counts as started. It is killed at cleanup if still running, and
// the tail of its log is printed when the test failed.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	env     []string
	ready   []string
	logPath string
	logf    *os.File
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd was reaped
	waitErr error         // cmd.Wait's result, valid once exited is closed
	stopped bool          // the test ended this run itself (kill or stop)
}

func newProc(t *testing.T, dir, name string, args, env, ready []string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, env: env, ready: ready, logPath: filepath.Join(dir, name+".log")}
	var err error
	if p.logf, err = os.Create(p.logPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.exited
		}
		p.logf.Close()
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", p.logPath, p.logTail(80))
		}
	})
	return p
}

// start runs the process and waits until every ready address accepts connections.
func (p *proc) start() {
	p.t.Helper()
	p.note("starting")
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logf, p.logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("%s: start: %v", p.name, err)
	}
	p.exited, p.stopped = make(chan struct{}), false
	go func(cmd *exec.Cmd, exited chan struct{}) {
		p.waitErr = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range p.ready {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			p.checkAlive()
			if time.Now().After(deadline) {
				p.t.Fatalf("%s never listened on %s: %v\n%s", p.name, addr, err, p.logTail(40))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// checkAlive fails the test if the process exited without the test ending it.
func (p *proc) checkAlive() {
	p.t.Helper()
	if p.cmd != nil && !p.stopped && !p.running() {
		p.t.Fatalf("%s exited on its own: %v\n%s", p.name, p.waitErr, p.logTail(40))
	}
}

// kill SIGKILLs the process and reaps it.
func (p *proc) kill() {
	p.t.Helper()
	p.checkAlive()
	p.stopped = true
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("%s: kill: %v", p.name, err)
	}
	<-p.exited
	p.note("SIGKILLed")
}

// stop sends SIGTERM and returns the exit error (nil for a clean exit), failing the test if
// the process is still running after a minute.
func (p *proc) stop() error {
	p.t.Helper()
	if p.stopped && !p.running() {
		return p.waitErr // stopped already
	}
	p.checkAlive()
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.t.Fatalf("%s still running a minute after SIGTERM", p.name)
	}
	return p.waitErr
}

// note writes a test event into the process's log, so the log reads as one timeline.
func (p *proc) note(format string, args ...any) {
	fmt.Fprintf(p.logf, "TEST %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// metric scrapes addr's /metrics and returns the value of the series of name whose labels
// include every "key" "value" pair given (0 when there is none).
func metric(addr, name string, kv ...string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(series, "#") {
			continue
		}
		metricName, labels, _ := strings.Cut(series, "{")
		if metricName != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && strings.Contains(labels, kv[i]+"="+strconv.Quote(kv[i+1]))
		}
		if match {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, nil
}

// freeAddr is a loopback address for a process the test starts and restarts: outside the
// ephemeral range, so no outgoing connection takes it in between.
func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
