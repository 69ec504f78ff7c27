package cloudlogging

import (
	"bytes"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailgate-dev/tailgate/collector"
)

// LogEntry field numbers (google/logging/v2/log_entry.proto).
const (
	fieldTextPayload    = 3
	fieldInsertID       = 4
	fieldJSONPayload    = 6
	fieldHTTPRequest    = 7
	fieldTimestamp      = 9
	fieldSeverity       = 10
	fieldLabels         = 11
	fieldOperation      = 15
	fieldTrace          = 22
	fieldSourceLocation = 23
	fieldSpanID         = 27
	fieldTraceSampled   = 30
	fieldSplit          = 35
)

// Label limits (https://cloud.google.com/logging/quotas): the API keeps at most 64 labels per
// entry and truncates keys past 512 bytes and values past 64 KiB.
const (
	maxLabels          = 64
	maxLabelKeyBytes   = 512
	maxLabelValueBytes = 64 << 10
)

// futureLimit is how far ahead of the sink's clock an entry's timestamp may be: the API
// refuses entries more than 24 hours ahead; the hour left over absorbs clock skew.
const futureLimit = 23 * 3600 * 1e9

// entryConfig is what the entry builder needs from the sink's options.
type entryConfig struct {
	project        string
	stdoutSeverity Severity
	stderrSeverity Severity
	futureClamp    bool // else a timestamp too far ahead refuses the entry
}

// adjustments count what the builder changed to make entries acceptable.
type adjustments struct {
	invalidUTF8     int // payloads with invalid UTF-8 replaced by U+FFFD
	deepJSON        int // payloads with a subtree too deep kept as JSON text
	futureClamped   int // timestamps more than a day ahead replaced
	labelsTruncated int // label keys or values cut to the API's sizes
	labelsInPayload int // payload labels past the 64-label limit, left in jsonPayload
}

// entryEncoder builds LogEntry wire bytes for records. It is not safe for concurrent use; the
// sink keeps one per Send.
type entryEncoder struct {
	cfg *entryConfig
	now int64 // unix ns, for the future-timestamp check
	w   walker
	sp  specials
	// aux holds the LogEntry fields found in the payload (labels, trace, httpRequest, ...),
	// written after it.
	aux []byte
	// labelRoom is how many more entry labels the request leaves room for.
	labelRoom int
	adj       adjustments
}

// specials are the structured-logging fields read from a JSON payload.
type specials struct {
	severity    Severity
	hasSeverity bool
	level       Severity
	hasLevel    bool
	time        int64
	hasTime     bool
	tsSeconds   int64
	hasSeconds  bool
	tsNanos     int64
	hasNanos    bool
	sawMessage  bool
	// seen marks the special keys already taken: a repeated one stays in the payload.
	seen uint16
}

const (
	seenInsertID uint16 = 1 << iota
	seenTrace
	seenSpanID
	seenSampled
	seenLabels
	seenHTTPRequest
	seenOperation
	seenSourceLocation
)

// errFuture is an entry refused because its timestamp is too far ahead (policy dead_letter).
type entryStatus uint8

const (
	entryOK entryStatus = iota
	entryFuture
)

// appendEntry appends the content of the LogEntry for r (without its own tag and length).
func (e *entryEncoder) appendEntry(b []byte, r *collector.Record) ([]byte, entryStatus) {
	e.sp = specials{}
	e.aux = e.aux[:0]
	b = e.appendPayload(b, r)

	if e.sp.seen&seenInsertID == 0 {
		b = protowire.AppendTag(b, fieldInsertID, protowire.BytesType)
		b = append(b, 32)
		b = r.ID.AppendHex(b)
	}
	b = append(b, e.aux...)

	ts := r.Time
	if e.sp.hasTime {
		ts = e.sp.time
	} else if e.sp.hasSeconds {
		ts = e.sp.tsSeconds*1e9 + e.sp.tsNanos
	}
	if ts > e.now+futureLimit {
		if !e.cfg.futureClamp {
			return b, entryFuture
		}
		e.adj.futureClamped++
		ts = r.Time
		if ts > e.now+futureLimit {
			ts = e.now
		}
	}
	if ts != 0 {
		b = appendTimestampField(b, fieldTimestamp, ts)
	}

	sev := SeverityDefault
	switch {
	case e.sp.hasSeverity:
		sev = e.sp.severity
	case e.sp.hasLevel:
		sev = e.sp.level
	case r.Stream == collector.StreamStdout:
		sev = e.cfg.stdoutSeverity
	case r.Stream == collector.StreamStderr:
		sev = e.cfg.stderrSeverity
	}
	if sev != SeverityDefault {
		b = protowire.AppendTag(b, fieldSeverity, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sev))
	}

	if r.Flags&collector.FlagPart != 0 {
		b = appendSplit(b, r.ID, r.Parts)
	}
	return b, entryOK
}

// appendSplit writes LogEntry.split for a part of a record the pipeline split: uid is the
// whole record's id, index the part's number (both recovered from the part's ID), totalSplits
// the part count when the record carries it.
func appendSplit(b []byte, id collector.ID, parts uint32) []byte {
	index := uint64(id[8])<<8 | uint64(id[9])
	id[8], id[9] = 0, 0
	b, s := beginMessage(b, fieldSplit)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = append(b, 32)
	b = id.AppendHex(b)
	if index != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, index)
	}
	if parts != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(parts))
	}
	return endMessage(b, s)
}

// appendPayload writes jsonPayload or textPayload and collects the special fields:
//   - a forward record's map (unless its only key is message/log/msg) is the jsonPayload;
//   - a message that is a JSON object is the jsonPayload;
//   - otherwise the message is the textPayload, byte for byte (invalid UTF-8 replaced), and
//     fields that came with it (a severity the line's level prefix gave) set the severity; if
//     they hold more than level/severity, they become the jsonPayload with the text as
//     "message", so nothing is dropped.
func (e *entryEncoder) appendPayload(b []byte, r *collector.Record) []byte {
	fields := r.Fields
	if len(fields) > 0 && bytes.Equal(fields, r.Message) {
		fields = nil // the message parsed: it is read below
	}
	mark := len(b)
	if len(fields) > 0 && r.Stream == collector.StreamApp && !e.onlyMessageKey(fields) {
		if nb, ok := e.appendJSONPayload(b, fields, nil); ok {
			return nb
		}
		b = b[:mark]
		e.sp = specials{}
		e.aux = e.aux[:0]
		fields = nil
	}
	if looksLikeObject(r.Message) {
		if nb, ok := e.appendJSONPayload(b, r.Message, nil); ok {
			if len(fields) > 0 && r.Stream != collector.StreamApp {
				e.severityFrom(fields)
			}
			return nb
		}
		b = b[:mark]
		e.sp = specials{}
		e.aux = e.aux[:0]
	}
	if len(fields) > 0 && r.Stream != collector.StreamApp {
		if !e.onlySeverityKeys(fields) {
			if nb, ok := e.appendJSONPayload(b, fields, r.Message); ok {
				return nb
			}
			b = b[:mark]
			e.sp = specials{}
			e.aux = e.aux[:0]
		}
		e.severityFrom(fields)
	}
	b, rep := appendStringField(b, fieldTextPayload, r.Message)
	if rep {
		e.adj.invalidUTF8++
	}
	return b
}

// looksLikeObject reports whether msg starts (after spaces) with '{'.
func looksLikeObject(msg []byte) bool {
	for _, c := range msg {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// appendJSONPayload writes src, a JSON object, as jsonPayload, taking the special fields out.
// With message set, it is added as a "message" member unless the object has one.
func (e *entryEncoder) appendJSONPayload(b, src, message []byte) ([]byte, bool) {
	w := &e.w
	w.reset(src)
	if w.peek() != '{' {
		return b, false
	}
	b, s := beginMessage(b, fieldJSONPayload)
	b, ok := e.appendTopObject(b)
	if !ok || w.peek() != 0 {
		return b, false
	}
	if message != nil && !e.sp.sawMessage {
		var rep bool
		b, rep = appendStringMember(b, "message", message)
		w.replaced = w.replaced || rep
	}
	if w.replaced {
		e.adj.invalidUTF8++
	}
	if w.deep {
		e.adj.deepJSON++
	}
	return endMessage(b, s), true
}

// appendTopObject writes the members of the payload object at w.pos, except the special fields
// it takes into e.sp and e.aux.
func (e *entryEncoder) appendTopObject(b []byte) ([]byte, bool) {
	w := &e.w
	w.pos++ // '{'
	if w.peek() == '}' {
		w.pos++
		return e.finishTop(b), true
	}
	for {
		if w.peek() != '"' {
			return b, false
		}
		key, plain, ok := w.scanString()
		if !ok || w.peek() != ':' {
			return b, false
		}
		w.pos++
		handled := false
		if plain {
			if b, handled, ok = e.special(b, key); !ok {
				return b, false
			}
		}
		if !handled {
			if b, ok = w.appendMember(b, key, plain, 1); !ok {
				return b, false
			}
		}
		switch w.peek() {
		case ',':
			w.pos++
		case '}':
			w.pos++
			return e.finishTop(b), true
		default:
			return b, false
		}
	}
}

// finishTop puts back a timestampNanos that came without timestampSeconds.
func (e *entryEncoder) finishTop(b []byte) []byte {
	if e.sp.hasNanos && !e.sp.hasSeconds {
		b = appendNumberMember(b, "timestampNanos", e.sp.tsNanos)
		e.sp.tsNanos = 0
	}
	return b
}

// appendStringMember appends the Struct member key: value (a string), and reports whether
// invalid UTF-8 was replaced.
func appendStringMember(b []byte, key string, value []byte) ([]byte, bool) {
	b, ms := beginMessage(b, 1)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b, vs := beginMessage(b, 2)
	b, rep := appendStringField(b, 3, value)
	return endMessage(endMessage(b, vs), ms), rep
}

// appendNumberMember appends the Struct member key: n.
func appendNumberMember(b []byte, key string, n int64) []byte {
	b, ms := beginMessage(b, 1)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b, vs := beginMessage(b, 2)
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(float64(n)))
	return endMessage(endMessage(b, vs), ms)
}

// special takes the payload member key (value at w.pos) if it is a structured-logging field
// with a value of the expected type. handled false leaves w.pos at the value, to be written to
// the payload as it is; ok false is a JSON syntax error.
func (e *entryEncoder) special(b, key []byte) (_ []byte, handled, ok bool) {
	w := &e.w
	sp := &e.sp
	save := w.pos
	switch string(key) {
	case "message":
		sp.sawMessage = true
	case "severity", "logging.googleapis.com/severity":
		if !sp.hasSeverity {
			if sev, found := e.severityValue(false); found {
				sp.severity, sp.hasSeverity = sev, true
				return b, true, true
			}
		}
	case "level":
		// Not a Google field: it sets the severity (unless "severity" does) and stays.
		if !sp.hasLevel {
			sp.level, sp.hasLevel = e.severityValue(true)
		}
	case "time":
		if !sp.hasTime && w.peek() == '"' {
			if raw, plain, sok := w.scanString(); sok && plain {
				if ns, tok := parseRFC3339(raw); tok {
					sp.time, sp.hasTime = ns, true
					return b, true, true
				}
			}
		}
	case "timestamp":
		if !sp.hasTime {
			if ns, tok := e.timestampValue(); tok {
				sp.time, sp.hasTime = ns, true
				return b, true, true
			}
		}
	case "timestampSeconds":
		if n, nok := e.intValue(); nok && !sp.hasSeconds {
			sp.tsSeconds, sp.hasSeconds = n, true
			return b, true, true
		}
	case "timestampNanos":
		if n, nok := e.intValue(); nok && !sp.hasNanos && n >= 0 && n < 1e9 {
			sp.tsNanos, sp.hasNanos = n, true
			return b, true, true
		}
	case "logging.googleapis.com/insertId":
		if e.stringField(seenInsertID, fieldInsertID, false) {
			return b, true, true
		}
	case "logging.googleapis.com/trace":
		if e.stringField(seenTrace, fieldTrace, true) {
			return b, true, true
		}
	case "logging.googleapis.com/spanId":
		if e.stringField(seenSpanID, fieldSpanID, false) {
			return b, true, true
		}
	case "logging.googleapis.com/trace_sampled", "logging.googleapis.com/traceSampled":
		if sp.seen&seenSampled == 0 {
			if v, bok := e.boolValue(); bok {
				sp.seen |= seenSampled
				if v {
					e.aux = protowire.AppendTag(e.aux, fieldTraceSampled, protowire.VarintType)
					e.aux = append(e.aux, 1)
				}
				return b, true, true
			}
		}
	case "logging.googleapis.com/labels":
		if sp.seen&seenLabels == 0 && w.peek() == '{' {
			sp.seen |= seenLabels
			b, ok = e.typedObject(b, key, 0, nil)
			return b, true, ok
		}
	case "httpRequest":
		if sp.seen&seenHTTPRequest == 0 && w.peek() == '{' {
			sp.seen |= seenHTTPRequest
			b, ok = e.typedObject(b, key, fieldHTTPRequest, httpRequestFields)
			return b, true, ok
		}
	case "logging.googleapis.com/operation":
		if sp.seen&seenOperation == 0 && w.peek() == '{' {
			sp.seen |= seenOperation
			b, ok = e.typedObject(b, key, fieldOperation, operationFields)
			return b, true, ok
		}
	case "logging.googleapis.com/sourceLocation":
		if sp.seen&seenSourceLocation == 0 && w.peek() == '{' {
			sp.seen |= seenSourceLocation
			b, ok = e.typedObject(b, key, fieldSourceLocation, sourceLocationFields)
			return b, true, ok
		}
	}
	w.pos = save
	return b, false, true
}

// severityValue reads a severity from the string or number at w.pos.
func (e *entryEncoder) severityValue(level bool) (Severity, bool) {
	w := &e.w
	switch c := w.peek(); {
	case c == '"':
		raw, plain, ok := w.scanString()
		if ok && plain {
			return severityWord(raw, level)
		}
	case c == '-' || c >= '0' && c <= '9':
		if num, ok := w.scanNumber(); ok {
			if f, exact := parseNumber(num); exact {
				return severityNumber(f, level)
			}
		}
	}
	return 0, false
}

// timestampValue reads an RFC 3339 string or a {"seconds": n, "nanos": n} object at w.pos.
func (e *entryEncoder) timestampValue() (int64, bool) {
	w := &e.w
	switch w.peek() {
	case '"':
		if raw, plain, ok := w.scanString(); ok && plain {
			return parseRFC3339(raw)
		}
	case '{':
		w.pos++
		var sec, nanos int64
		var hasSec bool
		if w.peek() == '}' {
			return 0, false
		}
		for {
			if w.peek() != '"' {
				return 0, false
			}
			key, _, ok := w.scanString()
			if !ok || w.peek() != ':' {
				return 0, false
			}
			w.pos++
			n, ok := e.intValue()
			if !ok {
				return 0, false
			}
			switch string(key) {
			case "seconds":
				sec, hasSec = n, true
			case "nanos":
				if n < 0 || n >= 1e9 {
					return 0, false
				}
				nanos = n
			default:
				return 0, false
			}
			switch w.peek() {
			case ',':
				w.pos++
			case '}':
				w.pos++
				const maxSec = int64(1<<63-1) / 1e9
				if !hasSec || sec > maxSec || sec < -maxSec {
					return 0, false
				}
				return sec*1e9 + nanos, true
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

// intValue reads an integer (a JSON integer, or a string of digits) at w.pos.
func (e *entryEncoder) intValue() (int64, bool) {
	w := &e.w
	var num []byte
	switch c := w.peek(); {
	case c == '"':
		raw, plain, ok := w.scanString()
		if !ok || !plain {
			return 0, false
		}
		num = raw
	case c == '-' || c >= '0' && c <= '9':
		raw, ok := w.scanNumber()
		if !ok {
			return 0, false
		}
		num = raw
	default:
		return 0, false
	}
	neg := len(num) > 0 && num[0] == '-'
	if neg {
		num = num[1:]
	}
	if len(num) == 0 || len(num) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// boolValue reads true/false, or the strings "true"/"false", at w.pos.
func (e *entryEncoder) boolValue() (bool, bool) {
	w := &e.w
	switch w.peek() {
	case 't':
		return true, w.literal("true")
	case 'f':
		return false, w.literal("false")
	case '"':
		raw, _, ok := w.scanString()
		if ok && string(raw) == "true" {
			return true, true
		}
		if ok && string(raw) == "false" {
			return false, true
		}
	}
	return false, false
}

// stringField takes the string at w.pos as LogEntry field num (once per entry). A trace that
// is a bare 32-hex-digit id is written as projects/{project}/traces/{id}, as the agent does.
func (e *entryEncoder) stringField(flag uint16, num protowire.Number, trace bool) bool {
	w := &e.w
	if e.sp.seen&flag != 0 || w.peek() != '"' {
		return false
	}
	raw, plain, ok := w.scanString()
	if !ok || len(raw) == 0 {
		return false
	}
	e.sp.seen |= flag
	if trace && plain && len(raw) == 32 && isHex(raw) {
		e.aux, _ = beginMessage(e.aux, num)
		s := len(e.aux)
		e.aux = append(e.aux, "projects/"...)
		e.aux = append(e.aux, e.cfg.project...)
		e.aux = append(e.aux, "/traces/"...)
		e.aux = append(e.aux, raw...)
		e.aux = endMessage(e.aux, s)
		return true
	}
	e.aux = w.appendStringBytes(e.aux, num, raw, plain)
	return true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f') {
			return false
		}
	}
	return true
}

// The typed members of httpRequest, operation and sourceLocation.
type memberKind uint8

const (
	kindString memberKind = iota
	kindInt
	kindBool
	kindLatency
)

type typedMember struct {
	name string
	num  protowire.Number
	kind memberKind
}

var httpRequestFields = []typedMember{
	{"requestMethod", 1, kindString}, {"requestUrl", 2, kindString}, {"requestSize", 3, kindInt},
	{"status", 4, kindInt}, {"responseSize", 5, kindInt}, {"userAgent", 6, kindString},
	{"remoteIp", 7, kindString}, {"referer", 8, kindString}, {"cacheHit", 9, kindBool},
	{"cacheValidatedWithOriginServer", 10, kindBool}, {"cacheLookup", 11, kindBool},
	{"cacheFillBytes", 12, kindInt}, {"serverIp", 13, kindString}, {"latency", 14, kindLatency},
	{"protocol", 15, kindString},
}

var operationFields = []typedMember{
	{"id", 1, kindString}, {"producer", 2, kindString}, {"first", 3, kindBool}, {"last", 4, kindBool},
}

var sourceLocationFields = []typedMember{
	{"file", 1, kindString}, {"line", 2, kindInt}, {"function", 3, kindString},
}

// typedObject takes the object at w.pos apart: members of the expected name and type go into
// LogEntry field num (table nil: string members become entry labels), and the rest stay in
// the payload under key, so nothing is lost.
func (e *entryEncoder) typedObject(b, key []byte, num protowire.Number, table []typedMember) ([]byte, bool) {
	w := &e.w
	// The leftover object, written now and rolled back if empty.
	mark := len(b)
	b, es := beginMessage(b, 1)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, key)
	b, vs := beginMessage(b, 2)
	b, ss := beginMessage(b, 5)
	leftover := false

	auxMark := len(e.aux)
	var ms int
	if table != nil {
		e.aux, ms = beginMessage(e.aux, num)
	}
	taken := false

	w.pos++ // '{'
	if w.peek() == '}' {
		w.pos++
	} else {
		for {
			if w.peek() != '"' {
				return b, false
			}
			mkey, plain, ok := w.scanString()
			if !ok || w.peek() != ':' {
				return b, false
			}
			w.pos++
			save := w.pos
			took := false
			if plain {
				if table == nil {
					took = e.label(mkey)
				} else {
					for _, m := range table {
						if m.name == string(mkey) {
							took = e.typedMember(m)
							break
						}
					}
				}
			}
			if took {
				taken = true
			} else {
				w.pos = save
				if b, ok = w.appendMember(b, mkey, plain, 2); !ok {
					return b, false
				}
				leftover = true
			}
			switch w.peek() {
			case ',':
				w.pos++
				continue
			case '}':
				w.pos++
			default:
				return b, false
			}
			break
		}
	}
	if table != nil {
		if taken {
			e.aux = endMessage(e.aux, ms)
		} else {
			e.aux = e.aux[:auxMark]
		}
	}
	if !leftover {
		return b[:mark], true
	}
	return endMessage(endMessage(endMessage(b, ss), vs), es), true
}

// typedMember writes the value at w.pos into e.aux as m, if it has m's type.
func (e *entryEncoder) typedMember(m typedMember) bool {
	w := &e.w
	switch m.kind {
	case kindString:
		if w.peek() != '"' {
			return false
		}
		raw, plain, ok := w.scanString()
		if !ok {
			return false
		}
		e.aux = w.appendStringBytes(e.aux, m.num, raw, plain)
		return true
	case kindInt:
		n, ok := e.intValue()
		if !ok {
			return false
		}
		e.aux = protowire.AppendTag(e.aux, m.num, protowire.VarintType)
		e.aux = protowire.AppendVarint(e.aux, uint64(n))
		return true
	case kindBool:
		v, ok := e.boolValue()
		if !ok {
			return false
		}
		e.aux = protowire.AppendTag(e.aux, m.num, protowire.VarintType)
		if v {
			e.aux = append(e.aux, 1)
		} else {
			e.aux = append(e.aux, 0)
		}
		return true
	case kindLatency:
		if w.peek() != '"' {
			return false
		}
		raw, plain, ok := w.scanString()
		if !ok || !plain {
			return false
		}
		sec, nanos, ok := parseLatency(raw)
		if !ok {
			return false
		}
		e.aux, _ = beginMessage(e.aux, m.num)
		s := len(e.aux)
		if sec != 0 {
			e.aux = protowire.AppendTag(e.aux, 1, protowire.VarintType)
			e.aux = protowire.AppendVarint(e.aux, uint64(sec))
		}
		if nanos != 0 {
			e.aux = protowire.AppendTag(e.aux, 2, protowire.VarintType)
			e.aux = protowire.AppendVarint(e.aux, uint64(nanos))
		}
		e.aux = endMessage(e.aux, s)
		return true
	}
	return false
}

// parseLatency reads a duration as the agent does: digits, an optional fraction, then "s",
// spaces allowed around ("0.25s", " 3 s").
func parseLatency(s []byte) (sec, nanos int64, ok bool) {
	s = bytes.TrimSpace(s)
	if len(s) < 2 || s[len(s)-1] != 's' {
		return 0, 0, false
	}
	s = bytes.TrimSpace(s[:len(s)-1])
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 12 {
		sec = sec*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if d < 9 {
				nanos = nanos*10 + int64(s[i]-'0')
				d++
			}
			i++
		}
		if d == 0 {
			return 0, 0, false
		}
		for ; d < 9; d++ {
			nanos *= 10
		}
	}
	return sec, nanos, i == len(s)
}

// label takes the string at w.pos as entry label key, if there is room for it.
func (e *entryEncoder) label(key []byte) bool {
	w := &e.w
	if w.peek() != '"' {
		return false
	}
	if e.labelRoom <= 0 {
		e.adj.labelsInPayload++
		return false
	}
	raw, plain, ok := w.scanString()
	if !ok {
		return false
	}
	e.labelRoom--
	e.aux, _ = beginMessage(e.aux, fieldLabels)
	s := len(e.aux)
	e.aux = appendLabelPart(e.aux, 1, key, true, maxLabelKeyBytes, &e.adj, w)
	e.aux = appendLabelPart(e.aux, 2, raw, plain, maxLabelValueBytes, &e.adj, w)
	e.aux = endMessage(e.aux, s)
	return true
}

// appendLabelPart writes a label key or value (JSON string content), cut to max bytes at a
// UTF-8 boundary.
func appendLabelPart(b []byte, num protowire.Number, raw []byte, plain bool, max int, adj *adjustments, w *walker) []byte {
	b, s := beginMessage(b, num)
	if plain {
		b = append(b, raw...)
	} else {
		b = w.appendUnescaped(b, raw)
	}
	if n := len(b) - s; n > max {
		cut := s + len(truncateUTF8(string(b[s:]), max))
		b = b[:cut]
		adj.labelsTruncated++
	}
	return endMessage(b, s)
}

// onlyMessageKey reports whether the object fields has one member, message, log or msg, and
// its value is a string: a forward record that carries a line, written like a tailed one.
func (e *entryEncoder) onlyMessageKey(fields []byte) bool {
	w := &e.w
	w.reset(fields)
	if w.peek() != '{' {
		return false
	}
	w.pos++
	if w.peek() != '"' {
		return false
	}
	key, _, ok := w.scanString()
	if !ok || w.peek() != ':' {
		return false
	}
	switch string(key) {
	case "message", "log", "msg":
	default:
		return false
	}
	w.pos++
	if w.peek() != '"' {
		return false
	}
	if _, _, ok := w.scanString(); !ok {
		return false
	}
	return w.peek() == '}'
}

// onlySeverityKeys reports whether every key of the object fields is level or severity.
func (e *entryEncoder) onlySeverityKeys(fields []byte) bool {
	w := &e.w
	w.reset(fields)
	if w.peek() != '{' {
		return false
	}
	w.pos++
	if w.peek() == '}' {
		return true
	}
	for {
		if w.peek() != '"' {
			return false
		}
		key, _, ok := w.scanString()
		if !ok || w.peek() != ':' {
			return false
		}
		if string(key) != "level" && string(key) != "severity" {
			return false
		}
		w.pos++
		if !w.skipValue(1) {
			return false
		}
		switch w.peek() {
		case ',':
			w.pos++
		case '}':
			return true
		default:
			return false
		}
	}
}

// severityFrom takes severity and level from the object fields that came with a record, where
// the payload did not set them.
func (e *entryEncoder) severityFrom(fields []byte) {
	w := &e.w
	w.reset(fields)
	if w.peek() != '{' {
		return
	}
	w.pos++
	if w.peek() == '}' {
		return
	}
	for {
		if w.peek() != '"' {
			return
		}
		key, _, ok := w.scanString()
		if !ok || w.peek() != ':' {
			return
		}
		w.pos++
		save := w.pos
		switch string(key) {
		case "severity":
			if sev, found := e.severityValue(false); found && !e.sp.hasSeverity {
				e.sp.severity, e.sp.hasSeverity = sev, true
			}
		case "level":
			if sev, found := e.severityValue(true); found && !e.sp.hasLevel {
				e.sp.level, e.sp.hasLevel = sev, true
			}
		}
		w.pos = save
		if !w.skipValue(1) {
			return
		}
		switch w.peek() {
		case ',':
			w.pos++
		default:
			return
		}
	}
}
