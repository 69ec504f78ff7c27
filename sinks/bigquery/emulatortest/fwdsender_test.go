//go:build !race

package emulatortest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

// fwdSender posts numbered records with a real fluent-logger-golang client, acks on, until
// stopped. Post returns nil only once the agent acknowledged the chunk (it was durable in the
// buffer), so those records are expected. The client retries a chunk, same chunk id, while
// it can reconnect; its retries are short here, so while the agent is down Post fails. A
// record whose Post failed may or may not have been buffered (an ack lost at a kill): the
// test neither expects nor forbids it, and sends the event again as a new record
// (retry_of names the one it replaces) until one is acknowledged.
type fwdSender struct {
	name     string
	json     bool // MarshalAsJSON: the forward protocol's JSON form
	addrPort int

	accepted atomic.Int64
	mu       sync.Mutex
	want     map[string]wantRecord
	maybe    map[string]bool // messages whose Post failed
}

func newFwdSender(name string, json bool, port int) *fwdSender {
	return &fwdSender{name: name, json: json, addrPort: port, want: map[string]wantRecord{}, maybe: map[string]bool{}}
}

func (s *fwdSender) tag() string { return "app." + s.name }

// run sends until stop is closed; it returns an error only when the client cannot be made.
func (s *fwdSender) run(stop <-chan struct{}) error {
	f, err := fluent.New(fluent.Config{
		FluentHost: "127.0.0.1", FluentPort: s.addrPort,
		RequestAck: true, MarshalAsJSON: s.json, SubSecondPrecision: !s.json,
		Timeout: 5 * time.Second, WriteTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		// A few quick reconnects (well under a second): an agent restart outlasts them.
		MaxRetry: 4, RetryWait: 20, MaxRetryWait: 100,
	})
	if err != nil {
		return fmt.Errorf("%s: fluent client: %w", s.name, err)
	}
	defer f.Close()
	retryOf := -1
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return nil
		default:
		}
		msg := fmt.Sprintf("%s record %06d", s.name, seq)
		rec := map[string]any{"client": s.name, "seq": seq, "message": msg}
		if retryOf >= 0 {
			rec["retry_of"] = retryOf
		}
		err := f.Post(s.tag(), rec)
		s.mu.Lock()
		if err != nil {
			s.maybe[msg] = true
			if retryOf < 0 {
				retryOf = seq
			}
		} else {
			s.want[msg] = wantRecord{source: "apps", stream: "app", tag: s.tag()}
			retryOf = -1
		}
		s.mu.Unlock()
		if err == nil {
			s.accepted.Add(1)
		}
		// Acks take one fsync now (commit on demand), so an unpaced client posts ~1,500 records
		// a second: more than the emulator (sqlite) can append and still answer the dedup query
		// within the test's deadline. 20 a second per client keeps the chain's volume where the
		// test was sized.
		select {
		case <-stop:
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// failed is how many Posts returned an error.
func (s *fwdSender) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.maybe)
}
