package cloudwatch

import (
	"cmp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tailgate-dev/tailgate/collector"
)

// Reasons a record is not sent, for the dead-letter store and the rejected-events metric.
const (
	reasonTooOld   = "too_old"
	reasonTooNew   = "too_new"
	reasonExpired  = "expired"
	reasonOversize = "oversize"
	reasonInvalid  = "invalid_parameter"
	reasonEmpty    = "empty" // not dead-lettered: CloudWatch cannot store an empty event
)

// event is one record's log event.
type event struct {
	msg  []byte // the message as sent, before JSON escaping; invalid UTF-8 is escaped as U+FFFD
	ms   int64  // timestamp, Unix milliseconds
	size int    // what CloudWatch counts: UTF-8 bytes of the message after replacement
	bad  bool   // the message held invalid UTF-8
}

// skip is a record of the batch that is not sent, and why.
type skip struct {
	member int // position in the members handed to plan
	reason string
}

// span is one request: order[lo:hi].
type span struct{ lo, hi int }

// builder turns the records of one (group, stream) into PutLogEvents requests within every
// limit of the API. One builder per Send; its memory is reused through a pool.
type builder struct {
	envelope      bool
	maxEventBytes int // including EventOverhead

	enc    collector.Encoder
	arena  []byte // envelope messages
	events []event
	order  []int
	reqs   []span
	skips  []skip
	body   []byte
}

func (b *builder) reset() {
	b.arena, b.events, b.order = b.arena[:0], b.events[:0], b.order[:0]
	b.reqs, b.skips, b.body = b.reqs[:0], b.skips[:0], b.body[:0]
}

// plan builds the events of recs[members[i]] and cuts them into requests. After it,
// b.reqs lists the requests (ranges of b.order, each in time order), and b.skips the members
// that are not sent. members nil means every record of recs.
func (b *builder) plan(recs []*collector.Record, members []int, now time.Time) {
	b.reset()
	n := len(members)
	if members == nil {
		n = len(recs)
	}
	rec := func(i int) *collector.Record {
		if members == nil {
			return recs[i]
		}
		return recs[members[i]]
	}
	// Envelopes are encoded into one arena first; the slices are taken once it stops growing.
	var offs []int
	if b.envelope {
		offs = make([]int, n+1)
		for i := range n {
			offs[i] = len(b.arena)
			b.arena = b.enc.AppendJSON(b.arena, rec(i))
		}
		offs[n] = len(b.arena)
	}
	oldest := now.Add(-MaxAge - clockSlack).UnixMilli()
	newest := now.Add(MaxFuture + clockSlack).UnixMilli()
	b.events = slices.Grow(b.events, n)[:n]
	for i := range n {
		r := rec(i)
		e := &b.events[i]
		switch {
		case b.envelope:
			e.msg = b.arena[offs[i]:offs[i+1]]
		case len(r.Message) > 0:
			e.msg = r.Message
		default:
			e.msg = r.Fields
		}
		e.ms = unixMilli(r.Time)
		e.size, e.bad = utf8Size(e.msg)
		switch {
		case len(e.msg) == 0 && r.Flags&collector.FlagPart != 0:
			// A forward record whose fields were its message, cut by the pipeline's split
			// (which cuts the message and drops the fields): nothing of it is left to send.
			b.skips = append(b.skips, skip{i, reasonOversize})
		case len(e.msg) == 0:
			b.skips = append(b.skips, skip{i, reasonEmpty})
		case e.size+EventOverhead > b.maxEventBytes:
			b.skips = append(b.skips, skip{i, reasonOversize})
		case e.ms < oldest:
			b.skips = append(b.skips, skip{i, reasonTooOld})
		case e.ms > newest:
			b.skips = append(b.skips, skip{i, reasonTooNew})
		default:
			b.order = append(b.order, i)
		}
	}
	// Time order within a request; equal times keep the batch's order (a file's lines, a
	// split record's parts). Most batches are in order already.
	if !slices.IsSortedFunc(b.order, b.byTime) {
		slices.SortStableFunc(b.order, b.byTime)
	}
	maxSpan := MaxSpan.Milliseconds()
	lo, count, bytes := 0, 0, 0
	for i, m := range b.order {
		e := &b.events[m]
		cost := e.size + EventOverhead
		if count > 0 && (count == MaxRequestEvents || bytes+cost > MaxRequestBytes || e.ms-b.events[b.order[lo]].ms >= maxSpan) {
			b.reqs = append(b.reqs, span{lo, i})
			lo, count, bytes = i, 0, 0
		}
		count++
		bytes += cost
	}
	if count > 0 {
		b.reqs = append(b.reqs, span{lo, len(b.order)})
	}
}

func (b *builder) byTime(x, y int) int { return cmp.Compare(b.events[x].ms, b.events[y].ms) }

// encode returns the JSON body of the PutLogEvents request for order[lo:hi] (awsJson1_1, the
// document the SDK's serializer writes for the same input). The body is b's until the next
// encode.
func (b *builder) encode(group, stream string, s span) []byte {
	body := append(b.body[:0], `{"logEvents":[`...)
	for i := s.lo; i < s.hi; i++ {
		e := &b.events[b.order[i]]
		if i > s.lo {
			body = append(body, ',')
		}
		body = append(body, `{"timestamp":`...)
		body = strconv.AppendInt(body, e.ms, 10)
		body = append(body, `,"message":`...)
		body = collector.AppendJSONString(body, e.msg)
		body = append(body, '}')
	}
	body = append(body, `],"logGroupName":`...)
	body = collector.AppendJSONString(body, []byte(group))
	body = append(body, `,"logStreamName":`...)
	body = collector.AppendJSONString(body, []byte(stream))
	body = append(body, '}')
	b.body = body
	return body
}

// unixMilli converts Unix nanoseconds to milliseconds, rounding down before 1970 too.
func unixMilli(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 < 0 {
		ms--
	}
	return ms
}

// utf8Size returns how many bytes msg takes once each byte that is not part of valid UTF-8 is
// replaced by U+FFFD (three bytes), as collector.AppendJSONString sends it.
func utf8Size(msg []byte) (size int, bad bool) {
	if utf8.Valid(msg) {
		return len(msg), false
	}
	size = len(msg)
	for i := 0; i < len(msg); {
		if msg[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(msg[i:])
		if r == utf8.RuneError && n == 1 {
			size += 2
		}
		i += n
	}
	return size, true
}
