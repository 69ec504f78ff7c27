package collector

import (
	"sync"

	"github.com/tailgate-dev/tailgate/buffer"
)

// ackTracker moves a reader's cursor over the contiguous prefix of fully acknowledged frames.
// A frame is done when it is sealed (all its records were put in batches) and every batch that
// holds some of its records was acknowledged; batches may finish in any order.
type ackTracker struct {
	mu     sync.Mutex
	reader *buffer.Reader
	queue  []*trackedFrame
	// done is called for each frame the cursor passed: nothing points into it any more.
	done func(*trackedFrame)
}

type trackedFrame struct {
	end     buffer.Position
	pending int // batches not yet acknowledged
	sealed  bool
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
	t.advance()
	t.mu.Unlock()
}

func (t *ackTracker) batchDone(f *trackedFrame) {
	t.mu.Lock()
	f.pending--
	t.advance()
	t.mu.Unlock()
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
	if t.done != nil {
		for _, f := range t.queue[:n] {
			t.done(f)
		}
	}
	clear(t.queue[:n])
	t.queue = t.queue[n:]
}
