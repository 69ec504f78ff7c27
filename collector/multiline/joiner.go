package multiline

// Placement says where Feed put a line.
type Placement uint8

const (
	// Alone: the line is a record by itself; the caller emits it as it is.
	Alone Placement = iota
	// First: the line is the first of the held record; the caller keeps its identity (time,
	// id, position) for the record.
	First
	// Joined: the line was appended to the held record.
	Joined
	// Last: the line completed the record that Done now holds.
	Last
)

// Done describes a finished record: its lines joined with '\n'. Message is valid until the
// next Feed or Flush.
type Done struct {
	Message []byte
	Lines   int
	// Cut: the record is one part of a longer one cut at max_lines or max_bytes.
	Cut bool
	// Exception: a built-in detector recognised it as a stack trace (more than one line).
	Exception bool
}

// Joiner holds the record being assembled from one stream's logical lines (one container's
// stdout, say). The zero value is not usable: use NewJoiner. Not safe for concurrent use.
type Joiner struct {
	rules *Rules
	state State // after the last line fed
	pre   State // before the held record's first line
	buf   []byte
	done  []byte
	lines int
	cut   bool
	exc   bool
}

// NewJoiner returns an idle joiner for rules, which must not be nil.
func NewJoiner(r *Rules) *Joiner { return &Joiner{rules: r} }

// Holding reports whether a record is held.
func (j *Joiner) Holding() bool { return j.lines > 0 }

// HeldLines and HeldBytes measure the held record.
func (j *Joiner) HeldLines() int { return j.lines }

// Pre is the machine state before the held record's first line, or the state now when
// nothing is held. A restart that re-reads from the held record's first line resumes the
// machine in this state (Resume) and joins the same record again.
func (j *Joiner) Pre() State {
	if j.lines > 0 {
		return j.pre
	}
	return j.state
}

// Resume puts an idle joiner in state st (saved by Pre before a restart); a state these rules
// do not have (the config changed) leaves it idle.
func (j *Joiner) Resume(st State) {
	if j.lines == 0 && j.rules.Valid(st) {
		j.state = st
	}
}

// Feed places one logical line (without its newline). When the line does not continue the
// held record, that record is finished first: done.Lines > 0 then, and the caller emits it
// before the line itself. The line's bytes are copied when held.
func (j *Joiner) Feed(line []byte) (done Done, p Placement) {
	from := j.state
	next, begin, join, end := j.rules.step(from, line)
	if !join && j.lines > 0 {
		done = j.finish()
	}
	j.state = next
	switch {
	case begin:
		j.hold(line, 0, false, next < customState)
		return done, First
	case join && j.lines == 0:
		// Resumed mid-trace after a cut: this line begins the rest of it.
		if end {
			j.state = 0
			return done, Alone
		}
		j.hold(line, from, true, from < customState)
		return done, First
	case join:
		if j.lines >= j.rules.maxLines || len(j.buf)+1+len(line) > j.rules.maxBytes {
			exc := j.exc
			done = j.finish()
			done.Cut = true
			if end {
				j.state = 0
				return done, Alone
			}
			j.hold(line, from, true, exc)
			return done, First
		}
		j.buf = append(j.buf, '\n')
		j.buf = append(j.buf, line...)
		j.lines++
		if end {
			j.state = 0
			return j.finish(), Last
		}
		return done, Joined
	}
	return done, Alone
}

// Flush finishes the held record (flush_after expired, or the stream ended) and returns the
// machine to idle; ok is false when nothing was held.
func (j *Joiner) Flush() (done Done, ok bool) {
	j.state = 0
	if j.lines == 0 {
		return Done{}, false
	}
	return j.finish(), true
}

// Reset drops the held record and returns to idle (a restart will re-read it).
func (j *Joiner) Reset() {
	j.state, j.pre, j.lines, j.cut, j.exc = 0, 0, 0, false, false
	j.buf = j.buf[:0]
}

func (j *Joiner) hold(line []byte, pre State, cut, exc bool) {
	j.buf = append(j.buf[:0], line...)
	j.lines = 1
	j.pre = pre
	j.cut = cut
	j.exc = exc
}

// finish moves the held record to done and empties the hold.
func (j *Joiner) finish() Done {
	j.buf, j.done = j.done[:0], j.buf
	d := Done{Message: j.done, Lines: j.lines, Cut: j.cut, Exception: j.exc && j.lines > 1}
	j.lines, j.cut, j.exc = 0, false, false
	if cap(j.buf) > shrinkBytes {
		j.buf = nil
	}
	return d
}

// shrinkBytes: a hold buffer grown past this by one big record is dropped once it is emitted.
const shrinkBytes = 64 << 10
