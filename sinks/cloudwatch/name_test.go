package cloudwatch

import (
	"strings"
	"testing"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestNameTemplates(t *testing.T) {
	kube := &collector.Kube{Namespace: "shop", Pod: "cart-7d9f", Container: "app", Node: "ip-10-0-0-1",
		Workload: "cart", Labels: map[string]string{"app": "cart", "team": "a:b*c"}}
	tailed := &collector.Record{Source: collector.NewSource(1, "pods", kube), Stream: collector.StreamStderr}
	forward := &collector.Record{Source: collector.NewSource(2, "apps", nil), Stream: collector.StreamApp, Tag: []byte("app.web")}
	f := func(tmpl string, group bool, r *collector.Record, want string) {
		t.Helper()
		nt, err := parseNameTemplate("log_group", tmpl, group)
		if err != nil {
			t.Fatalf("parse %q: %v", tmpl, err)
		}
		if got := string(nt.appendName(nil, r)); got != want {
			t.Errorf("%q (group %v) = %q, want %q", tmpl, group, got, want)
		}
	}
	f("/k8s/{namespace}", true, tailed, "/k8s/shop")
	f("{pod}/{container}", false, tailed, "cart-7d9f/app")
	f("{node}.{stream}.{workload}.{source}", false, tailed, "ip-10-0-0-1.stderr.cart.pods")
	f("/k8s/{labels.app}", true, tailed, "/k8s/cart")
	f("{labels.team}", false, tailed, "a_b_c")               // ':' and '*' are not allowed in streams
	f("/g/{labels.team}", true, tailed, "/g/a_b_c")          // nor in groups
	f("/k8s/{labels.missing}", true, tailed, "/k8s/unknown") // the default fallback
	f("/k8s/{labels.missing|none}", true, tailed, "/k8s/none")
	f("/k8s/{namespace}", true, forward, "/k8s/unknown") // a forward record without a pod
	f("{tag}", false, forward, "app.web")
	f("{tag|untagged}", false, tailed, "untagged")
	f("/日本/{namespace}", true, tailed, "/__/shop") // groups are ASCII only: one '_' per character
	f("日本/{pod}", false, tailed, "日本/cart-7d9f")
	f("{labels.missing|}", false, tailed, "_") // never empty
	long := strings.Repeat("é", 300)
	f(long, false, tailed, strings.Repeat("é", 256)) // cut at 512 bytes on a character boundary
}

func TestNameTemplateErrors(t *testing.T) {
	for _, tmpl := range []string{"", "/k8s/{namespace", "{nope}", "{labels.}"} {
		if _, err := parseNameTemplate("log_group", tmpl, true); err == nil {
			t.Errorf("%q: no error", tmpl)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	g, _ := parseNameTemplate("log_group", "/k8s/{namespace}", true)
	s, _ := parseNameTemplate("log_stream", "{pod}/{container}", false)
	r := &collector.Record{Source: collector.NewSource(1, "pods", &collector.Kube{Namespace: "ns", Pod: "p", Container: "c"})}
	group, stream, ok := splitKey(string(appendKey(nil, g, s, r)))
	if !ok || group != "/k8s/ns" || stream != "p/c" {
		t.Errorf("splitKey = %q, %q, %v", group, stream, ok)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	g, _ := parseNameTemplate("log_group", "/k8s/{namespace}", true)
	s, _ := parseNameTemplate("log_stream", "{pod}/{container}", false)
	r := &collector.Record{Source: collector.NewSource(1, "pods", &collector.Kube{Namespace: "shop", Pod: "cart-7d9f8b6c5-x2x9z", Container: "app"})}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = appendKey(dst[:0], g, s, r)
	}
}
