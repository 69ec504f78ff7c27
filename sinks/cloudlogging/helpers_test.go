package cloudlogging

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging/loggingfake"
)

const (
	testProject  = "tailgate-test"
	testLocation = "europe-west1-b"
	testCluster  = "prod-1"
)

// testNow is the clock of the tests' records; the fake's clock is set to it.
var testNow = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func startFake(t testing.TB) *loggingfake.Server {
	f := loggingfake.Start(t)
	return f
}

// newTestSink returns a sink writing to the fake f.
func newTestSink(t testing.TB, f *loggingfake.Server, opts Options) *Sink {
	t.Helper()
	if opts.Location == "" {
		opts.Location = testLocation
	}
	if opts.ClusterName == "" {
		opts.ClusterName = testCluster
	}
	if opts.NodeName == "" {
		opts.NodeName = "node-1"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(context.Background(), collector.SinkConfig{
		Name: "logging", Type: "cloud_logging", Project: testProject, Endpoint: f.Addr, Insecure: true,
	}, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	s.clock = func() time.Time { return testNow }
	f.Now = s.clock
	return s
}

// shopKube is the metadata of the test container.
func shopKube() *collector.Kube {
	return &collector.Kube{
		Namespace: "shop", Pod: "cart-7d9f", PodUID: "uid-1", Container: "app", Node: "node-1",
		Labels:   map[string]string{"app": "cart", "app.kubernetes.io/version": "1.2"},
		Workload: "cart", WorkloadKind: "Deployment",
	}
}

var shopSource = collector.NewSource(7, "pods", shopKube())

// rec returns a record of the shop container at testNow + i ms.
func rec(i int, stream collector.Stream, msg string) *collector.Record {
	return &collector.Record{
		Source:  shopSource,
		Time:    testNow.Add(time.Duration(i) * time.Millisecond).UnixNano(),
		ID:      collector.MakeID(7, uint64(1000+i)),
		Stream:  stream,
		Message: []byte(msg),
	}
}

func send(t testing.TB, s *Sink, recs ...*collector.Record) error {
	t.Helper()
	return s.Send(context.Background(), &collector.SinkBatch{Records: recs})
}

func sizeOf(e *loggingpb.LogEntry) int { return proto.Size(e) }

func entryJSON(e *loggingpb.LogEntry) string {
	b, err := protojson.MarshalOptions{Multiline: false}.Marshal(e)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
