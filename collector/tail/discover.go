package tail

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// discovery finds log files: fsnotify on the glob directories for new files within
// milliseconds, and a full rescan every few poll intervals because inotify may be unavailable
// or overflow.
type discovery struct {
	in         *Input
	readers    []*reader
	saved      map[string][]savedFile
	firstStart bool
	watcher    *fsnotify.Watcher
	watched    map[string]bool
}

func checkGlob(p string) error {
	if _, err := filepath.Match(p, ""); err != nil {
		return &globError{p, err}
	}
	return nil
}

type globError struct {
	pattern string
	err     error
}

func (e *globError) Error() string { return "glob " + e.pattern + ": " + e.err.Error() }
func (e *globError) Unwrap() error { return e.err }

func (d *discovery) run(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.in.log.Warn("fsnotify unavailable, discovering by rescan only", "err", err)
	} else {
		d.watcher = w
		d.watched = make(map[string]bool)
		defer w.Close()
	}
	// First start: every file found now, with its saved position if it has one, then the saved
	// files whose path is gone (deleted pods), so they are drained too.
	d.watch()
	for _, p := range d.scan() {
		d.dispatch(ctx, p, d.firstStart && d.in.readTail)
	}
	for p := range d.saved {
		d.dispatch(ctx, p, false)
	}
	tick := time.NewTicker(d.in.rescan)
	defer tick.Stop()
	var events chan fsnotify.Event
	var errs chan error
	if d.watcher != nil {
		events, errs = d.watcher.Events, d.watcher.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op&(fsnotify.Create|fsnotify.Rename) != 0 && d.wanted(ev.Name) {
				d.dispatch(ctx, ev.Name, false)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			d.in.warn.Warn("fsnotify", "fsnotify error, rescanning", "err", err)
			d.rescan(ctx)
		case <-tick.C:
			d.rescan(ctx)
		}
	}
}

func (d *discovery) rescan(ctx context.Context) {
	d.watch()
	for _, p := range d.scan() {
		d.dispatch(ctx, p, false)
	}
}

// dispatch hands path to its reader unless it is already served.
func (d *discovery) dispatch(ctx context.Context, path string, fromTail bool) {
	saved := d.saved[path]
	if d.in.isKnown(path) {
		return
	}
	if saved == nil && d.in.ignoreOld > 0 {
		st, err := statPath(path)
		if err != nil || time.Since(time.Unix(0, st.mtime)) > d.in.ignoreOld {
			return
		}
	}
	if !d.in.register(path) {
		return
	}
	delete(d.saved, path)
	select {
	case d.in.readerFor(d.readers, path).ctl <- newStreamMsg{path: path, saved: saved, fromTail: fromTail}:
	case <-ctx.Done():
	}
}

// scan expands the globs, minus the excluded paths.
func (d *discovery) scan() []string {
	var out []string
	seen := make(map[string]bool)
	for _, pat := range d.in.paths {
		matches, _ := filepath.Glob(pat)
		for _, m := range matches {
			if !seen[m] && !d.excluded(m) {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

func (d *discovery) wanted(path string) bool {
	for _, pat := range d.in.paths {
		if ok, _ := filepath.Match(pat, path); ok {
			return !d.excluded(path)
		}
	}
	return false
}

// excluded applies the exclude globs: a pattern with a '/' matches the whole path, one without
// matches the file name ("*_kube-system_*").
func (d *discovery) excluded(path string) bool {
	for _, pat := range d.in.exclude {
		target := path
		if !strings.ContainsRune(pat, '/') {
			target = filepath.Base(path)
		}
		if ok, _ := filepath.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// watch adds an inotify watch on every directory the globs can match in.
func (d *discovery) watch() {
	if d.watcher == nil {
		return
	}
	for _, pat := range d.in.paths {
		dir := filepath.Dir(pat)
		dirs := []string{dir}
		if hasMeta(dir) {
			dirs, _ = filepath.Glob(dir)
		}
		for _, dir := range dirs {
			if d.watched[dir] {
				continue
			}
			if err := d.watcher.Add(dir); err != nil {
				d.in.warn.Warn("watch:"+dir, "cannot watch directory, relying on rescans", "path", dir, "err", err)
				continue
			}
			d.watched[dir] = true
		}
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }
