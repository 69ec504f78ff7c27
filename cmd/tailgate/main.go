// Command tailgate is the node agent: it tails pod logs and receives forward-protocol logs,
// buffers them on disk, ships them to sinks and serves Prometheus metrics.
//
//	tailgate run [--config FILE]
//	tailgate check --config FILE
//	tailgate demo [--duration D]
//	tailgate buffer inspect --data-dir DIR
//	tailgate version
//
// Every listener bounds what a peer can hold (time, connections, bytes): the forward input as
// its package doc says, the metrics servers of the agent and of the loader as
// metricsserver.go says. pprof is served only with metrics.pprof: true.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  tailgate run [--config FILE]           run the agent ($TAILGATE_CONFIG, then /etc/tailgate/tailgate.yaml)
  tailgate check --config FILE           validate a config; prints file:line: message per problem
  tailgate demo [--duration D]           generate pod logs and run the whole pipeline locally
  tailgate buffer inspect --data-dir DIR show buffer segments, cursors, corruption and dead letters
  tailgate deadletter list|replay --sink NAME [--config FILE] [--data-dir DIR] [--since T] [--reason R]
                                         what a sink dead-lettered; re-send it once the cause is fixed
  tailgate bigquery setup|load --project P --dataset D --table T [--topic T] [--subscription S]
  tailgate version                       version, commit, modified tree, build date
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	std := stdio{out: stdout, err: stderr}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], std, log)
	case "check":
		err = cmdCheck(args[1:], std)
	case "demo":
		err = cmdDemo(ctx, args[1:], std)
	case "buffer":
		err = cmdBuffer(args[1:], std)
	case "deadletter":
		err = cmdDeadLetter(ctx, args[1:], std, log)
	case "bigquery":
		err = cmdBigQuery(ctx, args[1:], std)
	case "version":
		fmt.Fprintln(stdout, currentBuild())
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("TAILGATE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
