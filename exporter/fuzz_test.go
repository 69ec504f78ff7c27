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
