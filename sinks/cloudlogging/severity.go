package cloudlogging

import (
	"fmt"
	"strings"
)

// Severity is a google.logging.type.LogSeverity value.
type Severity int32

// The LogSeverity values.
const (
	SeverityDefault   Severity = 0
	SeverityDebug     Severity = 100
	SeverityInfo      Severity = 200
	SeverityNotice    Severity = 300
	SeverityWarning   Severity = 400
	SeverityError     Severity = 500
	SeverityCritical  Severity = 600
	SeverityAlert     Severity = 700
	SeverityEmergency Severity = 800
)

var severityNames = [...]string{"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}

func (s Severity) String() string {
	if s >= 0 && s <= SeverityEmergency && s%100 == 0 {
		return severityNames[s/100]
	}
	return fmt.Sprintf("Severity(%d)", int32(s))
}

// ParseSeverity reads a config spelling of a severity: one of the LogSeverity names, or any
// spelling severityWord accepts.
func ParseSeverity(s string) (Severity, error) {
	if sev, ok := severityWord([]byte(strings.TrimSpace(s)), false); ok {
		return sev, nil
	}
	return 0, fmt.Errorf("severity %q is not one of %s", s, strings.Join(severityNames[:], ", "))
}

// severityWord maps the spellings Google's logging agents accept (case-insensitive): the
// LogSeverity names, log4j / java.util.logging / nginx / syslog levels and single letters, as
// the GKE agent translates them (WARN -> WARNING, FATAL -> CRITICAL, TRACE/FINE* -> DEBUG,
// SEVERE/ERR -> ERROR, CRIT -> CRITICAL, EMERG -> EMERGENCY, INFORMATION -> INFO, D I N W E C A
// F, zap's DPANIC/PANIC -> CRITICAL), plus a decimal number, read as severityNumber reads it
// (level says whether the word is a "level" field's).
func severityWord(w []byte, level bool) (Severity, bool) {
	if len(w) == 0 || len(w) > 11 {
		return 0, false
	}
	if w[0] >= '0' && w[0] <= '9' {
		n := 0
		for _, c := range w {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return severityNumber(float64(n), level)
	}
	var up [11]byte
	for i, c := range w {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	switch string(up[:len(w)]) {
	case "DEFAULT":
		return SeverityDefault, true
	case "DEBUG", "D", "TRACE", "TRACE_INT", "FINE", "FINER", "FINEST", "CONFIG":
		return SeverityDebug, true
	case "INFO", "I", "INFORMATION":
		return SeverityInfo, true
	case "NOTICE", "N":
		return SeverityNotice, true
	case "WARNING", "WARN", "W":
		return SeverityWarning, true
	case "ERROR", "ERR", "E", "SEVERE":
		return SeverityError, true
	case "CRITICAL", "CRIT", "C", "FATAL", "F", "PANIC", "DPANIC":
		return SeverityCritical, true
	case "ALERT", "A":
		return SeverityAlert, true
	case "EMERGENCY", "EMERG":
		return SeverityEmergency, true
	}
	return 0, false
}

// severityNumber maps a numeric severity. On Google's scale (a "severity" field, and any value
// of 100 or more) it is rounded down to a multiple of 100 and capped at EMERGENCY, as the
// agent does. A "level" under 100 is read on the pino/bunyan scale that Node.js loggers write
// by default (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal).
func severityNumber(f float64, level bool) (Severity, bool) {
	if f < 0 || f != f {
		return 0, false
	}
	if level && f < 100 {
		switch {
		case f < 10:
			return 0, false
		case f < 30:
			return SeverityDebug, true
		case f < 40:
			return SeverityInfo, true
		case f < 50:
			return SeverityWarning, true
		case f < 60:
			return SeverityError, true
		}
		return SeverityCritical, true
	}
	if f >= 800 {
		return SeverityEmergency, true
	}
	return Severity(int(f) / 100 * 100), true
}
