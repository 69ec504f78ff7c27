package bigquery

import (
	"time"

	"github.com/tailgate-dev/tailgate/internal/civil"
)

// parseMicros parses an envelope time exactly as time.Parse(time.RFC3339Nano, ...) does and
// returns it as Unix microseconds (TIMESTAMP's precision; finer digits are dropped). The
// strict form every encoder writes ("2026-11-23T03:00:00.123456789Z", or an offset) is read
// here without allocating; only what that rejects goes through time.Parse, which also makes
// the error.
func parseMicros(b []byte) (int64, error) {
	if us, ok := parseStrictMicros(b); ok {
		return us, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

// parseStrictMicros accepts what time.Parse's RFC 3339 fast path accepts, with its ranges:
// YYYY-MM-DDTHH:MM:SS, an optional fraction of any length (digits past the ninth ignored),
// and Z or ±hh:mm.
func parseStrictMicros(s []byte) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := decimal(s[0:4], 0, 9999)
	month, ok2 := decimal(s[5:7], 1, 12)
	if !ok1 || !ok2 {
		return 0, false
	}
	day, ok1 := decimal(s[8:10], 1, int(civil.DaysIn(int64(month), int64(year))))
	hour, ok2 := decimal(s[11:13], 0, 23)
	minute, ok3 := decimal(s[14:16], 0, 59)
	sec, ok4 := decimal(s[17:19], 0, 59)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	s = s[19:]
	nsec := 0
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := skipDigits(s, 1)
		digits := s[1:min(n, 10)]
		for _, c := range digits {
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("-07:00") || s[0] != '-' && s[0] != '+' || s[3] != ':' {
			return 0, false
		}
		hh, ok1 := decimal(s[1:3], 0, 23)
		mm, ok2 := decimal(s[4:6], 0, 59)
		if !ok1 || !ok2 {
			return 0, false
		}
		offset = (hh*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	unix := civil.DaysFromCivil(int64(year), int64(month), int64(day))*86400 + int64(hour*3600+minute*60+sec-offset)
	return unix*1e6 + int64(nsec/1000), true
}

// decimal reads the digits of b as a number in [lo, hi].
func decimal(b []byte, lo, hi int) (int, bool) {
	x := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		x = x*10 + int(c-'0')
	}
	return x, lo <= x && x <= hi
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}
