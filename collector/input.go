package collector

import "context"

// Batch is what an input hands to the pipeline: records read, and the input positions reached by
// reading them. The pipeline writes both into one buffer frame, so data and positions become
// durable together and a restart resumes exactly where the buffer ends.
type Batch struct {
	Records []Record
	// State holds this input's position changes: key -> value, a nil Value deletes the key.
	// The keys and values are the input's own business (a file identity and an offset, say).
	State []StateEntry
}

// StateEntry is one input position. Value nil deletes Key.
type StateEntry struct {
	Key   string
	Value []byte
}

// Reset empties b for reuse, keeping its capacity.
func (b *Batch) Reset() {
	b.Records = b.Records[:0]
	b.State = b.State[:0]
}

// Emitter is an input's only door into the pipeline. Each input gets its own, bound to its name.
type Emitter interface {
	// Emit writes the batch to the buffer and returns once it is written, not yet durable. The
	// records and state are copied: the caller may reuse their memory as soon as Emit returns.
	// Emit blocks while the buffer is full under when_full: block, until ctx ends.
	Emit(ctx context.Context, b *Batch) (Durable, error)
	// Release tells the pipeline a source will not be emitted again (its file was closed), so
	// per-source resources such as per-pod series can be retired.
	Release(s *Source)
	// Dropped counts n records of source s lost for reason ("garbage", "overlong",
	// "rate_limit", ...) in tailgate_input_errors_total and the per-pod dropped series.
	Dropped(s *Source, st Stream, reason string, n int)
	// Altered counts n records of source s that were emitted, but not as written, for reason
	// ("truncated" at max_line_bytes, "invalid_utf8" kept as is, "multiline_cut" at a multiline
	// limit) in tailgate_input_errors_total alone: they are input errors, not drops, and the
	// per-pod dropped series (which alerts and dashboards read as loss) must not count them.
	Altered(s *Source, st Stream, reason string, n int)
	// State returns the positions this input had reached when the process last stopped,
	// recovered from the buffer. The map belongs to the caller.
	State() map[string][]byte
}

// Durable waits until an emitted batch has been synced to disk (group commit). An input tells
// its peer "durable" only after Wait returns nil: a forward ack, for instance.
type Durable interface {
	Wait(ctx context.Context) error
}

// Input reads records from somewhere and emits them.
type Input interface {
	// Name is the configured input name.
	Name() string
	// Run reads until ctx is cancelled, emitting batches. On cancellation it emits what it has
	// already read and returns nil; any other return is a fatal input error.
	Run(ctx context.Context, out Emitter) error
}
