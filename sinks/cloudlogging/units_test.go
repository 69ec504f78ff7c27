package cloudlogging

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

func TestSeverityWords(t *testing.T) {
	f := func(in string, level bool, want Severity, ok bool) {
		t.Helper()
		got, gotOK := severityWord([]byte(in), level)
		if got != want || gotOK != ok {
			t.Errorf("severityWord(%q, level=%v) = %v, %v; want %v, %v", in, level, got, gotOK, want, ok)
		}
	}
	f("INFO", false, SeverityInfo, true)
	f("info", false, SeverityInfo, true)
	f("Information", false, SeverityInfo, true)
	f("warn", false, SeverityWarning, true)
	f("WARNING", false, SeverityWarning, true)
	f("W", false, SeverityWarning, true)
	f("err", false, SeverityError, true)
	f("error", false, SeverityError, true)
	f("SEVERE", false, SeverityError, true)
	f("fatal", false, SeverityCritical, true)
	f("crit", false, SeverityCritical, true)
	f("panic", false, SeverityCritical, true)
	f("emerg", false, SeverityEmergency, true)
	f("alert", false, SeverityAlert, true)
	f("notice", false, SeverityNotice, true)
	f("trace", false, SeverityDebug, true)
	f("finest", false, SeverityDebug, true)
	f("DEFAULT", false, SeverityDefault, true)
	f("500", false, SeverityError, true)
	f("250", false, SeverityInfo, true)
	f("9000", false, SeverityEmergency, true)
	f("30", false, SeverityDefault, true) // Google's scale: 30 rounds down to DEFAULT
	f("30", true, SeverityInfo, true)     // a level on the pino scale
	f("loud", false, 0, false)
	f("", false, 0, false)
	f("WARNINGWARNING", false, 0, false)
	f("4x", false, 0, false)

	n := func(v float64, level bool, want Severity, ok bool) {
		t.Helper()
		got, gotOK := severityNumber(v, level)
		if got != want || gotOK != ok {
			t.Errorf("severityNumber(%v, level=%v) = %v, %v; want %v, %v", v, level, got, gotOK, want, ok)
		}
	}
	n(10, true, SeverityDebug, true)
	n(20, true, SeverityDebug, true)
	n(30, true, SeverityInfo, true)
	n(40, true, SeverityWarning, true)
	n(50, true, SeverityError, true)
	n(60, true, SeverityCritical, true)
	n(5, true, 0, false)
	n(-1, false, 0, false)
	n(599.9, false, SeverityError, true)
	n(800, true, SeverityEmergency, true)

	if _, err := ParseSeverity("bogus"); err == nil {
		t.Error("ParseSeverity(bogus) accepted")
	}
}

func TestParseRFC3339(t *testing.T) {
	f := func(in string, ok bool) {
		t.Helper()
		got, gotOK := parseRFC3339([]byte(in))
		if gotOK != ok {
			t.Fatalf("parseRFC3339(%q) ok = %v, want %v", in, gotOK, ok)
		}
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, strings.Replace(strings.ToUpper(in), " ", "T", 1))
		if err != nil {
			t.Fatal(err)
		}
		if got != want.UnixNano() {
			t.Fatalf("parseRFC3339(%q) = %v, want %v", in, time.Unix(0, got).UTC(), want.UTC())
		}
	}
	f("2026-11-23T03:00:00Z", true)
	f("2026-11-23T03:00:00.123456789Z", true)
	f("2026-11-23T03:00:00.1Z", true)
	f("2026-11-23t03:00:00z", true)
	f("2026-11-23 03:00:00+09:30", true)
	f("2026-11-23T03:00:00.5-07:00", true)
	f("2024-02-29T00:00:00Z", true)
	f("1970-01-01T00:00:00Z", true)
	f("2025-02-29T00:00:00Z", false)
	f("2026-11-23T03:00:00", false)
	f("2026-11-23T03:00:00.Z", false)
	f("2026-11-23T24:00:00Z", false)
	f("2026-13-01T00:00:00Z", false)
	f("2026-11-23T03:00:00+0900", false)
	f("2026-11-23T03:00:00Zjunk", false)
	f("yesterday", false)
}

func TestLogID(t *testing.T) {
	app := &collector.Record{Stream: collector.StreamApp, Tag: []byte("app.web:v2"), Source: collector.NewSource(1, "fwd", nil)}
	noTag := &collector.Record{Stream: collector.StreamApp, Source: collector.NewSource(1, "fwd", nil)}
	out := rec(0, collector.StreamStdout, "x")
	errRec := rec(0, collector.StreamStderr, "x")
	f := func(tmpl string, r *collector.Record, want string) {
		t.Helper()
		lt, err := parseLogIDTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(lt.appendLogID(nil, r)); got != want {
			t.Errorf("log_id %q: %q, want %q", tmpl, got, want)
		}
	}
	f("", out, "stdout")
	f("", errRec, "stderr")
	f("", app, "app.web_v2")
	f("", noTag, "fwd")
	f("{container}", out, "app")
	f("k8s/{namespace}/{pod}", out, "k8s/shop/cart-7d9f")
	f("{tag}", out, "stdout") // renders empty: GKE naming
	f("{input}-{stream}", out, "pods-stdout")
	f("a b{stream}", out, "a_bstdout")
	f("{workload}/{labels.app}", out, "cart/cart")                                              // the shared template's fields
	f("{labels.missing|none}-{source}", out, "none-pods")                                       // fallback, and {source} = {input}
	f("{labels.missing}{pod_uid}", &collector.Record{Stream: collector.StreamStdout}, "stdout") // all empty: GKE naming
	f(strings.Repeat("x", 600), out, strings.Repeat("x", 511))

	if got := string(appendLogName(nil, "p", []byte("k8s/shop"))); got != "projects/p/logs/k8s%2Fshop" {
		t.Errorf("log name %q", got)
	}
	for _, bad := range []string{"{nope}", "{stream"} {
		if _, err := parseLogIDTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

// TestLogNamesAccepted: every LOG_ID the sink renders is one the API (the fake) accepts.
func TestLogNamesAccepted(t *testing.T) {
	f := startFake(t)
	s := newTestSink(t, f, Options{LogID: "{tag}/{namespace}"})
	r := rec(0, collector.StreamStdout, "x")
	r.Tag = []byte("weird tag é/../%2F?#")
	if err := send(t, s, r); err != nil {
		t.Fatal(err)
	}
	if got := f.Query()[0].GetLogName(); got != "projects/"+testProject+"/logs/weird_tag___%2F..%2F_2F__%2Fshop" {
		t.Fatalf("log name %q", got)
	}
}

// TestClusterFromMetadata: without location and cluster_name in the config the sink reads
// them (and the project) from the metadata server; without them anywhere it does not start
// and says which keys to set.
func TestClusterFromMetadata(t *testing.T) {
	attrs := map[string]string{
		"/computeMetadata/v1/project/project-id":                   "meta-project",
		"/computeMetadata/v1/instance/attributes/cluster-location": "us-central1",
		"/computeMetadata/v1/instance/attributes/cluster-name":     "meta-cluster",
	}
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "no flavor", http.StatusForbidden)
			return
		}
		v, ok := attrs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		w.Write([]byte(v))
	}))
	defer md.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))

	p, l, c, err := clusterIdentity(context.Background(), "", "", "", 5*time.Second)
	if err != nil || p != "meta-project" || l != "us-central1" || c != "meta-cluster" {
		t.Fatalf("clusterIdentity = %q %q %q, %v", p, l, c, err)
	}
	p, l, c, err = clusterIdentity(context.Background(), "cfg-project", "cfg-loc", "", 5*time.Second)
	if err != nil || p != "cfg-project" || l != "cfg-loc" || c != "meta-cluster" {
		t.Fatalf("config first: %q %q %q, %v", p, l, c, err)
	}

	delete(attrs, "/computeMetadata/v1/instance/attributes/cluster-name")
	delete(attrs, "/computeMetadata/v1/instance/attributes/cluster-location")
	_, _, _, err = clusterIdentity(context.Background(), "p", "", "", 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cluster_name") || !strings.Contains(err.Error(), "location") {
		t.Fatalf("no cluster anywhere: %v", err)
	}
}
