package collector

import (
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	k := &Kube{Namespace: "shop", Pod: "cart-1", PodUID: "u1", Container: "app", Node: "n1",
		Workload: "cart", Labels: map[string]string{"app": "cart"}}
	render := func(parts []TemplatePart, k *Kube) string {
		var b strings.Builder
		for i := range parts {
			v := parts[i].Value(k, "pods", StreamStderr)
			if v == "" && parts[i].HasFallback {
				v = parts[i].Fallback
			}
			b.WriteString(v)
		}
		return b.String()
	}
	f := func(tmpl string, k *Kube, want string) {
		t.Helper()
		parts, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		if got := render(parts, k); got != want {
			t.Errorf("%q renders %q, want %q", tmpl, got, want)
		}
	}
	f("", k, "")
	f("/k8s/{namespace}", k, "/k8s/shop")
	f("{pod}/{container}", k, "cart-1/app")
	f("{pod_uid}.{node}.{workload}", k, "u1.n1.cart")
	f("{source}-{input}-{stream}", k, "pods-pods-stderr")
	f("{labels.app}", k, "cart")
	f("{labels.missing|none}", k, "none")
	f("{pod|nopod}", nil, "nopod") // no metadata
	f("{tag}", k, "")              // the caller appends r.Tag

	for _, bad := range []string{"{namespace", "{nope}", "{labels.}", "x{}", "a{{namespace}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseTemplate: any config string parses or fails cleanly; what parses renders, and its
// literals put together are the template's text outside the braces.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"/k8s/{namespace}", "{pod}/{labels.app|none}", "{", "}{", "{labels.}", "a{stream}b{tag|x}"} {
		f.Add(s)
	}
	k := &Kube{Namespace: "ns", Labels: map[string]string{"app": "a"}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		parts, err := ParseTemplate(tmpl)
		if err != nil {
			return
		}
		var lits, outside strings.Builder
		for i := range parts {
			if parts[i].Field == TemplateLiteral {
				if parts[i].Text == "" {
					t.Fatalf("%q: empty literal part", tmpl)
				}
				lits.WriteString(parts[i].Text)
			}
			_ = parts[i].Value(k, "in", StreamStdout)
		}
		for rest := tmpl; rest != ""; {
			open := strings.IndexByte(rest, '{')
			if open < 0 {
				outside.WriteString(rest)
				break
			}
			outside.WriteString(rest[:open])
			rest = rest[open+strings.IndexByte(rest[open:], '}')+1:]
		}
		if lits.String() != outside.String() {
			t.Fatalf("%q: literals %q, want %q", tmpl, lits.String(), outside.String())
		}
	})
}
