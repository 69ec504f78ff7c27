package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tailgate-dev/tailgate/collector"
)

// swap replaces the running generation with one built from cfg: the new sinks are built
// first (a failure there refuses the reload and leaves the old config running), then the old
// inputs stop, emitting what they read with its positions, and the old pipeline drains every
// sink and persists the cursors; the new pipeline opens the same buffer, so its inputs resume
// at the saved positions (no file is read again) and its sinks at their cursors (nothing
// buffered is lost, nothing acknowledged is sent again). A sink no longer configured keeps
// its cursor, parked (buffer.ParkReader): it holds no segment, so what it alone had not sent
// is deleted once the other sinks pass it; configured again, it resumes at its cursor, or at
// the oldest retained frame if its next frames were deleted meanwhile.
func (a *agent) swap(ctx context.Context, g *running, cfg *collector.Config) (*running, error) {
	if why := restartOnly(a.cfg, cfg); why != "" {
		a.reloads.WithLabelValues("failure").Inc()
		a.log.Error("config reload refused: "+why+" only apply at a restart; the running config stays", "changed", why)
		return g, nil
	}
	sinks, err := a.newSinks(ctx, cfg)
	if err != nil {
		a.reloads.WithLabelValues("failure").Inc()
		a.log.Error("config reload refused: the new sinks cannot be built; the running config stays", "err", err)
		return g, nil
	}
	a.log.Info("config reload: stopping inputs and draining sinks", "timeout", a.cfg.ShutdownTimeout.D())
	if err := a.stop(g); err != nil {
		a.log.Warn("config reload: not every buffered record was sent in time; the new config sends the rest", "err", err)
	}
	old, oldSinks := a.cfg, a.sinks
	if err := a.startGeneration(cfg, sinks); err != nil {
		forgetSinks(sinks, cfg, old)
		a.reloads.WithLabelValues("failure").Inc()
		a.log.Error("config reload failed to start the new config; restarting the old one", "err", err)
		oldSinks, err2 := a.newSinks(ctx, old)
		if err2 == nil {
			err2 = a.startGeneration(old, oldSinks)
		}
		if err2 != nil {
			return nil, fmt.Errorf("config reload failed (%v) and the old config did not restart: %w", err, err2)
		}
		return a.start(ctx), nil
	}
	forgetSinks(oldSinks, old, cfg)
	a.reloads.WithLabelValues("success").Inc()
	a.log.Info("config reloaded", "inputs", len(a.inputs), "sinks", len(cfg.Sinks), "routes", len(cfg.Routes))
	return a.start(ctx), nil
}

// restartOnly names the settings that differ between old and new and that a reload cannot
// apply: where the buffer lives, who the node is, the metrics address, the pod watch.
func restartOnly(old, new *collector.Config) string {
	switch {
	case old.DataDir != new.DataDir:
		return "data_dir"
	case old.NodeName != new.NodeName:
		return "node_name"
	case old.Metrics != new.Metrics:
		return "metrics"
	case !reflect.DeepEqual(old.Kubernetes, new.Kubernetes):
		return "kubernetes"
	}
	return ""
}

// watchConfig reloads the config file at path on SIGHUP, and when it changes on disk: the
// directory is watched, not the file, because a mounted ConfigMap is updated by swapping the
// ..data symlink beside it (the file path itself never sees a write). An invalid config is
// refused with its file:line errors in the log and counted; the running one stays.
func watchConfig(ctx context.Context, path string, a *agent, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err != nil {
		log.Warn("config file changes will not be noticed (SIGHUP still reloads)", "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			log.Warn("config file changes will not be noticed (SIGHUP still reloads)", "path", path, "err", err)
		} else {
			events = w.Events
		}
	}
	last, _ := os.ReadFile(path)
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last = a.reloadFrom(path, log)
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			settle = time.After(200 * time.Millisecond) // a symlink swap is several events
		case <-settle:
			settle = nil
			if data, err := os.ReadFile(path); err == nil && !bytes.Equal(data, last) {
				last = a.reloadFrom(path, log)
			}
		}
	}
}

// reloadFrom loads and validates path and hands a valid config to run; it returns the bytes
// it read.
func (a *agent) reloadFrom(path string, log *slog.Logger) []byte {
	data, _ := os.ReadFile(path)
	cfg, err := loadConfig(path, false)
	if err != nil {
		a.reloads.WithLabelValues("failure").Inc()
		log.Error("config reload refused: the running config stays", "path", path, "errors", err.Error())
		return data
	}
	log.Info("config reload requested", "path", path)
	select {
	case a.reload <- cfg:
	default: // a reload is pending: it will read the file anew
		select {
		case <-a.reload:
		default:
		}
		a.reload <- cfg
	}
	return data
}
