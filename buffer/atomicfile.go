package buffer

import (
	"os"
	"path/filepath"
)

// ReplaceFile replaces dir/name with data atomically: written to a dot-prefixed temp file
// beside it, made durable, then renamed over it, so a crash leaves the old content or the new,
// never a part. The caller syncs dir when the rename itself must survive a crash.
func ReplaceFile(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = fdatasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
