package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tailgate-dev/tailgate/buffer"
	"github.com/tailgate-dev/tailgate/collector"
)

const defaultConfigPath = "/etc/tailgate/tailgate.yaml"

func cmdRun(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "config file (default $TAILGATE_CONFIG, then "+defaultConfigPath+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		*path = os.Getenv("TAILGATE_CONFIG")
	}
	if *path == "" {
		*path = defaultConfigPath
	}
	cfg, err := collector.LoadConfig(*path, collector.LoadOptions{})
	if err != nil {
		return err
	}
	a, err := newAgent(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func cmdCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "", "config file to validate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("check: --config FILE is required")
	}
	if _, err := collector.LoadConfig(*path, collector.LoadOptions{CheckPaths: true}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

func cmdBuffer(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "inspect" {
		return errors.New("usage: tailgate buffer inspect --data-dir DIR")
	}
	fs := flag.NewFlagSet("buffer inspect", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "the agent's data_dir (or a buffer directory)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("buffer inspect: --data-dir DIR is required")
	}
	bufDir := *dir
	if st, err := os.Stat(bufDir + "/buffer"); err == nil && st.IsDir() {
		bufDir += "/buffer"
	}
	rep, err := buffer.Inspect(bufDir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", bufDir, err)
	}
	return rep.WriteText(stdout)
}
