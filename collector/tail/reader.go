package tail

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/multiline"
)

const (
	turnBudget     = 256 << 10 // bytes one file may consume per round, for fairness
	readChunk      = 256 << 10 // bytes per read(2)
	flushBytes     = 256 << 10 // emit once this many message bytes are batched
	flushRecords   = 4096
	shrinkPending  = 64 << 10 // pending buffers larger than this are dropped after use
	minReadBufSize = 512 << 10
)

// newStreamMsg hands a discovered path, and what the last run saved about it, to its reader.
type newStreamMsg struct {
	path     string
	saved    []savedFile
	fromTail bool
}

// reader serves a share of the streams (by path hash) round-robin: each file gets up to
// turnBudget bytes per round, so one busy file cannot starve a thousand quiet ones. Everything
// a reader touches is its own; only claims, the path registry and gauges are shared.
type reader struct {
	in      *Input
	out     collector.Emitter
	ctl     chan newStreamMsg
	streams []*stream
	open    []*file // open files that may be closed to respect maxOpen (not draining)
	nOpen   int
	maxOpen int

	buf    []byte
	docker dockerParser
	times  timeParser // CRI lines' times
	now    time.Time

	batch    collector.Batch
	arena    []byte // message bytes of batch.Records
	stateBuf []byte // state values of batch.State
	dirty    []*file
	gone     []string // state keys to delete that belong to no file (lost while we were down)
	release  []*collector.Source
	lag      int64

	// dropping is the reason ("excluded", "rate_limit") the records of the stream being read
	// are counted per stream kind instead of emitted; "" emits them.
	dropping   string
	dropped    [4]int
	droppedSrc *collector.Source
	// turnLines and turnBytes count what the stream being read emitted this turn; the turn
	// stops once they reach turnMaxLines or turnMaxBytes (its rate limit's tokens).
	turnLines, turnBytes       int
	turnMaxLines, turnMaxBytes int
	// heldList are the streams holding a multiline record, for flush_after; timer wakes the
	// loop at the earliest deadline.
	heldList []heldRef
	timer    *time.Timer
	timerAt  time.Time
}

type heldRef struct {
	s  *stream
	st collector.Stream
}

func newReader(in *Input) *reader {
	r := &reader{
		in:      in,
		ctl:     make(chan newStreamMsg, 256),
		maxOpen: max(1, in.maxOpen/in.nReaders),
		buf:     make([]byte, in.readBufSize()),
		timer:   time.NewTimer(time.Hour),
	}
	r.timer.Stop()
	return r
}

// run reads until ctx ends, then emits what it has and returns nil.
func (r *reader) run(ctx context.Context, out collector.Emitter) error {
	r.out = out
	tick := time.NewTicker(r.in.poll)
	defer tick.Stop()
	defer r.timer.Stop()
	defer r.closeAll()
	lastPoll := time.Time{}
	for {
		r.now = time.Now()
		if r.now.Sub(lastPoll) >= r.in.poll {
			r.poll()
			lastPoll = r.now
		}
		progressed, err := r.round(ctx)
		r.flushExpired()
		if err == nil {
			err = r.flush(ctx)
		}
		if ctx.Err() != nil {
			return r.shutdown()
		}
		if err != nil {
			return err
		}
		if progressed {
			select {
			case msg := <-r.ctl:
				r.addStream(msg)
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return r.shutdown()
		case msg := <-r.ctl:
			r.now = time.Now()
			r.addStream(msg)
		case <-tick.C:
		case <-r.timer.C:
		}
	}
}

// shutdown emits complete records already read. Pending partials and held multiline records
// are not emitted: their start is the saved offset, so the next run reads and joins them again,
// with the same ids.
func (r *reader) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.in.shutdownWait)
	defer cancel()
	if err := r.flush(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (r *reader) closeAll() {
	for _, s := range r.streams {
		if s.bind != nil {
			s.bind.Close()
		}
		for _, f := range s.files {
			if f.fd != nil {
				f.fd.Close()
				f.fd = nil
				r.in.addOpen(-1)
			}
		}
	}
	r.in.setLag(r, 0)
}

// round gives every file with unread data one turn; older files of a stream go first and a
// newer file is read only once the older ones are at their end.
func (r *reader) round(ctx context.Context) (bool, error) {
	progressed := false
	for _, s := range r.streams {
		if !s.ready() {
			continue // its pod may reach the cache any moment: the records wait for it, boundedly
		}
		r.dropping = ""
		if s.excluded() {
			r.dropping = "excluded"
		}
		lim := r.limiterFor(s)
		r.turnLines, r.turnBytes = 0, 0
		r.turnMaxLines, r.turnMaxBytes = math.MaxInt, math.MaxInt
		if lim != nil && r.dropping == "" {
			lim.refill(r.now)
			if !lim.allowed() {
				if s.lag() <= lim.maxLag {
					continue // backpressure: this container's files wait, nobody else does
				}
				r.dropping = "rate_limit" // too far behind: read on, drop, count
			} else {
				r.turnMaxLines, r.turnMaxBytes = lim.budget()
			}
		}
		for i := 0; i < len(s.files); {
			f := s.files[i]
			if f.eof {
				if f.draining && r.now.Sub(f.drainAt) >= r.in.rotateWait {
					r.closeForGood(s, f)
					continue
				}
				i++
				continue
			}
			n, err := r.readTurn(ctx, s, f)
			if err != nil {
				return progressed, err
			}
			progressed = progressed || n > 0
			if f.done {
				continue // could not be reopened: removed from s.files
			}
			if !f.eof {
				break
			}
			i++
		}
		if lim != nil && r.dropping == "" {
			lim.take(r.turnLines, r.turnBytes)
		}
		r.flushDropped()
		if ctx.Err() != nil {
			return progressed, nil
		}
	}
	r.dropping = ""
	r.turnMaxLines, r.turnMaxBytes = math.MaxInt, math.MaxInt
	r.removeEmpty()
	return progressed, nil
}

func (r *reader) removeEmpty() {
	r.streams = slices.DeleteFunc(r.streams, func(s *stream) bool {
		if len(s.files) > 0 {
			return false
		}
		if _, err := statPath(s.path); err == nil {
			return false // the path exists: the poll will pick up its next file
		}
		r.in.forget(s.path)
		if s.bind != nil {
			s.bind.Close()
		}
		return true
	})
}

// readTurn reads whole lines from f, up to the turn budget, and hands them on.
func (r *reader) readTurn(ctx context.Context, s *stream, f *file) (int64, error) {
	if f.fd == nil && !r.openFile(s, f) {
		return 0, nil
	}
	f.lastUse = r.now
	var consumed int64
	off := f.readOff
	carry := 0
	limited := false
	for {
		want := min(len(r.buf)-carry, readChunk)
		n, err := f.fd.ReadAt(r.buf[carry:carry+want], off+int64(carry))
		if err != nil && err != io.EOF {
			r.in.warn.Warn("read:"+f.path, "read failed", "path", f.path, "err", err)
			f.eof = true
			break
		}
		data := r.buf[:carry+n]
		p := 0
		if f.discard {
			if nl := bytes.IndexByte(data, '\n'); nl >= 0 {
				p, f.discard = nl+1, false
			} else {
				p = len(data)
			}
			f.readOff = off + int64(p)
		}
		for !f.discard {
			nl := bytes.IndexByte(data[p:], '\n')
			if nl < 0 {
				break
			}
			start := off + int64(p)
			end := start + int64(nl) + 1
			f.readOff = end
			r.handleLine(s, f, data[p:p+nl], start, end, false)
			p += nl + 1
			if r.turnLines >= r.turnMaxLines || r.turnBytes >= r.turnMaxBytes {
				limited = true // the container's rate limit: the rest waits for tokens
				break
			}
			if len(r.arena) >= flushBytes || len(r.batch.Records) >= r.in.flushRecords {
				r.markDirty(f)
				if err := r.flush(ctx); err != nil {
					return consumed + int64(p), err
				}
			}
		}
		if limited {
			consumed += int64(p)
			break
		}
		if p == 0 && len(data) == len(r.buf) {
			// One physical line longer than the whole buffer: deliver its head cut, skip the rest.
			f.readOff = off + int64(len(data))
			r.handleLine(s, f, data, off, off+int64(len(data)), true)
			p, f.discard = len(data), true
		}
		consumed += int64(p)
		off += int64(p)
		carry = copy(r.buf, data[p:])
		if n < want {
			f.eof = true
			f.tail = int64(carry)
			break
		}
		if consumed >= turnBudget {
			break
		}
	}
	if consumed > 0 {
		r.markDirty(f)
	}
	return consumed, nil
}

// handleLine parses one physical line and feeds it to the stream's joiner.
func (r *reader) handleLine(s *stream, f *file, line []byte, start, end int64, overlong bool) {
	if f.format == formatUnknown {
		f.format = r.in.format
		if f.format == formatUnknown {
			f.format = detectFormat(line)
		}
	}
	var c chunk
	ok := false
	switch f.format {
	case formatCRI:
		c, ok = parseCRIWith(&r.times, line)
	case formatDocker:
		c, ok = r.docker.parse(line)
	}
	if !ok {
		if end > f.skip {
			reason := "garbage"
			if overlong {
				reason = "overlong" // its cut head does not parse: the line is lost
			}
			r.out.Dropped(f.src, collector.StreamUnknown, reason, 1)
		}
		return
	}
	if k := holdIndex(c.Stream); k >= 0 && start < f.hold[k] {
		return // part of a record emitted before the restart
	}
	if c.Time == 0 {
		c.Time = r.now.UnixNano()
	}
	p := &s.pend[c.Stream]
	if !p.active && !c.Partial {
		msg, trunc := c.Message, overlong
		if len(msg) > r.in.maxLine {
			msg, trunc = msg[:r.in.maxLine], true
		}
		r.logical(s, &logicalLine{src: f.src, id: collector.MakeID(f.key, uint64(start)), time: c.Time,
			stream: c.Stream, msg: msg, trunc: trunc, start: f, startOff: start})
		return
	}
	if !p.active {
		*p = pending{active: true, stream: c.Stream, time: c.Time, buf: p.buf[:0], start: f, startOff: start}
	} else if f != p.start && f != p.cont {
		p.cont, p.contOff = f, start
	}
	if room := r.in.maxLine - len(p.buf); len(c.Message) > room {
		p.buf = append(p.buf, c.Message[:room]...)
		p.truncated = true
	} else {
		p.buf = append(p.buf, c.Message...)
	}
	p.truncated = p.truncated || overlong
	if !c.Partial {
		r.completePending(s, p)
	}
}

// completePending hands the joined line on and lets go of the files it kept.
func (r *reader) completePending(s *stream, p *pending) {
	l := logicalLine{src: p.start.src, id: collector.MakeID(p.start.key, uint64(p.startOff)), time: p.time,
		stream: p.stream, msg: p.buf, trunc: p.truncated, start: p.start, startOff: p.startOff}
	if p.cont != nil {
		l.cont, l.contOff = p.cont, p.contOff
	}
	r.logical(s, &l)
	start, cont := p.start, p.cont
	buf := p.buf[:0]
	if cap(buf) > shrinkPending {
		buf = nil
	}
	*p = pending{buf: buf}
	r.markDirty(start)
	r.finalize(s, start)
	if cont != nil {
		r.markDirty(cont)
		r.finalize(s, cont)
	}
}

// flushPending emits every pending or held record of s that involves f (or all, if f is nil)
// as it is: nothing more will come for it.
func (r *reader) flushPending(s *stream, f *file) {
	for i := range s.pend {
		if p := &s.pend[i]; p.active && (f == nil || p.start == f || p.cont == f) {
			r.completePending(s, p)
		}
	}
	for i, h := range s.held {
		if h != nil && (f == nil || h.refers(f)) {
			if done, ok := h.j.Flush(); ok {
				r.emitHeld(s, h, collector.Stream(i), done)
			}
		}
	}
}

// logicalLine is one whole line of a container (its partial chunks joined), with the identity
// of its first chunk and the files it came from.
type logicalLine struct {
	src      *collector.Source
	id       collector.ID
	time     int64
	stream   collector.Stream
	msg      []byte
	trunc    bool
	start    *file
	startOff int64
	cont     *file // the other file a chunk came from (a rotation inside the line), or nil
	contOff  int64
}

// logical emits a logical line, or gives it to the stream's multiline joiner, which may hold
// it, emit it alone, or finish the record it held.
func (r *reader) logical(s *stream, l *logicalLine) {
	h := s.held[l.stream]
	if h == nil {
		r.emit(l.src, l.id, l.time, l.stream, l.msg, l.trunc, false)
		return
	}
	if !h.resumed {
		// The first line after a (re)start: the machine resumes in the state saved with the
		// position this line was read from, so a record cut at max_lines before a crash is
		// joined again the same way.
		h.resumed = true
		if k := holdIndex(l.stream); k >= 0 {
			h.j.Resume(l.start.mstate[k])
		}
	}
	done, place := h.j.Feed(l.msg)
	if place == multiline.Last {
		h.trunc = h.trunc || l.trunc
	}
	if done.Lines > 0 || done.Released > 0 {
		r.emitHeld(s, h, l.stream, done)
	}
	switch place {
	case multiline.Alone:
		r.emit(l.src, l.id, l.time, l.stream, l.msg, l.trunc, false)
		return
	case multiline.First:
		h.src, h.id, h.time, h.trunc, h.since = l.src, l.id, l.time, l.trunc, r.now
		h.refs = append(h.refs[:0], fileRef{l.start, l.startOff})
		h.tent = h.tent[:0]
		if l.cont != nil {
			h.addRef(l.cont, l.contOff)
		}
		if !h.listed {
			h.listed = true
			r.heldList = append(r.heldList, heldRef{s, l.stream})
			r.armTimer(h.since.Add(h.flushAfter))
		}
	case multiline.Joined:
		h.addRef(l.start, l.startOff)
		if l.cont != nil {
			h.addRef(l.cont, l.contOff)
		}
	case multiline.Last:
		return
	}
	if h.j.Tentative() > 0 {
		// The line may yet come out alone: keep its identity, and its cut flag out of the
		// record's until a next line confirms it.
		h.tent = append(h.tent, tentLine{src: l.src, id: l.id, time: l.time, trunc: l.trunc})
		return
	}
	h.confirm()
	h.trunc = h.trunc || l.trunc
}

// emitHeld emits a finished multiline record and lets go of the files it kept.
// Lines the joiner held tentatively come out after it: the record's tentative lines that it
// did not release were confirmed (a cut, or the line that ended it).
func (r *reader) emitHeld(s *stream, h *held, st collector.Stream, done multiline.Done) {
	rel := h.tent[len(h.tent)-done.Released:]
	h.tent = h.tent[:len(h.tent)-done.Released]
	h.confirm()
	if done.Lines > 0 {
		trunc := h.trunc || done.Cut
		if done.Cut {
			r.out.Altered(h.src, st, "multiline_cut", 1)
		}
		if h.trunc {
			r.out.Altered(h.src, st, "truncated", 1)
		}
		if r.emit(h.src, h.id, h.time, st, done.Message, false, done.Exception) && trunc {
			r.batch.Records[len(r.batch.Records)-1].Flags |= collector.FlagTruncated
		}
	}
	for i, t := range rel {
		r.emit(t.src, t.id, t.time, st, h.j.Released(i), t.trunc, false)
	}
	clear(rel)
	refs := h.refs
	h.refs, h.trunc = h.refs[:0], false
	for _, ref := range refs {
		r.markDirty(ref.f)
		r.finalize(s, ref.f)
	}
	clear(refs)
}

// flushExpired emits the held records whose flush_after has passed, on streams read to their
// end (with more to read, the next line may still continue the record), and sets the timer
// to the next deadline.
func (r *reader) flushExpired() {
	if len(r.heldList) == 0 {
		return
	}
	var next time.Time
	keep := r.heldList[:0]
	for _, hr := range r.heldList {
		h := hr.s.held[hr.st]
		if !h.j.Holding() {
			h.listed = false
			continue
		}
		deadline := h.since.Add(h.flushAfter)
		if !r.now.Before(deadline) {
			if hr.s.quiet() {
				if done, ok := h.j.Flush(); ok {
					r.emitHeld(hr.s, h, hr.st, done)
				}
				h.listed = false
				continue
			}
			deadline = r.now.Add(r.in.poll)
		}
		if next.IsZero() || deadline.Before(next) {
			next = deadline
		}
		keep = append(keep, hr)
	}
	clear(r.heldList[len(keep):])
	r.heldList = keep
	if !next.IsZero() {
		r.timerAt = time.Time{} // the earliest deadline is next: set it even if later than the last
		r.armTimer(next)
	}
}

// armTimer makes the loop wake at t at the latest: an earlier wake-up already set stays.
func (r *reader) armTimer(t time.Time) {
	now := time.Now()
	if r.timerAt.After(now) && !r.timerAt.After(t) {
		return
	}
	r.timerAt = t
	r.timer.Reset(max(t.Sub(now), time.Millisecond))
}

// emit appends one record to the batch; its message is copied into the batch's arena.
// exception marks a joined stack trace: with level detection on, it is an error when its first
// line names no level.
// It reports whether the record was batched: an excluded pod's, or one over its rate and lag
// limits, is counted instead.
func (r *reader) emit(src *collector.Source, id collector.ID, t int64, st collector.Stream, msg []byte, trunc, exception bool) bool {
	if r.dropping != "" {
		// Read and parsed like any other (positions, joins and rotations stay exact, so
		// removing the annotation or catching up resumes cleanly), then dropped, counted
		// once per turn.
		r.dropped[st]++
		r.droppedSrc = src
		return false
	}
	r.turnLines++
	r.turnBytes += len(msg)
	a := len(r.arena)
	r.arena = append(r.arena, msg...)
	m := r.arena[a:len(r.arena):len(r.arena)]
	rec := collector.Record{Source: src, Time: t, ID: id, Stream: st, Message: m}
	if trunc {
		rec.Flags = collector.FlagTruncated
		r.out.Altered(src, st, "truncated", 1)
	}
	if !utf8.Valid(m) {
		r.out.Altered(src, st, "invalid_utf8", 1)
	}
	if r.in.parseJSON && len(m) > 1 && isJSONObject(m) {
		rec.Fields = m
	} else if r.in.detectLevel {
		lv := detectLevel(m)
		if lv == levelNone && exception {
			lv = levelError
		}
		if lv != levelNone {
			a := len(r.arena)
			r.arena = appendLevelFields(r.arena, lv)
			rec.Fields = r.arena[a:len(r.arena):len(r.arena)]
		}
	}
	r.batch.Records = append(r.batch.Records, rec)
	return true
}

// flushDropped counts the records dropped in the last turn (an excluded pod, a container
// past its rate limit and its lag limit).
func (r *reader) flushDropped() {
	for st, n := range r.dropped {
		if n > 0 {
			r.out.Dropped(r.droppedSrc, collector.Stream(st), r.dropping, n)
			r.dropped[st] = 0
		}
	}
	r.droppedSrc = nil
}

func (r *reader) markDirty(f *file) {
	if !f.dirty {
		f.dirty = true
		r.dirty = append(r.dirty, f)
	}
}

// flush emits the batched records with the positions of every file they advanced.
func (r *reader) flush(ctx context.Context) error {
	for _, f := range r.dirty {
		f.dirty = false
		if f.final {
			r.batch.State = append(r.batch.State, collector.StateEntry{Key: f.stateKey})
			continue
		}
		sv := f.saved(f.streamPath)
		sv.offset = f.stream.committed(f)
		for k, st := range [2]collector.Stream{collector.StreamStdout, collector.StreamStderr} {
			sv.hold[k] = f.stream.frontier(f, st)
			sv.mstate[k] = f.stream.machineState(st)
		}
		a := len(r.stateBuf)
		r.stateBuf = sv.appendBinary(r.stateBuf)
		r.batch.State = append(r.batch.State, collector.StateEntry{Key: f.stateKey, Value: r.stateBuf[a:len(r.stateBuf):len(r.stateBuf)]})
	}
	r.dirty = r.dirty[:0]
	for _, k := range r.gone {
		r.batch.State = append(r.batch.State, collector.StateEntry{Key: k})
	}
	r.gone = r.gone[:0]
	if len(r.batch.Records) > 0 || len(r.batch.State) > 0 {
		if _, err := r.out.Emit(ctx, &r.batch); err != nil {
			return err
		}
	}
	r.batch.Reset()
	clear(r.batch.Records[:cap(r.batch.Records)]) // drop Source pointers of released files
	r.arena = r.arena[:0]
	r.stateBuf = r.stateBuf[:0]
	for _, src := range r.release {
		r.out.Release(src)
	}
	clear(r.release)
	r.release = r.release[:0]
	return nil
}

// openFile opens a file closed earlier to respect max_open_files, closing the least recently
// used idle one if the reader is at its bound.
func (r *reader) openFile(s *stream, f *file) bool {
	if !f.draining {
		for r.nOpen >= r.maxOpen && r.evict(f) {
		}
	}
	st, err := f.reopen()
	if err != nil {
		// Renamed away and gone while closed: what it held past our offset is lost.
		r.in.warn.Warn("lost:"+s.path, "log file vanished while closed", "path", f.path, "err", err)
		f.eof = true
		r.closeForGood(s, f)
		return false
	}
	r.opened(f)
	if st.size < f.readOff {
		r.truncated(s, f)
	}
	return true
}

func (r *reader) opened(f *file) {
	r.nOpen++
	r.in.addOpen(1)
	if !f.draining {
		r.open = append(r.open, f)
	}
}

// evict closes the least recently used open file other than keep, preferring files at their end.
func (r *reader) evict(keep *file) bool {
	victim := -1
	for pass := 0; pass < 2 && victim < 0; pass++ {
		for i, f := range r.open {
			if f == keep || (pass == 0 && !f.eof) {
				continue
			}
			if victim < 0 || f.lastUse.Before(r.open[victim].lastUse) {
				victim = i
			}
		}
	}
	if victim < 0 {
		return false
	}
	r.closeFD(r.open[victim])
	return true
}

func (r *reader) closeFD(f *file) {
	if f.fd == nil {
		return
	}
	f.fd.Close()
	f.fd = nil
	r.nOpen--
	r.in.addOpen(-1)
	if i := slices.Index(r.open, f); i >= 0 {
		r.open = slices.Delete(r.open, i, i+1)
	}
}

// closeForGood closes a drained file. Its position is deleted from the state once no pending
// record needs it.
func (r *reader) closeForGood(s *stream, f *file) {
	if f.fd != nil && !f.discard && f.tail > 0 {
		// A last line without its newline: nothing will complete it now.
		n, _ := f.fd.ReadAt(r.buf[:min(int64(len(r.buf)), f.tail)], f.readOff)
		if n > 0 {
			start := f.readOff
			f.readOff += int64(n)
			r.handleLine(s, f, r.buf[:n], start, f.readOff, false)
		}
	}
	r.closeFD(f)
	r.reportClosed(f)
	f.done = true
	s.remove(f)
	s.finish(f.id)
	r.in.log.Debug("log file closed", "path", f.path, "read", f.readOff, "size", f.size, "draining", f.draining)
	if len(s.files) == 0 {
		r.flushPending(s, nil)
	}
	r.finalize(s, f)
}

func (r *reader) finalize(s *stream, f *file) {
	if !f.done || f.final || s.references(f) {
		return
	}
	f.final = true
	r.markDirty(f)
	s.releaseSource(f.src)
	r.release = append(r.release, f.src)
	r.in.unclaim(f.id)
}

// truncated starts a new generation of f after a copytruncate: new key, offset 0.
func (r *reader) truncated(s *stream, f *file) {
	r.in.log.Debug("log file truncated: new generation", "path", f.path, "read", f.readOff)
	r.flushPending(s, f)
	s.releaseSource(f.src)
	r.release = append(r.release, f.src)
	f.key = rand.Uint64()
	f.gen++
	f.src = s.newSource(f.key, r.in.name)
	f.readOff, f.skip, f.tail = 0, 0, 0
	f.hold, f.mstate = [2]int64{}, [2]multiline.State{}
	f.format = formatUnknown
	f.discard, f.eof = false, false
	f.fpLen, f.fp = 0, fnvOffset
	r.markDirty(f)
}

// poll stats every file: growth, truncation, deletion, and whether the stream's path now
// names another file (rename rotation).
func (r *reader) poll() {
	var lag int64
	defer func() { r.dropping = "" }()
	for _, s := range r.streams {
		r.flushDropped()
		r.dropping = ""
		if s.excluded() { // a truncation or rotation may complete a pending record
			r.dropping = "excluded"
		}
		st, err := statPath(s.path)
		if testHookStatted != nil {
			testHookStatted(s.path)
		}
		cur := s.current()
		if err == nil {
			if cur != nil && cur.id != st.id {
				r.startDrain(cur)
				r.catchUpRotations(s, cur, st)
				cur = nil
			} else if cur == nil && !s.has(st.id) && len(s.files) > 0 {
				// The path led nowhere at an earlier poll (a rotation's rename, the new file
				// not created yet), which drained the current file: files created and rotated
				// away since are found from the newest one this stream had.
				r.catchUpRotations(s, s.files[len(s.files)-1], st)
			}
			if cur == nil && !s.has(st.id) {
				r.addFile(s, st, false)
			}
			if cur != nil && cur.fd == nil {
				r.grew(s, cur, st)
			}
		} else if cur != nil {
			r.startDrain(cur)
		}
		for _, f := range s.files {
			if f.fd == nil {
				if f.draining {
					// Closed for max_open_files, then rotated: open it where it went to drain it.
					f.eof = false
				}
				lag += max(0, f.size-f.readOff)
				r.reportProgress(f)
				continue
			}
			fst, err := statFile(f.fd)
			if err != nil {
				continue
			}
			if fst.nlink == 0 && !f.draining {
				r.startDrain(f)
			}
			r.grew(s, f, fst)
			f.refreshFingerprint()
			lag += max(0, f.size-f.readOff)
			r.reportProgress(f)
		}
	}
	r.flushDropped()
	r.removeEmpty()
	r.in.setLag(r, lag)
}

// grew records a file's new size and detects a copytruncate (the file shrank below our offset).
func (r *reader) grew(s *stream, f *file, st fileStat) {
	if st.size < f.readOff {
		if f.fd == nil {
			f.eof = false // reopen, and the size check there starts the new generation
			return
		}
		r.truncated(s, f)
	}
	f.size = st.size
	if st.size > f.readOff+f.tail {
		f.eof = false
	}
}

func (r *reader) startDrain(f *file) {
	if f.draining {
		return
	}
	f.draining = true
	f.drainAt = r.now
	r.in.log.Debug("draining rotated log file", "path", f.path, "read", f.readOff, "size", f.size)
	f.eof = false
	if i := slices.Index(r.open, f); i >= 0 {
		r.open = slices.Delete(r.open, i, i+1)
	}
}

// testHookStatted, set by tests alone, runs right after a stream's path is stat'ed and before
// the file found there is opened: a rotation in that window must lose nothing.
var testHookStatted func(path string)

// addFile starts tailing the file st now at s.path, from its head (or its end when asked).
func (r *reader) addFile(s *stream, st fileStat, fromTail bool) *file {
	if !r.in.claim(st.id) {
		return nil
	}
	real := s.realPath()
	// The path was stat'ed before this open: a rotation in between renamed the file, and its
	// lines are only where it went (the next poll finds the new file at the path).
	fd, fst, p, err := openByID(real, st.id)
	if err != nil {
		r.in.unclaim(st.id)
		return nil
	}
	f := r.newFile(s, st.id, p, rand.Uint64(), 0)
	r.in.log.Debug("log file found", "path", p, "size", fst.size, "from_tail", fromTail)
	if fromTail {
		f.readOff, f.skip = fst.size, fst.size
	}
	f = r.track(s, f, fd, fst.size)
	if p != real {
		r.startDrain(f)
	}
	return f
}

// track adds the open file f to stream s, within the open-file budget, and schedules its
// position to be saved.
func (r *reader) track(s *stream, f *file, fd *os.File, size int64) *file {
	f.fd = fd
	f.size = size
	r.opened(f)
	f.refreshFingerprint()
	for r.nOpen > r.maxOpen && r.evict(f) {
	}
	s.files = append(s.files, f)
	r.markDirty(f)
	return f
}

// catchUpRotations finds files that were created and rotated away between two polls (two
// rotations within one poll interval), so they are drained after cur and before the new file.
func (r *reader) catchUpRotations(s *stream, cur *file, now fileStat) {
	if cur.fd == nil {
		return
	}
	cst, err := statFile(cur.fd)
	if err != nil {
		return
	}
	real := s.realPath()
	known := map[fileID]bool{now.id: true}
	for _, f := range s.files {
		known[f.id] = true
	}
	for _, id := range s.finished {
		known[id] = true
	}
	for _, rp := range rotatedWhileDown(real, cst.mtime, known) {
		if f := r.addRotated(s, rp.path, rp.st); f != nil {
			r.startDrain(f)
		}
	}
}

// addRotated starts draining, from its head, a rotated file nobody read yet.
func (r *reader) addRotated(s *stream, path string, st fileStat) *file {
	if !r.in.claim(st.id) {
		return nil
	}
	fd, fst, err := openVerified(path, st.id)
	if err != nil {
		r.in.unclaim(st.id)
		return nil
	}
	r.in.log.Debug("log file rotated before it was read: reading it from its head", "path", path, "size", fst.size)
	return r.track(s, r.newFile(s, st.id, path, rand.Uint64(), 0), fd, fst.size)
}

// resumeCopy drains the copy a copytruncate made while we were down, if it is beside path: the
// lines not read before the stop are only there. It is read from the saved position with the
// saved key, so its records keep the ids they would have had.
func (r *reader) resumeCopy(s *stream, sv savedFile, path string) {
	if sv.offset == 0 {
		return
	}
	cp, cst, ok := findCopy(path, sv)
	if !ok || !r.in.claim(cst.id) {
		return
	}
	fd, fst, err := openVerified(cp, cst.id)
	if err != nil {
		r.in.unclaim(cst.id)
		return
	}
	r.in.log.Debug("log file copied and truncated while down: reading the copy from the saved offset",
		"path", cp, "offset", sv.offset, "size", fst.size)
	f := r.newFile(s, cst.id, cp, sv.key, sv.gen)
	f.readOff, f.skip = sv.offset, sv.skip
	f.hold, f.mstate = sv.hold, sv.mstate
	f.fpLen, f.fp = sv.fpLen, sv.fp
	r.startDrain(r.track(s, f, fd, fst.size))
}

func (r *reader) newFile(s *stream, id fileID, path string, key uint64, gen uint32) *file {
	f := &file{id: id, stateKey: stateKey(id), path: path, key: key, gen: gen, stream: s,
		streamPath: s.path, lastUse: r.now, fp: fnvOffset}
	f.src = s.newSource(key, r.in.name)
	return f
}

// addStream starts serving a discovered path, resuming the files the last run saved for it:
// first the ones rotated away while we were down, then the one the path names now.
func (r *reader) addStream(msg newStreamMsg) {
	s := &stream{path: msg.path}
	real := s.realPath()
	if _, err := os.Lstat(real); err != nil && real == msg.path {
		// Neither the path nor a link there: where the last run read it is all we know.
		for _, sv := range msg.saved {
			real = sv.path
		}
	}
	s.real = real
	s.kube = kubeFromPath(msg.path, real, r.in.node)
	if r.in.meta != nil {
		s.bind = r.in.meta.Bind(s.kube)
	}
	if rules := r.in.multilineFor(s.kube); rules != nil {
		s.held[collector.StreamStdout] = newHeld(rules)
		s.held[collector.StreamStderr] = newHeld(rules)
	}
	st, serr := statPath(msg.path)
	if testHookStatted != nil {
		testHookStatted(msg.path)
	}
	type found struct {
		sv    savedFile
		path  string
		mtime int64
	}
	var drains []found
	var current *savedFile
	for i, sv := range msg.saved {
		if serr == nil && sv.id == st.id {
			current = &msg.saved[i]
			continue
		}
		p := sv.path
		fst, err := statPath(p)
		if err != nil || fst.id != sv.id {
			var ok bool
			if p, ok = findByID(filepath.Dir(sv.path), sv.id); ok {
				fst, err = statPath(p)
			}
			if !ok || err != nil {
				r.in.warn.Warn("gone:"+sv.path, "saved log file is gone; its unread tail is lost", "path", sv.path)
				r.gone = append(r.gone, stateKey(sv.id))
				continue
			}
		}
		drains = append(drains, found{sv, p, fst.mtime})
	}
	slices.SortFunc(drains, func(a, b found) int { return int(a.mtime - b.mtime) })
	for _, d := range drains {
		if f := r.resume(s, d.sv, d.path); f != nil {
			r.startDrain(f)
		}
	}
	// Files created and rotated away entirely while we were down: never seen, not at the path
	// any more, but still beside it. Read them from their head, oldest first, before the current.
	if len(msg.saved) > 0 {
		var newest int64
		known := map[fileID]bool{}
		for _, sv := range msg.saved {
			known[sv.id] = true
		}
		for _, d := range drains {
			newest = max(newest, d.mtime)
		}
		if current != nil {
			known[current.id] = true
		}
		if serr == nil {
			known[st.id] = true
		}
		for _, rp := range rotatedWhileDown(real, newest, known) {
			if f := r.addRotated(s, rp.path, rp.st); f != nil {
				r.startDrain(f)
			}
		}
	}
	if current != nil && r.resume(s, *current, real) == nil {
		current = nil
	}
	if serr == nil && current == nil && !s.has(st.id) {
		r.addFile(s, st, msg.fromTail)
	}
	r.streams = append(r.streams, s)
}

// resume reopens a file from the saved position, unless its content shows the inode now holds
// another file (then it is read from its head as a new file).
func (r *reader) resume(s *stream, sv savedFile, path string) *file {
	if !r.in.claim(sv.id) {
		return nil
	}
	// A rotation since the caller's stat may have renamed it: resume it where it went.
	fd, st, p, err := openByID(path, sv.id)
	if err != nil {
		r.in.unclaim(sv.id)
		r.gone = append(r.gone, stateKey(sv.id))
		return nil
	}
	moved := p != path
	path = p
	n, fp, err := fingerprint(fd, min(st.size, int64(sv.fpLen)))
	var f *file
	if err != nil || n != sv.fpLen || fp != sv.fp || st.size < sv.offset {
		r.in.log.Debug("saved log file changed while down: reading it from its head", "path", path, "saved_offset", sv.offset, "size", st.size)
		r.resumeCopy(s, sv, path)
		f = r.newFile(s, sv.id, path, rand.Uint64(), 0) // inode reuse or truncated while down
	} else {
		r.in.log.Debug("resuming log file", "path", path, "offset", sv.offset, "size", st.size)
		f = r.newFile(s, sv.id, path, sv.key, sv.gen)
		f.readOff, f.skip = sv.offset, sv.skip
		f.hold, f.mstate = sv.hold, sv.mstate
		f.fpLen, f.fp = sv.fpLen, sv.fp
	}
	f = r.track(s, f, fd, st.size)
	if moved {
		r.startDrain(f)
	}
	return f
}
