package collector

import (
	"sync"

	"github.com/tailgate-dev/tailgate/buffer"
)

// ackTracker moves a reader's cursor over the contiguous prefix of fully acknowledged frames.
// A frame is done when it is sealed (all its records were put in batches) and every batch that
// holds some of its records was acknowledged; batches may finish in any order.
//
// A frame's memory is handed back as soon as nothing points into it: when it is sealed and the
// batches that borrow its records (rather than copy them) are acknowledged, not when the cursor
// passes it. One slow batch (a retry, a keyed batch waiting for its MaxDelay) then pins only the
// frames it borrows from, not every frame read after them. The queue keeps only the small
// trackedFrame structs.
type ackTracker struct {
	mu     sync.Mutex
	reader *buffer.Reader
	queue  []*trackedFrame
	// done is called once for each done frame, in any order: nothing points into it any more.
	done func(*trackedFrame)
}

type trackedFrame struct {
	end       buffer.Position
	pending   int // batches not yet acknowledged
	borrowers int // of those, the ones pointing into data and records (not holding copies)
	sealed    bool
	released  bool // done was called
	// The frame's payload and decoded records, recycled once nothing points into them.
	data    []byte
	records []Record
}

func (t *ackTracker) add(end buffer.Position) *trackedFrame {
	f := &trackedFrame{end: end}
	t.mu.Lock()
	t.queue = append(t.queue, f)
	t.mu.Unlock()
	return f
}

// addBatch is called before dispatch when a batch takes records of f; borrows says whether it
// points into f's memory (false: it holds copies, or nothing).
func (t *ackTracker) addBatch(f *trackedFrame, borrows bool) {
	t.mu.Lock()
	f.pending++
	if borrows {
		f.borrowers++
	}
	t.mu.Unlock()
}

func (t *ackTracker) seal(f *trackedFrame) {
	t.mu.Lock()
	f.sealed = true
	t.release(f)
	t.advance()
	t.mu.Unlock()
}

// batchDone is called when a batch that took records of f (borrowed as given to addBatch)
// was acknowledged.
func (t *ackTracker) batchDone(f *trackedFrame, borrowed bool) {
	t.mu.Lock()
	f.pending--
	if borrowed {
		f.borrowers--
	}
	t.release(f)
	t.advance()
	t.mu.Unlock()
}

// release hands f's memory back once nothing points into it. Caller holds mu.
func (t *ackTracker) release(f *trackedFrame) {
	if f.sealed && f.borrowers == 0 && !f.released {
		f.released = true
		if t.done != nil {
			t.done(f)
		}
	}
}

func (t *ackTracker) advance() {
	n := 0
	for n < len(t.queue) && t.queue[n].sealed && t.queue[n].pending == 0 {
		n++
	}
	if n == 0 {
		return
	}
	t.reader.Ack(t.queue[n-1].end)
	clear(t.queue[:n])
	t.queue = t.queue[n:]
}
