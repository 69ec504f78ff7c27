package collector

import (
	"sync"

	"github.com/tailgate-dev/tailgate/buffer"
)

// ackTracker moves a reader's cursor over the contiguous prefix of fully acknowledged frames.
// A frame is done when it is sealed (all its records were put in batches) and every batch that
// holds some of its records was acknowledged; batches may finish in any order.
//
// A done frame's memory is handed back at once, not when the cursor passes it: one slow batch
// (a retry, a keyed batch waiting for its MaxDelay) then pins only the frames it holds records
// of, not every frame read after them. The queue keeps only the small trackedFrame structs.
type ackTracker struct {
	mu     sync.Mutex
	reader *buffer.Reader
	queue  []*trackedFrame
	// done is called once for each done frame, in any order: nothing points into it any more.
	done func(*trackedFrame)
}

type trackedFrame struct {
	end      buffer.Position
	pending  int // batches not yet acknowledged
	sealed   bool
	released bool // done was called
	// The frame's payload and decoded records, recycled once the frame is acknowledged.
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

// addBatch is called before dispatch when a batch takes records of f.
func (t *ackTracker) addBatch(f *trackedFrame) {
	t.mu.Lock()
	f.pending++
	t.mu.Unlock()
}

func (t *ackTracker) seal(f *trackedFrame) {
	t.mu.Lock()
	f.sealed = true
	t.release(f)
	t.advance()
	t.mu.Unlock()
}

func (t *ackTracker) batchDone(f *trackedFrame) {
	t.mu.Lock()
	f.pending--
	t.release(f)
	t.advance()
	t.mu.Unlock()
}

// release hands a done frame's memory back. Caller holds mu.
func (t *ackTracker) release(f *trackedFrame) {
	if f.sealed && f.pending == 0 && !f.released {
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
