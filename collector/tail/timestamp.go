package tail

import "github.com/tailgate-dev/tailgate/internal/civil"

// parseTime reads an RFC 3339 timestamp with optional fraction ("2016-10-06T00:17:09.669794202Z",
// "2016-10-06T09:17:09.1+09:00") and returns Unix nanoseconds. It is hand-written because
// time.Parse costs far more than the rest of a line.
func parseTime(b []byte) (int64, bool) {
	var p timeParser
	return p.parse(b)
}

// timeParser is parseTime with a memory of the last date and time to the second: the lines of
// a file mostly share it, so only the fraction and the zone are read again. The zero value is
// ready; one per goroutine.
type timeParser struct {
	prefix [19]byte // "2016-10-06T00:17:09" of secs
	secs   int64    // prefix as seconds since the epoch, before the zone offset
	ok     bool
}

func (p *timeParser) parse(b []byte) (int64, bool) {
	if len(b) < 20 {
		return 0, false
	}
	if !p.ok || string(b[:19]) != string(p.prefix[:]) {
		secs, ok := parseSeconds(b[:19])
		if !ok {
			return 0, false
		}
		copy(p.prefix[:], b[:19])
		p.secs, p.ok = secs, true
	}
	nsec, offset, ok := parseFractionZone(b[19:])
	if !ok {
		return 0, false
	}
	return (p.secs-offset)*1e9 + nsec, true
}

// parseSeconds reads "2016-10-06T00:17:09" as seconds since the epoch (of UTC).
func parseSeconds(b []byte) (int64, bool) {
	if b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't' && b[10] != ' ') ||
		b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > civil.DaysIn(month, year) || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	return civil.DaysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec, true
}

// parseFractionZone reads what follows the seconds: an optional fraction, then "Z" or an
// offset ("+09:00"), which it returns in seconds east of UTC.
func parseFractionZone(b []byte) (nsec, offset int64, ok bool) {
	i := 0
	if b[i] == '.' || b[i] == ',' {
		i++
		start := i
		scale := int64(100000000)
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if scale > 0 {
				nsec += int64(b[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == start {
			return 0, 0, false
		}
	}
	if i >= len(b) {
		return 0, 0, false
	}
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i < 6 || b[i+3] != ':' {
			return 0, 0, false
		}
		oh, ok1 := digits(b[i+1 : i+3])
		om, ok2 := digits(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, 0, false
	}
	if i != len(b) {
		return 0, 0, false
	}
	return nsec, offset, true
}

func digits(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
