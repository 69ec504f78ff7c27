package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/sinks/cloudwatch/cwfake"
)

// workload builds n records over several pods and containers: ASCII and multi-byte lines,
// invalid UTF-8, JSON lines, a forward record with only fields, times slightly out of order
// and spread over three days, sizes from 1 byte to 200 KB. It returns the records and what
// CloudWatch must hold for them.
func workload(n int, seed uint64, now time.Time) ([]*collector.Record, []want) {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var sources []*collector.Source
	for i := range 12 {
		ns := []string{"shop", "kube-system", "payments"}[i%3]
		sources = append(sources, source(uint64(i+1), ns, "pod-"+string(rune('a'+i)), []string{"app", "sidecar"}[i%2], nil))
	}
	base := now.Add(-72 * time.Hour)
	var recs []*collector.Record
	var wants []want
	for i := range n {
		src := sources[rnd.IntN(len(sources))]
		var m []byte
		wantMsg := ""
		switch rnd.IntN(10) {
		case 0:
			m = msg("%d Grüße 日本語 ✓ %s", i, strings.Repeat("é", rnd.IntN(50)))
		case 1:
			m = append(msg("%d bad utf8 ", i), 0xff, 'x', 0xc3, 0x28, 0xe2, 0x82)
			wantMsg = strings.ToValidUTF8(string(m[:len(m)-6]), "") + "\ufffdx\ufffd(\ufffd\ufffd"
		case 2:
			m = msg(`{"level":"info","i":%d,"msg":"quoted \"x\" and \\ and tab\t"}`, i)
		case 3:
			size := rnd.IntN(2000)
			if rnd.IntN(20) == 0 {
				size = rnd.IntN(300_000) // some requests are cut by bytes, not count
			}
			m = msg("%d %s", i, strings.Repeat("z", size))
		default:
			m = msg("%d line %s", i, strings.Repeat("a", rnd.IntN(400)))
		}
		if wantMsg == "" {
			wantMsg = string(m)
		}
		// Mostly in order, with jitter, across three days.
		t := base.Add(time.Duration(i) * 72 * time.Hour / time.Duration(n)).Add(time.Duration(rnd.IntN(5000)-2500) * time.Millisecond)
		r := &collector.Record{Source: src, Time: t.UnixNano(), Stream: collector.StreamStdout, Message: m, ID: collector.MakeID(src.Key, uint64(i))}
		recs = append(recs, r)
		kube := src.Kube()
		wants = append(wants, want{"/k8s/" + kube.Namespace, kube.Pod + "/" + kube.Container, wantMsg, t.UnixMilli()})
	}
	return recs, wants
}

func TestSendDeliversEveryRecord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		throttle float64
	}{{"no throttling", 0}, {"10% throttled", 0.10}, {"half throttled", 0.5}} {
		t.Run(tc.name, func(t *testing.T) {
			fake, url := startFake(t, cwfake.Options{RequireSignature: true, ThrottleRate: tc.throttle, Seed: 7})
			s := newTestSink(t, testConfig(url, nil), nil)
			recs, wants := workload(3000, 1, time.Now())
			deliver(t, s, recs)
			checkStored(t, fake, wants)
			st := fake.Stats()
			if tc.throttle > 0 && st.Errors["ThrottlingException"] == 0 {
				t.Errorf("no call was throttled: the test did not test throttling")
			}
			t.Logf("calls %v, errors %v", st.Calls, st.Errors)
		})
	}
}

func TestSendUnkeyedBatchSplitsPerStream(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true, ThrottleRate: 0.1, Seed: 3})
	s := newTestSink(t, testConfig(url, nil), nil)
	recs, wants := workload(2000, 2, time.Now())
	// Unkeyed batches within the request limits, as a pipeline that does not cut per key
	// (or a dead-letter replay) hands them.
	for len(recs) > 0 {
		n := min(len(recs), 300)
		b := &collector.SinkBatch{Records: recs[:n]}
		for attempt := 0; ; attempt++ {
			err := s.Send(context.Background(), b)
			if err == nil {
				break
			}
			var re *collector.RecordErrors
			if errors.As(err, &re) {
				if len(re.Failed) > 0 {
					t.Fatalf("records failed: %v", re)
				}
				var retry []*collector.Record
				for _, e := range re.Retry {
					retry = append(retry, b.Records[e.Index])
				}
				b = &collector.SinkBatch{Records: retry}
			}
			if attempt > 500 {
				t.Fatal("not delivered")
			}
		}
		recs = recs[n:]
	}
	checkStored(t, fake, wants)
}

func TestRequestsKeepEveryLimit(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true})
	s := newTestSink(t, testConfig(url, nil), nil)
	src := source(1, "ns", "p", "c", nil)
	now := time.Now()
	var recs []*collector.Record
	var wants []want
	add := func(m []byte, at time.Time) {
		recs = append(recs, &collector.Record{Source: src, Time: at.UnixNano(), Message: m})
		wants = append(wants, want{"/k8s/ns", "p/c", string(m), at.UnixMilli()})
	}
	// 25,000 tiny events (three requests by count), then events of ~300 KB (four per request by
	// bytes), then a day and a half of events (two requests by span), in one unkeyed batch.
	for i := range 25_000 {
		add(msg("%d", i), now.Add(-time.Hour))
	}
	for i := range 10 {
		add(msg("%d%s", i, strings.Repeat("b", 300_000)), now.Add(-50*time.Minute))
	}
	for i := range 36 {
		add(msg("hourly %d", i), now.Add(-13*24*time.Hour+time.Duration(i)*time.Hour))
	}
	if err := s.Send(context.Background(), &collector.SinkBatch{Records: recs}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkStored(t, fake, wants)
	if calls := fake.Stats().Calls["PutLogEvents"]; calls < 3+3+2 {
		t.Errorf("%d PutLogEvents calls; the limits need at least 8", calls)
	}
}

func TestSendRecreatesDeletedGroupWithRetentionAndTags(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true})
	reg := prometheus.NewRegistry()
	s := newTestSink(t, testConfig(url, func(c *collector.SinkConfig) {
		c.RetentionDays = 7
		c.LogGroupTags = map[string]string{"team": "shop"}
	}), reg)
	src := source(1, "shop", "cart-1", "app", nil)
	now := time.Now()
	r1 := &collector.Record{Source: src, Time: now.UnixNano(), Message: []byte("first")}
	deliver(t, s, []*collector.Record{r1})
	ret, tags, ok := fake.Group("/k8s/shop")
	if !ok || ret != 7 || tags["team"] != "shop" {
		t.Fatalf("group: exists %v, retention %d, tags %v; want 7 days and team=shop", ok, ret, tags)
	}
	fake.DeleteGroup("/k8s/shop")
	r2 := &collector.Record{Source: src, Time: now.UnixNano(), Message: []byte("after the group was deleted")}
	deliver(t, s, []*collector.Record{r2})
	checkStored(t, fake, []want{{"/k8s/shop", "cart-1/app", "after the group was deleted", now.UnixMilli()}})
	if got := testutil.ToFloat64(s.m.vecs.created.WithLabelValues("cw", "group")); got != 2 {
		t.Errorf("groups created = %v, want 2", got)
	}
}

func TestRejectedEventsAreDeadLetteredWithReasons(t *testing.T) {
	now := time.Now()
	// The service's clock runs 3 hours ahead of the agent's, and the group keeps 1 day: the
	// agent sends what it thinks valid and the service rejects some in rejectedLogEventsInfo.
	fake, url := startFake(t, cwfake.Options{Now: func() time.Time { return time.Now().Add(3 * time.Hour) }})
	fake.CreateGroup("/k8s/ns", 1)
	reg := prometheus.NewRegistry()
	s := newTestSink(t, testConfig(url, nil), reg)
	src := source(1, "ns", "p", "c", nil)
	mk := func(m string, at time.Time) *collector.Record {
		return &collector.Record{Source: src, Time: at.UnixNano(), Message: []byte(m)}
	}
	recs := []*collector.Record{
		mk("too old for the agent", now.Add(-15*24*time.Hour)),
		mk("too new for the agent", now.Add(3*time.Hour)),
		mk("expired for the group", now.Add(-30*time.Hour)),
		mk("valid", now.Add(-time.Hour)),
		mk("too new for nobody", now.Add(time.Hour)),
		mk("near the agent's limit", now.Add(115*time.Minute)),
		mk("", now),
	}
	err := s.Send(context.Background(), &collector.SinkBatch{Records: recs, Key: "/k8s/ns\x00p/c"})
	var re *collector.RecordErrors
	if !errors.As(err, &re) {
		t.Fatalf("Send = %v, want *RecordErrors", err)
	}
	if len(re.Retry) != 0 {
		t.Errorf("%d records to retry, want 0", len(re.Retry))
	}
	got := map[int]string{}
	for _, f := range re.Failed {
		got[f.Index] = collector.ErrorReason(f.Err)
	}
	wantFailed := map[int]string{0: reasonTooOld, 1: reasonTooNew, 2: reasonExpired}
	if len(got) != len(wantFailed) {
		t.Errorf("failed records %v, want %v", got, wantFailed)
	}
	for i, r := range wantFailed {
		if got[i] != r {
			t.Errorf("record %d: reason %q, want %q", i, got[i], r)
		}
	}
	checkStored(t, fake, []want{
		{"/k8s/ns", "p/c", "valid", recs[3].Time / 1e6},
		{"/k8s/ns", "p/c", "too new for nobody", recs[4].Time / 1e6},
		{"/k8s/ns", "p/c", string(recs[5].Message), recs[5].Time / 1e6},
	})
	for reason, n := range map[string]float64{reasonTooOld: 1, reasonTooNew: 1, reasonExpired: 1, reasonEmpty: 1} {
		if got := testutil.ToFloat64(s.m.vecs.rejected.WithLabelValues("cw", reason)); got != n {
			t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, n)
		}
	}
}

func TestServiceRejectsTooOldAndTooNew(t *testing.T) {
	// The service's clock is 13 days and 23 hours ahead: events the agent holds valid are
	// too old there; and one 1h50m ahead of the agent is too new for a service clock 1 hour
	// behind.
	for _, tc := range []struct {
		name   string
		skew   time.Duration
		at     time.Duration
		reason string
	}{
		{"too old", 14*24*time.Hour - time.Hour, -2 * time.Hour, reasonTooOld},
		{"too new", -time.Hour, 110 * time.Minute, reasonTooNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, url := startFake(t, cwfake.Options{Now: func() time.Time { return time.Now().Add(tc.skew) }})
			s := newTestSink(t, testConfig(url, nil), nil)
			src := source(1, "ns", "p", "c", nil)
			now := time.Now()
			ok := &collector.Record{Source: src, Time: now.Add(tc.at / 2).UnixNano(), Message: []byte("kept")}
			if tc.reason == reasonTooOld {
				ok.Time = now.Add(time.Hour).UnixNano()
			}
			bad := &collector.Record{Source: src, Time: now.Add(tc.at).UnixNano(), Message: []byte("rejected")}
			err := s.Send(context.Background(), &collector.SinkBatch{Records: []*collector.Record{ok, bad}})
			var re *collector.RecordErrors
			if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 || collector.ErrorReason(re.Failed[0].Err) != tc.reason {
				t.Fatalf("Send = %v, want record 1 failed with %s", err, tc.reason)
			}
			checkStored(t, fake, []want{{"/k8s/ns", "p/c", "kept", ok.Time / 1e6}})
		})
	}
}

func TestOutageIsRetriedAndNothingLost(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true})
	reg := prometheus.NewRegistry()
	s := newTestSink(t, testConfig(url, nil), reg)
	recs, wants := workload(200, 3, time.Now())
	fake.SetOutage(true)
	for _, r := range recs[:50] {
		err := s.Send(context.Background(), &collector.SinkBatch{Records: []*collector.Record{r}})
		var re *collector.RecordErrors
		if err == nil || collector.IsPermanent(err) || errors.As(err, &re) {
			t.Fatalf("Send during an outage = %v, want a plain retryable error", err)
		}
	}
	if got := testutil.ToFloat64(s.m.vecs.requests.WithLabelValues("cw", opPut, resultUnavailable)); got != 50 {
		t.Errorf("requests{result=unavailable} = %v, want 50", got)
	}
	fake.SetOutage(false)
	deliver(t, s, recs)
	checkStored(t, fake, wants)
}

func TestAccessDeniedKeepsRecords(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true})
	reg := prometheus.NewRegistry()
	s := newTestSink(t, testConfig(url, nil), reg)
	src := source(1, "ns", "p", "c", nil)
	r := &collector.Record{Source: src, Time: time.Now().UnixNano(), Message: []byte("kept while denied")}
	fake.SetDenied(true)
	err := s.Send(context.Background(), &collector.SinkBatch{Records: []*collector.Record{r}})
	var re *collector.RecordErrors
	if err == nil || collector.IsPermanent(err) || errors.As(err, &re) {
		t.Fatalf("Send while denied = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("error %q does not name the cause", err)
	}
	if d := collector.RetryDelay(err); d != time.Second {
		t.Errorf("retry after %v, want the sink's denied retry (1s in tests)", d)
	}
	if got := testutil.ToFloat64(s.m.vecs.requests.WithLabelValues("cw", opPut, resultDenied)); got != 1 {
		t.Errorf("requests{result=access_denied} = %v, want 1", got)
	}
	fake.SetDenied(false)
	deliver(t, s, []*collector.Record{r})
	checkStored(t, fake, []want{{"/k8s/ns", "p/c", "kept while denied", r.Time / 1e6}})
}

// TestDeniedRetriesSlowly: a refusal an operator must fix (access denied, credentials the SDK
// cannot retrieve) keeps the records and asks the pipeline to wait DefaultDeniedRetry (30s)
// before resending, not its short backoff: the fix is picked up without a restart, and the
// service is not hammered meanwhile.
func TestDeniedRetriesSlowly(t *testing.T) {
	f := func(name string, creds aws.CredentialsProvider, denied bool, want string) {
		t.Helper()
		fake, url := startFake(t, cwfake.Options{RequireSignature: true})
		fake.SetDenied(denied)
		s, err := New(context.Background(), testConfig(url, nil), Options{Logger: slog.New(slog.DiscardHandler), Credentials: creds})
		if err != nil {
			t.Fatalf("%s: New: %v", name, err)
		}
		defer s.Close(context.Background())
		r := &collector.Record{Source: source(1, "ns", "p", "c", nil), Time: time.Now().UnixNano(), Message: []byte("kept")}
		err = s.Send(context.Background(), &collector.SinkBatch{Records: []*collector.Record{r}})
		var re *collector.RecordErrors
		if err == nil || collector.IsPermanent(err) || errors.As(err, &re) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Send = %v, want a retryable error naming %q", name, err, want)
		}
		if cls := classify(err); cls != classDenied {
			t.Errorf("%s: classified %v, want denied", name, cls.result())
		}
		if d := collector.RetryDelay(err); d != DefaultDeniedRetry {
			t.Errorf("%s: retry after %v, want DefaultDeniedRetry (%v)", name, d, DefaultDeniedRetry)
		}
		if n := fake.Stats().Events; n != 0 {
			t.Errorf("%s: %d events stored", name, n)
		}
	}
	static := credentials.NewStaticCredentialsProvider("AKIDTAILGATETEST", "test-secret", "")
	f("access denied", static, true, "AccessDeniedException")
	// What the default chain meets on a node without an identity: no role, or IMDS not
	// answering (a timeout, a refused connection, which alone would be "unavailable"). The
	// signer cannot get credentials and no request is sent.
	failing := func(err error) aws.CredentialsProvider {
		return aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, err
		}))
	}
	f("no role", failing(errors.New("no EC2 IMDS role found")), false, "get credentials: failed to refresh cached credentials, no EC2 IMDS role found")
	f("IMDS timeout", failing(fmt.Errorf("operation error ec2imds: GetMetadata: %w", context.DeadlineExceeded)), false, "get credentials")
	f("IMDS refused", failing(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), false, "get credentials")
}

func TestInvalidParameterIsolatesTheEvent(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{Poison: "POISON"})
	s := newTestSink(t, testConfig(url, nil), nil)
	src := source(1, "ns", "p", "c", nil)
	now := time.Now()
	var recs []*collector.Record
	var wants []want
	for i := range 100 {
		m := msg("event %d", i)
		if i == 37 || i == 38 || i == 90 {
			m = msg("event %d POISON", i)
		} else {
			wants = append(wants, want{"/k8s/ns", "p/c", string(m), now.UnixMilli()})
		}
		recs = append(recs, &collector.Record{Source: src, Time: now.UnixNano(), Message: m})
	}
	err := s.Send(context.Background(), &collector.SinkBatch{Records: recs})
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Retry) != 0 {
		t.Fatalf("Send = %v, want record errors without retries", err)
	}
	var failed []int
	for _, f := range re.Failed {
		failed = append(failed, f.Index)
		if r := collector.ErrorReason(f.Err); r != reasonInvalid {
			t.Errorf("record %d reason %q, want %q", f.Index, r, reasonInvalid)
		}
	}
	if len(failed) != 3 || failed[0] != 37 || failed[1] != 38 || failed[2] != 90 {
		t.Errorf("failed records %v, want [37 38 90]", failed)
	}
	fakeWithoutPoison := fake.Stats()
	if fakeWithoutPoison.Duplicates != 0 {
		t.Errorf("%d duplicates", fakeWithoutPoison.Duplicates)
	}
	got := fake.Events("/k8s/ns", "p/c")
	if len(got) != len(wants) {
		t.Errorf("%d events stored, want %d", len(got), len(wants))
	}
}

func TestInsecureEndpointSendsUnsigned(t *testing.T) {
	// insecure: true means anonymous credentials: a fake (or moto) that takes none.
	fake, url := startFake(t, cwfake.Options{})
	s := newTestSink(t, testConfig(url, func(c *collector.SinkConfig) { c.Insecure = true }), nil)
	src := source(1, "ns", "p", "c", nil)
	r := &collector.Record{Source: src, Time: time.Now().UnixNano(), Message: []byte("unsigned")}
	deliver(t, s, []*collector.Record{r})
	checkStored(t, fake, []want{{"/k8s/ns", "p/c", "unsigned", r.Time / 1e6}})

	// A server that requires signatures refuses it, and the sink reads that as access denied.
	strict, url2 := startFake(t, cwfake.Options{RequireSignature: true})
	s2 := newTestSink(t, testConfig(url2, func(c *collector.SinkConfig) { c.Insecure = true }), nil)
	err := s2.Send(context.Background(), &collector.SinkBatch{Records: []*collector.Record{r}})
	if err == nil || collector.IsPermanent(err) {
		t.Fatalf("unsigned Send to a signing server = %v, want a retryable error", err)
	}
	if got := testutil.ToFloat64(s2.m.vecs.requests.WithLabelValues("cw", opPut, resultDenied)); got != 1 {
		t.Errorf("requests{result=access_denied} = %v, want 1", got)
	}
	if n := strict.Stats().Events; n != 0 {
		t.Errorf("strict server stored %d events", n)
	}
}

func TestEnvelopeFormat(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{RequireSignature: true})
	s := newTestSink(t, testConfig(url, func(c *collector.SinkConfig) { c.MessageFormat = FormatEnvelope }), nil)
	src := source(1, "shop", "cart-1", "app", map[string]string{"app": "cart"})
	now := time.Now()
	r := &collector.Record{Source: src, Time: now.UnixNano(), Stream: collector.StreamStderr, Message: []byte(`panic: "x"`), ID: collector.MakeID(1, 42)}
	deliver(t, s, []*collector.Record{r})
	checkStored(t, fake, []want{{"/k8s/shop", "cart-1/app", string(r.AppendJSON(nil)), now.UnixMilli()}})
}

func TestForwardRecordWithoutMessageSendsFields(t *testing.T) {
	fake, url := startFake(t, cwfake.Options{})
	s := newTestSink(t, testConfig(url, func(c *collector.SinkConfig) { c.LogGroup = "/apps"; c.LogStream = "{tag}" }), nil)
	src := collector.NewSource(9, "apps", nil)
	now := time.Now()
	r := &collector.Record{Source: src, Time: now.UnixNano(), Stream: collector.StreamApp, Tag: []byte("app.access"), Fields: []byte(`{"status":200,"path":"/"}`)}
	deliver(t, s, []*collector.Record{r})
	checkStored(t, fake, []want{{"/apps", "app.access", `{"status":200,"path":"/"}`, now.UnixMilli()}})
}

func TestLimits(t *testing.T) {
	s := newTestSink(t, testConfig("http://127.0.0.1:1", func(c *collector.SinkConfig) { c.Oversize = "truncate" }), nil)
	l := s.Limits()
	if l.MaxRecords != 10_000 || l.MaxBytes != 1_048_576 || l.MaxRecordBytes != 1_048_550 || l.Oversize != collector.OversizeTruncate {
		t.Errorf("limits %+v", l)
	}
	r := &collector.Record{Message: []byte("héllo\xff")}
	if got := l.RecordBytes(r); got != 9 {
		t.Errorf("RecordBytes = %d, want 9 (é is 2 bytes, the invalid byte becomes U+FFFD, 3)", got)
	}
	if got := l.RecordCost(r); got != 9+26 {
		t.Errorf("RecordCost = %d, want 35", got)
	}
	env := newTestSink(t, testConfig("http://127.0.0.1:1", func(c *collector.SinkConfig) { c.MessageFormat = FormatEnvelope }), nil)
	big := &collector.Record{Source: source(1, "ns", "p", "c", nil), Message: []byte(strings.Repeat("\"", 400_000))}
	if got, want := env.Limits().RecordBytes(big), len(big.AppendJSON(nil)); got != want {
		t.Errorf("envelope RecordBytes near the limit = %d, want the envelope's %d", got, want)
	}
}

func TestEmptyPartIsDeadLetteredAsOversize(t *testing.T) {
	// The pipeline's split cuts the message and drops the fields: a forward record whose fields
	// were its message (line format) reaches Send as an empty part.
	_, url := startFake(t, cwfake.Options{})
	s := newTestSink(t, testConfig(url, nil), nil)
	src := source(1, "ns", "p", "c", nil)
	now := time.Now().UnixNano()
	recs := []*collector.Record{
		{Source: src, Time: now, Flags: collector.FlagPart},
		{Source: src, Time: now, Message: []byte("kept")},
		{Source: src, Time: now},
	}
	err := s.Send(context.Background(), &collector.SinkBatch{Records: recs})
	var re *collector.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 0 || collector.ErrorReason(re.Failed[0].Err) != reasonOversize {
		t.Fatalf("Send = %v, want record 0 failed as oversize (and the empty record 2 skipped, not failed)", err)
	}
}
