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
// per-container limit of 100 lines/s. The quiet pods' records all go out first, while the
// noisy pod is held at its rate (its file falls behind, nothing is dropped): the order of
// emission shows it, with no timing assertion.
func TestRateLimitNoisyPodWaitsAlone(t *testing.T) {
	tr := newKubeTree(t)
	tr.add(t, "shop", "noisy", "app", criLines("noisy", 0, 1000))
	for i := range 20 {
		tr.add(t, "shop", fmt.Sprintf("quiet%02d", i), "app", criLines(fmt.Sprintf("quiet%02d", i), 0, 20))
	}
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()},
		RateLimit: collector.RateLimitConfig{Lines: 100, Burst: collector.Duration(time.Second)}})
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
// tailgate_pod_log_dropped_total{reason="rate_limit"}; every line is either shipped or counted.
func TestRateLimitDropsPastMaxLag(t *testing.T) {
	tr := newKubeTree(t)
	tr.add(t, "shop", "noisy", "app", criLines("noisy", 0, 2000))
	tr.add(t, "shop", "quiet", "app", criLines("quiet", 0, 20))
	in := testInput(t, collector.InputConfig{Paths: []string{tr.glob()},
		RateLimit: collector.RateLimitConfig{Lines: 10, MaxLag: 1024}})
	em := newFakeEmitter(nil)
	start(t, in, em)
	waitFor(t, "every noisy line shipped or dropped", func() bool {
		n := 0
		for _, r := range em.snapshot() {
			if strings.HasPrefix(r.Message, "noisy") {
				n++
			}
		}
		return n+em.droppedFor("rate_limit") == 2000
	})
	shipped := 0
	quiet := 0
	for _, r := range em.snapshot() {
		if strings.HasPrefix(r.Message, "noisy") {
			shipped++
		} else {
			quiet++
		}
	}
	if em.droppedFor("rate_limit") < 1000 || shipped < 10 {
		t.Errorf("shipped %d, dropped %d: want the burst shipped and most of the excess dropped", shipped, em.droppedFor("rate_limit"))
	}
	waitFor(t, "the quiet pod", func() bool {
		quiet = 0
		for _, r := range em.snapshot() {
			if strings.HasPrefix(r.Message, "quiet") {
				quiet++
			}
		}
		return quiet == 20
	})
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
	noisy := 0
	for _, r := range em.snapshot() {
		if strings.HasPrefix(r.Message, "noisy") {
			noisy++
		}
	}
	if noisy >= 100 || em.droppedFor("rate_limit") != 1000-noisy {
		t.Errorf("annotated pod shipped %d and dropped %d of 1000 at 5 lines/s", noisy, em.droppedFor("rate_limit"))
	}
	if quiet := len(em.snapshot()) - noisy; quiet != 1000 {
		t.Errorf("the unannotated pod shipped %d of 1000", quiet)
	}
}
