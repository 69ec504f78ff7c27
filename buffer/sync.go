package buffer

import (
	"context"
	"fmt"
	"os"
	"time"
)

// syncLoop is the group commit: one fdatasync covers every frame appended since the last one.
// With Sync == 0 it runs as soon as an Append asks; appends that arrive during an fsync share
// the next one.
func (b *Buffer) syncLoop() {
	defer b.wg.Done()
	var tick <-chan time.Time
	if b.opts.Sync > 0 {
		t := time.NewTicker(b.opts.Sync)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-b.done:
			return
		case <-tick:
		case <-b.syncReq:
		}
		_ = b.syncOnce()
	}
}

// syncOnce makes everything written so far durable: sealed segments not yet synced, the
// active one, and the segment directory when files were created or deleted.
func (b *Buffer) syncOnce() error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()

	b.mu.Lock()
	target := b.written
	if b.syncErr != nil || (target == b.durable && len(b.pending) == 0 && !b.dirDirty) {
		err := b.syncErr
		b.mu.Unlock()
		return err
	}
	pending, active, dirDirty := b.pending, b.active, b.dirDirty
	b.pending, b.dirDirty = nil, false
	b.mu.Unlock()

	// The syncer owns sealed files from here on: it is the only one that closes them.
	var err error
	for _, f := range pending {
		if serr := fdatasync(f); serr != nil && err == nil {
			err = fmt.Errorf("sync %s: %w", f.Name(), serr)
		}
		_ = f.Close()
	}
	if active != nil && err == nil {
		if serr := fdatasync(active); serr != nil {
			err = fmt.Errorf("sync %s: %w", active.Name(), serr)
		}
	}
	if dirDirty && err == nil {
		err = syncDir(b.segDir)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: nothing written
		// since the last good sync can be called durable again. The error sticks.
		b.syncErr = err
		b.log.Error("buffer sync failed; appended frames are no longer reported durable", "err", err)
		return err
	}
	if b.durable.Less(target) {
		b.durable = target
	}
	close(b.durableCh)
	b.durableCh = make(chan struct{})
	return nil
}

// WaitDurable returns once the ticket's frame is synced to disk, or ctx ends, or the buffer
// closed (ErrClosed) or failed to sync.
func (b *Buffer) WaitDurable(ctx context.Context, t Ticket) error {
	for {
		b.mu.Lock()
		if !b.durable.Less(t.end) {
			b.mu.Unlock()
			return nil
		}
		if b.syncErr != nil {
			err := b.syncErr
			b.mu.Unlock()
			return fmt.Errorf("buffer: %w", err)
		}
		if b.finished {
			b.mu.Unlock()
			return ErrClosed
		}
		ch := b.durableCh
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// syncDir makes created, renamed and deleted directory entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
