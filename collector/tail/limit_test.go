package tail

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tailgate-dev/tailgate/collector"
	"github.com/tailgate-dev/tailgate/collector/kube"
)

// TestRateLimitNoisyPodWaitsAlone: one pod writes 50x the lines of each of 20 others, with a
// per-container limit of 100 lines/s, or of 10KiB/s on 100-byte lines. The quiet pods' records
// all go out first, while the noisy pod is held at its rate (its file falls behind, nothing is
// dropped): the order of emission shows it, with no timing assertion.
func TestRateLimitNoisyPodWaitsAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit collector.RateLimitConfig
		lines func(prefix string, from, to int) string
	}{
		{"lines/s", collector.RateLimitConfig{Lines: 100, Burst: collector.Duration(time.Second)}, criLines},
		{"bytes/s", collector.RateLimitConfig{Bytes: 10 << 10, Burst: collector.Duration(time.Second)}, criLines100},
	} {
		t.Run(tc.name, func(t *testing.T) { testNoisyPodWaitsAlone(t, tc.limit, tc.lines) })
	}
}

func testNoisyPodWaitsAlone(t *testing.T, limit collector.RateLimitConfig, lines func(prefix string, from, to int) string) {
	tr := newKubeTree(t)
	tr.add(t, "shop", "noisy", "app", lines("noisy", 0, 1000))
	for i := range 20 {
		tr.add(t, "shop", fmt.Sprintf("quiet%02d", i), "app", lines(fmt.Sprintf("quiet%02d", i), 0, 20))
	}
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, RateLimit: limit})
	em := newFakeEmitter(nil)
	start(t, in, em)
	rs := em.waitRecords(t, 400+300)
	lastQuiet, noisy300 := -1, -1
	noisy := 0
	for i, r := range rs {
		if strings.HasPrefix(r.Message, "quiet") {
			lastQuiet = i
		} else if noisy++; noisy == 300 {
			noisy300 = i
		}
	}
	if lastQuiet < 0 || noisy300 < 0 || lastQuiet > noisy300 {
		t.Errorf("the last quiet record went out at %d, after the noisy pod's 300th (%d): the noisy pod was not held back", lastQuiet, noisy300)
	}
	if n := em.droppedFor("rate_limit"); n != 0 {
		t.Errorf("%d records dropped: within max_lag the limit must only delay", n)
	}
	// Every quiet line, once, in order per pod.
	seen := map[string]int{}
	for _, r := range rs {
		if p, n, ok := strings.Cut(r.Message, " "); ok && strings.HasPrefix(p, "quiet") {
			n, _, _ = strings.Cut(n, " ") // criLines100 pads after the number
			if want := fmt.Sprint(seen[p]); n != want {
				t.Fatalf("%s: record %s, want %s", p, n, want)
			}
			seen[p]++
		}
	}
	for p, n := range seen {
		if n != 20 {
			t.Errorf("%s: %d records, want 20", p, n)
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d quiet pods shipped, want 20", len(seen))
	}
}

// TestRateLimitDropsPastMaxLag: past max_lag the excess is read and dropped, counted in
// tailgate_pod_log_dropped_total{reason="rate_limit"}; every line is either shipped or counted,
// and the other container ships all of its lines. Limits in lines/s and in bytes/s.
func TestRateLimitDropsPastMaxLag(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit collector.RateLimitConfig
		lines func(prefix string, from, to int) string
		// bounds of the noisy container's shipped lines (its burst, then its rate until the
		// lag passes max_lag) and the least it must drop, of 2000
		minShipped, maxShipped, minDropped int
	}{
		{"lines/s", collector.RateLimitConfig{Lines: 10, MaxLag: 1024}, criLines, 10, 2000, 1000},
		// The burst is 1s of 2000 bytes: 20 lines, then 20 a second until the lag passes 1KiB.
		{"bytes/s", collector.RateLimitConfig{Bytes: 2000, MaxLag: 1024}, criLines100, 20, 200, 1800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newKubeTree(t)
			tr.add(t, "shop", "noisy", "app", tc.lines("noisy", 0, 2000))
			tr.add(t, "shop", "quiet", "app", tc.lines("quiet", 0, 20))
			in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, RateLimit: tc.limit})
			em := newFakeEmitter(nil)
			start(t, in, em)
			waitFor(t, "every noisy line shipped or dropped, every quiet line shipped", func() bool {
				return shippedBy(em, "noisy")+em.droppedFor("rate_limit") == 2000 && shippedBy(em, "quiet") == 20
			})
			if shipped, dropped := shippedBy(em, "noisy"), em.droppedFor("rate_limit"); shipped < tc.minShipped || shipped > tc.maxShipped || dropped < tc.minDropped {
				t.Errorf("noisy shipped %d, dropped %d of 2000: want the burst shipped and the excess dropped", shipped, dropped)
			}
		})
	}
}

// TestRateLimitAnnotationOverride: a pod's tailgate.io/rate-limit-lines sets its containers'
// limit where the input has none.
func TestRateLimitAnnotationOverride(t *testing.T) {
	c := kube.NewCache(kube.CacheOptions{Node: "node-a"})
	for _, name := range []string{"noisy", "quiet"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		if name == "noisy" {
			p.Annotations = map[string]string{"tailgate.io/rate-limit-lines": "5"}
		}
		c.Upsert(p)
	}
	tr := newKubeTree(t)
	tr.add(t, "shop", "noisy", "app", criLines("noisy", 0, 1000))
	tr.add(t, "shop", "quiet", "app", criLines("quiet", 0, 1000))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, RateLimit: collector.RateLimitConfig{MaxLag: 1}})
	in.SetMetadata(c)
	em := newFakeEmitter(nil)
	start(t, in, em)
	waitFor(t, "all lines shipped or dropped", func() bool { return len(em.snapshot())+em.droppedFor("rate_limit") == 2000 })
	noisy := shippedBy(em, "noisy")
	if noisy >= 100 || em.droppedFor("rate_limit") != 1000-noisy {
		t.Errorf("annotated pod shipped %d and dropped %d of 1000 at 5 lines/s", noisy, em.droppedFor("rate_limit"))
	}
	if quiet := len(em.snapshot()) - noisy; quiet != 1000 {
		t.Errorf("the unannotated pod shipped %d of 1000", quiet)
	}
}

// criLines100 is criLines with every message padded to 100 bytes ("noisy 7 ....."), so that a
// bytes/s limit, not a lines/s one, is what holds a container back.
func criLines100(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		m := fmt.Sprintf("%s %d ", prefix, i)
		fmt.Fprintf(&b, "%s stdout F %s%s\n", ts, m, strings.Repeat(".", 100-len(m)))
	}
	return b.String()
}

// shippedBy counts the records whose message starts with prefix.
func shippedBy(em *fakeEmitter, prefix string) int {
	n := 0
	for _, r := range em.snapshot() {
		if strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// TestRateLimitBytesAnnotationOverride: a pod's tailgate.io/rate-limit-bytes (a size, as
// "1KiB") sets its containers' bytes limit where the input has none, and "0" lifts the input's
// limit for a pod.
func TestRateLimitBytesAnnotationOverride(t *testing.T) {
	c := kube.NewCache(kube.CacheOptions{Node: "node-a"})
	annotations := map[string]map[string]string{
		"noisy":  {"tailgate.io/rate-limit-bytes": "1KiB"},
		"quiet":  nil,
		"lifted": {"tailgate.io/rate-limit-bytes": "0"},
	}
	for name, a := range annotations {
		c.Upsert(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), Annotations: a},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}})
	}
	f := func(name string, limit collector.RateLimitConfig, wantFull, wantLimited []string) {
		t.Helper()
		tr := newKubeTree(t)
		for _, p := range append(append([]string{}, wantFull...), wantLimited...) {
			tr.add(t, "shop", p, "app", criLines100(p, 0, 1000))
		}
		limit.MaxLag = 1
		in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()}, RateLimit: limit})
		in.SetMetadata(c)
		em := newFakeEmitter(nil)
		start(t, in, em)
		total := 1000 * (len(wantFull) + len(wantLimited))
		waitFor(t, name+": all lines shipped or dropped", func() bool { return len(em.snapshot())+em.droppedFor("rate_limit") == total })
		for _, p := range wantFull {
			if n := shippedBy(em, p); n != 1000 {
				t.Errorf("%s: %s shipped %d of 1000", name, p, n)
			}
		}
		for _, p := range wantLimited {
			// ~10 lines of 100 bytes a second, with a 1s burst: far fewer than 1000.
			if n := shippedBy(em, p); n < 10 || n >= 100 || em.droppedFor("rate_limit") != 1000-n {
				t.Errorf("%s: %s shipped %d and %d were dropped of 1000 at 1KiB/s", name, p, n, em.droppedFor("rate_limit"))
			}
		}
	}
	f("annotation sets a limit", collector.RateLimitConfig{}, []string{"quiet"}, []string{"noisy"})
	f("annotation 0 lifts the input's limit", collector.RateLimitConfig{Bytes: 1 << 10}, []string{"lifted"}, []string{"quiet"})
}
