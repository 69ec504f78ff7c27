package multiline

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

const customHeld State = 1

// custom is a start / continue rule.
type custom struct {
	start, cont *matcher
}

func compileCustom(start, cont string) (*custom, error) {
	c := &custom{}
	var err error
	if start != "" {
		if c.start, err = compileMatcher(start); err != nil {
			return nil, fmt.Errorf("multiline.start: %w", err)
		}
	}
	if cont != "" {
		if c.cont, err = compileMatcher(cont); err != nil {
			return nil, fmt.Errorf("multiline.continue: %w", err)
		}
	}
	return c, nil
}

// starts: with a start pattern, a line matching it; with only a continue pattern, any line
// (it may be continued by the next).
func (c *custom) starts(line []byte) bool {
	if c.start == nil {
		return true
	}
	return c.start.match(line)
}

// continues: with a continue pattern, a line matching it; with only a start pattern, a line
// not matching it.
func (c *custom) continues(line []byte) bool {
	if c.cont != nil {
		return c.cont.match(line)
	}
	return !c.start.match(line)
}

// matcher is a regular expression with a first-byte test in front: for a pattern anchored at
// the start of the line ("^\s", "^\d{4}-"), the bytes a match can begin with, so most lines
// are ruled out without running the expression.
type matcher struct {
	re    *regexp.Regexp
	first *[256]bool // nil: no test (not anchored, or a match may begin with any byte)
	empty bool       // the pattern can match an empty line
}

func compileMatcher(expr string) (*matcher, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	m := &matcher{re: re, empty: re.MatchString("")}
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil {
		m.first = anchoredFirstBytes(tree.Simplify())
	}
	return m, nil
}

func (m *matcher) match(line []byte) bool {
	if m.first != nil {
		if len(line) == 0 {
			return m.empty
		}
		if !m.first[line[0]] {
			return false
		}
	}
	return m.re.Match(line)
}

// anchoredFirstBytes returns the set of bytes a match of re can start with when re is
// anchored at the start of the text, nil when it is not anchored or any byte may start it.
func anchoredFirstBytes(re *syntax.Regexp) *[256]bool {
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	for len(subs) > 0 && subs[0].Op == syntax.OpCapture && len(subs[0].Sub) == 1 && subs[0].Sub[0].Op == syntax.OpConcat {
		subs = append(append([]*syntax.Regexp(nil), subs[0].Sub[0].Sub...), subs[1:]...)
	}
	if len(subs) == 0 || subs[0].Op != syntax.OpBeginText {
		return nil
	}
	var set [256]bool
	for _, s := range subs[1:] {
		nullable, ok := firstBytes(s, &set)
		if !ok {
			return nil
		}
		if !nullable {
			return &set
		}
	}
	return nil // the whole pattern can match empty: any line may match
}

// firstBytes adds the bytes a match of re can begin with to set; nullable reports that re can
// match the empty string, ok false that any byte can begin a match.
func firstBytes(re *syntax.Regexp, set *[256]bool) (nullable, ok bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true, true
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return true, true
		}
		addRune(set, re.Rune[0], re.Flags&syntax.FoldCase != 0)
		return false, true
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= utf8.RuneSelf {
				for b := 0xC0; b < 256; b++ {
					set[b] = true
				}
				hi = utf8.RuneSelf - 1
			}
			for c := lo; c <= hi; c++ {
				set[c] = true
			}
		}
		return false, true
	case syntax.OpCapture:
		return firstBytes(re.Sub[0], set)
	case syntax.OpStar, syntax.OpQuest:
		_, ok := firstBytes(re.Sub[0], set)
		return true, ok
	case syntax.OpPlus:
		return firstBytes(re.Sub[0], set)
	case syntax.OpRepeat:
		n, ok := firstBytes(re.Sub[0], set)
		return n || re.Min == 0, ok
	case syntax.OpConcat:
		for _, s := range re.Sub {
			n, ok := firstBytes(s, set)
			if !ok {
				return false, false
			}
			if !n {
				return false, true
			}
		}
		return true, true
	case syntax.OpAlternate:
		nullable := false
		for _, s := range re.Sub {
			n, ok := firstBytes(s, set)
			if !ok {
				return false, false
			}
			nullable = nullable || n
		}
		return nullable, true
	}
	return false, false // any character
}

func addRune(set *[256]bool, r rune, fold bool) {
	if r >= utf8.RuneSelf {
		var b [utf8.UTFMax]byte
		utf8.EncodeRune(b[:], r)
		set[b[0]] = true
		if fold {
			for b := 0xC0; b < 256; b++ { // folds of a non-ASCII rune may be ASCII or not
				set[b] = true
			}
			set['k'], set['K'], set['s'], set['S'] = true, true, true, true // Kelvin sign, long s
		}
		return
	}
	set[r] = true
	if fold {
		if r >= 'a' && r <= 'z' {
			set[r-32] = true
		} else if r >= 'A' && r <= 'Z' {
			set[r+32] = true
		}
		if r == 'k' || r == 'K' || r == 's' || r == 'S' {
			for b := 0xC0; b < 256; b++ {
				set[b] = true
			}
		}
	}
}
