package bigquery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/api/option"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"
)

const project = "p"

// psEnv is a pstest server with the records topic, the loader's pull subscription and a
// dead-letter topic with a subscription to read it.
type psEnv struct {
	srv  *pstest.Server
	opts []option.ClientOption
}

func startPubSub(t testing.TB) *psEnv {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	opts := []option.ClientOption{
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	ctx := context.Background()
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, topic := range []string{"logs", "dead"} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(project, topic)}); err != nil {
			t.Fatal(err)
		}
	}
	for sub, topic := range map[string]string{"loader": "logs", "dead-sub": "dead"} {
		if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: subName(project, sub), Topic: topicName(project, topic), AckDeadlineSeconds: 10,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return &psEnv{srv: srv, opts: opts}
}

func (e *psEnv) publish(data string) string {
	return e.srv.Publish(topicName(project, "logs"), []byte(data), map[string]string{"pod": "x"})
}

// deadLetters returns the messages on the dead-letter topic.
func (e *psEnv) deadLetters() []*pstest.Message {
	var out []*pstest.Message
	for _, m := range e.srv.Messages() {
		if m.Topic == topicName(project, "dead") {
			out = append(out, m)
		}
	}
	return out
}

func (e *psEnv) acks(id string) int { return e.srv.Message(id).Acks }

// publishEnvelopes publishes envelopes 0..n-1 and returns their message ids.
func (e *psEnv) publishEnvelopes(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.publish(envelopeJSON(i))
	}
	return ids
}

// allAcked reports whether every message in ids was acked at least once.
func (e *psEnv) allAcked(ids []string) bool {
	for _, id := range ids {
		if e.acks(id) == 0 {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type running struct {
	l      *Loader
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startLoader(t *testing.T, ps *psEnv, storage []option.ClientOption) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := NewLoader(ctx, LoaderOptions{
		Project: project, Subscription: "loader", Dataset: "d", Table: "t",
		DeadLetterTopic: "dead",
		BatchDelay:      5 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
		PubSubOptions:   ps.opts, StorageOptions: storage,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{l: l, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		l.Close()
	})
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func (r *running) rows(result string) float64 {
	return testutil.ToFloat64(r.l.m.rows.WithLabelValues(result))
}

func envelopeJSON(i int) string {
	return fmt.Sprintf(`{"id":"%032x","time":"2026-11-23T03:00:00.123456789Z","stream":"stdout",`+
		`"message":"line %d","source":"pods","tag":"","kubernetes":{"namespace":"shop","pod":"cart-%d",`+
		`"pod_uid":"u","container":"app","node":"n1","labels":{"app":"cart"}},"fields":{"k":%d}}`, i, i, i, i)
}

func TestLoaderAppendsThenAcks(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	ids := ps.publishEnvelopes(3)
	r := startLoader(t, ps, storage)
	waitFor(t, "3 rows and their acks", func() bool {
		return ps.allAcked(ids) && len(fw.stored()) == 3
	})
	rows := fw.stored()
	byMsg := map[string]*dynamicpb.Message{}
	for _, m := range rows {
		byMsg[get(m, "message").String()] = m
	}
	m := byMsg["line 1"]
	if m == nil {
		t.Fatalf("row for line 1 missing; have %v", rows)
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"id"}, fmt.Sprintf("%032x", 1)},
		{[]string{"time"}, time.Date(2026, 11, 23, 3, 0, 0, 123456000, time.UTC).UnixMicro()},
		{[]string{"stream"}, "stdout"},
		{[]string{"source"}, "pods"},
		{[]string{"kubernetes", "namespace"}, "shop"},
		{[]string{"kubernetes", "pod"}, "cart-1"},
		{[]string{"kubernetes", "labels"}, `{"app":"cart"}`},
		{[]string{"fields"}, `{"k":1}`},
		{[]string{"namespace"}, "shop"},
		{[]string{"pod"}, "cart-1"},
	}
	for _, c := range checks {
		if got := get(m, c.path...).Interface(); got != c.want {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	if got := r.rows(resultAppended); got != 3 {
		t.Errorf("rows_total{appended} = %v, want 3", got)
	}
}

func TestLoaderDeadLettersMalformed(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	good := ps.publish(envelopeJSON(7))
	bad := map[string]string{
		ps.publish(`not json`):                                              "malformed envelope",
		ps.publish(`{"id":"a","time":"yesterday"}`):                         "time",
		ps.publish(`{"time":"2026-11-23T03:00:00Z"}`):                       "no id",
		ps.publish(`{"id":"a","time":"2026-11-23T03:00:00Z","fields":[1]}`): "fields is not a JSON object",
	}
	r := startLoader(t, ps, storage)
	waitFor(t, "4 dead letters and 1 row", func() bool {
		return len(ps.deadLetters()) == 4 && len(fw.stored()) == 1 && ps.acks(good) > 0
	})
	for _, dl := range ps.deadLetters() {
		orig := dl.Attributes["tailgate_message_id"]
		want, ok := bad[orig]
		if !ok {
			t.Errorf("dead letter for unexpected message %q", orig)
			continue
		}
		if reason := dl.Attributes[reasonAttr]; !strings.Contains(reason, want) {
			t.Errorf("message %s: reason %q, want it to mention %q", orig, reason, want)
		}
		if dl.Attributes["pod"] != "x" {
			t.Errorf("original attributes not kept: %v", dl.Attributes)
		}
	}
	for id := range bad {
		waitFor(t, "ack of dead-lettered "+id, func() bool { return ps.acks(id) > 0 })
	}
	if got := r.rows(resultDeadLetter); got != 4 {
		t.Errorf("rows_total{dead_letter} = %v, want 4", got)
	}
}

func TestLoaderRowErrorDeadLettersThatRow(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	fw.reply = func(n int, rows []*dynamicpb.Message) (*storagepb.AppendRowsResponse, error) {
		for i, row := range rows {
			if get(row, "message").String() == "line 2" {
				return &storagepb.AppendRowsResponse{
					Response: &storagepb.AppendRowsResponse_Error{Error: &rpcstatus.Status{
						Code: int32(codes.InvalidArgument), Message: "rows rejected"}},
					RowErrors: []*storagepb.RowError{{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: "bad field"}},
				}, nil
			}
		}
		return nil, nil
	}
	ids := ps.publishEnvelopes(4)
	r := startLoader(t, ps, storage)
	waitFor(t, "3 rows, 1 dead letter, all acked", func() bool {
		return ps.allAcked(ids) && len(fw.stored()) == 3 && len(ps.deadLetters()) == 1
	})
	dl := ps.deadLetters()[0]
	if dl.Attributes["tailgate_message_id"] != ids[2] || !strings.Contains(dl.Attributes[reasonAttr], "bad field") {
		t.Errorf("dead letter %v, want message %s with BigQuery's reason", dl.Attributes, ids[2])
	}
	for _, row := range fw.stored() {
		if get(row, "message").String() == "line 2" {
			t.Error("rejected row was stored")
		}
	}
	if got := r.rows(resultAppended); got != 3 {
		t.Errorf("rows_total{appended} = %v, want 3", got)
	}
}

func TestLoaderRetriesUnavailable(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	fw.reply = func(n int, _ []*dynamicpb.Message) (*storagepb.AppendRowsResponse, error) {
		if n == 0 {
			return nil, status.Error(codes.Unavailable, "backend restarting")
		}
		return nil, nil
	}
	id := ps.publish(envelopeJSON(1))
	startLoader(t, ps, storage)
	waitFor(t, "row appended after the retry and acked", func() bool {
		return len(fw.stored()) == 1 && ps.acks(id) > 0
	})
}

func TestLoaderAcksOnlyAfterAppend(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	fw.reply = func(n int, _ []*dynamicpb.Message) (*storagepb.AppendRowsResponse, error) {
		if n == 0 {
			once.Do(func() { close(arrived) })
			<-release
		}
		return nil, nil
	}
	id := ps.publish(envelopeJSON(1))
	startLoader(t, ps, storage)
	<-arrived
	if got := ps.acks(id); got != 0 {
		t.Fatalf("message acked %d times before its append was answered", got)
	}
	close(release)
	waitFor(t, "ack after the append", func() bool { return ps.acks(id) > 0 })
}

func TestLoaderShutdownFinishesInFlightAppend(t *testing.T) {
	ps := startPubSub(t)
	fw, storage := startFakeWrite(t)
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	fw.reply = func(n int, _ []*dynamicpb.Message) (*storagepb.AppendRowsResponse, error) {
		once.Do(func() { close(arrived) })
		<-release
		return nil, nil
	}
	id := ps.publish(envelopeJSON(1))
	r := startLoader(t, ps, storage)
	<-arrived
	r.cancel() // SIGTERM while the append is in flight
	close(release)
	r.stop(t)
	t.Logf("acks right after Run returned: %d", ps.acks(id))
	waitFor(t, "ack of the in-flight append's message", func() bool { return ps.acks(id) > 0 })
	if len(fw.stored()) != 1 {
		t.Errorf("stored %d rows, want 1", len(fw.stored()))
	}
}

func TestDeployCopyOfSchema(t *testing.T) {
	deploy, err := os.ReadFile(filepath.Join("..", "..", "deploy", "bigquery", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(deploy) != string(schemaJSON) {
		t.Error("deploy/bigquery/schema.json differs from sinks/bigquery/schema.json: run go generate ./sinks/bigquery")
	}
}
