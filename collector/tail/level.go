package tail

import "bytes"

// Level detection for plain-text lines (detect_level: true). A record whose message names its
// level gets fields {"level":"<name>"}, name one of trace, debug, info, notice, warning, error,
// critical, alert, emergency (the Cloud Logging severities, lowercase, plus trace). Sinks map
// it (the Cloud Logging sink to LogEntry.severity; trace to DEBUG).
//
// Where the level is looked for, in order:
//   - glog / klog: "E1206 12:34:56.789012 1 main.go:42] msg" (I, W, E, F then MMDD);
//   - the first word after at most three leading timestamp-like words (words that start
//     with a digit, or bracketed ones that do: "[2026-11-23 03:00:00]"); the word may be
//     bracketed ("[error]", "<warn>"), end with ':' ("ERROR:root:msg", "fail:"), or be the
//     last part of a dotted channel ("production.ERROR:");
//   - logfmt anywhere: "level=error", "lvl=warn", "severity=ERROR" (value quoted or not).
//
// Words are matched without regard to case: trace trc trce; debug dbg dbug; info inf
// information informational; notice; warn warning wrn; error err eror fail severe; crit
// critical fatal panic dpanic; alert; emerg emergency. JSON messages are not looked at:
// with parse_json their own level/severity key is in fields. A joined stack trace whose
// first line names no level is an error.

type level uint8

const (
	levelNone level = iota
	levelTrace
	levelDebug
	levelInfo
	levelNotice
	levelWarning
	levelError
	levelCritical
	levelAlert
	levelEmergency
)

var levelNames = [...]string{"", "trace", "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

func (l level) String() string { return levelNames[l] }

// levelWords maps a lowercase word to its level.
var levelWords = map[string]level{
	"trace": levelTrace, "trc": levelTrace, "trce": levelTrace,
	"debug": levelDebug, "dbg": levelDebug, "dbug": levelDebug,
	"info": levelInfo, "inf": levelInfo, "information": levelInfo, "informational": levelInfo,
	"notice": levelNotice,
	"warn":   levelWarning, "warning": levelWarning, "wrn": levelWarning,
	"error": levelError, "err": levelError, "eror": levelError, "fail": levelError, "severe": levelError,
	"crit": levelCritical, "critical": levelCritical, "fatal": levelCritical, "panic": levelCritical, "dpanic": levelCritical,
	"alert":     levelAlert,
	"emerg":     levelEmergency,
	"emergency": levelEmergency,
}

// maxLevelWord is the longest word in levelWords.
const maxLevelWord = len("informational")

// detectLevel returns the level a plain-text message names, levelNone if none.
func detectLevel(m []byte) level {
	if len(m) == 0 || m[0] == '{' {
		return levelNone
	}
	if lv := glogLevel(m); lv != levelNone {
		return lv
	}
	rest := m
	for skipped := 0; ; skipped++ {
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			rest = rest[1:]
		}
		w, after := nextWord(rest)
		if len(w) == 0 {
			break
		}
		if timestampWord(w) {
			if skipped == 3 {
				break
			}
			rest = after
			continue
		}
		if lv := levelWord(w); lv != levelNone {
			return lv
		}
		break
	}
	return logfmtLevel(m)
}

// nextWord returns the first blank-delimited word of b and what follows it; a word opened
// by '[' or '<' extends to its closing bracket (a bracketed timestamp holds blanks).
func nextWord(b []byte) (word, rest []byte) {
	if len(b) == 0 {
		return nil, nil
	}
	end := -1
	switch b[0] {
	case '[':
		end = indexByteN(b, ']', 64)
	case '<':
		end = indexByteN(b, '>', 64)
	}
	if end < 0 {
		end = 0
		for end < len(b) && b[end] != ' ' && b[end] != '\t' {
			end++
		}
		return b[:end], b[end:]
	}
	return b[:end+1], b[end+1:]
}

func indexByteN(b []byte, c byte, n int) int {
	for i := 1; i < len(b) && i < n; i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// timestampWord: a word that starts with a digit, possibly bracketed or with a sign
// ("2026-11-23", "03:00:00.123Z", "[23/Nov/2026:03:00:00", "+0000]").
func timestampWord(w []byte) bool {
	if len(w) > 1 && (w[0] == '[' || w[0] == '(' || w[0] == '+' || w[0] == '-') {
		w = w[1:]
	}
	return isDigit(w[0])
}

// levelWord strips brackets, a trailing ':' (and what follows it) and a dotted channel from w
// and looks the rest up.
func levelWord(w []byte) level {
	if w[0] == '[' || w[0] == '<' || w[0] == '(' {
		w = w[1:]
		if n := len(w); n > 0 && (w[n-1] == ']' || w[n-1] == '>' || w[n-1] == ')') {
			w = w[:n-1]
		}
	}
	for i, c := range w {
		if c == ':' || c == ']' || c == '|' || c == ',' {
			w = w[:i]
			break
		}
	}
	for i := len(w) - 1; i >= 0; i-- {
		if w[i] == '.' {
			w = w[i+1:]
			break
		}
	}
	return lookupLevel(w)
}

func lookupLevel(w []byte) level {
	if len(w) < 3 || len(w) > maxLevelWord {
		return levelNone
	}
	var lower [maxLevelWord]byte
	for i, c := range w {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c < 'a' || c > 'z' {
			return levelNone
		}
		lower[i] = c
	}
	return levelWords[string(lower[:len(w)])]
}

// glogLevel: "E1206 12:34:56.789012 ..." (klog's header: severity letter, month, day).
func glogLevel(m []byte) level {
	if len(m) < 6 || !isDigit(m[1]) || !isDigit(m[2]) || !isDigit(m[3]) || !isDigit(m[4]) || m[5] != ' ' {
		return levelNone
	}
	switch m[0] {
	case 'I':
		return levelInfo
	case 'W':
		return levelWarning
	case 'E':
		return levelError
	case 'F':
		return levelCritical
	}
	return levelNone
}

// logfmtLevel finds level=, lvl= or severity= at the start of a key and reads its value.
func logfmtLevel(m []byte) level {
	for off := 0; ; {
		i := bytes.IndexByte(m[off:], '=')
		if i < 0 {
			return levelNone
		}
		i += off
		off = i + 1
		var key []byte
		for j := i - 1; j >= 0; j-- {
			if m[j] == ' ' || m[j] == '\t' {
				key = m[j+1 : i]
				break
			}
			if j == 0 {
				key = m[:i]
			}
		}
		switch string(key) {
		case "level", "lvl", "severity", "LEVEL", "Level":
		default:
			continue
		}
		v := m[i+1:]
		if len(v) > 0 && v[0] == '"' {
			v = v[1:]
		}
		end := 0
		for end < len(v) && v[end] != '"' && v[end] != ' ' && v[end] != '\t' {
			end++
		}
		return lookupLevel(v[:end])
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendLevelFields appends the fields object of a plain-text record with a level.
func appendLevelFields(dst []byte, lv level) []byte {
	dst = append(dst, `{"level":"`...)
	dst = append(dst, levelNames[lv]...)
	return append(dst, `"}`...)
}
