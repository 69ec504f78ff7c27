package forward

import "sync/atomic"

// budget bounds the bytes all connections of an input hold in buffers grown past keepBuffer:
// the read buffer of a frame larger than that, the inflate window of a compressed entry larger
// than that. Up to keepBuffer per connection is not counted: max_connections bounds it. A
// connection that cannot get the bytes it needs is closed (memory_limit) rather than made to
// wait: waiting connections holding part of the budget could stall one another until their
// frame deadlines, and a closed client resends.
type budget struct {
	max  int64
	used atomic.Int64
}

func (b *budget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// reservation is one buffer's share of a budget (nil budget: unlimited).
type reservation struct {
	b *budget
	n int64
}

// fit makes the reservation cover a buffer of size bytes; it reports false, changing nothing,
// when the budget cannot grow to that.
func (r *reservation) fit(size int) bool {
	want := max(0, int64(size)-keepBuffer)
	if r.b == nil {
		r.n = want
		return true
	}
	switch diff := want - r.n; {
	case diff > 0:
		if !r.b.take(diff) {
			return false
		}
	case diff < 0:
		r.b.give(-diff)
	}
	r.n = want
	return true
}

// errMemoryLimit closes a connection whose frame needs more than the input's budget left.
var errMemoryLimit = &closeError{reason: closeMemoryLimit, msg: "max_buffered_bytes reached"}
