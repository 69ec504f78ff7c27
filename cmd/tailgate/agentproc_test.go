package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// agentProc is the agent running as a subprocess (the test binary itself, see TestMain), with
// the addresses it must be listening on before a test talks to it.
type agentProc struct {
	t       *testing.T
	cfg     string
	logf    *os.File
	cmd     *exec.Cmd
	listens [][2]string // network, address
}

// newAgentProc writes config into dir and opens dir/agent.log for the agent's output.
func newAgentProc(t *testing.T, dir, config string) agentProc {
	t.Helper()
	cfg := filepath.Join(dir, "tailgate.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	return agentProc{t: t, cfg: cfg, logf: logf}
}

// start runs the agent and waits until every address in listens accepts connections.
func (a *agentProc) start() {
	a.t.Helper()
	a.cmd = startAgent(a.t, a.cfg, a.logf)
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range a.listens {
		for {
			c, err := net.DialTimeout(addr[0], addr[1], time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(a.logf.Name())
				a.t.Fatalf("agent never listened on %s %s: %v\nagent log:\n%s", addr[0], addr[1], err, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// kill SIGKILLs the agent and reaps it.
func (a *agentProc) kill() {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		a.t.Fatal(err)
	}
	a.cmd.Wait()
}

// stop sends SIGTERM and expects a clean exit.
func (a *agentProc) stop() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.cmd.Wait(); err != nil {
		a.t.Errorf("agent exited with %v after SIGTERM, want 0", err)
	}
}
