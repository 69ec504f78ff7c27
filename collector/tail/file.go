package tail

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// fingerprintLen is how many leading bytes identify a file's content, to tell inode reuse
// from the same file.
const fingerprintLen = 64

// file is one generation of one log file, owned by a single reader goroutine.
type file struct {
	id       fileID
	stateKey string
	path     string // real path last seen; renamed files are found again by inode
	fd       *os.File
	key      uint64
	gen      uint32
	src      *collector.Source
	format   format
	stream   *stream
	// streamPath is the path of the stream the file belongs to, saved so a restart finds it.
	streamPath string

	readOff int64 // offset after the last whole line handled
	skip    int64 // lines ending at or before skip were handled before a restart
	// hold and mstate are what the last run saved (savedFile.hold): lines of a stream before
	// its hold belong to emitted records and are skipped.
	hold   [2]int64
	mstate [2]multiline.State
	size   int64 // size at the last stat
	tail   int64 // bytes of an unfinished last line seen at EOF
	fpLen  int
	fp     uint64

	eof      bool // the last read reached the size known then
	discard  bool // skipping the rest of a physical line longer than the read buffer
	draining bool // rotated or deleted: read to EOF, then close for good
	drainAt  time.Time
	lastUse  time.Time
	dirty    bool // position changed since the last emitted batch
	done     bool // closed for good
	final    bool // state deleted and source released
}

func (f *file) saved(logical string) savedFile {
	return savedFile{id: f.id, key: f.key, gen: f.gen, offset: f.readOff, skip: max(f.skip, f.readOff),
		fpLen: f.fpLen, fp: f.fp, path: f.path, logical: logical}
}

// fingerprint hashes the first bytes of the file (FNV-1a, up to fingerprintLen).
func fingerprint(fd *os.File, size int64) (int, uint64, error) {
	var buf [fingerprintLen]byte
	n := int(min(size, fingerprintLen))
	if n == 0 {
		return 0, fnvOffset, nil
	}
	got, err := fd.ReadAt(buf[:n], 0)
	if err != nil && err != io.EOF {
		return 0, 0, err
	}
	return got, fnv64(buf[:got]), nil
}

const fnvOffset = 14695981039346656037

func fnv64(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// refreshFingerprint extends the fingerprint while the file is shorter than fingerprintLen.
func (f *file) refreshFingerprint() {
	if f.fd == nil || f.fpLen >= fingerprintLen || f.size <= int64(f.fpLen) {
		return
	}
	if n, fp, err := fingerprint(f.fd, f.size); err == nil {
		f.fpLen, f.fp = n, fp
	}
}

// openVerified opens path and checks it is still the file id.
func openVerified(path string, id fileID) (*os.File, fileStat, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fileStat{}, err
	}
	st, err := statFile(fd)
	if err != nil {
		fd.Close()
		return nil, fileStat{}, err
	}
	if st.id != id {
		fd.Close()
		return nil, st, errMoved
	}
	return fd, st, nil
}

var errMoved = errors.New("file replaced by another inode")

// findByID looks for the file id in dir: a file renamed by rotation (0.log -> 0.log.20261125-101010,
// x-json.log -> x-json.log.1) stays in its directory.
func findByID(dir string, id fileID) (string, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if st, err := statPath(p); err == nil && st.id == id {
			return p, true
		}
	}
	return "", false
}

// openByID opens the file id at path or, if a rotation renamed it since it was last seen there
// (between a stat and this open, or while the file was closed), wherever it went in the same
// directory. It returns the path it opened.
func openByID(path string, id fileID) (*os.File, fileStat, string, error) {
	fd, st, err := openVerified(path, id)
	if err == nil {
		return fd, st, path, nil
	}
	p, ok := findByID(filepath.Dir(path), id)
	if !ok {
		return nil, fileStat{}, "", fmt.Errorf("open %s: %w", path, err)
	}
	if fd, st, err = openVerified(p, id); err != nil {
		return nil, fileStat{}, "", fmt.Errorf("open %s: %w", p, err)
	}
	return fd, st, p, nil
}

// reopen opens a file closed to respect max_open_files, at its last path or, if it was renamed
// since, wherever it went in the same directory.
func (f *file) reopen() (fileStat, error) {
	fd, st, p, err := openByID(f.path, f.id)
	if err != nil {
		return fileStat{}, fmt.Errorf("reopen: %w", err)
	}
	f.fd, f.path = fd, p
	return st, nil
}

type rotatedFile struct {
	path string
	st   fileStat
}

// rotatedWhileDown lists the rotated siblings of current (current.N, current.<timestamp>; not
// compressed ones) that are not known and were written after newerThan (the mtime of the
// newest file the last run had saved; an equal mtime counts as newer, since duplicates beat
// loss), oldest first. With newerThan 0 nothing is returned:
// without a saved file to date them, old rotations cannot be told from new ones.
func rotatedWhileDown(current string, newerThan int64, known map[fileID]bool) []rotatedFile {
	if newerThan == 0 {
		return nil
	}
	dir, base := filepath.Split(current)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []rotatedFile
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, base+".") || strings.HasSuffix(name, ".gz") {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := statPath(p)
		if err != nil || known[st.id] || st.mtime < newerThan { // mtime ticks are coarse: equal is not older
			continue
		}
		out = append(out, rotatedFile{p, st})
	}
	slices.SortFunc(out, func(a, b rotatedFile) int { return cmp.Compare(a.st.mtime, b.st.mtime) })
	return out
}

// findCopy returns the sibling of path (path.N, path.<timestamp>; not compressed) that a
// copytruncate of the saved file made: another file, at least as long as the saved offset,
// starting with the saved content (its fingerprint).
func findCopy(path string, sv savedFile) (string, fileStat, bool) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fileStat{}, false
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, base+".") || strings.HasSuffix(name, ".gz") {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := statPath(p)
		if err != nil || st.id == sv.id || st.size < sv.offset {
			continue
		}
		fd, err := os.Open(p)
		if err != nil {
			continue
		}
		n, fp, err := fingerprint(fd, min(st.size, int64(sv.fpLen)))
		fd.Close()
		if err == nil && n == sv.fpLen && fp == sv.fp {
			return p, st, true
		}
	}
	return "", fileStat{}, false
}
