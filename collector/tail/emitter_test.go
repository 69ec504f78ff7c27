package tail

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// gotRecord is a record as the fake pipeline kept it (copied, like Emit does).
type gotRecord struct {
	ID      collector.ID
	Time    int64
	Stream  collector.Stream
	Flags   uint8
	Message string
	Fields  string
	Kube    collector.Kube
	Source  *collector.Source
}

// fakeEmitter copies records and folds State the way the pipeline does, so a test can "crash"
// (cancel Run) and start a new Input from exactly what was emitted.
type fakeEmitter struct {
	mu       sync.Mutex
	records  []gotRecord
	state    map[string][]byte
	dropped  map[string]int
	altered  map[string]int
	released map[*collector.Source]int
	batches  int
	// snaps, when keepSnaps is set, is the state and record count after each batch: where a
	// crash after that batch would restart from.
	keepSnaps bool
	snaps     []emitSnap
}

type emitSnap struct {
	state   map[string][]byte
	records int
}

func newFakeEmitter(state map[string][]byte) *fakeEmitter {
	if state == nil {
		state = make(map[string][]byte)
	}
	return &fakeEmitter{state: state, dropped: make(map[string]int), altered: make(map[string]int), released: make(map[*collector.Source]int)}
}

func (e *fakeEmitter) Emit(ctx context.Context, b *collector.Batch) (collector.Durable, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches++
	for _, r := range b.Records {
		g := gotRecord{ID: r.ID, Time: r.Time, Stream: r.Stream, Flags: r.Flags, Message: string(r.Message),
			Fields: string(r.Fields), Source: r.Source}
		if k := r.Source.Kube(); k != nil {
			g.Kube = *k
		}
		e.records = append(e.records, g)
	}
	for _, s := range b.State {
		if s.Value == nil {
			delete(e.state, s.Key)
		} else {
			e.state[s.Key] = append([]byte(nil), s.Value...)
		}
	}
	if e.keepSnaps {
		e.snaps = append(e.snaps, emitSnap{state: maps.Clone(e.state), records: len(e.records)})
	}
	return durableNow{}, nil
}

type durableNow struct{}

func (durableNow) Wait(context.Context) error { return nil }

func (e *fakeEmitter) Release(s *collector.Source) {
	e.mu.Lock()
	e.released[s]++
	e.mu.Unlock()
}

func (e *fakeEmitter) Dropped(s *collector.Source, st collector.Stream, reason string, n int) {
	e.mu.Lock()
	e.dropped[reason] += n
	e.mu.Unlock()
}

func (e *fakeEmitter) Altered(s *collector.Source, st collector.Stream, reason string, n int) {
	e.mu.Lock()
	e.altered[reason] += n
	e.mu.Unlock()
}

func (e *fakeEmitter) State() map[string][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.state)
}

func (e *fakeEmitter) snapshot() []gotRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]gotRecord(nil), e.records...)
}

func (e *fakeEmitter) messages() []string {
	var out []string
	for _, r := range e.snapshot() {
		out = append(out, r.Message)
	}
	return out
}

// countKey names a counter of the fake: kind is "dropped" or "altered".
type countKey struct{ kind, reason string }

func (e *fakeEmitter) countFor(k countKey) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k.kind == "altered" {
		return e.altered[k.reason]
	}
	return e.dropped[k.reason]
}

func (e *fakeEmitter) droppedFor(reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped[reason]
}

func (e *fakeEmitter) stateLen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.state)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRecords waits until at least n records were emitted.
func (e *fakeEmitter) waitRecords(t *testing.T, n int) []gotRecord {
	t.Helper()
	waitFor(t, "records", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.records) >= n
	})
	return e.snapshot()
}
