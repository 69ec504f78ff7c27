package pubsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/buffer"
	"github.com/tailgate-dev/tailgate/collector"
)

const (
	testProject = "tailgate-test"
	testTopic   = "logs"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newPstest starts an in-process fake with the test topic.
func newPstest(t *testing.T, opts ...pstest.ServerReactorOption) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer(opts...)
	t.Cleanup(func() { srv.Close() })
	_, err := srv.GServer.CreateTopic(context.Background(),
		&pb.Topic{Name: "projects/" + testProject + "/topics/" + testTopic})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	return srv
}

// newTestSink returns a sink publishing to addr in plaintext; it is closed at cleanup.
func newTestSink(t testing.TB, addr, topic string, opts Options) *Sink {
	t.Helper()
	cfg := collector.SinkConfig{Name: "pubsub", Type: "pubsub", Project: testProject, Topic: topic,
		Endpoint: addr, Insecure: true}
	s, err := NewWithOptions(context.Background(), cfg, opts, quietLog())
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

var testSource = collector.NewSource(7, "pods", &collector.Kube{
	Namespace: "shop", Pod: "cart-7d9f", PodUID: "0b6c", Container: "app", Node: "n1",
	Labels: map[string]string{"app": "cart"},
})

// makeRecords returns n records whose messages are "<prefix> <i>" padded to size bytes.
func makeRecords(n, size int, prefix string) []*collector.Record {
	rs := make([]*collector.Record, n)
	for i := range rs {
		msg := fmt.Sprintf("%s %d ", prefix, i)
		if len(msg) < size {
			msg += strings.Repeat("x", size-len(msg))
		}
		rs[i] = &collector.Record{
			Source:  testSource,
			Time:    time.Date(2026, 11, 23, 3, 0, 0, i, time.UTC).UnixNano(),
			ID:      collector.MakeID(uint64(len(prefix)), uint64(i)),
			Stream:  collector.StreamStdout,
			Message: []byte(msg),
		}
	}
	return rs
}

func send(t *testing.T, s *Sink, rs []*collector.Record) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Send(ctx, &collector.SinkBatch{Records: rs, Seq: 1})
}

// byID indexes the fake's messages by their id attribute.
func byID(msgs []*pstest.Message) map[string]*pstest.Message {
	m := make(map[string]*pstest.Message, len(msgs))
	for _, msg := range msgs {
		m[msg.Attributes["id"]] = msg
	}
	return m
}

// startPipeline runs the real pipeline (disk buffer, batching, MaxRecordBytes, retries, dead
// letters) with s as its only sink; it is stopped at cleanup. Records are emitted by input "in".
func startPipeline(t *testing.T, s collector.Sink) (*collector.Pipeline, *collector.Metrics) {
	t.Helper()
	m := collector.NewMetrics(prometheus.NewRegistry())
	p, err := collector.NewPipeline(collector.PipelineOptions{
		DataDir: t.TempDir(),
		Buffer:  buffer.Options{MaxBytes: 256 << 20, SegmentBytes: 32 << 20, Sync: 10 * time.Millisecond},
		Sinks:   []collector.Sink{s},
		Metrics: m,
		Logger:  quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return p, m
}

// emit writes rs to the pipeline's buffer as one batch of input "in".
func emit(t *testing.T, p *collector.Pipeline, rs []*collector.Record) {
	t.Helper()
	b := &collector.Batch{}
	for _, r := range rs {
		b.Records = append(b.Records, *r)
	}
	if _, err := p.Emitter("in").Emit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func asRecordErrors(err error, re **collector.RecordErrors) bool { return errors.As(err, re) }
