package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// deadLetterAll fills a data dir with n dead letters of sink "s" (reason not_found) through a
// real pipeline and stops it.
func deadLetterAll(t *testing.T, dir string, n int) {
	t.Helper()
	sink := &fakeSink{name: "s", limits: Limits{MaxRecords: 7, MaxDelay: 10 * time.Millisecond},
		fail: func(*SinkBatch, int) error {
			return Permanent(WithReason("not_found", errors.New("topic not found")))
		}}
	p := newTestPipeline(t, dir, []Sink{sink}, nil, prometheus.NewRegistry())
	p.Start(context.Background())
	emitN(t, p.Emitter("pods"), NewSource(1, "pods", &Kube{Namespace: "ns", Pod: "p"}), 0, n, "")
	waitFor(t, "dead letters", func() bool {
		return testutil.ToFloat64(p.metrics.DeadLetterRecords.WithLabelValues("s", "not_found")) == float64(n)
	})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.metrics.DeadLetterBytes.WithLabelValues("s")); got <= 0 {
		t.Errorf("tailgate_deadletter_bytes = %v after %d dead letters", got, n)
	}
}

func listed(t *testing.T, dir string, f DeadLetterFilter) (msgs []string, reasons []string) {
	t.Helper()
	err := ListDeadLetters(context.Background(), dir, "s", f, func(g DeadLetterGroup) error {
		for _, r := range g.Records {
			msgs = append(msgs, string(r.Message))
		}
		reasons = append(reasons, g.Reason)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return msgs, reasons
}

// TestDeadLetterReplay: dead letters are listed with their reason, a replay re-sends them
// through the sink, removes what was delivered, keeps what fails again (with its new reason)
// and leaves alone what the filter does not take.
func TestDeadLetterReplay(t *testing.T) {
	dir := t.TempDir()
	deadLetterAll(t, dir, 30)
	msgs, reasons := listed(t, dir, DeadLetterFilter{})
	if len(msgs) != 30 || reasons[0] != "not_found" {
		t.Fatalf("listed %d records, reasons %v", len(msgs), reasons)
	}
	if m, _ := listed(t, dir, DeadLetterFilter{Reason: "other"}); len(m) != 0 {
		t.Errorf("reason filter other listed %d records", len(m))
	}
	if m, _ := listed(t, dir, DeadLetterFilter{Since: time.Now().Add(time.Hour)}); len(m) != 0 {
		t.Errorf("since filter in the future listed %d records", len(m))
	}

	// A filter that takes nothing changes nothing.
	st, err := ReplayDeadLetters(context.Background(), dir, &fakeSink{name: "s"}, DeadLetterFilter{Reason: "other"}, slog.New(slog.DiscardHandler), nil)
	if err != nil || st.Matched != 0 || st.Kept != 30 {
		t.Fatalf("replay with reason other: %+v, %v", st, err)
	}
	if m, _ := listed(t, dir, DeadLetterFilter{}); len(m) != 30 {
		t.Fatalf("after a replay that took nothing: %d records listed", len(m))
	}

	// The cause is fixed for all but line 5, which the destination now refuses for another reason.
	fixed := &fakeSink{name: "s", limits: Limits{MaxRecords: 4}, fail: func(b *SinkBatch, _ int) error {
		for i, r := range b.Records {
			if string(r.Message) == "line 5" {
				return &RecordErrors{Failed: []RecordError{{Index: i, Err: WithReason("invalid_argument", errors.New("bad"))}}}
			}
		}
		return nil
	}}
	st, err = ReplayDeadLetters(context.Background(), dir, fixed, DeadLetterFilter{Reason: "not_found"}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 30 || st.Delivered != 29 || st.Failed != 1 || st.Pending != 0 {
		t.Errorf("replay stats %+v, want 30 matched, 29 delivered, 1 failed", st)
	}
	got := fixed.messages()
	if len(got) != 29 {
		t.Errorf("sink got %d records, want 29", len(got))
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m] {
			t.Errorf("%s delivered twice", m)
		}
		seen[m] = true
	}
	msgs, reasons = listed(t, dir, DeadLetterFilter{})
	if strings.Join(msgs, ",") != "line 5" || strings.Join(reasons, ",") != "invalid_argument" {
		t.Errorf("left in the store: %v with reasons %v, want line 5 with invalid_argument", msgs, reasons)
	}
	// A second replay of the fixed reason finds nothing more to send.
	again := &fakeSink{name: "s"}
	st, err = ReplayDeadLetters(context.Background(), dir, again, DeadLetterFilter{Reason: "not_found"}, slog.New(slog.DiscardHandler), nil)
	if err != nil || st.Matched != 0 || len(again.messages()) != 0 {
		t.Errorf("second replay: %+v, %v, sent %d", st, err, len(again.messages()))
	}
}

// TestDeadLetterStoreDropsCounted: a full store drops its oldest dead letters, and every
// dropped record is counted by the reason it was dead-lettered for, in the metric and in the
// store's dropped.json, which a later agent adds to and SummarizeDeadLetters reads.
func TestDeadLetterStoreDropsCounted(t *testing.T) {
	dataDir := t.TempDir()
	msg := strings.Repeat("x", 64<<10)
	src := NewSource(1, "pods", nil)
	fill := func(m *Metrics, from, n int, reason func(i int) string) {
		t.Helper()
		d := newDeadLetter(dataDir, "s", slog.New(slog.DiscardHandler), m)
		d.maxBytes, d.segmentBytes = 3<<20, 1<<20
		for i := from; i < from+n; i++ {
			recs := []*Record{{Source: src, ID: MakeID(1, uint64(i)), Message: []byte(msg)}}
			if err := d.write(context.Background(), recs, WithReason(reason(i), fmt.Errorf("n %d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.close(); err != nil {
			t.Fatal(err)
		}
	}
	// The first 60 are too_old, the 40 after not_found: the oldest, dropped first, are too_old.
	m := NewMetrics(nil)
	fill(m, 0, 100, func(i int) string {
		if i < 60 {
			return "too_old"
		}
		return "not_found"
	})
	droppedOld := testutil.ToFloat64(m.DeadLetterDropped.WithLabelValues("s", "too_old"))
	if droppedOld == 0 {
		t.Fatal("6.4 MB of dead letters in a 3 MiB store and nothing counted as dropped")
	}
	if got := testutil.ToFloat64(m.DeadLetterDropped.WithLabelValues("s", "not_found")); got != 0 {
		t.Errorf("dropped not_found = %v: the newest dead letters were dropped", got)
	}
	kept := map[string]int{}
	err := ListDeadLetters(context.Background(), dataDir, "s", DeadLetterFilter{}, func(g DeadLetterGroup) error {
		kept[g.Reason] += len(g.Records)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if kept["not_found"] != 40 || kept["too_old"]+int(droppedOld) != 60 {
		t.Errorf("kept %v, dropped too_old %v; written 60 too_old, 40 not_found", kept, droppedOld)
	}
	if got := testutil.ToFloat64(m.DeadLetterRecords.WithLabelValues("s", "too_old")); got != 60 {
		t.Errorf("dead letters counted %v, want 60", got)
	}

	// A later agent (metrics from zero) drops the rest of the too_old ones and some not_found:
	// dropped.json keeps the total across both.
	m2 := NewMetrics(nil)
	fill(m2, 100, 40, func(int) string { return "invalid_argument" })
	sum, err := SummarizeDeadLetters(dataDir, "s")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DeadLetterReason{}
	for _, r := range sum.Reasons {
		got[r.Reason] = r
	}
	kept = map[string]int{}
	ListDeadLetters(context.Background(), dataDir, "s", DeadLetterFilter{}, func(g DeadLetterGroup) error {
		kept[g.Reason] += len(g.Records)
		return nil
	})
	for _, reason := range []string{"too_old", "not_found", "invalid_argument"} {
		r := got[reason]
		dropped := testutil.ToFloat64(m.DeadLetterDropped.WithLabelValues("s", reason)) +
			testutil.ToFloat64(m2.DeadLetterDropped.WithLabelValues("s", reason))
		if r.Dropped != int64(dropped) || r.Records != int64(kept[reason]) {
			t.Errorf("%s: summary %d stored, %d dropped; store lists %d, metrics dropped %v", reason, r.Records, r.Dropped, kept[reason], dropped)
		}
		written := map[string]int64{"too_old": 60, "not_found": 40, "invalid_argument": 40}[reason]
		if r.Records+r.Dropped != written {
			t.Errorf("%s: %d stored + %d dropped != %d written", reason, r.Records, r.Dropped, written)
		}
	}
	if got["too_old"].Records != 0 || sum.LastDrop.IsZero() {
		t.Errorf("after 140 dead letters in a 3 MiB store: too_old %+v, last drop %v", got["too_old"], sum.LastDrop)
	}
}
