package collector

import "golang.org/x/sys/unix"

// volumeSize returns the size in bytes of the filesystem holding dir. A filesystem with no
// blocks (proc, sysfs) has no size to compare with: not ok.
func volumeSize(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 0, false
	}
	return int64(st.Blocks) * int64(st.Bsize), true
}

// accessible reports whether this process may read (and, with write, write) dir, as the
// kernel says for this user and mount (a read-only volume answers EROFS).
func accessible(dir string, write bool) error {
	mode := uint32(unix.R_OK | unix.X_OK)
	if write {
		mode |= unix.W_OK
	}
	return unix.Access(dir, mode)
}
