package buffer

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A waiter does not wait for the Sync interval: its wait starts a commit.
func TestWaitDurableCommitsOnDemand(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: time.Hour})
	defer closeT(t, b)
	a := appendN(t, b, 0, 3, 100)
	if err := b.WaitDurable(testCtx(t), a[2].ticket); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
	st := b.Stats()
	if st.Durable.Less(a[2].ticket.end) {
		t.Fatalf("durable %v before ticket %v", st.Durable, a[2].ticket.end)
	}
	if st.WaiterSyncs != 1 || st.IntervalSyncs != 0 {
		t.Fatalf("commits: %d on demand, %d by interval; want 1 and 0", st.WaiterSyncs, st.IntervalSyncs)
	}
	// A frame already durable asks for nothing.
	if err := b.WaitDurable(testCtx(t), a[0].ticket); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.WaiterSyncs != 1 {
		t.Fatalf("waiting on a durable frame started a commit (%d)", st.WaiterSyncs)
	}
}

// Appends nobody waits for (the tail input) cost no fsync before the Sync interval.
func TestNoWaiterNoCommit(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: time.Hour})
	a := appendN(t, b, 0, 200, 1000)
	st := b.Stats()
	if st.WaiterSyncs != 0 || st.IntervalSyncs != 0 {
		t.Fatalf("commits without a waiter: %d on demand, %d by interval", st.WaiterSyncs, st.IntervalSyncs)
	}
	if !st.Durable.Less(a[0].ticket.end) {
		t.Fatalf("frames durable (%v) with no commit", st.Durable)
	}
	closeT(t, b) // Close still makes them durable
}

// With nobody waiting, the Sync interval still commits: appended frames become durable within
// about one interval, and the commit counts as an interval commit, not an on-demand one.
func TestIntervalCommitsWithoutWaiter(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: 20 * time.Millisecond})
	defer closeT(t, b)
	a := appendN(t, b, 0, 50, 1000)
	last := a[len(a)-1].ticket.end
	deadline := time.Now().Add(10 * time.Second) // a bound for a loaded machine, not a timing claim
	for {
		st := b.Stats()
		if !st.Durable.Less(last) {
			if st.IntervalSyncs == 0 || st.WaiterSyncs != 0 {
				t.Fatalf("durable with %d interval and %d on-demand commits; want >0 and 0", st.IntervalSyncs, st.WaiterSyncs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interval commit: durable %v, written %v, %d interval commits", st.Durable, last, st.IntervalSyncs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The leader pattern: waiters that arrive while a commit runs share the next one, however many
// they are; a frame the running commit covers asks for no other.
func TestWaitersShareTheNextCommit(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: time.Hour})
	defer closeT(t, b)
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	var once sync.Once
	b.beforeSync = func() {
		entered <- struct{}{}
		once.Do(func() { <-release }) // hold the first commit until the others have appended
	}
	first := appendN(t, b, 0, 1, 100)
	done := make(chan error, 20)
	go func() { done <- b.WaitDurable(testCtx(t), first[0].ticket) }()
	<-entered // commit 1 runs, covering frame 0 only

	const waiters = 10
	later := appendN(t, b, 1, waiters, 100)
	for _, a := range later {
		go func() { done <- b.WaitDurable(testCtx(t), a.ticket) }()
	}
	// A frame commit 1 covers: waiting on it while commit 1 runs asks for nothing more.
	go func() { done <- b.WaitDurable(testCtx(t), first[0].ticket) }()
	close(release)
	for range waiters + 2 {
		if err := <-done; err != nil {
			t.Fatalf("WaitDurable: %v", err)
		}
	}
	if st := b.Stats(); st.WaiterSyncs != 2 {
		t.Fatalf("%d waiters made %d commits, want 2 (the running one and one shared)", waiters+2, st.WaiterSyncs)
	}
}

// sync: always commits every append without anyone waiting, sharing commits the same way.
func TestSyncAlwaysNeedsNoWaiter(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: 0})
	defer closeT(t, b)
	a := appendN(t, b, 0, 50, 100)
	ctx := testCtx(t)
	for b.Stats().Durable.Less(a[49].ticket.end) {
		select {
		case <-ctx.Done():
			t.Fatal("appends under sync: always never became durable without a waiter")
		case <-time.After(time.Millisecond):
		}
	}
	if st := b.Stats(); st.WaiterSyncs == 0 || st.WaiterSyncs > 50 {
		t.Fatalf("sync always: %d commits for 50 appends", st.WaiterSyncs)
	}
}

// A failed commit wakes its waiters with the error instead of leaving them to their deadline.
func TestCommitFailureWakesWaiters(t *testing.T) {
	b := openT(t, t.TempDir(), Options{Sync: time.Hour})
	a := appendN(t, b, 0, 1, 100)
	b.mu.Lock()
	b.active.Close() // the commit's fdatasync now fails with EBADF
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitDurable(ctx, a[0].ticket); err == nil || ctx.Err() != nil {
		t.Fatalf("WaitDurable after a failed commit = %v (ctx %v), want the sync error", err, ctx.Err())
	}
	b.Close()
}
