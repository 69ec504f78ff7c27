package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestFileSinkWritesEnvelopes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
	s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "ns", Pod: "p", Container: "c"})
	recs := []*collector.Record{
		{Source: src, Time: 1, ID: collector.MakeID(1, 0), Stream: collector.StreamStdout, Message: []byte("one")},
		{Source: src, Time: 2, ID: collector.MakeID(1, 4), Stream: collector.StreamStderr, Message: []byte("two \"quoted\"")},
	}
	for i := 0; i < 3; i++ {
		if err := s.Send(context.Background(), &collector.SinkBatch{Records: recs, Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 3; i++ {
		for _, r := range recs {
			want.Write(r.AppendJSON(nil))
			want.WriteByte('\n')
		}
	}
	if !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("file holds\n%s\nwant\n%s", data, want.Bytes())
	}
	err = s.Send(context.Background(), &collector.SinkBatch{Records: recs})
	if !collector.IsPermanent(err) || !errors.Is(err, collector.ErrClosed) {
		t.Fatalf("Send after Close = %v, want a permanent ErrClosed", err)
	}
}

func TestFileSinkAppendsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	rec := []*collector.Record{{Message: []byte("x")}}
	for i := 0; i < 2; i++ {
		s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), &collector.SinkBatch{Records: rec}); err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Fatalf("%d lines after two runs, want 2 (append, not truncate)", n)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(collector.SinkConfig{Name: "x", Type: "pubsub"}); err == nil {
		t.Error("file.New accepted a pubsub config")
	}
	if _, err := New(collector.SinkConfig{Name: "x", Type: "file", Path: "/proc/nope/out.jsonl"}); err == nil {
		t.Error("file.New accepted an unwritable path")
	}
	if s, err := New(collector.SinkConfig{Name: "x", Type: "stdout"}); err != nil || s.Name() != "x" {
		t.Errorf("stdout sink: %v", err)
	}
}

func BenchmarkSend(b *testing.B) {
	s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: filepath.Join(b.TempDir(), "out.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "shop", Pod: "cart-7d9f8b6c5-x2x9k", Container: "app", Node: "node-1"})
	msg := []byte(`{"level":"info","msg":"handled request","path":"/api/v1/cart/items","status":200,"latency_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	batch := &collector.SinkBatch{Records: make([]*collector.Record, 4096)}
	for i := range batch.Records {
		batch.Records[i] = &collector.Record{Source: src, Time: int64(i), ID: collector.MakeID(1, uint64(i)), Stream: collector.StreamStdout, Message: msg}
	}
	b.SetBytes(int64(len(msg) * len(batch.Records)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTornLastLineIsCut(t *testing.T) {
	f := func(before, after string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "out.jsonl")
		os.WriteFile(path, []byte(before), 0o644)
		s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: path})
		if err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
		if got, _ := os.ReadFile(path); string(got) != after {
			t.Errorf("%q became %q, want %q", before, got, after)
		}
	}
	f("", "")
	f("{\"a\":1}\n", "{\"a\":1}\n")
	f("{\"a\":1}\n{\"b\":", "{\"a\":1}\n")
	f("{\"torn", "")
	f(strings.Repeat("x", 100<<10)+"\n"+strings.Repeat("y", 70<<10), strings.Repeat("x", 100<<10)+"\n")
}

func TestDevNull(t *testing.T) {
	s, err := New(collector.SinkConfig{Name: "null", Type: "file", Path: os.DevNull})
	if err != nil {
		t.Fatal(err)
	}
	recs := []*collector.Record{{Message: []byte("x")}}
	for i := 0; i < 3; i++ {
		if err := s.Send(context.Background(), &collector.SinkBatch{Records: recs}); err != nil {
			t.Fatalf("send to /dev/null: %v", err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close /dev/null: %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: filepath.Join(t.TempDir(), "o.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func batchOf(src *collector.Source, seq uint64, n int) *collector.SinkBatch {
	b := &collector.SinkBatch{Seq: seq}
	for i := range n {
		b.Records = append(b.Records, &collector.Record{Source: src, ID: collector.MakeID(seq, uint64(i)),
			Message: []byte(fmt.Sprintf("batch %d line %d", seq, i))})
	}
	return b
}

func linesOf(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		var e struct{ Message string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, e.Message)
	}
	return out
}

// TestFailedSyncFailsItsBatchesOnce: a sync that fails (EIO) fails the batches written since the
// last good sync, once; the file is cut back, and their retries are written once, in order.
func TestFailedSyncFailsItsBatchesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	src := collector.NewSource(1, "pods", nil)
	ctx := context.Background()
	if err := s.Send(ctx, batchOf(src, 1, 3)); err != nil {
		t.Fatal(err)
	}
	// The next sync blocks until batch 3 is written too, then fails: both batches are taken back.
	release := make(chan struct{})
	var calls atomic.Int32
	s.mu.Lock()
	s.sync = func(f *os.File, upTo int64) error {
		if calls.Add(1) == 1 {
			<-release
			return syscall.EIO
		}
		return syncAndEvict(f, upTo)
	}
	s.mu.Unlock()
	errs := make(chan error, 2)
	go func() { errs <- s.Send(ctx, batchOf(src, 2, 2)) }()
	waitUntil(t, func() bool { return calls.Load() == 1 })
	go func() { errs <- s.Send(ctx, batchOf(src, 3, 2)) }()
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.unsynced) == 2 })
	close(release)
	for range 2 {
		if err := <-errs; !errors.Is(err, syscall.EIO) {
			t.Fatalf("Send of a batch whose sync failed = %v, want EIO", err)
		}
	}
	if got := linesOf(t, path); len(got) != 3 {
		t.Fatalf("after the failed sync the file holds %v, want batch 1 only", got)
	}
	// The pipeline retries both (in any order): they are written once each, in Seq order.
	go func() { errs <- s.Send(ctx, batchOf(src, 3, 2)) }()
	go func() { errs <- s.Send(ctx, batchOf(src, 2, 2)) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("retry: %v", err)
		}
	}
	if err := s.Send(ctx, batchOf(src, 4, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"batch 1 line 0", "batch 1 line 1", "batch 1 line 2", "batch 2 line 0", "batch 2 line 1",
		"batch 3 line 0", "batch 3 line 1", "batch 4 line 0"}
	if got := linesOf(t, path); !slices.Equal(got, want) {
		t.Errorf("file holds\n%v\nwant\n%v", got, want)
	}
}

// TestBatchesWrittenInSeqOrder: batches in flight together are written in the order the pipeline
// cut them, whatever order their Sends start in.
func TestBatchesWrittenInSeqOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := New(collector.SinkConfig{Name: "local", Type: "file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	src := collector.NewSource(1, "pods", nil)
	errs := make(chan error, 5)
	for _, seq := range []uint64{5, 3, 1, 4, 2} {
		go func() { errs <- s.Send(context.Background(), batchOf(src, seq, 1)) }()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.Close(context.Background())
	want := []string{"batch 1 line 0", "batch 2 line 0", "batch 3 line 0", "batch 4 line 0", "batch 5 line 0"}
	if got := linesOf(t, path); !slices.Equal(got, want) {
		t.Errorf("file holds %v, want %v", got, want)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
