package pubsub

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestSinkIsAKeyer(t *testing.T) {
	plain := newTestSink(t, "127.0.0.1:1", testTopic, Options{})
	keyed := newTestSink(t, "127.0.0.1:1", testTopic, Options{OrderingKey: "{namespace}/{pod}"})
	r := makeRecords(1, 10, "k")[0]
	if got := string(plain.AppendKey([]byte("x"), r)); got != "x" {
		t.Errorf("without a template: AppendKey appended %q", got[1:])
	}
	if got := string(keyed.AppendKey([]byte("x"), r)); got != "xshop/cart-7d9f" {
		t.Errorf("AppendKey = %q, want the rendered template after the prefix", got)
	}
	if !keyed.Limits().OrderedKeys || plain.Limits().OrderedKeys {
		t.Errorf("OrderedKeys: %v with a template, %v without; want true, false",
			keyed.Limits().OrderedKeys, plain.Limits().OrderedKeys)
	}
}

// keyedBatch returns 4 records of one pod with markers appended, as the pipeline hands them to
// a Keyer sink: one key per batch.
func keyedBatch(s *Sink, name string, markers ...string) *collector.SinkBatch {
	rs := makeRecords(len(markers), 0, name)
	for i, m := range markers {
		rs[i].Message = append(rs[i].Message, m...)
	}
	return &collector.SinkBatch{Records: rs, Key: string(s.AppendKey(nil, rs[0])), Seq: 1}
}

// TestOrderedRequestsStopAtAFailure: with an ordering key, a batch's requests go out one after
// another and none follows one that failed and may be retried, so nothing overtakes it.
func TestOrderedRequestsStopAtAFailure(t *testing.T) {
	srv := newFailingPstest(t)
	// Two messages per request: each batch of 4 is two requests.
	ordered := newTestSink(t, srv.Addr, testTopic, Options{OrderingKey: "{pod}", CountThreshold: 2})
	unordered := newTestSink(t, srv.Addr, testTopic, Options{CountThreshold: 2})
	published := func() []string {
		var ids []string
		for _, m := range srv.Messages() {
			ids = append(ids, m.Attributes["id"])
		}
		return ids
	}
	idsOf := func(b *collector.SinkBatch, idx ...int) []string {
		var ids []string
		for _, i := range idx {
			ids = append(ids, b.Records[i].ID.String())
		}
		return ids
	}
	type outcome struct {
		failed map[int]string
		retry  []int
		all    string // "retry": a plain error; else RecordErrors, or nil when all is zero
	}
	f := func(name string, s *Sink, b *collector.SinkBatch, want outcome, wantPublished []int) {
		t.Helper()
		before := len(published())
		err := s.Send(t.Context(), b)
		var re *collector.RecordErrors
		switch {
		case want.failed == nil && want.retry == nil && want.all == "":
			if err != nil {
				t.Errorf("%s: err %v, want nil", name, err)
			}
		case want.all == "retry":
			if err == nil || collector.IsPermanent(err) || errors.As(err, &re) {
				t.Errorf("%s: err %v, want the whole batch retryable", name, err)
			}
		case !errors.As(err, &re):
			t.Errorf("%s: err %v, want RecordErrors", name, err)
		default:
			failed := map[int]string{}
			for _, e := range re.Failed {
				failed[e.Index] = collector.ErrorReason(e.Err)
			}
			var retry []int
			for _, e := range re.Retry {
				retry = append(retry, e.Index)
			}
			if !maps.Equal(failed, want.failed) || !slices.Equal(retry, want.retry) {
				t.Errorf("%s: failed %v retry %v, want %v %v", name, failed, retry, want.failed, want.retry)
			}
		}
		if got := published()[before:]; !slices.Equal(got, idsOf(b, wantPublished...)) {
			t.Errorf("%s: published %v, want %v", name, got, idsOf(b, wantPublished...))
		}
	}

	b := keyedBatch(ordered, "first", "failonce=Unauthenticated#1", "", "", "")
	f("first request fails", ordered, b, outcome{all: "retry"}, nil)
	f("resent", ordered, b, outcome{}, []int{0, 1, 2, 3})

	b = keyedBatch(ordered, "second", "", "", "failonce=Unauthenticated#2", "")
	f("second request fails", ordered, b, outcome{failed: map[int]string{}, retry: []int{2, 3}}, []int{0, 1})
	b.Records = b.Records[2:]
	f("retry of the rest", ordered, b, outcome{}, []int{0, 1})

	b = keyedBatch(ordered, "refused", "fail=InvalidArgument", "", "", "")
	f("refused request", ordered, b, outcome{failed: map[int]string{0: "invalid_argument", 1: "invalid_argument"}}, []int{2, 3})

	b = keyedBatch(unordered, "unordered", "failonce=Unauthenticated#3", "", "", "")
	f("without ordering the rest goes on", unordered, b, outcome{failed: map[int]string{}, retry: []int{0, 1}}, []int{2, 3})
}

// TestOrderedKeysThroughThePipeline runs the real pipeline with ordering_key "{pod}": records
// of three pods interleave, some requests fail once, and on the server every request holds one
// key and every pod's records arrive once each, in the order they were read.
func TestOrderedKeysThroughThePipeline(t *testing.T) {
	srv, reactor := newFailingPstestReactor(t)
	s := newTestSink(t, srv.Addr, testTopic, Options{OrderingKey: "{pod}", CountThreshold: 7})
	p, m := startPipeline(t, s)

	var sources []*collector.Source
	for i := range 3 {
		k := *testSource.Kube()
		k.Pod = fmt.Sprintf("pod-%d", i)
		sources = append(sources, collector.NewSource(uint64(10+i), "pods", &k))
	}
	want := map[string][]string{} // pod -> ids in read order
	const n = 600
	for batch := range 3 {
		rs := makeRecords(n/3, 20, fmt.Sprintf("b%d", batch))
		for i, r := range rs {
			seq := batch*n/3 + i
			r.ID = collector.MakeID(7, uint64(seq))
			r.Source = sources[seq%3]
			if seq%97 == 13 {
				r.Message = fmt.Appendf(r.Message, " failonce=Unauthenticated#%d", seq)
			}
			want[r.Source.Kube().Pod] = append(want[r.Source.Kube().Pod], r.ID.String())
		}
		emit(t, p, rs)
	}
	waitFor(t, "every record", func() bool {
		return testutil.ToFloat64(m.SinkRecords.WithLabelValues("pubsub", collector.ResultSent)) == n
	})

	got := map[string][]string{}
	for _, msg := range srv.Messages() {
		got[msg.OrderingKey] = append(got[msg.OrderingKey], msg.Attributes["id"])
	}
	for pod, ids := range want {
		if !slices.Equal(got[pod], ids) {
			t.Errorf("pod %s: %d messages not in read order, or not once each (want %d)", pod, len(got[pod]), len(ids))
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want the 3 pods", slices.Collect(maps.Keys(got)))
	}
	for _, keys := range reactor.requestKeys() {
		if len(keys) > 7 || len(slices.Compact(slices.Clone(keys))) != 1 {
			t.Errorf("request with keys %v: want one key, at most 7 messages", keys)
		}
	}
	if retried := testutil.ToFloat64(m.SinkRecords.WithLabelValues("pubsub", collector.ResultRetried)); retried == 0 {
		t.Errorf("no record was retried: the injected failures did not happen")
	}
}
