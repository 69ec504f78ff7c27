// Package pubsubemu starts the real Pub/Sub emulator for tests, in any package that needs it.
package pubsubemu

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/internal/freeport"
)

// Binary is where the Cloud SDK installs the Pub/Sub emulator.
const Binary = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"

// Addr returns the address of a real Pub/Sub emulator: the one named by
// TAILGATE_PUBSUB_EMULATOR_HOST, or one started for this test on a free port and killed (with
// the JVM it execs) at cleanup, returned once its port accepts. With -short, or without the
// binary, the test is skipped, loudly.
func Addr(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv("TAILGATE_PUBSUB_EMULATOR_HOST"); addr != "" {
		return addr
	}
	if testing.Short() {
		tb.Skip("-short: not starting the Pub/Sub emulator")
	}
	if _, err := os.Stat(Binary); err != nil {
		tb.Skipf("SKIPPING A REAL PUB/SUB EMULATOR TEST: %s not found (%v); install "+
			"google-cloud-cli-pubsub-emulator or set TAILGATE_PUBSUB_EMULATOR_HOST.", Binary, err)
	}
	// The JVM binds seconds after the pick: a port outside the ephemeral range is not taken
	// meanwhile by some connection's local port.
	addr, err := freeport.Addr()
	if err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)

	logPath := filepath.Join(tb.TempDir(), "emulator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(Binary, "--host=127.0.0.1", "--port="+port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so cleanup reaches the JVM it execs
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start emulator: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logFile.Close()
	})

	// The JVM takes seconds to start (longer on a busy machine): poll its port.
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			tb.Fatalf("emulator exited before listening: %v\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			tb.Fatalf("emulator not listening on %s after 90s:\n%s", addr, out)
		}
	}
}
