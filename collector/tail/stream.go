package tail

import (
	"os"
	"path/filepath"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// stream is one container log path (what discovery matched, usually the /var/log/containers
// symlink) and the files that have been behind it: rotated ones still draining, oldest first,
// then the current one. Partial lines belong to the stream, not to a file, so a record split by
// a rotation (P chunks at the end of 0.log.<ts>, F at the start of the new 0.log) is joined.
type stream struct {
	path string
	// real is where path (a /var/log/containers symlink) last led: while a rotation has
	// renamed the file and the runtime has not created the new one, the link leads nowhere,
	// and the renamed file is still to be found in this directory.
	real string
	kube *collector.Kube // from the log path
	// bind follows the pod in the watch's cache; nil without one.
	bind  *kube.Binding
	files []*file
	// limit is the container's rate limit (nil: none), built from the input's and the pod's
	// settings (limitFrom) when limitBuilt.
	limit      *limiter
	limitFrom  *map[string]string
	limitBuilt bool
	// finished remembers the last files read to their end, so a rotated file whose mtime
	// ties with the current one's (coarse clocks) is not taken for an unread rotation.
	finished []fileID
	// pend is the record being joined per stream kind (collector.Stream values).
	pend [4]pending
	// held is the multiline record being assembled per stream kind, from the logical lines
	// pend produces; nil when the stream joins nothing.
	held [4]*held
}

// held is a multiline record being assembled: its lines are read, and it is not yet emitted,
// so the positions saved for the files its lines came from stay at its first line in each.
type held struct {
	j          *multiline.Joiner
	flushAfter time.Duration
	src        *collector.Source // identity of its first line
	id         collector.ID
	time       int64
	trunc      bool      // a line of it was cut at max_line_bytes
	refs       []fileRef // files its lines came from, with its first offset in each
	since      time.Time // when its first line was read
	resumed    bool      // the machine state saved before a restart was applied
	listed     bool      // in the reader's list of held records
	// tent is the identity of the last held lines while the joiner holds them tentatively
	// (Joiner.Tentative): if the record ends before them, each is emitted as a record of its
	// own with it.
	tent []tentLine
}

// tentLine is the identity of a line held tentatively.
type tentLine struct {
	src   *collector.Source
	id    collector.ID
	time  int64
	trunc bool
}

// confirm makes the tentative lines part of the record: their cut flags become its.
func (h *held) confirm() {
	for _, t := range h.tent {
		h.trunc = h.trunc || t.trunc
	}
	clear(h.tent)
	h.tent = h.tent[:0]
}

// fileRef is a file and an offset in it.
type fileRef struct {
	f   *file
	off int64
}

func newHeld(rules *multiline.Rules) *held {
	return &held{j: multiline.NewJoiner(rules), flushAfter: rules.FlushAfter()}
}

func (h *held) addRef(f *file, off int64) {
	for _, r := range h.refs {
		if r.f == f {
			return
		}
	}
	h.refs = append(h.refs, fileRef{f, off})
}

func (h *held) refers(f *file) bool {
	if h == nil || !h.j.Holding() {
		return false
	}
	for _, r := range h.refs {
		if r.f == f {
			return true
		}
	}
	return false
}

// pending is a record whose partial chunks have been read and whose last chunk has not.
type pending struct {
	active    bool
	truncated bool
	stream    collector.Stream
	time      int64
	buf       []byte
	start     *file // where the record started: its ID and its source
	startOff  int64
	cont      *file // the newest other file a chunk came from, and that chunk's offset
	contOff   int64
}

// newSource returns the source of a file generation of the stream, bound to the pod's
// metadata when there is a watch.
func (s *stream) newSource(key uint64, input string) *collector.Source {
	if s.bind != nil {
		return s.bind.NewSource(key, input)
	}
	return collector.NewSource(key, input, s.kube)
}

// releaseSource stops following the pod for src, whose file generation is done.
func (s *stream) releaseSource(src *collector.Source) {
	if s.bind != nil {
		s.bind.Detach(src)
	}
}

// ready reports whether the stream may be read: its pod is known, or the bounded wait for it
// is over.
func (s *stream) ready() bool { return s.bind == nil || s.bind.Ready() }

// excluded reports whether the pod opted out (tailgate.io/exclude: "true").
func (s *stream) excluded() bool { return s.bind != nil && s.bind.Excluded() }

// current is the file new data is expected in, or nil while the path has none.
func (s *stream) current() *file {
	if n := len(s.files); n > 0 && !s.files[n-1].draining {
		return s.files[n-1]
	}
	return nil
}

// realPath resolves the stream's path to the file it names now, or, while the link's target
// does not exist (between a rotation's rename and the new file's creation), to where it last
// led or, failing that, to what the link says.
func (s *stream) realPath() string {
	if p, err := filepath.EvalSymlinks(s.path); err == nil {
		s.real = p
		return p
	}
	if s.real != "" {
		return s.real
	}
	if target, err := os.Readlink(s.path); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(s.path), target)
		}
		return target
	}
	return s.path
}

func (s *stream) has(id fileID) bool {
	for _, f := range s.files {
		if f.id == id {
			return true
		}
	}
	return false
}

func (s *stream) remove(f *file) {
	for i, g := range s.files {
		if g == f {
			s.files = append(s.files[:i], s.files[i+1:]...)
			return
		}
	}
}

// committed is the offset in f where a restart resumes reading: the least frontier of its
// streams.
func (s *stream) committed(f *file) int64 {
	return min(s.frontier(f, collector.StreamStdout), s.frontier(f, collector.StreamStderr))
}

// frontier is the offset in f of the first line of stream kind st not covered by an emitted
// record: the start of the earliest pending partial chunk or held multiline line of st read
// from f; else the end of the last whole line handled, or the frontier saved before a restart
// while the lines before it are read again.
func (s *stream) frontier(f *file, st collector.Stream) int64 {
	off := f.readOff
	if k := holdIndex(st); k >= 0 {
		off = max(off, f.hold[k])
	}
	if p := &s.pend[st]; p.active {
		if p.start == f {
			off = min(off, p.startOff)
		}
		if p.cont == f {
			off = min(off, p.contOff)
		}
	}
	if h := s.held[st]; h != nil && h.j.Holding() {
		for _, r := range h.refs {
			if r.f == f {
				off = min(off, r.off)
			}
		}
	}
	return off
}

// machineState is the multiline machine state at the frontier of stream kind st.
func (s *stream) machineState(st collector.Stream) multiline.State {
	if h := s.held[st]; h != nil {
		return h.j.Pre()
	}
	return 0
}

// references reports whether a pending or held record still needs f's position kept.
func (s *stream) references(f *file) bool {
	for i := range s.pend {
		if p := &s.pend[i]; p.active && (p.start == f || p.cont == f) {
			return true
		}
		if s.held[i].refers(f) {
			return true
		}
	}
	return false
}

// quiet reports whether every file of the stream was read to its end.
func (s *stream) quiet() bool {
	for _, f := range s.files {
		if !f.eof {
			return false
		}
	}
	return true
}

// maxFinished bounds stream.finished.
const maxFinished = 16

func (s *stream) finish(id fileID) {
	if len(s.finished) == maxFinished {
		s.finished = append(s.finished[:0], s.finished[1:]...)
	}
	s.finished = append(s.finished, id)
}
