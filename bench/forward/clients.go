package main

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

// result is what one client achieved: records acknowledged, and one latency per ack (per
// record for the fluent-logger-golang modes, per chunk for packed).
type result struct {
	acked     int64
	latencies []time.Duration
	err       error
}

// load describes the work of one client.
type load struct {
	client   int
	records  int64
	size     int
	deadline time.Time // stop sending at this time even if records are left
	addr     string
}

func (l load) fluentConfig() (fluent.Config, error) {
	host, port, err := net.SplitHostPort(l.addr)
	if err != nil {
		return fluent.Config{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fluent.Config{}, err
	}
	return fluent.Config{
		FluentHost:         host,
		FluentPort:         p,
		RequestAck:         true,
		SubSecondPrecision: true,
		Timeout:            10 * time.Second,
		MaxRetry:           3,
		RetryWait:          100,
	}, nil
}

// runSync posts one record per call with a sync client: Post returns after the ack, so the
// latency of each Post is the ack latency.
func runSync(l load) result {
	cfg, err := l.fluentConfig()
	if err != nil {
		return result{err: err}
	}
	f, err := fluent.New(cfg)
	if err != nil {
		return result{err: fmt.Errorf("client %d: %w", l.client, err)}
	}
	defer f.Close()
	rec := newRecord(l.client, l.size)
	res := result{latencies: make([]time.Duration, 0, min(l.records, 1<<20))}
	for i := int64(0); i < l.records && time.Now().Before(l.deadline); i++ {
		rec.seq = i
		start := time.Now()
		if err := f.Post("bench.forward", rec); err != nil {
			res.err = fmt.Errorf("client %d: post %d: %w", l.client, i, err)
			return res
		}
		res.latencies = append(res.latencies, time.Since(start))
		res.acked++
	}
	return res
}

// runAsync queues records into an async client with acks. The client sends its queue one
// record at a time and waits for each ack before the next write, so while the queue is not
// empty the time between two result callbacks is the ack round trip of one record.
func runAsync(l load) result {
	cfg, err := l.fluentConfig()
	if err != nil {
		return result{err: err}
	}
	var (
		mu   sync.Mutex
		res  = result{latencies: make([]time.Duration, 0, min(l.records, 1<<20))}
		last time.Time
	)
	cfg.Async = true
	cfg.BufferLimit = 16 // small: Close drains the queue at one record per ack
	cfg.AsyncResultCallback = func(_ []byte, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if res.err == nil {
				res.err = fmt.Errorf("client %d: async send: %w", l.client, err)
			}
			return
		}
		if !last.IsZero() {
			res.latencies = append(res.latencies, now.Sub(last))
		}
		last = now
		res.acked++
	}
	f, err := fluent.New(cfg)
	if err != nil {
		return result{err: fmt.Errorf("client %d: %w", l.client, err)}
	}
	rec := newRecord(l.client, l.size)
	mu.Lock()
	last = time.Now()
	mu.Unlock()
	for i := int64(0); i < l.records && time.Now().Before(l.deadline); {
		rec.seq = i
		if err := f.Post("bench.forward", rec); err != nil {
			// The queue is full (BufferLimit): the client is slower than we post.
			time.Sleep(time.Millisecond)
			continue
		}
		i++
	}
	f.Close() // sends what is queued, waiting for each ack
	mu.Lock()
	defer mu.Unlock()
	return res
}
