//go:build !linux

package buffer

import (
	"fmt"
	"os"
	"path/filepath"
)

func fdatasync(f *os.File) error { return f.Sync() }

// lockDir only creates the lock file: exclusive locking is implemented for Linux, where the
// agent runs.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("buffer: open lock %s: %w", path, err)
	}
	return f, nil
}

func dropPages(f *os.File, off, n int64) {}
