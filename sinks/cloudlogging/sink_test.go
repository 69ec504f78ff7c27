package cloudlogging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudlogging/loggingfake"
)

// mixedRecords returns n records of the shop container, half JSON lines on stdout, half text
// lines on stderr, each naming its index.
func mixedRecords(n int) []*collector.Record {
	out := make([]*collector.Record, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = rec(i, collector.StreamStdout, fmt.Sprintf(`{"severity":"INFO","message":"request %d served","path":"/cart/%d","status":200,"latency_ms":12.5}`, i, i))
		} else {
			out[i] = rec(i, collector.StreamStderr, fmt.Sprintf("worker %d: retrying upstream call after a timeout of 250ms", i))
		}
	}
	return out
}

// deliver sends recs as the pipeline does: in batches of one destination key (AppendKey), each
// retried (whole or in part, as the sink says) until nothing is left. It returns the records
// dead-lettered, by index.
func deliver(t *testing.T, s *Sink, recs []*collector.Record) map[int]error {
	t.Helper()
	failed := map[int]error{}
	byKey := map[string][]int{}
	var keys []string
	for i, r := range recs {
		k := string(s.AppendKey(nil, r))
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	for _, k := range keys {
		deliverBatch(t, s, recs, byKey[k], failed)
	}
	return failed
}

func deliverBatch(t *testing.T, s *Sink, recs []*collector.Record, pending []int, failed map[int]error) {
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 20 {
			t.Fatalf("still %d records to send after %d attempts", len(pending), attempt)
		}
		batch := &collector.SinkBatch{}
		for _, i := range pending {
			batch.Records = append(batch.Records, recs[i])
		}
		err := s.Send(context.Background(), batch)
		var re *collector.RecordErrors
		switch {
		case err == nil:
			pending = nil
		case errors.As(err, &re):
			for _, f := range re.Failed {
				failed[pending[f.Index]] = f.Err
			}
			var next []int
			for _, r := range re.Retry {
				next = append(next, pending[r.Index])
			}
			pending = next
		case collector.IsPermanent(err):
			for _, i := range pending {
				failed[i] = err
			}
			pending = nil
		}
	}
}

// TestEveryRecordOnce: the API fails requests with UNAVAILABLE after writing them (the client
// sees an error, Cloud Logging has the entries); the pipeline resends; a query (which merges
// entries of equal insertId and timestamp) shows every record exactly once, in order, with
// the resource, log name, payload, severity and labels it should have.
func TestEveryRecordOnce(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{MaxEntriesPerRequest: 100})
	calls := 0
	f.SetErrorAfterWrite(func(*loggingpb.WriteLogEntriesRequest) error {
		calls++
		if calls%3 == 1 {
			return status.Error(codes.Unavailable, "backend unavailable after the write")
		}
		return nil
	})
	recs := mixedRecords(1000)
	if failed := deliver(t, s, recs); len(failed) > 0 {
		t.Fatalf("dead-lettered: %v", failed)
	}
	if f.Len() <= len(recs) {
		t.Fatalf("fake stored %d entries for %d records: the retries after UNAVAILABLE wrote nothing twice, so the test proves nothing", f.Len(), len(recs))
	}
	got := f.Query()
	if len(got) != len(recs) {
		t.Fatalf("query shows %d entries, want %d", len(got), len(recs))
	}
	for i, e := range got {
		r := recs[i]
		if e.GetInsertId() != r.ID.String() || e.GetTimestamp().AsTime().UnixNano() != r.Time {
			t.Fatalf("entry %d: insertId %s at %v, want %s at %v", i, e.GetInsertId(), e.GetTimestamp().AsTime(), r.ID, time.Unix(0, r.Time))
		}
		res := e.GetResource()
		if res.GetType() != "k8s_container" || res.GetLabels()["namespace_name"] != "shop" || res.GetLabels()["pod_name"] != "cart-7d9f" ||
			res.GetLabels()["container_name"] != "app" || res.GetLabels()["location"] != testLocation ||
			res.GetLabels()["cluster_name"] != testCluster || res.GetLabels()["project_id"] != testProject {
			t.Fatalf("entry %d: resource %v", i, res)
		}
		if l := e.GetLabels(); l["k8s-pod/app"] != "cart" || l["k8s-pod/app_kubernetes_io/version"] != "1.2" ||
			l["compute.googleapis.com/resource_name"] != "node-1" ||
			l["logging.gke.io/top_level_controller_type"] != "Deployment" || l["logging.gke.io/top_level_controller_name"] != "cart" {
			t.Fatalf("entry %d: labels %v", i, e.GetLabels())
		}
		if r.Stream == collector.StreamStdout {
			if e.GetLogName() != "projects/"+testProject+"/logs/stdout" || e.GetSeverity().String() != "INFO" ||
				e.GetJsonPayload().GetFields()["message"].GetStringValue() != fmt.Sprintf("request %d served", i) ||
				e.GetJsonPayload().GetFields()["status"].GetNumberValue() != 200 {
				t.Fatalf("entry %d: %s", i, entryJSON(e))
			}
			if _, ok := e.GetJsonPayload().GetFields()["severity"]; ok {
				t.Fatalf("entry %d: severity left in the payload", i)
			}
		} else if e.GetLogName() != "projects/"+testProject+"/logs/stderr" || e.GetSeverity().String() != "ERROR" ||
			e.GetTextPayload() != string(r.Message) {
			t.Fatalf("entry %d: %s", i, entryJSON(e))
		}
	}
}

// TestPartialErrors: the API writes the valid entries of a request and names the others; the
// sink maps the names back to batch indexes, dead-letters the invalid ones with the API's
// reason and asks for the retryable ones again.
func TestPartialErrors(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	f.SetEntryError(func(e *loggingpb.LogEntry) *status.Status {
		switch {
		case strings.Contains(e.GetTextPayload(), "bad"):
			return status.New(codes.InvalidArgument, "entry refused")
		case strings.Contains(e.GetTextPayload(), "busy"):
			return status.New(codes.Unavailable, "try again")
		}
		return nil
	})
	recs := []*collector.Record{
		rec(0, collector.StreamStdout, "ok 0"),
		rec(1, collector.StreamStdout, "bad 1"),
		rec(2, collector.StreamStdout, "ok 2"),
		rec(3, collector.StreamStdout, "busy 3"),
		rec(4, collector.StreamStderr, "bad 4"), // another request (stderr)
		rec(5, collector.StreamStderr, "ok 5"),
	}
	err := send(t, s, recs...)
	var re *collector.RecordErrors
	if !errors.As(err, &re) {
		t.Fatalf("Send: %v, want *RecordErrors", err)
	}
	if len(re.Failed) != 2 || re.Failed[0].Index != 1 || re.Failed[1].Index != 4 {
		t.Fatalf("failed %+v, want indexes 1 and 4", re.Failed)
	}
	for _, fe := range re.Failed {
		if collector.ErrorReason(fe.Err) != "invalid_argument" {
			t.Errorf("index %d: reason %q, want invalid_argument (%v)", fe.Index, collector.ErrorReason(fe.Err), fe.Err)
		}
	}
	if len(re.Retry) != 1 || re.Retry[0].Index != 3 {
		t.Fatalf("retry %+v, want index 3", re.Retry)
	}
	var got []string
	for _, e := range f.Query() {
		got = append(got, e.GetTextPayload())
	}
	if strings.Join(got, ",") != "ok 0,ok 2,ok 5" {
		t.Fatalf("written %q", got)
	}
}

// TestAllEntriesInvalid: when no entry of a request is written the API names none; the whole
// request is dead-lettered with the code as reason.
func TestAllEntriesInvalid(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	f.SetEntryError(func(*loggingpb.LogEntry) *status.Status { return status.New(codes.InvalidArgument, "no") })
	err := send(t, s, rec(0, collector.StreamStdout, "a"), rec(1, collector.StreamStdout, "b"))
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 2 || len(re.Retry) != 0 {
		t.Fatalf("Send: %v, want both records failed", err)
	}
	if r := collector.ErrorReason(re.Failed[0].Err); r != "invalid_argument" {
		t.Fatalf("reason %q", r)
	}
}

// TestRefusedProject: a project that refuses the sink (PERMISSION_DENIED for IAM, NOT_FOUND
// for a missing project or log bucket, UNAUTHENTICATED for credentials) keeps the batch (a
// retryable error asking for a slow retry, nothing dead-lettered), sets the refused gauge and
// counts the code; once a person fixed it the same batch goes through.
func TestRefusedProject(t *testing.T) {
	f := func(code codes.Code, refuse, fix func(*loggingfake.Server)) {
		t.Helper()
		fake := startFake(t)
		refuse(fake)
		s := newTestSink(t, fake, Options{PermissionRetry: 90 * time.Second})
		recs := mixedRecords(10)
		err := send(t, s, recs...)
		if err == nil || collector.IsPermanent(err) {
			t.Fatalf("%s: Send: %v, want a retryable error", code, err)
		}
		var re *collector.RecordErrors
		if errors.As(err, &re) {
			t.Fatalf("%s: Send: %v: records were dropped or dead-lettered", code, err)
		}
		if !strings.Contains(err.Error(), code.String()) {
			t.Fatalf("Send: %v, want the API's %s in it", err, code)
		}
		if d := collector.RetryDelay(err); d != 90*time.Second {
			t.Fatalf("%s: retry after %v, want the permission_retry of 90s", code, d)
		}
		if g := testutil.ToFloat64(s.Metrics().Refused); g != 1 {
			t.Fatalf("%s: refused gauge %v, want 1", code, g)
		}
		if n := testutil.ToFloat64(s.Metrics().RequestErrors.WithLabelValues("logging", code.String())); n < 1 {
			t.Fatalf("%s counted %v times", code, n)
		}
		fix(fake)
		if err := send(t, s, recs...); err != nil {
			t.Fatalf("%s: after the fix: %v", code, err)
		}
		if g := testutil.ToFloat64(s.Metrics().Refused); g != 0 {
			t.Fatalf("%s: refused gauge %v after success, want 0", code, g)
		}
		if len(fake.Query()) != len(recs) {
			t.Fatalf("%s: query shows %d, want %d", code, len(fake.Query()), len(recs))
		}
	}
	failWith := func(err error) func(*loggingfake.Server) {
		return func(fake *loggingfake.Server) {
			fake.SetRequestError(func(*loggingpb.WriteLogEntriesRequest) error { return err })
		}
	}
	f(codes.PermissionDenied,
		func(fake *loggingfake.Server) { fake.SetProject("someone-else") },
		func(fake *loggingfake.Server) { fake.SetProject(testProject) })
	f(codes.NotFound, failWith(status.Errorf(codes.NotFound, "Project %s not found or deleted.", testProject)), failWith(nil))
	f(codes.Unauthenticated, failWith(status.Error(codes.Unauthenticated, "Request had invalid authentication credentials.")), failWith(nil))
}

// TestTransientRetried: INTERNAL and the other transient codes, for a whole request or for
// some of its entries, are retried after the pipeline's backoff: no record is dead-lettered,
// the project is not reported as refusing, and the retry delivers.
func TestTransientRetried(t *testing.T) {
	f := func(code codes.Code) {
		t.Helper()
		fake := startFake(t)
		s := newTestSink(t, fake, Options{PermissionRetry: 90 * time.Second})
		fake.SetRequestError(func(*loggingpb.WriteLogEntriesRequest) error { return status.Error(code, "transient") })
		recs := mixedRecords(6)
		err := send(t, s, recs...)
		var re *collector.RecordErrors
		if err == nil || collector.IsPermanent(err) || errors.As(err, &re) || !strings.Contains(err.Error(), code.String()) {
			t.Fatalf("%s: Send: %v, want a plain retryable error naming the code", code, err)
		}
		if d := collector.RetryDelay(err); d != 0 {
			t.Errorf("%s: retry after %v, want the pipeline's backoff", code, d)
		}
		if g := testutil.ToFloat64(s.Metrics().Refused); g != 0 {
			t.Errorf("%s: refused gauge %v, want 0", code, g)
		}
		fake.SetRequestError(nil)
		// Per entry: the entry is to be retried, not dead-lettered.
		fake.SetEntryError(func(e *loggingpb.LogEntry) *status.Status {
			if strings.Contains(e.GetTextPayload(), "busy") {
				return status.New(code, "transient")
			}
			return nil
		})
		err = send(t, s, rec(100, collector.StreamStdout, "ok 100"), rec(101, collector.StreamStdout, "busy 101"))
		if !errors.As(err, &re) || len(re.Failed) != 0 || len(re.Retry) != 1 || re.Retry[0].Index != 1 {
			t.Fatalf("%s: per entry: Send: %v, want index 1 to retry and none failed", code, err)
		}
		fake.SetEntryError(nil)
		if err := send(t, s, recs...); err != nil {
			t.Fatalf("%s: the retry: %v", code, err)
		}
		if got := len(fake.Query()); got != len(recs)+1 {
			t.Fatalf("%s: query shows %d, want %d", code, got, len(recs)+1)
		}
	}
	for _, c := range []codes.Code{codes.Internal, codes.Unavailable, codes.Unknown, codes.Aborted, codes.DeadlineExceeded} {
		f(c)
	}
}

// TestUnavailable: a request that fails as a whole with UNAVAILABLE is a plain retryable error
// for the whole batch.
func TestUnavailable(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	f.SetRequestError(func(*loggingpb.WriteLogEntriesRequest) error { return status.Error(codes.Unavailable, "down") })
	err := send(t, s, mixedRecords(4)...)
	var re *collector.RecordErrors
	if err == nil || collector.IsPermanent(err) || errors.As(err, &re) {
		t.Fatalf("Send: %v, want a plain retryable error", err)
	}
	if !strings.Contains(err.Error(), "projects/"+testProject+"/logs/stdout") {
		t.Fatalf("error %q does not name the log", err)
	}
}

// TestQuotaRetryInfo: RESOURCE_EXHAUSTED with a RetryInfo detail is retried no sooner than it
// asks (the pipeline reads the delay from the error).
func TestQuotaRetryInfo(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	f.SetRequestError(func(*loggingpb.WriteLogEntriesRequest) error {
		st, _ := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
		return st.Err()
	})
	err := send(t, s, mixedRecords(2)...)
	if err == nil || collector.IsPermanent(err) || !strings.Contains(err.Error(), "ResourceExhausted") {
		t.Fatalf("Send: %v, want a retryable quota error", err)
	}
	if d := collector.RetryDelay(err); d != 7*time.Second {
		t.Fatalf("retry after %v, want 7s", d)
	}
}

// TestLaterRequestFails: when the first request of a batch went through and a later one fails
// as a whole, only the later records are to be retried.
func TestLaterRequestFails(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{MaxEntriesPerRequest: 2})
	f.SetRequestError(func(req *loggingpb.WriteLogEntriesRequest) error {
		if strings.Contains(req.GetEntries()[0].GetTextPayload(), "3") {
			return status.Error(codes.DeadlineExceeded, "slow")
		}
		return nil
	})
	recs := []*collector.Record{rec(0, collector.StreamStdout, "1"), rec(1, collector.StreamStdout, "2"),
		rec(2, collector.StreamStdout, "3"), rec(3, collector.StreamStdout, "4"), rec(4, collector.StreamStdout, "5")}
	err := send(t, s, recs...)
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 0 || len(re.Retry) != 3 || re.Retry[0].Index != 2 || re.Retry[2].Index != 4 {
		t.Fatalf("Send: %v, want indexes 2-4 to retry", err)
	}
	if f.Len() != 2 {
		t.Fatalf("fake has %d entries, want the first request's 2", f.Len())
	}
}

// TestRequestLimits: a batch over 10 MB or over max_entries_per_request goes out as several
// requests, each within the limits the fake enforces, records in order.
func TestRequestLimits(t *testing.T) {
	f := startFake(t)
	f.MaxEntries = 1000
	s := newTestSink(t, f, Options{})
	big := strings.Repeat("x", 200_000)
	var recs []*collector.Record
	for i := range 120 { // 24 MB
		recs = append(recs, rec(i, collector.StreamStdout, fmt.Sprintf("%03d %s", i, big)))
	}
	if err := send(t, s, recs...); err != nil {
		t.Fatal(err)
	}
	if f.Requests() < 3 {
		t.Fatalf("%d requests for 24 MB", f.Requests())
	}
	got := f.Query()
	if len(got) != len(recs) {
		t.Fatalf("query shows %d, want %d", len(got), len(recs))
	}

	f2 := startFake(t)
	f2.MaxEntries = 7
	s2 := newTestSink(t, f2, Options{MaxEntriesPerRequest: 7})
	if err := send(t, s2, mixedRecords(30)...); err != nil {
		t.Fatal(err)
	}
	if len(f2.Query()) != 30 {
		t.Fatalf("query shows %d, want 30", len(f2.Query()))
	}
}

// TestRequestsPerKey: records of different log names or pods in one batch go in separate
// requests, each with its own log name and resource.
func TestRequestsPerKey(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	other := collector.NewSource(8, "pods", &collector.Kube{Namespace: "shop", Pod: "pay-1", Container: "app", Node: "node-1"})
	r3 := rec(3, collector.StreamStdout, "pay")
	r3.Source = other
	recs := []*collector.Record{rec(0, collector.StreamStdout, "a"), rec(1, collector.StreamStdout, "b"),
		rec(2, collector.StreamStderr, "c"), r3}
	if err := send(t, s, recs...); err != nil {
		t.Fatal(err)
	}
	if f.Requests() != 3 {
		t.Fatalf("%d requests, want 3 (stdout, stderr, other pod)", f.Requests())
	}
	got := f.Query()
	if got[3].GetResource().GetLabels()["pod_name"] != "pay-1" || got[3].GetLabels()["k8s-pod/app"] != "" {
		t.Fatalf("other pod's entry: %s", entryJSON(got[3]))
	}
}

// TestFutureTimestampDeadLetter: with future_timestamp: dead_letter an entry more than a day
// ahead is dead-lettered with its reason and the rest delivered.
func TestFutureTimestampDeadLetter(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{FutureTimestamp: FutureDeadLetter})
	ahead := rec(1, collector.StreamStdout, "from the future")
	ahead.Time = testNow.Add(48 * time.Hour).UnixNano()
	err := send(t, s, rec(0, collector.StreamStdout, "now"), ahead, rec(2, collector.StreamStdout, "now too"))
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 || collector.ErrorReason(re.Failed[0].Err) != "future_timestamp" {
		t.Fatalf("Send: %v", err)
	}
	if len(f.Query()) != 2 {
		t.Fatalf("query shows %d, want 2", len(f.Query()))
	}

	// The default clamps and counts.
	s2 := newTestSink(t, f, Options{})
	if err := send(t, s2, ahead); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(s2.Metrics().Adjusted.WithLabelValues("logging", "future_timestamp")); n != 1 {
		t.Fatalf("clamped counted %v", n)
	}
}

// TestOversizeEntry: an entry over the API's limit that reached Send (the pipeline keeps them
// out) is dead-lettered as oversize, and RecordBytes reports it over max_entry_bytes.
func TestOversizeEntry(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	huge := rec(0, collector.StreamStdout, `{"message":"`+strings.Repeat("y", 300_000)+`"}`)
	if n := s.recordBytes(huge); n <= s.Limits().MaxRecordBytes {
		t.Fatalf("RecordBytes %d, not over %d", n, s.Limits().MaxRecordBytes)
	}
	err := send(t, s, huge, rec(1, collector.StreamStdout, "fine"))
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 || collector.ErrorReason(re.Failed[0].Err) != "oversize" {
		t.Fatalf("Send: %v", err)
	}
}

// TestRecordBytesBoundsEntries: what RecordBytes reports is never less than the entry the API
// measures (the fake's size of the merged entry), small or near the limit, JSON or text.
func TestRecordBytesBoundsEntries(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	msgs := []string{
		"short", strings.Repeat("é", 100_000), strings.Repeat("\xff", 80_000),
		`{"a":[` + strings.Repeat("1,", 40_000) + `1]}`,
		`{"m":"` + strings.Repeat(`\u00e9`, 20_000) + `"}`,
		`{"n":` + strings.Repeat(`{"x":`, 30) + `null` + strings.Repeat(`}`, 30) + `}`,
	}
	for i, m := range msgs {
		r := rec(i, collector.StreamStdout, m)
		bound := s.recordBytes(r)
		before := f.Len()
		if err := send(t, s, r); err != nil {
			if bound <= s.Limits().MaxRecordBytes {
				t.Fatalf("message %d: RecordBytes %d within the limit, yet Send: %v", i, bound, err)
			}
			continue
		}
		e := f.Entries()[before]
		e.ReceiveTimestamp = nil
		if n := sizeOf(e); n > bound {
			t.Fatalf("message %d: entry is %d bytes, RecordBytes said %d", i, n, bound)
		}
	}
}

// TestPodLabelLimits: more than 64 labels and over-long keys and values are cut to what the
// API takes.
func TestPodLabelLimits(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	labels := map[string]string{"a-long": strings.Repeat("v", 70_000), "b" + strings.Repeat("k", 600): "x"}
	for i := range 80 {
		labels[fmt.Sprintf("l%02d", i)] = "v"
	}
	src := collector.NewSource(9, "pods", &collector.Kube{Namespace: "shop", Pod: "p", Container: "c", Node: "n", Labels: labels})
	r := rec(0, collector.StreamStdout, `{"message":"m","logging.googleapis.com/labels":{"mine":"1"}}`)
	r.Source = src
	if err := send(t, s, r); err != nil {
		t.Fatal(err)
	}
	e := f.Query()[0]
	if len(e.GetLabels()) != maxLabels {
		t.Fatalf("%d labels, want %d", len(e.GetLabels()), maxLabels)
	}
	if e.GetJsonPayload().GetFields()["logging.googleapis.com/labels"].GetStructValue().GetFields()["mine"].GetStringValue() != "1" {
		t.Fatalf("the payload label with no room left was lost: %s", entryJSON(e))
	}
	if v := e.GetLabels()["k8s-pod/a-long"]; len(v) != maxLabelValueBytes {
		t.Fatalf("long value kept %d bytes, want %d", len(v), maxLabelValueBytes)
	}
	longKey := truncateUTF8("k8s-pod/b"+strings.Repeat("k", 600), maxLabelKeyBytes)
	if _, ok := e.GetLabels()[longKey]; !ok || len(longKey) != maxLabelKeyBytes {
		t.Fatalf("long key not cut to %d bytes: %v", maxLabelKeyBytes, e.GetLabels())
	}
}

// TestInvalidUTF8Everywhere: invalid UTF-8 in a text payload, a JSON string, a JSON key, a
// pod label and a forward tag never fails a request.
func TestInvalidUTF8Everywhere(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{LogID: "{tag}"})
	src := collector.NewSource(9, "pods", &collector.Kube{Namespace: "shop", Pod: "p", Container: "c\xff", Node: "n",
		Labels: map[string]string{"a\xff": "b\xfe"}})
	recs := []*collector.Record{
		rec(0, collector.StreamStdout, "text \xff"),
		rec(1, collector.StreamStdout, "{\"k\xff\":\"v\xfe\",\"message\":\"m\\ud800\"}"),
	}
	for _, r := range recs {
		r.Source = src
		r.Tag = []byte("t\xff")
	}
	if err := send(t, s, recs...); err != nil {
		t.Fatal(err)
	}
	got := f.Query()
	if len(got) != 2 || got[0].GetTextPayload() != "text \uFFFD" {
		t.Fatalf("got %v", got)
	}
	if !bytes.Contains([]byte(got[1].GetJsonPayload().GetFields()["k\uFFFD"].GetStringValue()), []byte("v\uFFFD")) {
		t.Fatalf("json: %s", entryJSON(got[1]))
	}
	if n := testutil.ToFloat64(s.Metrics().Adjusted.WithLabelValues("logging", "invalid_utf8")); n != 2 {
		t.Fatalf("invalid_utf8 counted %v, want 2", n)
	}
}

// TestKey: AppendKey separates what must go in separate requests and nothing else.
func TestKey(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{})
	key := func(r *collector.Record) string { return string(s.AppendKey(nil, r)) }
	a, b := rec(0, collector.StreamStdout, "a"), rec(1, collector.StreamStdout, "b")
	c := rec(2, collector.StreamStderr, "c")
	if key(a) != key(b) || key(a) == key(c) {
		t.Fatalf("keys %q %q %q", key(a), key(b), key(c))
	}
	d := rec(3, collector.StreamStdout, "d")
	d.Source = collector.NewSource(8, "pods", &collector.Kube{Namespace: "shop", Pod: "other", Container: "app"})
	if key(a) == key(d) {
		t.Fatal("two pods share a key")
	}
}
