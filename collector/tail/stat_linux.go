package tail

import (
	"os"
	"syscall"
)

// fileID is a file's identity: device and inode of the file itself (symlinks followed).
type fileID struct {
	dev, ino uint64
}

// fileStat is what tailing needs from stat(2).
type fileStat struct {
	id    fileID
	size  int64
	nlink uint64
	mtime int64 // Unix nanoseconds
}

func fromStatT(st *syscall.Stat_t) fileStat {
	return fileStat{
		id:    fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)},
		size:  st.Size,
		nlink: uint64(st.Nlink),
		mtime: int64(st.Mtim.Sec)*1e9 + int64(st.Mtim.Nsec),
	}
}

// statPath stats path, following symlinks.
func statPath(path string) (fileStat, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileStat{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fromStatT(&st), nil
}

// statFile fstats an open file without allocating.
func statFile(f *os.File) (fileStat, error) {
	var st syscall.Stat_t
	rc, err := f.SyscallConn()
	if err != nil {
		return fileStat{}, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return fileStat{}, err
	}
	if serr != nil {
		return fileStat{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: serr}
	}
	return fromStatT(&st), nil
}
