package cloudwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch/cwfake"
)

// startFake starts the fake CloudWatch Logs server on an httptest listener.
func startFake(t *testing.T, opts cwfake.Options) (*cwfake.Server, string) {
	t.Helper()
	opts.KeepMessages = true
	fake := cwfake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

// testConfig is a cloudwatch sink config against url; edit adjusts it.
func testConfig(url string, edit func(*collector.SinkConfig)) collector.SinkConfig {
	cfg := collector.SinkConfig{
		Name: "cw", Type: "cloudwatch", Region: "us-east-1", Endpoint: url,
		LogGroup: "/k8s/{namespace}", LogStream: "{pod}/{container}",
	}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// newTestSink builds a sink that signs with static keys (the fake checks SigV4 headers).
func newTestSink(t *testing.T, cfg collector.SinkConfig, reg prometheus.Registerer) *Sink {
	t.Helper()
	opts := Options{Registerer: reg, Logger: slog.New(slog.DiscardHandler), DeniedRetry: time.Second}
	if !cfg.Insecure {
		opts.Credentials = credentials.NewStaticCredentialsProvider("AKIDTAILGATETEST", "test-secret", "")
	}
	s, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// source returns a tailed container's source.
func source(key uint64, ns, pod, container string, labels map[string]string) *collector.Source {
	return collector.NewSource(key, "pods", &collector.Kube{Namespace: ns, Pod: pod, Container: container, Node: "n1", Labels: labels})
}

// want is what the fake must hold for one record.
type want struct {
	group, stream, message string
	ms                     int64
}

// deliver hands recs to s the way the pipeline does: batches of one destination key within
// Limits (records, bytes by RecordCost), each sent until accepted, resending only the records
// a RecordErrors puts in Retry. It fails the test on any record failure and returns the number
// of Send calls.
func deliver(t *testing.T, s *Sink, recs []*collector.Record) int {
	t.Helper()
	l := s.Limits()
	type pending struct {
		key   string
		recs  []*collector.Record
		bytes int
	}
	var batches []*pending
	open := map[string]*pending{}
	for _, r := range recs {
		key := string(s.AppendKey(nil, r))
		b := open[key]
		cost := l.RecordCost(r)
		if b != nil && (len(b.recs) >= l.MaxRecords || b.bytes+cost > l.MaxBytes) {
			b = nil
		}
		if b == nil {
			b = &pending{key: key}
			open[key] = b
			batches = append(batches, b)
		}
		b.recs = append(b.recs, r)
		b.bytes += cost
	}
	sends := 0
	for i, b := range batches {
		batch := &collector.SinkBatch{Records: b.recs, Key: b.key, Seq: uint64(i)}
		for attempt := 0; ; attempt++ {
			if attempt > 1000 {
				t.Fatalf("batch %d not delivered after %d attempts", i, attempt)
			}
			before := slices.Clone(batch.Records)
			err := s.Send(context.Background(), batch)
			sends++
			if !slices.Equal(before, batch.Records) {
				t.Fatalf("Send reordered or changed b.Records")
			}
			if err == nil {
				break
			}
			var re *collector.RecordErrors
			if !errors.As(err, &re) {
				if collector.IsPermanent(err) {
					t.Fatalf("batch %d failed permanently: %v", i, err)
				}
				continue // the whole batch again
			}
			if len(re.Failed) > 0 {
				t.Fatalf("batch %d: %d records failed: %v", i, len(re.Failed), re)
			}
			retry := make([]*collector.Record, 0, len(re.Retry))
			for _, e := range re.Retry {
				retry = append(retry, batch.Records[e.Index])
			}
			batch = &collector.SinkBatch{Records: retry, Key: b.key, Seq: uint64(i)}
		}
	}
	return sends
}

// checkStored asserts that the fake holds exactly the wanted events: per stream, the same
// messages and timestamps, each once.
func checkStored(t *testing.T, fake *cwfake.Server, wants []want) {
	t.Helper()
	byStream := map[string][]want{}
	for _, w := range wants {
		k := w.group + "\x00" + w.stream
		byStream[k] = append(byStream[k], w)
	}
	streams := fake.Streams()
	if len(streams) != len(byStream) {
		t.Errorf("fake has %d streams, want %d: %q", len(streams), len(byStream), streams)
	}
	for k, ws := range byStream {
		g, st, _ := splitKey(k)
		got := fake.Events(g, st)
		slices.SortFunc(ws, func(a, b want) int { return cmp.Or(cmp.Compare(a.ms, b.ms), strings.Compare(a.message, b.message)) })
		if len(got) != len(ws) {
			t.Errorf("%s/%s: %d events stored, want %d", g, st, len(got), len(ws))
			continue
		}
		// The stream must hold the wanted events, each once (each request's events in time
		// order is checked by the fake, which refuses a request out of order).
		slices.SortFunc(got, func(a, b cwfake.Event) int {
			return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.Message, b.Message))
		})
		for i := range ws {
			if got[i].Message != ws[i].message || got[i].Timestamp != ws[i].ms {
				t.Errorf("%s/%s event %d: got (%d, %.60q), want (%d, %.60q)", g, st, i,
					got[i].Timestamp, got[i].Message, ws[i].ms, ws[i].message)
				break
			}
		}
	}
	st := fake.Stats()
	if st.Duplicates != 0 {
		t.Errorf("fake stored %d duplicate events", st.Duplicates)
	}
	if n := st.Errors["InvalidParameterException"] + st.Errors["SerializationException"]; n != 0 {
		t.Errorf("fake refused %d requests as invalid: the sink broke a limit (%v)", n, st.Errors)
	}
}

func msg(format string, args ...any) []byte { return []byte(fmt.Sprintf(format, args...)) }
