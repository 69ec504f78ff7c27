package exporter

import (
	"strings"
	"testing"
)

// FuzzLabelValues checks that any label values, once exposed, read back through Prometheus'
// parser as the same values (invalid UTF-8 replaced) on one series per family.
func FuzzLabelValues(f *testing.F) {
	f.Add("shop", "cart-7d9f", "app", "stdout", "too_long")
	f.Add(`q"uote`, `back\slash`, "new\nline", "", "")
	f.Fuzz(func(t *testing.T, ns, pod, ctr, stream, reason string) {
		p := NewPodLogs()
		s := p.Acquire(ns, pod, ctr, stream)
		s.Add(2, 20)
		s.AddDropped(reason, 3)
		out := scrape(t, p)
		e := parseProm(t, out)
		v := func(x string) string { return strings.ToValidUTF8(x, "\uFFFD") }
		want := map[string]float64{
			podKey(PodLogLinesName, v(ns), v(pod), v(ctr), v(stream)):                        2,
			podKey(PodLogBytesName, v(ns), v(pod), v(ctr), v(stream)):                        20,
			podKey(PodLogDroppedName, v(ns), v(pod), v(ctr), v(stream), "reason", v(reason)): 3,
		}
		for k, val := range want {
			if e.samples[k] != val {
				t.Fatalf("%s = %v, want %v; exposition:\n%q", k, e.samples[k], val, out)
			}
		}
		if len(e.samples) != 3 {
			t.Fatalf("%d samples, want 3:\n%q", len(e.samples), out)
		}
	})
}

// FuzzCgroupFlatKeyed reads any cgroup file content as cpu.stat and memory.stat are read: no
// panic, and a key found is a key that is in the content with a decimal value.
func FuzzCgroupFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 123\nthrottled_usec 4\n"), "usage_usec")
	f.Add([]byte("inactive_file 18446744073709551615\n"), "inactive_file")
	f.Add([]byte("oom_kill -1\nmax\n\n"), "oom_kill")
	f.Fuzz(func(t *testing.T, content []byte, key string) {
		v, ok := flatKey(content, key)
		if ok && !strings.Contains(string(content), key+" ") {
			t.Fatalf("found %s = %d in %q", key, v, content)
		}
	})
}

// FuzzPodNames reads any directory name as a /var/log/pods entry and as a pod cgroup: no panic,
// and what is recognized round-trips.
func FuzzPodNames(f *testing.F) {
	f.Add("shop_cart-7d9f_0f9d6c2e-1b7a-4c3e-9f00-6a1b2c3d4e5f")
	f.Add("kubepods-burstable-pod7a1e2b3c_4d5e_4f60_8a9b_0c1d2e3f4a5b.slice")
	f.Add("podc0ffee00-1234-4abc-8def-001122334455")
	f.Fuzz(func(t *testing.T, name string) {
		if pd, ok := parsePodDir(name); ok && pd.namespace+"_"+pd.pod+"_"+pd.uid != name {
			t.Fatalf("pod dir %q read as %+v", name, pd)
		}
		if uid, ok := podCgroupUID(name); ok && (len(uid) != 36 || !strings.Contains(strings.ReplaceAll(name, "_", "-"), uid)) {
			t.Fatalf("cgroup %q read as uid %q", name, uid)
		}
	})
}
