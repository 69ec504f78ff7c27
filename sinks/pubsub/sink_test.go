package pubsub

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
		if l.MaxRecordBytes <= 0 || l.MaxRecordBytes >= 10_000_000 {
			t.Errorf("MaxRecordBytes %d not under the 10 MB message limit", l.MaxRecordBytes)
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
	f(ok, Options{Oversize: "drop"}, `oversize: "drop"`)
	f(ok, Options{MaxMessageBytes: 20_000_000}, "max_message_bytes")
	f(ok, Options{MaxMessageBytes: 10}, "max_message_bytes")
	f(ok, Options{OrderingKey: "{namespace}/{podname}"}, `unknown placeholder \{podname\}`)
	f(ok, Options{OrderingKey: "{namespace"}, "unclosed")
	f(ok, Options{PublishTimeout: -time.Second}, "publish_timeout")
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
	if status.Code(err) != codes.NotFound {
		t.Errorf("err %v does not carry NotFound", err)
	}
}

// failReactor fails every publish request holding a message whose data contains "fail=CODE",
// and the first request holding "failonce=CODE".
type failReactor struct {
	mu     sync.Mutex
	failed map[string]bool
}

var failMarker = regexp.MustCompile(`fail(once)?=([A-Za-z]+)`)

var codeByName = map[string]codes.Code{
	"InvalidArgument": codes.InvalidArgument, "NotFound": codes.NotFound,
	"PermissionDenied": codes.PermissionDenied, "FailedPrecondition": codes.FailedPrecondition,
	"Unauthenticated": codes.Unauthenticated, "Unavailable": codes.Unavailable,
	"ResourceExhausted": codes.ResourceExhausted,
}

func (f *failReactor) React(req any) (bool, any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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

func newFailingPstest(t *testing.T) *pstest.Server {
	return newPstest(t, pstest.ServerReactorOption{FuncName: "Publish",
		Reactor: &failReactor{failed: map[string]bool{}}})
}

func TestInjectedErrorsAreClassified(t *testing.T) {
	srv := newFailingPstest(t)
	// One message per request, so an injected error hits exactly one record; a short publish
	// timeout ends the client's own retries of Unavailable quickly.
	s := newTestSink(t, srv.Addr, testTopic, Options{CountThreshold: 1, PublishTimeout: 300 * time.Millisecond})

	type want int
	const (
		wantNil want = iota
		wantRetry
		wantPermanent
		wantRecordErrors
	)
	f := func(name string, markers []string, w want, wantFailed []int) {
		t.Helper()
		rs := makeRecords(len(markers), 0, name)
		for i, m := range markers {
			rs[i].Message = append(rs[i].Message, m...)
		}
		before := len(srv.Messages())
		err := send(t, s, rs)
		var re *collector.RecordErrors
		isRE := errors.As(err, &re)
		switch w {
		case wantNil:
			if err != nil {
				t.Errorf("%s: err %v, want nil", name, err)
			}
		case wantRetry:
			if err == nil || collector.IsPermanent(err) || isRE {
				t.Errorf("%s: err %v, want retryable", name, err)
			}
		case wantPermanent:
			if !collector.IsPermanent(err) || isRE {
				t.Errorf("%s: err %v, want permanent batch error", name, err)
			}
		case wantRecordErrors:
			if !isRE {
				t.Fatalf("%s: err %v, want RecordErrors", name, err)
			}
			var idx []int
			for _, fe := range re.Failed {
				idx = append(idx, fe.Index)
				if !permanent(fe.Err) {
					t.Errorf("%s: record %d error %v not permanent", name, fe.Index, fe.Err)
				}
			}
			if !slices.Equal(idx, wantFailed) {
				t.Errorf("%s: failed indexes %v, want %v", name, idx, wantFailed)
			}
			if got, want := len(srv.Messages())-before, len(rs)-len(wantFailed); got != want {
				t.Errorf("%s: server got %d messages, want the %d others", name, got, want)
			}
		}
	}
	f("ok", []string{"", "", ""}, wantNil, nil)
	f("one invalid", []string{"", "fail=InvalidArgument", ""}, wantRecordErrors, []int{1})
	f("two refused", []string{"fail=PermissionDenied", "", "fail=FailedPrecondition"}, wantRecordErrors, []int{0, 2})
	f("all refused", []string{"fail=InvalidArgument", "fail=NotFound"}, wantPermanent, nil)
	f("unauthenticated", []string{"", "fail=Unauthenticated", ""}, wantRetry, nil)
	f("unavailable", []string{"fail=Unavailable"}, wantRetry, nil)
	f("quota", []string{"fail=ResourceExhausted", ""}, wantRetry, nil)
	f("retry wins over refusal", []string{"fail=InvalidArgument", "fail=Unauthenticated", ""}, wantRetry, nil)
}

func TestRetryableThenResent(t *testing.T) {
	srv := newFailingPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{CountThreshold: 1})
	rs := makeRecords(3, 0, "again")
	rs[1].Message = append(rs[1].Message, "failonce=Unauthenticated"...)
	if err := send(t, s, rs); err == nil || collector.IsPermanent(err) {
		t.Fatalf("first Send: %v, want retryable", err)
	}
	if err := send(t, s, rs); err != nil {
		t.Fatalf("resend: %v", err)
	}
	// Duplicates of the records acknowledged the first time are expected; every id arrived.
	if got := byID(srv.Messages()); len(got) != 3 {
		t.Errorf("%d distinct ids, want 3", len(got))
	}
}

func TestOrderingKeyAndResume(t *testing.T) {
	srv := newFailingPstest(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{OrderingKey: "{namespace}/{pod}"})
	rs := makeRecords(4, 0, "ordered")
	rs[0].Message = append(rs[0].Message, "failonce=Unauthenticated"...)
	// The failure pauses the key: the batch fails, and so would every later one with that key
	// unless the sink resumes it.
	if err := send(t, s, rs); err == nil || collector.IsPermanent(err) {
		t.Fatalf("first Send: %v, want retryable", err)
	}
	if err := send(t, s, rs); err != nil {
		t.Fatalf("resend after a paused key: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != len(rs) {
		t.Fatalf("server has %d messages, want %d", len(msgs), len(rs))
	}
	for i, m := range msgs {
		if m.OrderingKey != "shop/cart-7d9f" {
			t.Errorf("ordering key %q", m.OrderingKey)
		}
		if want := rs[i].ID.String(); m.Attributes["id"] != want {
			t.Errorf("message %d has id %s, want %s (publish order)", i, m.Attributes["id"], want)
		}
	}
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

func TestCloseFlushesAbandonedMessages(t *testing.T) {
	srv := newPstest(t)
	// With ordering keys the client's Publisher bundles, and holds messages until a full
	// request or an hour has passed. (The direct path holds nothing past Send.)
	s := newTestSink(t, srv.Addr, testTopic, Options{OrderingKey: "{pod}", DelayThreshold: time.Hour})
	rs := makeRecords(10, 20, "late")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, &collector.SinkBatch{Records: rs})
	if !errors.Is(err, context.DeadlineExceeded) || collector.IsPermanent(err) {
		t.Fatalf("Send: %v, want a retryable deadline error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages published before Close", n)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(srv.Messages()); n != len(rs) {
		t.Errorf("%d messages after Close, want %d", n, len(rs))
	}
	if err := s.Send(context.Background(), &collector.SinkBatch{Records: rs}); !errors.Is(err, collector.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
}
