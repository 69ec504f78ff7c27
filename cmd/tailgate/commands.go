package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/tailgate-dev/tailgate/buffer"
	"github.com/tailgate-dev/tailgate/collector"
)

const defaultConfigPath = "/etc/tailgate/tailgate.yaml"

func cmdRun(ctx context.Context, args []string, std stdio, log *slog.Logger) error {
	fs := newFlags("run", "run [--config FILE]")
	path := fs.String("config", "", "config file (default $TAILGATE_CONFIG, then "+defaultConfigPath+")")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	file := configPath(*path)
	cfg, err := loadConfig(file, false)
	if err != nil {
		return err
	}
	a, err := newAgent(ctx, cfg, log)
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchConfig(watchCtx, file, a, log)
	return a.run(ctx)
}

// configPath is --config, else $TAILGATE_CONFIG, else the default path.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("TAILGATE_CONFIG"); env != "" {
		return env
	}
	return defaultConfigPath
}

// loadConfig is the one way run, check and deadletter read a config: the same validation,
// against the same list of sink types this binary builds, so check fails exactly where run
// would. checkPaths adds what only check looks at: paths that do not exist or cannot be
// written.
func loadConfig(path string, checkPaths bool) (*collector.Config, error) {
	return collector.LoadConfig(path, collector.LoadOptions{CheckPaths: checkPaths, SinkTypes: sinkChecks()})
}

func cmdCheck(args []string, std stdio) error {
	fs := newFlags("check", "check --config FILE")
	path := fs.String("config", "", "config file to validate")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	if *path == "" {
		return flagUsagef(fs, std, "check: --config FILE is required")
	}
	cfg, err := loadConfig(*path, true)
	if err != nil {
		return err
	}
	if err := checkKubernetes(context.Background(), cfg, std.out); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	fmt.Fprintf(std.out, "%s: ok\n", *path)
	return nil
}

const bufferUsage = "usage: tailgate buffer inspect --data-dir DIR\n"

func cmdBuffer(args []string, std stdio) error {
	if len(args) == 0 {
		return usagef(std, bufferUsage, "buffer: a subcommand is required")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(std.out, bufferUsage)
		return errHelp
	}
	if args[0] != "inspect" {
		return usagef(std, bufferUsage, "buffer: unknown subcommand %q", args[0])
	}
	fs := newFlags("buffer inspect", "buffer inspect --data-dir DIR")
	dir := fs.String("data-dir", "", "the agent's data_dir (or a buffer directory)")
	if err := parseFlags(fs, args[1:], std); err != nil {
		return err
	}
	if *dir == "" {
		return flagUsagef(fs, std, "buffer inspect: --data-dir DIR is required")
	}
	bufDir := *dir
	if st, err := os.Stat(bufDir + "/buffer"); err == nil && st.IsDir() {
		bufDir += "/buffer"
	}
	rep, err := buffer.Inspect(bufDir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", bufDir, err)
	}
	if err := rep.WriteText(std.out); err != nil {
		return err
	}
	if bufDir == *dir {
		return nil
	}
	return writeDeadLetterSummary(std.out, *dir)
}
