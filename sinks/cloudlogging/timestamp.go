package cloudlogging

import "github.com/tailgate-dev/tailgate/internal/civil"

// parseRFC3339 reads an RFC 3339 timestamp ("2026-11-23T03:00:00.123456789Z", "...+09:00",
// lower-case t/z and a space separator accepted, up to nine fraction digits) as unix
// nanoseconds. It is the payload "time"/"timestamp" reader: no allocation, nothing but the
// timestamp accepted.
func parseRFC3339(s []byte) (int64, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	y, ok1 := digits(s, 0, 4)
	mo, ok2 := digits(s, 5, 7)
	d, ok3 := digits(s, 8, 10)
	h, ok4 := digits(s, 11, 13)
	mi, ok5 := digits(s, 14, 16)
	sec, ok6 := digits(s, 17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 ||
		d > int(civil.DaysIn(int64(mo), int64(y))) || h > 23 || mi > 59 || sec > 60 {
		return 0, false
	}
	i := 19
	var frac int64
	if s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if i-start < 9 {
				frac = frac*10 + int64(s[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return 0, false
		}
		for ; n < 9; n++ {
			frac *= 10
		}
	}
	if i >= len(s) {
		return 0, false
	}
	var off int64
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(s) < i+6 || s[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(s, i+1, i+3)
		om, ok2 := digits(s, i+4, i+6)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		off = int64(oh*3600 + om*60)
		if s[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(s) {
		return 0, false
	}
	days := civil.DaysFromCivil(int64(y), int64(mo), int64(d))
	unix := days*86400 + int64(h*3600+mi*60+sec) - off
	const maxSec = int64(1<<63-1) / 1e9
	if unix > maxSec || unix < -maxSec {
		return 0, false
	}
	return unix*1e9 + frac, true
}

func digits(s []byte, lo, hi int) (int, bool) {
	n := 0
	for _, c := range s[lo:hi] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
