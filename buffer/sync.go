package buffer

import (
	"context"
	"fmt"
	"os"
	"time"
)

// The group commit. One fdatasync covers every frame appended before it started. A commit
// starts:
//   - every Options.Sync when something is unsynced: the longest a frame stays in the page
//     cache when nobody waits for it (the tail input never waits: it gets no extra fsyncs);
//   - on demand, as soon as the disk is free, when a WaitDurable caller (a forward ack) waits
//     for a frame the running commit does not cover: if none runs it starts now, and every
//     waiter that arrives while one runs shares the next one (the leader pattern: one fsync
//     per round, however many waiters);
//   - after every Append with Sync == 0 ("always"), with the same sharing.
//
// The requests are tokens in syncReq (capacity 1, so waiters never block). A token is sent
// under b.mu only for a frame beyond the running commit's target, and syncOnce drops tokens
// sent before it read its target under b.mu: each commit those waiters asked for covers them
// all, and no token causes an fsync that covers no waiter.

// Commit triggers, the label of tailgate_buffer_syncs_total.
const (
	TriggerInterval = "interval" // the Sync timer
	TriggerWaiter   = "waiter"   // a WaitDurable caller, or an Append under Sync == 0
)

func (b *Buffer) syncLoop() {
	defer b.wg.Done()
	var tick <-chan time.Time
	if b.opts.Sync > 0 {
		t := time.NewTicker(b.opts.Sync)
		defer t.Stop()
		tick = t.C
	}
	for {
		trigger := TriggerInterval
		select {
		case <-b.done:
			return
		case <-tick:
		case <-b.syncReq:
			trigger = TriggerWaiter
		}
		_ = b.sync(trigger)
	}
}

// requestSyncLocked asks the sync loop for a commit that covers end, unless the running one
// already does. Caller holds b.mu.
func (b *Buffer) requestSyncLocked(end Position) {
	if b.syncing && !b.syncTarget.Less(end) {
		return
	}
	select {
	case b.syncReq <- struct{}{}:
	default: // a request is pending: the commit it starts will cover end too
	}
}

// syncOnce makes everything written so far durable: sealed segments not yet synced, the
// active one, and the segment directory when files were created or deleted.
func (b *Buffer) syncOnce() error { return b.sync(TriggerInterval) }

func (b *Buffer) sync(trigger string) error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()

	b.mu.Lock()
	target := b.written
	select {
	case <-b.syncReq: // asked for frames up to b.written at most: this commit covers them
	default:
	}
	if b.syncErr != nil || (target == b.durable && len(b.pending) == 0 && !b.dirDirty) {
		err := b.syncErr
		b.mu.Unlock()
		return err
	}
	pending, active, dirDirty := b.pending, b.active, b.dirDirty
	b.pending, b.dirDirty = nil, false
	b.syncing, b.syncTarget = true, target
	b.mu.Unlock()

	if b.beforeSync != nil {
		b.beforeSync()
	}
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
	b.syncing = false
	if trigger == TriggerWaiter {
		b.waiterSyncs++
	} else {
		b.intervalSyncs++
	}
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: nothing written
		// since the last good sync can be called durable again. The error sticks.
		b.syncErr = err
		b.log.Error("buffer sync failed; appended frames are no longer reported durable", "err", err)
		close(b.durableCh)
		b.durableCh = make(chan struct{})
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
// closed (ErrClosed) or failed to sync. Waiting is what asks for a commit: the frame is
// synced as soon as the disk is free, not at the next Sync tick.
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
		b.requestSyncLocked(t.end)
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
