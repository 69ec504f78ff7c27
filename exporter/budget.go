package exporter

import "sync/atomic"

// budget bounds the per-pod samples a node exposes (metrics.max_series), shared by every pod
// table. A series that would exceed it is not created, and the refusal is counted; the caller
// gets nil and counts nothing, so a node with too many pods degrades its metrics, not its logs.
type budget struct {
	limit   int64 // 0: no limit
	used    atomic.Int64
	refused atomic.Uint64
}

// take charges n samples, or refuses (and counts it) if that would exceed the limit.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.limit && b.limit > 0 {
		b.used.Add(-n)
		b.refused.Add(1)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }
