package multiline

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults for zero Config values.
const (
	DefaultMaxLines   = 1000
	DefaultMaxBytes   = 256 << 10
	DefaultFlushAfter = time.Second
)

// Config is one multiline setting: built-in detectors by language, and/or a custom rule.
type Config struct {
	// Detect names built-in detectors: java, node (js, javascript), dotnet (csharp), python,
	// go, ruby, php, dart, or all. Java, Node and .NET share one machine.
	Detect []string
	// Start and Continue are a custom rule (RE2 syntax). Start alone: a line matching it
	// begins a record and every other line continues the record before it. Continue alone: a
	// line matching it continues the record before it. Both: a line matching Start begins a
	// record, lines matching Continue continue it, any other line is a record of its own.
	Start, Continue string
	// MaxLines and MaxBytes bound a record: the line that would pass either begins a new record
	// (both parts flagged as cut). MaxBytes counts the joined message.
	MaxLines, MaxBytes int
	// FlushAfter is how long a record is held after its first line was read when no line
	// follows: a quiet container's last trace still goes out.
	FlushAfter time.Duration
}

// Enabled reports whether the config joins anything.
func (c Config) Enabled() bool { return len(c.Detect) > 0 || c.Start != "" || c.Continue != "" }

// State is a machine state, saved with the tail positions: 0 is idle, built-in states are
// below customState.
type State uint16

const customState State = 0x100

// Rules are a compiled Config, immutable and shared by every Joiner that uses it.
type Rules struct {
	builtin    builtin
	custom     *custom
	maxLines   int
	maxBytes   int
	flushAfter time.Duration
}

// Compile checks cfg and builds its rules; nil, nil when cfg joins nothing.
func Compile(cfg Config) (*Rules, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	r := &Rules{maxLines: cfg.MaxLines, maxBytes: cfg.MaxBytes, flushAfter: cfg.FlushAfter}
	for _, name := range cfg.Detect {
		l, ok := langNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return nil, fmt.Errorf("multiline.detect: unknown language %q (want %s)", name, strings.Join(LanguageNames(), ", "))
		}
		r.builtin.langs |= l
	}
	if cfg.Start != "" || cfg.Continue != "" {
		c, err := compileCustom(cfg.Start, cfg.Continue)
		if err != nil {
			return nil, err
		}
		r.custom = c
	}
	if r.maxLines < 0 || r.maxBytes < 0 || r.flushAfter < 0 {
		return nil, fmt.Errorf("multiline: max_lines, max_bytes and flush_after must not be negative")
	}
	if r.maxLines == 0 {
		r.maxLines = DefaultMaxLines
	}
	if r.maxBytes == 0 {
		r.maxBytes = DefaultMaxBytes
	}
	if r.flushAfter == 0 {
		r.flushAfter = DefaultFlushAfter
	}
	return r, nil
}

// LanguageNames lists the names multiline.detect accepts.
func LanguageNames() []string {
	var out []string
	for n := range langNames {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// FlushAfter is how long a held record waits for a next line.
func (r *Rules) FlushAfter() time.Duration { return r.flushAfter }

// Valid reports whether st is a state of these rules (a state saved under another config
// may not be).
func (r *Rules) Valid(st State) bool {
	switch {
	case st == 0:
		return true
	case st < State(builtinStates):
		return r.builtin.langs != 0
	case st == customState+customHeld:
		return r.custom != nil
	}
	return false
}

// step runs the machine on line from st. It returns the state after line and what the line
// is: it begins a record (begin), continues the one held (join), or neither; end reports that
// the record is complete with this line.
func (r *Rules) step(st State, line []byte) (next State, begin, join, end bool) {
	if st != 0 {
		if st >= customState {
			if r.custom != nil && r.custom.continues(line) {
				return st, false, true, false
			}
		} else if ns, ok := r.builtin.next(uint8(st), line); ok {
			return State(ns), false, true, ns == 0
		}
	}
	if r.builtin.langs != 0 {
		if s := r.builtin.start(line); s != 0 {
			return State(s), true, false, false
		}
	}
	if r.custom != nil && r.custom.starts(line) {
		return customState + customHeld, true, false, false
	}
	return 0, false, false, false
}
