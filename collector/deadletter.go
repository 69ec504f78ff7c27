package collector

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/tailgate-dev/tailgate/buffer"
)

// deadLetter keeps the records a sink rejected permanently, in a buffer of their own under
// data_dir/deadletter/<sink> (no readers: nothing is deleted until max size), with the error.
// `tailgate buffer inspect --data-dir data_dir/deadletter/<sink>` shows them.
type deadLetter struct {
	dir string
	log *slog.Logger

	mu  sync.Mutex
	buf *buffer.Buffer
	enc frameEncoder
}

// deadLetterMaxBytes bounds a sink's dead-letter buffer; the oldest records go first.
const deadLetterMaxBytes = 256 << 20

func newDeadLetter(dataDir, sink string, log *slog.Logger) *deadLetter {
	return &deadLetter{dir: filepath.Join(dataDir, "deadletter", sink), log: log.With("sink", sink)}
}

// write stores recs with the reason. A failure to store is logged: the records are already
// counted as dead-lettered and there is nowhere further to put them.
func (d *deadLetter) write(recs []*Record, reason error) {
	if len(recs) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buf == nil {
		b, err := buffer.Open(d.dir, buffer.Options{MaxBytes: deadLetterMaxBytes, SegmentBytes: 16 << 20, Sync: 0, WhenFull: buffer.DropOldest, Logger: d.log})
		if err != nil {
			d.log.Error("open dead-letter buffer", "dir", d.dir, "err", err)
			return
		}
		d.buf = b
	}
	batch := Batch{Records: make([]Record, len(recs)), State: []StateEntry{{Key: "error", Value: []byte(reason.Error())}}}
	for i, r := range recs {
		batch.Records[i] = *r
	}
	d.enc.masks = nil
	payload := d.enc.encodeBatch("dead_letter", nil, &batch)
	if _, err := d.buf.Append(context.Background(), payload, len(recs)); err != nil {
		d.log.Error("write dead-letter frame", "records", len(recs), "err", err)
	}
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buf == nil {
		return nil
	}
	if err := d.buf.Close(); err != nil {
		return fmt.Errorf("close dead-letter buffer: %w", err)
	}
	return nil
}
