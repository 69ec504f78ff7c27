package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestSendPublishesEnvelopeAndAttributes(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{})
	rs := makeRecords(3, 40, "hello")
	rs[1].Stream = collector.StreamStderr
	rs[2].Fields = []byte(`{"level":"info"}`)
	rs[2].Message = []byte("quote \" tab \t newline \n bad \xff utf8 é")
	if err := send(t, s, rs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := byID(srv.Messages())
	if len(got) != len(rs) {
		t.Fatalf("server has %d messages, want %d", len(got), len(rs))
	}
	for _, r := range rs {
		m := got[r.ID.String()]
		if m == nil {
			t.Fatalf("no message with id %s", r.ID)
		}
		if want := r.AppendJSON(nil); !bytes.Equal(m.Data, want) {
			t.Errorf("data\n got %s\nwant %s", m.Data, want)
		}
		wantAttrs := map[string]string{"namespace": "shop", "pod": "cart-7d9f", "container": "app",
			"stream": r.Stream.String(), "source": "pods", "id": r.ID.String()}
		if !maps.Equal(m.Attributes, wantAttrs) {
			t.Errorf("attributes %v, want %v", m.Attributes, wantAttrs)
		}
		if m.OrderingKey != "" {
			t.Errorf("ordering key %q without a template", m.OrderingKey)
		}
	}
}

func TestSendRecordWithoutMetadata(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{})
	r := &collector.Record{ID: collector.MakeID(1, 2), Stream: collector.StreamApp, Message: []byte("m")}
	if err := send(t, s, []*collector.Record{r}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Messages()[0]
	if want := r.AppendJSON(nil); !bytes.Equal(m.Data, want) {
		t.Errorf("data %s, want %s", m.Data, want)
	}
	if m.Attributes["namespace"] != "" || m.Attributes["stream"] != "app" || m.Attributes["id"] != r.ID.String() {
		t.Errorf("attributes %v", m.Attributes)
	}
}

func TestSendEmptyBatch(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{})
	if err := send(t, s, nil); err != nil {
		t.Fatalf("Send(empty): %v", err)
	}
}

func TestLimits(t *testing.T) {
	f := func(cfgInFlight, wantInFlight int) {
		t.Helper()
		cfg := collector.SinkConfig{Name: "p", Project: testProject, Topic: testTopic,
			Endpoint: "127.0.0.1:1", Insecure: true, MaxInFlight: cfgInFlight}
		s, err := New(context.Background(), cfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		l := s.Limits()
		if l.MaxInFlight != wantInFlight {
			t.Errorf("MaxInFlight %d, want %d", l.MaxInFlight, wantInFlight)
		}
		if l.MaxRecords <= 0 || l.MaxRecords > 1000 {
			t.Errorf("MaxRecords %d not in (0, 1000]", l.MaxRecords)
		}
		if l.MaxBytes <= 0 || l.MaxBytes >= 10_000_000 {
			t.Errorf("MaxBytes %d not under the 10 MB request limit", l.MaxBytes)
		}
		if l.MaxRecordBytes <= 0 || l.MaxRecordBytes >= 10_000_000 || l.RecordBytes == nil {
			t.Errorf("MaxRecordBytes %d not under the 10 MB message limit, or no RecordBytes", l.MaxRecordBytes)
		}
		if l.Oversize != collector.OversizeTruncate || l.OrderedKeys {
			t.Errorf("Oversize %v, OrderedKeys %v: want truncate, and no ordering without a template", l.Oversize, l.OrderedKeys)
		}
		if l.MaxDelay <= 0 || l.RecordCost == nil {
			t.Errorf("MaxDelay %v, RecordCost set %v", l.MaxDelay, l.RecordCost != nil)
		}
		if s.Name() != "p" {
			t.Errorf("Name %q", s.Name())
		}
	}
	f(0, DefaultMaxInFlight)
	f(1, 1)
	f(16, 16)
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := func(cfg collector.SinkConfig, opts Options, wantErr string) {
		t.Helper()
		_, err := NewWithOptions(context.Background(), cfg, opts, quietLog())
		if err == nil || !regexp.MustCompile(wantErr).MatchString(err.Error()) {
			t.Errorf("err %v, want match %q", err, wantErr)
		}
	}
	ok := collector.SinkConfig{Name: "p", Project: testProject, Topic: testTopic, Endpoint: "127.0.0.1:1", Insecure: true}
	noProject := ok
	noProject.Project = ""
	f(noProject, Options{}, "project is required")
	noTopic := ok
	noTopic.Topic = ""
	f(noTopic, Options{}, "topic is required")
	negative := ok
	negative.MaxInFlight = -1
	f(negative, Options{}, "max_in_flight")
	f(ok, Options{Oversize: "drop"}, `oversize "drop" is not one of split, truncate, dead_letter`)
	f(ok, Options{MaxMessageBytes: 20_000_000}, "max_message_bytes")
	f(ok, Options{MaxMessageBytes: 10}, "max_message_bytes")
	f(ok, Options{OrderingKey: "{namespace}/{podname}"}, `unknown placeholder \{podname\}`)
	f(ok, Options{OrderingKey: "{namespace"}, "unclosed")
	f(ok, Options{PublishTimeout: -time.Second}, "publish_timeout")
}

func TestOversizeOptionSetsThePolicy(t *testing.T) {
	f := func(opt string, want collector.Oversize) {
		t.Helper()
		s := newTestSink(t, "127.0.0.1:1", testTopic, Options{Oversize: opt})
		if got := s.Limits().Oversize; got != want {
			t.Errorf("oversize %q: policy %v, want %v", opt, got, want)
		}
	}
	f("", collector.OversizeTruncate)
	f("truncate", collector.OversizeTruncate)
	f("split", collector.OversizeSplit)
	f("dead_letter", collector.OversizeDeadLetter)
}

func TestMissingTopicIsPermanent(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, "no-such-topic", Options{})
	err := send(t, s, makeRecords(5, 10, "m"))
	if !collector.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
	var re *collector.RecordErrors
	if errors.As(err, &re) {
		t.Fatalf("err %v is a RecordErrors; the whole batch failed", err)
	}
	if status.Code(err) != codes.NotFound || collector.ErrorReason(err) != reasonNotFound {
		t.Errorf("err %v does not carry NotFound, or reason %q is not %s", err, collector.ErrorReason(err), reasonNotFound)
	}
}

// failReactor fails every publish request holding a message whose data contains "fail=CODE",
// and the first request holding "failonce=CODE" (or "failonce=CODE#n", to fail once more). It
// records the ordering keys of every request it sees.
type failReactor struct {
	mu       sync.Mutex
	failed   map[string]bool
	requests [][]string // ordering keys of each request's messages
}

var failMarker = regexp.MustCompile(`fail(once)?=([A-Za-z]+)(#[0-9]+)?`)

var codeByName = map[string]codes.Code{
	"InvalidArgument": codes.InvalidArgument, "NotFound": codes.NotFound,
	"PermissionDenied": codes.PermissionDenied, "FailedPrecondition": codes.FailedPrecondition,
	"Unauthenticated": codes.Unauthenticated, "Unavailable": codes.Unavailable,
	"ResourceExhausted": codes.ResourceExhausted,
}

func (f *failReactor) React(req any) (bool, any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for _, m := range req.(*pb.PublishRequest).Messages {
		keys = append(keys, m.OrderingKey)
	}
	f.requests = append(f.requests, keys)
	for _, m := range req.(*pb.PublishRequest).Messages {
		sub := failMarker.FindSubmatch(m.Data)
		if sub == nil {
			continue
		}
		if len(sub[1]) > 0 {
			if f.failed[string(sub[0])] {
				continue
			}
			f.failed[string(sub[0])] = true
		}
		return true, nil, status.Error(codeByName[string(sub[2])], "injected")
	}
	return false, nil, nil
}

func (f *failReactor) requestKeys() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func newFailingPstest(t *testing.T) *pstest.Server {
	srv, _ := newFailingPstestReactor(t)
	return srv
}

func newFailingPstestReactor(t *testing.T) (*pstest.Server, *failReactor) {
	f := &failReactor{failed: map[string]bool{}}
	return newPstest(t, pstest.ServerReactorOption{FuncName: "Publish", Reactor: f}), f
}

func TestInjectedErrorsAreClassified(t *testing.T) {
	srv := newFailingPstest(t)
	// One message per request, so an injected error hits exactly one record; a short publish
	// timeout ends the client's own retries of Unavailable quickly.
	s := newTestSink(t, srv.Addr, testTopic, Options{CountThreshold: 1, PublishTimeout: 300 * time.Millisecond})

	const (
		wantNil       = "nil"
		wantRetryAll  = "retry all"  // a plain error: the whole batch again
		wantPermanent = "permanent"  // the whole batch dead-lettered
		wantPartial   = "per record" // RecordErrors
	)
	f := func(name string, markers []string, want string, failed map[int]string, retry []int) {
		t.Helper()
		rs := makeRecords(len(markers), 0, name)
		for i, m := range markers {
			rs[i].Message = append(rs[i].Message, m...)
		}
		before := len(srv.Messages())
		err := send(t, s, rs)
		var re *collector.RecordErrors
		isRE := errors.As(err, &re)
		switch want {
		case wantNil:
			if err != nil {
				t.Errorf("%s: err %v, want nil", name, err)
			}
		case wantRetryAll:
			if err == nil || collector.IsPermanent(err) || isRE {
				t.Errorf("%s: err %v, want retryable", name, err)
			}
		case wantPermanent:
			if !collector.IsPermanent(err) || isRE || collector.ErrorReason(err) != failed[0] {
				t.Errorf("%s: err %v (reason %s), want a permanent batch error with reason %s", name, err, collector.ErrorReason(err), failed[0])
			}
		case wantPartial:
			if !isRE {
				t.Fatalf("%s: err %v, want RecordErrors", name, err)
			}
			gotFailed := map[int]string{}
			for _, fe := range re.Failed {
				gotFailed[fe.Index] = collector.ErrorReason(fe.Err)
			}
			if !maps.Equal(gotFailed, failed) {
				t.Errorf("%s: failed %v, want %v", name, gotFailed, failed)
			}
			var gotRetry []int
			for _, e := range re.Retry {
				gotRetry = append(gotRetry, e.Index)
				if permanent(e.Err) {
					t.Errorf("%s: record %d to retry has a permanent error %v", name, e.Index, e.Err)
				}
			}
			if !slices.Equal(gotRetry, retry) {
				t.Errorf("%s: retry %v, want %v", name, gotRetry, retry)
			}
			if got, want := len(srv.Messages())-before, len(rs)-len(failed)-len(retry); got != want {
				t.Errorf("%s: server got %d messages, want the %d others", name, got, want)
			}
		}
	}
	f("ok", []string{"", "", ""}, wantNil, nil, nil)
	f("one invalid", []string{"", "fail=InvalidArgument", ""}, wantPartial, map[int]string{1: "invalid_argument"}, nil)
	f("two refused", []string{"fail=PermissionDenied", "", "fail=FailedPrecondition"}, wantPartial,
		map[int]string{0: "permission_denied", 2: "failed_precondition"}, nil)
	f("all refused alike", []string{"fail=NotFound", "fail=NotFound"}, wantPermanent, map[int]string{0: "not_found"}, nil)
	f("all refused, two reasons", []string{"fail=InvalidArgument", "fail=NotFound"}, wantPartial,
		map[int]string{0: "invalid_argument", 1: "not_found"}, nil)
	f("unauthenticated", []string{"", "fail=Unauthenticated", ""}, wantPartial, map[int]string{}, []int{1})
	f("unavailable", []string{"fail=Unavailable"}, wantRetryAll, nil, nil)
	f("all throttled", []string{"fail=ResourceExhausted", "fail=Unauthenticated"}, wantRetryAll, nil, nil)
	f("quota", []string{"fail=ResourceExhausted", ""}, wantPartial, map[int]string{}, []int{0})
	f("refused and to retry", []string{"fail=InvalidArgument", "fail=Unauthenticated", "", "fail=Unavailable"}, wantPartial,
		map[int]string{0: "invalid_argument"}, []int{1, 3})
}

// TestPartialRetryResendsOnlyTheUndelivered runs the real pipeline: one request of a batch
// fails once, and only its messages are published again, so every record arrives exactly once.
func TestPartialRetryResendsOnlyTheUndelivered(t *testing.T) {
	srv := newFailingPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{CountThreshold: 10})
	p, m := startPipeline(t, s)
	rs := makeRecords(50, 20, "partial")
	// Unauthenticated, because the client itself retries Unavailable and ResourceExhausted.
	rs[23].Message = append(rs[23].Message, "failonce=Unauthenticated#1"...)
	rs[41].Message = append(rs[41].Message, "failonce=Unauthenticated#2"...)
	emit(t, p, rs)
	waitFor(t, "every record", func() bool { return len(byID(srv.Messages())) == len(rs) })
	waitFor(t, "the sent count", func() bool {
		return testutil.ToFloat64(m.SinkRecords.WithLabelValues("pubsub", collector.ResultSent)) == float64(len(rs))
	})
	if n := len(srv.Messages()); n != len(rs) {
		t.Errorf("server got %d messages for %d records: delivered records were published again", n, len(rs))
	}
	// The two failed requests of 10 messages each were retried, nothing else.
	if got := testutil.ToFloat64(m.SinkRecords.WithLabelValues("pubsub", collector.ResultRetried)); got != 20 {
		t.Errorf("retried = %v, want 20", got)
	}
}

func TestServerRetryDelay(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	f := func(err error, want time.Duration) {
		t.Helper()
		if got := serverRetryDelay(err); got != want {
			t.Errorf("serverRetryDelay(%v) = %v, want %v", err, got, want)
		}
	}
	f(st.Err(), 3*time.Second)
	f(fmt.Errorf("wrapped: %w", st.Err()), 3*time.Second)
	f(status.Error(codes.ResourceExhausted, "no detail"), 0)
	f(errors.New("plain"), 0)
	long, _ := status.New(codes.Unavailable, "bogus").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Hour)})
	f(long.Err(), maxServerRetryDelay)
}

// quotaReactor answers every publish with RESOURCE_EXHAUSTED and a RetryInfo detail.
type quotaReactor struct{ delay time.Duration }

func (q quotaReactor) React(any) (bool, any, error) {
	st, _ := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(q.delay)})
	return true, nil, st.Err()
}

// TestRetriedUntilTheTimeout: the client retries quota errors itself until publish_timeout;
// the error then still names the cause and carries the service's RetryInfo.
func TestRetriedUntilTheTimeout(t *testing.T) {
	srv := newPstest(t, pstest.ServerReactorOption{FuncName: "Publish", Reactor: quotaReactor{delay: 50 * time.Millisecond}})
	s := newTestSink(t, srv.Addr, testTopic, Options{PublishTimeout: 300 * time.Millisecond})
	err := send(t, s, makeRecords(3, 10, "quota"))
	if err == nil || collector.IsPermanent(err) {
		t.Fatalf("err %v, want retryable", err)
	}
	if !strings.Contains(err.Error(), "ResourceExhausted") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %q does not say the client retried a quota error until the deadline", err)
	}
	if d := serverRetryDelay(err); d != 50*time.Millisecond {
		t.Errorf("RetryInfo lost: %v", d)
	}
}

func TestPublishRetryer(t *testing.T) {
	s := newTestSink(t, "127.0.0.1:1", testTopic, Options{})
	f := func(err error, wantRetry bool, atLeast time.Duration) {
		t.Helper()
		r := &publishRetryer{next: s.retryer()}
		d, ok := r.Retry(err)
		if ok != wantRetry || ok && d < atLeast || r.last != err {
			t.Errorf("Retry(%v) = %v %v, want %v (at least %v), last kept", err, d, ok, wantRetry, atLeast)
		}
	}
	withInfo, _ := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)})
	f(withInfo.Err(), true, 2*time.Second)
	f(status.Error(codes.Unavailable, "down"), true, 0)
	f(status.Error(codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8"), false, 0)
	f(status.Error(codes.NotFound, "topic"), false, 0)
	f(status.Error(codes.Unauthenticated, "token"), false, 0) // the client does not retry it; the pipeline does
}

func TestConcurrentSends(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{})
	const senders, per = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		rs := makeRecords(per, 100, "g"+string(rune('a'+g)))
		for i, r := range rs {
			r.ID = collector.MakeID(uint64(g), uint64(i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Send(context.Background(), &collector.SinkBatch{Records: rs, Seq: uint64(g)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if got := len(byID(srv.Messages())); got != senders*per {
		t.Errorf("%d distinct messages, want %d", got, senders*per)
	}
}

func TestSendAfterClose(t *testing.T) {
	srv := newPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{})
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := send(t, s, makeRecords(1, 10, "late")); !errors.Is(err, collector.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// payloadSizes records the size of each request payload a server received, before and after
// decompression.
type payloadSizes struct {
	mu                 sync.Mutex
	length, compressed int
}

func (p *payloadSizes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (p *payloadSizes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (p *payloadSizes) HandleConn(context.Context, stats.ConnStats) {}
func (p *payloadSizes) HandleRPC(_ context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		p.mu.Lock()
		p.length += in.Length
		p.compressed += in.CompressedLength
		p.mu.Unlock()
	}
}

// TestCompressedPublish: with compression the requests are gzipped on the wire and arrive
// whole.
func TestCompressedPublish(t *testing.T) {
	sizes := &payloadSizes{}
	srv, addr := newAckServer(t, true, grpc.StatsHandler(sizes))
	s := newTestSink(t, addr, testTopic, Options{Compression: true})
	rs := makeRecords(300, 500, "gz")
	if err := send(t, s, rs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, msgs := srv.stats()
	got := map[string]*pb.PubsubMessage{}
	for _, m := range msgs {
		got[m.Attributes["id"]] = m
	}
	for _, r := range rs {
		if m := got[r.ID.String()]; m == nil || !bytes.Equal(m.Data, r.AppendJSON(nil)) {
			t.Fatalf("record %s missing or changed", r.ID)
		}
	}
	sizes.mu.Lock()
	defer sizes.mu.Unlock()
	if sizes.compressed <= 0 || sizes.compressed*3 > sizes.length {
		t.Errorf("%d request bytes went over the wire as %d: want gzip (repetitive logs shrink 3x and more)", sizes.length, sizes.compressed)
	}
}
