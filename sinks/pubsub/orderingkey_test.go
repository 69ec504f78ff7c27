package pubsub

import (
	"strings"
	"testing"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestOrderingKeyTemplate(t *testing.T) {
	f := func(tmpl string, r *collector.Record, want string) {
		t.Helper()
		kt, err := parseKeyTemplate(tmpl)
		if err != nil {
			t.Fatalf("parse %q: %v", tmpl, err)
		}
		// Twice: the second answer comes from the cache.
		for range 2 {
			if got := kt.key(r); got != want {
				t.Errorf("%q: key %q, want %q", tmpl, got, want)
			}
		}
	}
	r := &collector.Record{Source: testSource, Stream: collector.StreamStderr}
	f("{namespace}/{pod}", r, "shop/cart-7d9f")
	f("{node}:{pod_uid}:{container}:{source}:{stream}", r, "n1:0b6c:app:pods:stderr")
	f("fixed", r, "fixed")
	f("k8s-{pod}-end", r, "k8s-cart-7d9f-end")
	f("{namespace}/{pod}", &collector.Record{}, "/")
	f("{labels.missing|none}/{pod|nopod}", &collector.Record{}, "none/nopod")
	if _, err := parseKeyTemplate("{namespace}/{tag}"); err == nil {
		t.Error("{tag} accepted: a key is rendered per source, not per record")
	}
	long := collector.NewSource(1, "in", &collector.Kube{Pod: strings.Repeat("é", 600)})
	f("{pod}", &collector.Record{Source: long}, strings.Repeat("é", 512))
	bad := collector.NewSource(1, "in", &collector.Kube{Pod: "a\xffb"})
	f("{pod}", &collector.Record{Source: bad}, "a\uFFFDb")
}

func TestOrderingKeyFollowsMetadataUpdates(t *testing.T) {
	kt, _ := parseKeyTemplate("{namespace}/{pod}")
	src := collector.NewSource(9, "pods", &collector.Kube{Namespace: "a", Pod: "p"})
	r := &collector.Record{Source: src}
	if got := kt.key(r); got != "a/p" {
		t.Fatalf("key %q", got)
	}
	src.SetKube(&collector.Kube{Namespace: "b", Pod: "p"})
	if got := kt.key(r); got != "b/p" {
		t.Errorf("key after SetKube %q, want b/p", got)
	}
}

func TestNoTemplateNoOrdering(t *testing.T) {
	kt, err := parseKeyTemplate("")
	if kt != nil || err != nil {
		t.Errorf("parse empty: %v %v, want nil nil", kt, err)
	}
}
