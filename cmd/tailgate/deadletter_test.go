package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

// seedDeadLetters stores n records of sink s dead-lettered at `at` for reason.
func seedDeadLetters(t *testing.T, dataDir, sink, reason string, n int, at time.Time) {
	t.Helper()
	src := collector.NewSource(1, "pods", &collector.Kube{Namespace: "ns", Pod: "p"})
	recs := make([]collector.Record, n)
	for i := range recs {
		recs[i] = collector.Record{Source: src, ID: collector.MakeID(1, uint64(at.UnixNano())+uint64(i)),
			Time: at.UnixNano(), Message: []byte(fmt.Sprintf("%s %d", reason, i))}
	}
	cause := collector.Permanent(collector.WithReason(reason, errors.New("refused: "+reason)))
	if err := collector.StoreDeadLetters(context.Background(), dataDir, sink, recs, cause, at); err != nil {
		t.Fatal(err)
	}
}

// The flags --since (an RFC 3339 time, or a duration ago) and --reason become the filter.
func TestDeadLetterFilterFlags(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f := func(since, reason string, want time.Time, wantErr bool) {
		t.Helper()
		flt, err := (&dlFlags{since: since, reason: reason}).filter(now)
		if (err != nil) != wantErr {
			t.Fatalf("--since %q: err %v, want error %v", since, err, wantErr)
		}
		if err == nil && (!flt.Since.Equal(want) || flt.Reason != reason) {
			t.Errorf("--since %q --reason %q: filter %+v, want since %v", since, reason, flt, want)
		}
	}
	f("", "", time.Time{}, false)
	f("", "not_found", time.Time{}, false)
	f("1h", "", now.Add(-time.Hour), false)
	f("90m", "too_old", now.Add(-90*time.Minute), false)
	f("2026-12-06T08:30:00Z", "", time.Date(2026, 12, 6, 8, 30, 0, 0, time.UTC), false)
	f("2026-12-06T10:30:00+02:00", "", time.Date(2026, 12, 6, 8, 30, 0, 0, time.UTC), false)
	f("2026-12-06T08:30:00.25Z", "", time.Date(2026, 12, 6, 8, 30, 0, 250e6, time.UTC), false)
	f("-1h", "", time.Time{}, true)
	f("yesterday", "", time.Time{}, true)
	f("2026-12-06", "", time.Time{}, true)
}

// `deadletter list` takes the dead letters --since and --reason choose, and totals them by reason.
func TestDeadLetterListSinceReason(t *testing.T) {
	dataDir := t.TempDir()
	now := time.Now()
	seedDeadLetters(t, dataDir, "s", "too_old", 2, now.Add(-3*time.Hour))
	seedDeadLetters(t, dataDir, "s", "not_found", 3, now.Add(-30*time.Minute))
	seedDeadLetters(t, dataDir, "s", "too_old", 4, now.Add(-5*time.Minute))
	rfc := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	for _, tc := range []struct {
		args []string
		want []string // the total lines, in order
	}{
		{nil, []string{"total not_found: 3 records in 1 groups", "total too_old: 6 records in 2 groups"}},
		{[]string{"--since", "1h"}, []string{"total not_found: 3 records in 1 groups", "total too_old: 4 records in 1 groups"}},
		{[]string{"--since", "10m"}, []string{"total too_old: 4 records in 1 groups"}},
		{[]string{"--since", rfc(-2 * time.Hour)}, []string{"total not_found: 3 records in 1 groups", "total too_old: 4 records in 1 groups"}},
		{[]string{"--since", rfc(-4 * time.Hour)}, []string{"total not_found: 3 records in 1 groups", "total too_old: 6 records in 2 groups"}},
		{[]string{"--since", rfc(time.Hour)}, []string{"no dead letters for sink s match"}},
		{[]string{"--reason", "not_found"}, []string{"total not_found: 3 records in 1 groups"}},
		{[]string{"--reason", "too_old"}, []string{"total too_old: 6 records in 2 groups"}},
		{[]string{"--reason", "too_old", "--since", "1h"}, []string{"total too_old: 4 records in 1 groups"}},
		{[]string{"--reason", "permission_denied"}, []string{"no dead letters for sink s match"}},
	} {
		args := append([]string{"deadletter", "list", "--sink", "s", "--data-dir", dataDir}, tc.args...)
		code, out, errOut := runCLI(t, args...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "total ") || strings.HasPrefix(l, "no dead letters") {
				got = append(got, l)
			}
		}
		if code != 0 || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%v: code %d, totals %q, want %q\n%s%s", tc.args, code, got, tc.want, out, errOut)
		}
	}
	code, _, errOut := runCLI(t, "deadletter", "list", "--sink", "s", "--data-dir", dataDir, "--since", "yesterday")
	if code != 2 || !strings.Contains(errOut, `--since "yesterday"`) {
		t.Errorf("--since yesterday: code %d, stderr %q; want 2 naming the flag", code, errOut)
	}
}

// buffer inspect shows, per sink and reason, the records not replayed with when they were
// dead-lettered, and the records the full store dropped (from the store's dropped.json).
func TestDeadLetterSummary(t *testing.T) {
	dataDir := t.TempDir()
	t1 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	seedDeadLetters(t, dataDir, "ps", "not_found", 3, t1)
	seedDeadLetters(t, dataDir, "ps", "too_old", 4, t1.Add(time.Minute))
	seedDeadLetters(t, dataDir, "ps", "not_found", 2, t1.Add(2*time.Minute))
	seedDeadLetters(t, dataDir, "cw", "invalid_argument", 1, t1.Add(3*time.Minute))
	// What an agent leaves after its full store dropped 5 permission_denied and 2 too_old.
	dropped := `{"records":{"permission_denied":5,"too_old":2},"last":"2026-12-07T00:59:00Z"}`
	if err := os.WriteFile(filepath.Join(dataDir, "deadletter", "ps", "dropped.json"), []byte(dropped), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeDeadLetterSummary(&out, dataDir); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`  cw: 1 records not replayed, \d+ bytes on disk \(\d+ not replayed\), 0 corrupt regions, 0 dropped unreplayed when the store was full`,
		`    REASON +RECORDS +DROPPED +OLDEST +NEWEST`,
		`    invalid_argument +1 +0 +2026-12-07T01:03:00Z +2026-12-07T01:03:00Z`,
		`  ps: 9 records not replayed, \d+ bytes on disk \(\d+ not replayed\), 0 corrupt regions, 7 dropped unreplayed when the store was full \(last 2026-12-07T00:59:00Z\)`,
		`    REASON +RECORDS +DROPPED +OLDEST +NEWEST`,
		`    not_found +5 +0 +2026-12-07T01:00:00Z +2026-12-07T01:02:00Z`,
		`    permission_denied +0 +5 +- +-`,
		`    too_old +4 +2 +2026-12-07T01:01:00Z +2026-12-07T01:01:00Z`,
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want)+1, out.String())
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(strings.TrimRight(lines[i+1], " ")) {
			t.Errorf("line %d: %q, want /%s/", i+1, lines[i+1], w)
		}
	}

	var none bytes.Buffer
	if err := writeDeadLetterSummary(&none, t.TempDir()); err != nil || none.String() != "\ndead letters: none\n" {
		t.Errorf("no store: %q, %v", none.String(), err)
	}
}
