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
	Lines   int // 0 when every held line was tentative and is released
	// Released counts the lines that were held tentatively after the record (a blank line
	// after a trace, which the next line may continue or not) and turned out not to belong to
	// it: the caller emits each (Joiner.Released) as a record of its own, after Message and
	// before the line fed, with the identity it kept for that line (see Tentative).
	Released int
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
	// tent are the offsets in buf of the held lines that are tentative, always the last ones:
	// a machine state that a blank line (or Node's source excerpt) leads to, which only a
	// next line may confirm.
	tent []int
	rel  [][]byte
}

// NewJoiner returns an idle joiner for rules, which must not be nil.
func NewJoiner(r *Rules) *Joiner { return &Joiner{rules: r} }

// Holding reports whether a record is held.
func (j *Joiner) Holding() bool { return j.lines > 0 }

// HeldLines and HeldBytes measure the held record.
func (j *Joiner) HeldLines() int { return j.lines }

// Tentative is how many of the last held lines are tentative: the record may end before
// them, and they are then released each as a record of its own (Done.Released). The caller
// keeps the identity of the line it just fed while it is tentative; a later line that
// continues the record confirms them all (Tentative drops to 0).
func (j *Joiner) Tentative() int { return len(j.tent) }

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
		done = j.finish(true)
	}
	j.state = next
	switch {
	case begin:
		j.hold(line, 0, false, next < customState, tentative(next))
		return done, First
	case join && j.lines == 0:
		// Resumed mid-trace after a cut: this line begins the rest of it.
		if end {
			j.state = 0
			return done, Alone
		}
		j.hold(line, from, true, from < customState, tentative(next))
		return done, First
	case join:
		if j.lines >= j.rules.maxLines || len(j.buf)+1+len(line) > j.rules.maxBytes {
			// The limit cuts the record as it is, tentative lines included: the rest goes
			// on in the next part.
			exc := j.exc
			done = j.finish(false)
			done.Cut = true
			if end {
				j.state = 0
				return done, Alone
			}
			j.hold(line, from, true, exc, tentative(next))
			return done, First
		}
		if tentative(next) {
			j.tent = append(j.tent, len(j.buf)+1)
		} else if len(j.tent) > 0 {
			j.tent = j.tent[:0]
		}
		j.buf = append(j.buf, '\n')
		j.buf = append(j.buf, line...)
		j.lines++
		if end {
			j.state = 0
			return j.finish(false), Last
		}
		return done, Joined
	}
	return done, Alone
}

// Flush finishes the held record (flush_after expired, or the stream ended) and returns the
// machine to idle; ok is false when nothing was held.
//
// Tentative lines held are released, as when the next line does not continue the record: a
// trace comes out the same whether its blank line was followed by a log line or by silence.
func (j *Joiner) Flush() (done Done, ok bool) {
	j.state = 0
	if j.lines == 0 {
		return Done{}, false
	}
	return j.finish(true), true
}

// Reset drops the held record and returns to idle (a restart will re-read it).
func (j *Joiner) Reset() {
	j.state, j.pre, j.lines, j.cut, j.exc = 0, 0, 0, false, false
	j.buf, j.tent = j.buf[:0], j.tent[:0]
}

func (j *Joiner) hold(line []byte, pre State, cut, exc, tentative bool) {
	j.buf = append(j.buf[:0], line...)
	j.lines = 1
	j.pre = pre
	j.cut = cut
	j.exc = exc
	j.tent = j.tent[:0]
	if tentative {
		j.tent = append(j.tent, 0)
	}
}

// finish moves the held record to done and empties the hold. With release, the tentative
// lines are not part of the record but Done.Released; without, they are confirmed.
func (j *Joiner) finish(release bool) Done {
	j.buf, j.done = j.done[:0], j.buf
	d := Done{Message: j.done, Lines: j.lines, Cut: j.cut}
	j.rel = j.rel[:0]
	if release && len(j.tent) > 0 {
		for i, off := range j.tent {
			end := len(j.done)
			if i+1 < len(j.tent) {
				end = j.tent[i+1] - 1
			}
			j.rel = append(j.rel, j.done[off:end])
		}
		d.Message = j.done[:max(j.tent[0]-1, 0)]
		d.Lines -= len(j.tent)
		d.Released = len(j.rel)
		d.Cut = d.Cut && d.Lines > 0
	}
	d.Exception = j.exc && d.Lines > 1
	j.lines, j.cut, j.exc = 0, false, false
	j.tent = j.tent[:0]
	if cap(j.buf) > shrinkBytes {
		j.buf = nil
	}
	return d
}

// Released is the i-th line the last Done released, valid until the next Feed or Flush.
func (j *Joiner) Released(i int) []byte { return j.rel[i] }

// tentative reports whether a line that put the machine in st is held tentatively.
func tentative(st State) bool { return st < customState && tentativeState(uint8(st)) }

// shrinkBytes: a hold buffer grown past this by one big record is dropped once it is emitted.
const shrinkBytes = 64 << 10
